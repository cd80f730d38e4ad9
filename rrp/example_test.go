package rrp_test

import (
	"log/slog"
	"time"

	"github.com/totem-gcs/totem/rrp"
)

// The daemon's wiring: read the key, open the transport, give the engine
// MaxFrame as its NetMTU, send the engine's frames in batches and step the
// engine with every received frame.
func Example() {
	key, err := rrp.ReadKey("/etc/totem/authkey")
	if err != nil {
		slog.Error("no key", "err", err)
		return
	}
	t, err := rrp.New(rrp.Config{
		NodeID: 1,
		Nodes: []rrp.Node{
			{ID: 1, Addrs: []string{"198.18.0.1", "198.18.1.1"}},
			{ID: 2, Addrs: []string{"198.18.0.2", "198.18.1.2"}},
		},
		Links:             []rrp.LinkConfig{{Transport: rrp.UDPU}, {Transport: rrp.UDPU}},
		Mode:              rrp.Passive,
		Key:               key,
		HeartbeatInterval: 100 * time.Millisecond,
		LinkTimeout:       500 * time.Millisecond,
	})
	if err != nil {
		slog.Error("transport", "err", err)
		return
	}
	defer t.Close()
	netMTU := t.MaxFrame() // totem.Config.NetMTU
	_ = netMTU

	// In the event loop:
	t.SendBatch([]rrp.Frame{{To: 0, Data: []byte("a frame from Ready().Frames")}})
	for batch := range t.Recv() {
		for _, r := range batch {
			_ = r.Frame // node.Step(r.Frame)
		}
	}
}
