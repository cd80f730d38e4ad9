// Package simtest runs the cpg service over the real Totem engine in the
// simulator (package sim): every simulated node runs a cpg.Service on top
// of its engine, with a seeded workload of client processes that join,
// leave, multicast with both guarantees and die, while the simulator
// injects its faults (loss, partitions, crashes, restarts, pauses) and
// checks Totem's own extended virtual synchrony. The cpg event logs go to
// a cpgcheck.Recorder, which checks the CPG properties at the end.
//
// The harness wraps each engine: the simulator's own payloads pass
// through untouched (its checker still sees every one of them), cpg
// payloads are handed to the service, configuration changes go to both.
package simtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/totem-gcs/totem/cpg"
	"github.com/totem-gcs/totem/cpg/cpgcheck"
	"github.com/totem-gcs/totem/sim"
	"github.com/totem-gcs/totem/totem"
)

// Groups used by the workload.
var Groups = []string{"alpha", "beta", "gamma"}

// Harness builds wrapped engines for one simulator run.
type Harness struct {
	seed uint64
	// LoadUntil is the virtual time at which the cpg workload stops (so
	// the run can settle).
	LoadUntil time.Duration
	// Interval bounds the time between two client operations on a node.
	Interval time.Duration
	// Bursts makes every send a burst of up to 40 messages.
	Bursts bool
	// Config is the configuration of every cpg service.
	Config cpg.Config

	Rec *cpgcheck.Recorder
	// Log, if set, receives every delivery handed to a cpg service.
	Log func(node totem.NodeID, inc int, now time.Duration, d totem.Delivery)
	// Trace, if set, receives every batch of cpg events a service produced.
	Trace  func(node totem.NodeID, inc int, now time.Duration, evs []cpg.Event)
	latest map[totem.NodeID]*Node
	all    []*Node
	errs   []error
	sent   int
}

// New returns a harness for seed whose workload runs until loadUntil.
func New(seed uint64, loadUntil time.Duration) *Harness {
	return &Harness{
		seed:      seed,
		LoadUntil: loadUntil,
		Interval:  8 * time.Millisecond,
		Rec:       cpgcheck.NewRecorder(),
		latest:    make(map[totem.NodeID]*Node),
	}
}

// Factory returns the engine factory to put in sim.Options.Engine.
func (h *Harness) Factory() sim.EngineFactory {
	return func(cfg totem.Config) (sim.Engine, error) {
		eng, err := sim.TotemEngine(cfg)
		if err != nil {
			return nil, err
		}
		if prev := h.latest[cfg.NodeID]; prev != nil && !prev.ended {
			// The previous incarnation crashed (the simulator never says).
			prev.ended = true
			h.Rec.Crashed(cfg.NodeID)
		}
		inc := 0
		for _, n := range h.all {
			if n.id == cfg.NodeID {
				inc++
			}
		}
		n := &Node{
			h: h, id: cfg.NodeID, inc: inc, eng: eng,
			rng: rand.New(rand.NewPCG(h.seed, uint64(cfg.NodeID)<<32|uint64(inc))),
		}
		svc, err := cpg.NewWithConfig(cfg.NodeID, eng, h.Config)
		if err != nil {
			return nil, err
		}
		n.svc = svc
		for range 3 {
			n.newProc()
		}
		h.latest[cfg.NodeID] = n
		h.all = append(h.all, n)
		return n, nil
	}
}

// Sent returns the number of cpg messages accepted by Send.
func (h *Harness) Sent() int { return h.sent }

// Delivered returns the number of cpg deliveries to local processes,
// summed over every node.
func (h *Harness) Delivered() int { return int(h.Stats().Delivered) }

// Stats returns the services' counters summed over every node and
// incarnation.
func (h *Harness) Stats() cpg.Stats {
	var t cpg.Stats
	for _, n := range h.all {
		s := n.svc.Stats()
		t.Sent += s.Sent
		t.Delivered += s.Delivered
		t.ControlProposed += s.ControlProposed
		t.ProposalsRefused += s.ProposalsRefused
		t.DecodeErrors += s.DecodeErrors
		t.NotMember += s.NotMember
		t.StaleSync += s.StaleSync
		t.Ignored += s.Ignored
		t.Syncs += s.Syncs
		t.PartialSyncs += s.PartialSyncs
		t.CarriedSyncs += s.CarriedSyncs
		t.Discarded += s.Discarded
		t.HeldBack += s.HeldBack
	}
	return t
}

// proc is one simulated client process.
type proc struct {
	conn   cpg.ConnID
	pid    uint32
	joined map[string]bool
}

// Node is one wrapped engine: the real engine plus its cpg service and
// workload. It implements sim.Engine.
type Node struct {
	h     *Harness
	id    totem.NodeID
	inc   int
	eng   sim.Engine
	svc   *cpg.Service
	rng   *rand.Rand
	now   time.Duration
	next  time.Duration
	procs []*proc
	conns int
	seq   int
	ended bool

	out      totem.Ready
	deadline time.Duration
}

func (n *Node) newProc() {
	n.conns++
	n.procs = append(n.procs, &proc{
		conn:   cpg.ConnID(n.conns),
		pid:    uint32(n.inc)*1000 + uint32(n.conns),
		joined: make(map[string]bool),
	})
}

func (n *Node) fail(format string, args ...any) {
	n.h.errs = append(n.h.errs, fmt.Errorf("node %d.%d: %s", n.id, n.inc, fmt.Sprintf(format, args...)))
}

// Tick passes time to the engine and runs the workload.
func (n *Node) Tick(now time.Duration) {
	n.now = now
	n.eng.Tick(now)
	n.pump()
	n.work()
	n.pump()
}

// Step passes a frame to the engine.
func (n *Node) Step(frame []byte) error {
	err := n.eng.Step(frame)
	n.pump()
	return err
}

// Propose passes the simulator's own load to the engine.
func (n *Node) Propose(payload []byte, g totem.Guarantee) error {
	err := n.eng.Propose(payload, g)
	n.pump()
	return err
}

// Leave makes the node leave; its processes' streams end.
func (n *Node) Leave() {
	n.eng.Leave()
	n.pump()
	if !n.ended {
		n.ended = true
		n.h.Rec.Crashed(n.id)
	}
}

// Status returns the engine's status.
func (n *Node) Status() totem.Status { return n.eng.Status() }

// Ready returns the engine's output without the cpg deliveries, with a
// deadline early enough for the workload.
func (n *Node) Ready() totem.Ready {
	n.pump()
	rd := n.out
	n.out = totem.Ready{}
	rd.Deadline = n.deadline
	if !n.ended && n.now < n.h.LoadUntil && (rd.Deadline == 0 || n.next < rd.Deadline) {
		rd.Deadline = max(n.next, n.now)
	}
	return rd
}

// pump moves the engine's output into n.out, handing cpg payloads and
// configuration changes to the service.
func (n *Node) pump() {
	for range 16 {
		rd := n.eng.Ready()
		if rd.RingSeq != 0 {
			n.out.RingSeq = rd.RingSeq
		}
		n.deadline = rd.Deadline
		n.out.Frames = append(n.out.Frames, rd.Frames...)
		if len(rd.Deliveries) == 0 && len(rd.Frames) == 0 {
			return
		}
		for _, d := range rd.Deliveries {
			switch {
			case d.Config != nil:
				n.out.Deliveries = append(n.out.Deliveries, d)
				n.deliver(d)
			case len(d.Payload) > 0 && d.Payload[0] == 1: // cpg wire version
				n.deliver(d)
			default:
				n.out.Deliveries = append(n.out.Deliveries, d)
			}
		}
	}
}

func (n *Node) deliver(d totem.Delivery) {
	if n.ended {
		return
	}
	if n.h.Log != nil {
		n.h.Log(n.id, n.inc, n.now, d)
	}
	if d.Config != nil {
		n.h.Rec.Config(n.id, d.Config.Kind)
	}
	n.svc.Deliver(d)
	n.collect()
}

func (n *Node) collect() {
	if evs := n.svc.Events(); len(evs) > 0 {
		if n.h.Trace != nil {
			n.h.Trace(n.id, n.inc, n.now, evs)
		}
		n.h.Rec.Events(n.id, evs)
	}
}

// work runs the client operations that are due.
func (n *Node) work() {
	if n.ended {
		return
	}
	n.svc.Flush()
	n.collect()
	if n.now >= n.h.LoadUntil {
		return
	}
	for n.next <= n.now {
		n.op()
		n.next = n.now + time.Duration(1+n.rng.Int64N(int64(n.h.Interval)))
	}
}

func (n *Node) op() {
	p := n.procs[n.rng.IntN(len(n.procs))]
	g := Groups[n.rng.IntN(len(Groups))]
	defer n.collect()
	switch x := n.rng.IntN(100); {
	case x < 15:
		if p.joined[g] {
			return
		}
		err := n.svc.Join(p.conn, p.pid, g)
		switch {
		case err == nil:
			p.joined[g] = true
			n.h.Rec.Bind(n.id, p.conn, p.pid, g)
		case !errors.Is(err, cpg.ErrTryAgain):
			n.fail("join %q: %v", g, err)
		}
	case x < 20:
		if !p.joined[g] {
			return
		}
		err := n.svc.Leave(p.conn, p.pid, g)
		switch {
		case err == nil:
			delete(p.joined, g)
		case !errors.Is(err, cpg.ErrTryAgain):
			n.fail("leave %q: %v", g, err)
		}
	case x < 22:
		n.svc.ConnGone(p.conn)
		n.h.Rec.Gone(n.id, p.conn)
		n.procs = slices.DeleteFunc(n.procs, func(q *proc) bool { return q == p })
		n.newProc()
	default:
		if !p.joined[g] {
			return
		}
		burst := 1
		if n.h.Bursts || n.rng.IntN(10) == 0 {
			burst = 1 + n.rng.IntN(40)
		}
		for range burst {
			if !n.send(p, g) {
				return
			}
		}
	}
}

// send sends one message from p to g and reports whether it was accepted.
func (n *Node) send(p *proc, g string) bool {
	gu := totem.Agreed
	if n.rng.IntN(2) == 0 {
		gu = totem.Safe
	}
	n.seq++
	data := []byte(fmt.Sprintf("n%d.%d.%d", n.id, n.inc, n.seq))
	if n.rng.IntN(20) == 0 {
		data = append(data, make([]byte, 2000+n.rng.IntN(6000))...)
	}
	err := n.svc.Send(p.conn, p.pid, g, data, gu)
	switch {
	case err == nil:
		n.h.sent++
		n.h.Rec.Sent(n.id, p.conn, p.pid, g, data, gu)
		return true
	case !errors.Is(err, cpg.ErrTryAgain):
		n.fail("send %q: %v", g, err)
	}
	return false
}

// Finish ends the run's bookkeeping: nodes not in the final ring are
// taken as crashed; it then checks that the live nodes agree on every
// group and returns every violation found.
func (h *Harness) Finish() error {
	var best totem.RingID
	for _, n := range h.latest {
		if n.ended {
			continue
		}
		r := n.svc.Ring().ID
		if r.Seq > best.Seq || (r.Seq == best.Seq && r.Rep > best.Rep) {
			best = r
		}
	}
	var live []*Node
	for _, id := range sortedIDs(h.latest) {
		n := h.latest[id]
		if n.ended {
			continue
		}
		ring := n.svc.Ring()
		if ring.ID != best || !ring.Members.Contains(id) {
			n.ended = true
			h.Rec.Crashed(id)
			continue
		}
		live = append(live, n)
	}
	errs := slices.Clone(h.errs)
	if len(live) > 0 {
		ref := live[0].svc
		for _, n := range live[1:] {
			if n.svc.Syncing() || ref.Syncing() {
				errs = append(errs, fmt.Errorf("node %d or %d still syncing at the end", n.id, ref.Local()))
				break
			}
			for _, g := range Groups {
				if a, b := n.svc.Members(g), ref.Members(g); !slices.Equal(a, b) {
					errs = append(errs, fmt.Errorf("group %q at the end: node %d has %v, node %d has %v", g, n.id, a, ref.Local(), b))
				}
			}
		}
	}
	// Every live process is a member of exactly the groups it joined and
	// did not leave.
	for _, n := range live {
		for _, g := range Groups {
			var want []cpg.Member
			for _, p := range n.procs {
				if p.joined[g] {
					want = append(want, cpg.Member{Node: n.id, Pid: p.pid})
				}
			}
			slices.SortFunc(want, func(a, b cpg.Member) int { return int(a.Pid) - int(b.Pid) })
			var got []cpg.Member
			for _, m := range n.svc.Members(g) {
				if m.Node == n.id {
					got = append(got, m)
				}
			}
			if !slices.Equal(got, want) {
				errs = append(errs, fmt.Errorf("group %q at the end: node %d's members are %v, its processes joined %v", g, n.id, got, want))
			}
		}
	}
	if err := h.Rec.Check(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func sortedIDs(m map[totem.NodeID]*Node) []totem.NodeID {
	ids := make([]totem.NodeID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
