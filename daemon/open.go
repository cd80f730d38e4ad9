package daemon

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/totem-gcs/totem/cpg"
	"github.com/totem-gcs/totem/rrp"
	"github.com/totem-gcs/totem/totem"
)

// openEngines creates the transport, the Totem node and the CPG service and
// returns the largest message clients may send. The engine's message limit
// is the client limit plus the CPG header, so that clients get the full
// max_message_size (1 MiB by default).
func (d *Daemon) openEngines(ecfg totem.Config) (int, error) {
	cfg := &d.cfg
	var key []byte
	if cfg.Crypto == "off" {
		d.log.Warn("crypto is off: packets are neither encrypted nor authenticated; use this only on an isolated network")
	} else {
		k, err := rrp.ReadKey(cfg.KeyFile)
		if err != nil {
			return 0, fmt.Errorf("%w (make one with `totemctl keygen %s` and copy it to every node)", err, cfg.KeyFile)
		}
		key = k
	}
	inc, err := d.state.NextIncarnation(uint64(time.Now().UnixNano()))
	if err != nil {
		return 0, err
	}
	hb, lt := cfg.LinkTimers(ecfg.RuntimeToken())
	rc := rrp.Config{
		NodeID:            d.nodeID,
		Incarnation:       inc,
		HeartbeatInterval: hb,
		LinkTimeout:       lt,
		Mode:              rrp.Mode(cfg.LinkMode),
		Key:               key,
		Insecure:          cfg.Crypto == "off",
		NoOffload:         cfg.Offload == "off",
		Logger:            d.log.With("component", "rrp"),
	}
	for _, n := range cfg.Nodes {
		rn := rrp.Node{ID: totem.NodeID(n.NodeID)}
		for _, a := range n.Addrs {
			// Addresses without a port take the configured port.
			ap, err := ParseNodeAddr(a, cfg.Port)
			if err != nil {
				return 0, err
			}
			rn.Addrs = append(rn.Addrs, ap.String())
		}
		rc.Nodes = append(rc.Nodes, rn)
	}
	nlinks := max(len(cfg.Links), 1)
	for i := 0; i < nlinks; i++ {
		lc := rrp.LinkConfig{Transport: cfg.Transport}
		if i < len(cfg.Links) {
			l := cfg.Links[i]
			lc.McastAddr, lc.Bind, lc.MTU, lc.TTL = l.McastAddr, l.Bind, l.MTU, l.TTL
		}
		rc.Links = append(rc.Links, lc)
	}
	t, err := rrp.New(rc)
	if err != nil {
		return 0, err
	}
	// The engine's frames must fit the links.
	if ecfg.NetMTU > t.MaxFrame() {
		if cfg.Totem.NetMTU != 0 {
			d.log.Warn("netmtu is larger than the links allow; lowered", "netmtu", ecfg.NetMTU, "max", t.MaxFrame())
		}
		ecfg.NetMTU = t.MaxFrame()
	}
	clientMax := ecfg.MaxMessageSize
	ecfg.MaxMessageSize += cpg.MessageOverhead
	if ecfg.MaxQueueBytes < ecfg.MaxMessageSize {
		ecfg.MaxQueueBytes = ecfg.MaxMessageSize
	}
	node, err := totem.NewNode(ecfg)
	if err != nil {
		t.Close()
		return 0, err
	}
	svc, err := cpg.NewWithConfig(d.nodeID, node, cpg.Config{MaxMessageSize: clientMax})
	if err != nil {
		t.Close()
		return 0, err
	}
	d.node, d.cpg, d.net, d.netIn = node, svc, rrpNet{t: t, self: d.nodeID}, t.Recv()
	return clientMax, nil
}

// rrpFrames converts the engine's frames for the transport.
func rrpFrames(fs []totem.Frame) []rrp.Frame {
	out := make([]rrp.Frame, len(fs))
	for i, f := range fs {
		out[i] = rrp.Frame{To: f.To, Data: f.Data}
	}
	return out
}

// rrpNet adapts *rrp.Transport to network.
type rrpNet struct {
	t    *rrp.Transport
	self totem.NodeID
}

func (n rrpNet) SendBatch(fs []rrp.Frame) error { return n.t.SendBatch(fs) }
func (n rrpNet) Close() error                   { return n.t.Close() }
func (n rrpNet) SetKeys(send []byte, accept ...[]byte) error {
	return n.t.SetKeys(send, accept...)
}
func (n rrpNet) SetFault(link int, f rrp.Fault) error {
	return n.t.SetFault(link, f)
}

func (n rrpNet) Links() []linkState {
	var out []linkState
	for _, l := range n.t.Links() {
		out = append(out, linkState{Node: n.self, Link: l.Link, Addr: l.Local, State: "local", Counters: linkCounters(l.LinkCounters)})
		for _, p := range l.Peers {
			st := "down"
			if p.Up {
				st = "up"
			}
			out = append(out, linkState{Node: p.Node, Link: l.Link, Addr: p.Address, State: st,
				Counters: map[string]uint64{"ups": p.Ups, "downs": p.Downs}})
		}
	}
	return out
}

// Counters flattens the transport's statistics: totals, then per link
// ("link0.frames_sent", "link0.dropped.auth_failed").
func (n rrpNet) Counters() map[string]uint64 {
	s := n.t.Stats()
	m := map[string]uint64{}
	for k, v := range linkCounters(s.Total) {
		m[k] = v
	}
	for i, l := range s.Links {
		for k, v := range linkCounters(l) {
			m["link"+strconv.Itoa(i)+"."+k] = v
		}
	}
	m["recv_queued"] = uint64(s.RecvQueued)
	return m
}

func linkCounters(c rrp.LinkCounters) map[string]uint64 {
	d := c.Dropped
	m := map[string]uint64{
		"frames_sent": c.FramesSent, "frames_received": c.FramesReceived,
		"bytes_sent": c.BytesSent, "bytes_received": c.BytesReceived,
		"heartbeats_sent": c.HeartbeatsSent, "heartbeats_received": c.HeartbeatsReceived,
		"send_errors": c.SendErrors, "own": c.Own,
	}
	for k, v := range map[string]uint64{
		"truncated": d.Truncated, "oversized": d.Oversized, "malformed": d.Malformed,
		"unknown_node": d.UnknownNode, "not_for_us": d.NotForUs, "auth_failed": d.AuthFailed,
		"crypto_mismatch": d.CryptoMismatch, "duplicate": d.Duplicate, "stale": d.Stale, "fault": d.Fault,
		"overrun": d.Overrun,
	} {
		m["dropped."+strings.ToLower(k)] = v
	}
	m["dropped.total"] = d.Total()
	return m
}
