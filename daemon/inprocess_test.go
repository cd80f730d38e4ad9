package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/totem-gcs/totem/client"
	"github.com/totem-gcs/totem/rrp"
)

// TestInProcess runs two daemons in the test process (Start and Run, as
// totemd does) and passes a message between their clients.
func TestInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	dir := t.TempDir()
	key := filepath.Join(dir, "authkey")
	if err := rrp.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	ports := freeUDPPorts(t, 2)
	var sockets []string
	done := make(chan error, 2)
	runCtx, stop := context.WithCancel(context.Background())
	for id := 1; id <= 2; id++ {
		cfg := DefaultConfig()
		cfg.NodeID = uint32(id)
		cfg.KeyFile = key
		cfg.StateDir = filepath.Join(dir, fmt.Sprint(id))
		cfg.IPC.Socket = filepath.Join(dir, fmt.Sprint(id), "sock")
		cfg.Totem.Profile = "fast"
		for j, p := range ports {
			cfg.Nodes = append(cfg.Nodes, NodeOption{NodeID: uint32(j + 1), Addrs: []string{fmt.Sprintf("127.0.0.1:%d", p)}})
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		if testing.Verbose() {
			log = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
		d, err := Start(cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		go func() { done <- d.Run(runCtx) }()
		sockets = append(sockets, cfg.IPC.Socket)
	}
	defer func() {
		stop()
		for i := 0; i < 2; i++ {
			if err := <-done; err != nil {
				t.Errorf("daemon stopped with %v", err)
			}
		}
	}()
	var hs []*client.Handle
	for _, s := range sockets {
		h, err := client.Connect(ctx, client.Options{Socket: s})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if err := h.Join(ctx, "g"); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	// Wait until node 2's member sees both, then send from node 1.
	e := collect(hs[1])
	e.waitFor(t, ctx, "a view of 2", 0, viewIs("g", 2))
	if err := hs[0].Send(ctx, "g", []byte("across"), client.Safe); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, ctx, "the message from node 1", 0, func(ev client.Event) bool {
		m, ok := ev.(*client.Message)
		return ok && string(m.Data) == "across" && m.NodeID == 1 && m.Guarantee == client.Safe
	})
}
