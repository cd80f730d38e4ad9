package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/totem-gcs/totem/cpg"
	"github.com/totem-gcs/totem/rrp"
	"github.com/totem-gcs/totem/totem"
)

// The IPC tests run the real IPC server and event loop of one daemon over a
// test double of the engines: a node that is alone in its ring, and a group
// service that applies requests at once. They test the socket layer (access,
// framing, queues, back-pressure), not ordering; the cluster tests use the
// real engines.

type loneNode struct{ left bool }

func (n *loneNode) Tick(time.Duration)                    {}
func (n *loneNode) Step([]byte) error                     { return totem.ErrMalformed }
func (n *loneNode) Propose([]byte, totem.Guarantee) error { return nil }
func (n *loneNode) Leave()                                { n.left = true }
func (n *loneNode) HasReady() bool                        { return false }
func (n *loneNode) Ready() totem.Ready                    { return totem.Ready{Deadline: time.Hour << 10} }
func (n *loneNode) Stats() totem.Stats                    { return totem.Stats{} }
func (n *loneNode) Status() totem.Status {
	return totem.Status{NodeID: 1, State: totem.Operational, Ring: totem.RingID{Rep: 1, Seq: 4}, Members: totem.NodeSet{1}}
}

type member struct {
	conn cpg.ConnID
	pid  uint32
}

// instantGroups applies joins, leaves and sends at once, locally.
type instantGroups struct {
	groups   map[string][]member
	events   []cpg.Event
	tryAgain int // refuse this many sends with ErrTryAgain
	refused  int
}

func newInstantGroups() *instantGroups { return &instantGroups{groups: map[string][]member{}} }

func (g *instantGroups) view(name string) []cpg.Member {
	var out []cpg.Member
	for _, m := range g.groups[name] {
		out = append(out, cpg.Member{Node: 1, Pid: m.pid})
	}
	return out
}

func (g *instantGroups) confchg(name string, joined, left []cpg.Member) {
	for _, m := range g.groups[name] {
		g.events = append(g.events, cpg.ConfChg{Conn: m.conn, Group: name, Members: g.view(name), Joined: joined, Left: left})
	}
}

func (g *instantGroups) Join(conn cpg.ConnID, pid uint32, name string) error {
	if name == "" || len(name) > cpg.MaxGroupName {
		return cpg.ErrBadGroupName
	}
	if slices.Contains(g.groups[name], member{conn, pid}) {
		return cpg.ErrExist
	}
	g.groups[name] = append(g.groups[name], member{conn, pid})
	g.confchg(name, []cpg.Member{{Node: 1, Pid: pid, Reason: cpg.ReasonJoin}}, nil)
	return nil
}

func (g *instantGroups) remove(conn cpg.ConnID, pid uint32, name string, why cpg.Reason) bool {
	i := slices.Index(g.groups[name], member{conn, pid})
	if i < 0 {
		return false
	}
	g.groups[name] = slices.Delete(g.groups[name], i, i+1)
	left := []cpg.Member{{Node: 1, Pid: pid, Reason: why}}
	if why == cpg.ReasonLeave {
		g.events = append(g.events, cpg.ConfChg{Conn: conn, Group: name, Members: g.view(name), Left: left})
	}
	g.confchg(name, nil, left)
	if len(g.groups[name]) == 0 {
		delete(g.groups, name)
	}
	return true
}

func (g *instantGroups) Leave(conn cpg.ConnID, pid uint32, name string) error {
	if !g.remove(conn, pid, name, cpg.ReasonLeave) {
		return cpg.ErrNotMember
	}
	return nil
}

// SendReady: room again once the refusals asked for are used up.
func (g *instantGroups) SendReady() bool { return g.tryAgain == 0 }

func (g *instantGroups) Send(conn cpg.ConnID, pid uint32, name string, data []byte, gu totem.Guarantee) error {
	if !slices.Contains(g.groups[name], member{conn, pid}) {
		return cpg.ErrNotMember
	}
	if g.tryAgain > 0 {
		g.tryAgain--
		g.refused++
		return cpg.ErrTryAgain
	}
	for _, m := range g.groups[name] {
		g.events = append(g.events, cpg.Deliver{Conn: m.conn, Group: name, Sender: 1, Pid: pid, Guarantee: gu, Data: slices.Clone(data)})
	}
	return nil
}

func (g *instantGroups) ConnGone(conn cpg.ConnID) {
	for name, ms := range g.groups {
		for _, m := range slices.Clone(ms) {
			if m.conn == conn {
				g.remove(conn, m.pid, name, cpg.ReasonProcDown)
			}
		}
	}
}

func (g *instantGroups) Deliver(totem.Delivery) {}
func (g *instantGroups) Flush()                 {}
func (g *instantGroups) Events() []cpg.Event {
	ev := g.events
	g.events = nil
	return ev
}
func (g *instantGroups) Groups() []string {
	var out []string
	for n := range g.groups {
		out = append(out, n)
	}
	return out
}
func (g *instantGroups) Members(name string) []cpg.Member { return g.view(name) }
func (g *instantGroups) Stats() cpg.Stats                 { return cpg.Stats{} }

type nullNet struct{}

func (nullNet) SendBatch([]rrp.Frame) error { return nil }
func (nullNet) Links() []linkState {
	return []linkState{{Node: 1, Link: 0, Addr: "127.0.0.1:5405", State: "local"}}
}
func (nullNet) Counters() map[string]uint64                 { return nil }
func (nullNet) Close() error                                { return nil }
func (nullNet) SetKeys(send []byte, accept ...[]byte) error { return nil }
func (nullNet) SetFault(link int, f rrp.Fault) error {
	if link != 0 {
		return fmt.Errorf("rrp: no link %d", link)
	}
	return nil
}

// lone is one daemon over the test doubles.
type lone struct {
	d      *Daemon
	groups *instantGroups
	socket string
	cancel context.CancelFunc
	done   chan error
}

// startLone runs a daemon with maxMsg as the message limit and the given
// IPC options (zero fields take defaults).
func startLone(t testing.TB, maxMsg int, opts IPCOptions, setup ...func(*instantGroups)) *lone {
	return startLoneSocket(t, "", maxMsg, opts, setup...)
}

// startLoneSocket is startLone with the socket at path (empty: a temporary
// directory).
func startLoneSocket(t testing.TB, path string, maxMsg int, opts IPCOptions, setup ...func(*instantGroups)) *lone {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeID = 1
	cfg.StateDir = t.TempDir()
	cfg.IPC.Socket = path
	if path == "" {
		cfg.IPC.Socket = filepath.Join(t.TempDir(), "totemd.sock")
	}
	cfg.IPC.AllowUIDs, cfg.IPC.AllowGIDs = opts.AllowUIDs, opts.AllowGIDs
	if opts.QueueMessages != 0 {
		cfg.IPC.QueueMessages = opts.QueueMessages
	}
	if opts.QueueBytes != 0 {
		cfg.IPC.QueueBytes = opts.QueueBytes
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	g := newInstantGroups()
	for _, f := range setup {
		f(g)
	}
	d := &Daemon{cfg: cfg, nodeID: 1, log: log, conns: map[cpg.ConnID]*ipcConn{}, stopped: make(chan struct{}),
		node: &loneNode{}, cpg: g, net: nullNet{}, netIn: make(chan []rrp.Received)}
	var err error
	if d.state, err = openState(cfg.StateDir); err != nil {
		t.Fatal(err)
	}
	if err := d.listen(maxMsg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &lone{d: d, groups: g, socket: cfg.IPC.Socket, cancel: cancel, done: make(chan error, 1)}
	go func() { l.done <- d.Run(ctx) }()
	t.Cleanup(l.stop)
	return l
}

func (l *lone) stop() {
	l.cancel()
	select {
	case err := <-l.done:
		l.done <- err
	case <-time.After(30 * time.Second):
		panic("daemon did not stop")
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
