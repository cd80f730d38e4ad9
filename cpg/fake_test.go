package cpg_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/totem-gcs/totem/cpg"
	"github.com/totem-gcs/totem/cpg/cpgcheck"
	"github.com/totem-gcs/totem/membership"
	"github.com/totem-gcs/totem/totem"
)

// fakeRing is an in-memory stand-in for Totem's total order: every
// proposal of a node is delivered, in one sequence, to every node of its
// component; partitions, merges, crashes and restarts produce transitional
// and regular configurations as Totem's extended virtual synchrony would.
type fakeRing struct {
	t     testing.TB
	rng   *rand.Rand
	nodes map[totem.NodeID]*fakeNode
	comps [][]totem.NodeID
	seq   uint64
	rec   *cpgcheck.Recorder
	// cfg is the configuration of services started from now on.
	cfg cpg.Config
	// inflight makes a configuration change deliver part of the queued
	// proposals in the transitional configuration (old-ring messages only
	// some nodes received).
	inflight bool
	// unaware nodes get no configuration change from partition: they keep
	// their old ring as if they had not noticed (Totem may form a ring
	// around a node that stays in it, while the others pass through
	// configurations without it).
	unaware map[totem.NodeID]bool
}

type proposal struct {
	payload []byte
	g       totem.Guarantee
}

type fakeNode struct {
	id     totem.NodeID
	ring   *fakeRing
	svc    *cpg.Service
	queue  []proposal
	limit  int  // queue length beyond which Propose refuses
	refuse bool // refuse every proposal
	comp   []totem.NodeID
	events []cpg.Event
}

func (n *fakeNode) Propose(p []byte, g totem.Guarantee) error {
	if n.refuse || len(n.queue) >= n.limit {
		return totem.ErrBackpressure
	}
	n.queue = append(n.queue, proposal{slices.Clone(p), g})
	return nil
}

func newFakeRing(t testing.TB, seed uint64, ids ...totem.NodeID) *fakeRing {
	r := &fakeRing{
		t:     t,
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		nodes: make(map[totem.NodeID]*fakeNode),
		rec:   cpgcheck.NewRecorder(),
	}
	for _, id := range ids {
		r.start(id)
	}
	if len(ids) > 0 {
		r.partition(ids)
	}
	return r
}

// start creates a fresh node (first start or restart), alone.
func (r *fakeRing) start(id totem.NodeID) *fakeNode {
	n := &fakeNode{id: id, ring: r, limit: 1 << 30}
	svc, err := cpg.NewWithConfig(id, n, r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	n.svc = svc
	r.nodes[id] = n
	return n
}

func (r *fakeRing) collect(n *fakeNode) {
	evs := n.svc.Events()
	if r.traced(n.id) && len(evs) > 0 {
		r.t.Logf("node %d events:\n%s", n.id, describe(evs))
	}
	r.rec.Events(n.id, evs)
	n.events = append(n.events, evs...)
}

var traceNodes = flag.String("cpg.trace", "", "comma-separated node ids whose deliveries and events the fake ring logs")

func (r *fakeRing) traced(id totem.NodeID) bool {
	for _, f := range strings.Split(*traceNodes, ",") {
		if f == fmt.Sprint(id) {
			return true
		}
	}
	return false
}

func (r *fakeRing) deliver(n *fakeNode, d totem.Delivery) {
	if d.Config != nil {
		r.rec.Config(n.id, d.Config.Kind)
	}
	n.svc.Deliver(d)
	if r.traced(n.id) {
		if d.Config != nil {
			r.t.Logf("node %d: %v ring %v members %v", n.id, d.Config.Kind, d.Config.Ring, d.Config.Members)
		} else {
			r.t.Logf("node %d: msg from %d %s", n.id, d.Sender, cpg.DescribePayload(d.Payload))
		}
	}
	r.collect(n)
}

// partition installs new components (every live node must be in exactly
// one). Each node gets a transitional configuration with the members of
// its old component that move with it, then the regular one.
func (r *fakeRing) partition(comps ...[]totem.NodeID) {
	var in []totem.NodeID
	for i := range comps {
		comps[i] = membership.NewNodeSet(comps[i]...)
		in = append(in, comps[i]...)
	}
	slices.Sort(in)
	var live []totem.NodeID
	for id := range r.nodes {
		live = append(live, id)
	}
	slices.Sort(live)
	if !slices.Equal(in, live) {
		r.t.Fatalf("partition %v does not cover the live nodes %v", comps, live)
	}
	// Old-ring messages some transitional groups received. A node whose
	// old ring is gone (it did not see the last change) is a transitional
	// group of its own.
	type key struct{ old, new int }
	trans := make(map[key][]totem.NodeID)
	for ci, c := range comps {
		for _, id := range c {
			n := r.nodes[id]
			if r.unaware[id] {
				continue
			}
			oi := slices.IndexFunc(r.comps, func(o []totem.NodeID) bool { return slices.Equal(o, n.comp) })
			if oi < 0 && n.comp != nil {
				oi = -1 - int(id)
			}
			trans[key{oi, ci}] = append(trans[key{oi, ci}], id)
		}
	}
	transOf := make(map[totem.NodeID]totem.NodeSet)
	for _, t := range trans {
		for _, id := range t {
			transOf[id] = t
		}
	}
	keys := make([]key, 0, len(trans))
	for k := range trans {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.old != b.old {
			return a.old - b.old
		}
		return a.new - b.new
	})
	// Per old component: what was broadcast on the old ring before it broke.
	broadcast := make(map[int][]struct {
		from totem.NodeID
		p    proposal
	})
	if r.inflight {
		for oi, o := range r.comps {
			for _, id := range o {
				n := r.nodes[id]
				if n == nil || len(n.queue) == 0 {
					continue
				}
				k := r.rng.IntN(len(n.queue) + 1)
				for _, p := range n.queue[:k] {
					broadcast[oi] = append(broadcast[oi], struct {
						from totem.NodeID
						p    proposal
					}{id, p})
				}
				n.queue = n.queue[k:]
			}
			b := broadcast[oi]
			bySender := make(map[totem.NodeID][]proposal)
			for _, x := range b {
				bySender[x.from] = append(bySender[x.from], x.p)
			}
			r.rng.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
			// Restore per-sender order (FIFO) after the shuffle.
			for i := range b {
				b[i].p = bySender[b[i].from][0]
				bySender[b[i].from] = bySender[b[i].from][1:]
			}
		}
	}
	rings := make([]totem.RingID, len(comps))
	for i, c := range comps {
		r.seq++
		rings[i] = totem.RingID{Rep: c[0], Seq: r.seq}
	}
	for _, k := range keys {
		t := trans[k]
		if k.old != -1 {
			cc := &totem.ConfigChange{Kind: totem.Transitional, Ring: rings[k.new], Members: t}
			// Which other senders this group heard, as a prefix per sender.
			heard := make(map[totem.NodeID]int)
			for _, x := range broadcast[k.old] {
				if _, ok := heard[x.from]; !ok {
					if slices.Contains(t, x.from) {
						heard[x.from] = 1 << 30
					} else {
						heard[x.from] = r.rng.IntN(3)
					}
				}
			}
			for _, id := range t {
				r.deliver(r.nodes[id], totem.Delivery{Config: cc})
			}
			cnt := make(map[totem.NodeID]int)
			for _, x := range broadcast[k.old] {
				if cnt[x.from] >= heard[x.from] {
					continue
				}
				cnt[x.from]++
				for _, id := range t {
					r.deliver(r.nodes[id], totem.Delivery{Sender: x.from, Guarantee: x.p.g, Payload: x.p.payload})
				}
			}
		}
	}
	r.comps = comps
	for ci, c := range comps {
		ring := rings[ci]
		for _, id := range c {
			n := r.nodes[id]
			if r.unaware[id] {
				continue
			}
			// Like Totem: joined and left are relative to the transitional
			// configuration.
			t := transOf[id]
			cc := &totem.ConfigChange{Kind: totem.Regular, Ring: ring, Members: slices.Clone(c),
				Joined: totem.NodeSet(c).Minus(t), Left: totem.NodeSet(n.comp).Minus(t)}
			n.comp = slices.Clone(c)
			r.deliver(n, totem.Delivery{Config: cc})
		}
	}
}

// crash kills node id; the survivors of its component form a new ring.
func (r *fakeRing) crash(id totem.NodeID) {
	n := r.nodes[id]
	delete(r.nodes, id)
	r.rec.Crashed(id)
	var comps [][]totem.NodeID
	for _, c := range r.comps {
		c = slices.DeleteFunc(slices.Clone(c), func(x totem.NodeID) bool { return x == id })
		if len(c) > 0 {
			comps = append(comps, c)
		}
	}
	_ = n
	if len(comps) > 0 {
		r.partition(comps...)
	}
}

// step delivers up to max queued proposals (one at a time, from a random
// node of a random component) and reports whether any was delivered.
func (r *fakeRing) step(max int) bool {
	did := false
	for range max {
		var ready []*fakeNode
		for _, c := range r.comps {
			for _, id := range c {
				if n := r.nodes[id]; len(n.queue) > 0 {
					ready = append(ready, n)
				}
			}
		}
		if len(ready) == 0 {
			return did
		}
		slices.SortFunc(ready, func(a, b *fakeNode) int { return int(a.id) - int(b.id) })
		n := ready[r.rng.IntN(len(ready))]
		p := n.queue[0]
		n.queue = n.queue[1:]
		for _, id := range n.comp {
			r.deliver(r.nodes[id], totem.Delivery{Sender: n.id, Guarantee: p.g, Payload: p.payload})
		}
		did = true
	}
	return did
}

// settle delivers everything queued, flushing services, until quiet.
func (r *fakeRing) settle() {
	for range 1000 {
		for _, id := range r.ids() {
			r.nodes[id].svc.Flush()
		}
		if !r.step(1 << 20) {
			return
		}
	}
	r.t.Fatal("ring did not settle")
}

func (r *fakeRing) ids() []totem.NodeID {
	var ids []totem.NodeID
	for id := range r.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (r *fakeRing) node(id totem.NodeID) *fakeNode { return r.nodes[id] }

// join joins and records it; it fails the test on error.
func (r *fakeRing) join(id totem.NodeID, conn cpg.ConnID, pid uint32, group string) {
	r.t.Helper()
	if err := r.nodes[id].svc.Join(conn, pid, group); err != nil {
		r.t.Fatalf("node %d: join %q: %v", id, group, err)
	}
	r.rec.Bind(id, conn, pid, group)
	r.collect(r.nodes[id])
}

// send sends and records it, returning Send's error.
func (r *fakeRing) send(id totem.NodeID, conn cpg.ConnID, pid uint32, group, data string, g totem.Guarantee) error {
	err := r.nodes[id].svc.Send(conn, pid, group, []byte(data), g)
	if err == nil {
		r.rec.Sent(id, conn, pid, group, []byte(data), g)
	}
	r.collect(r.nodes[id])
	return err
}

func (r *fakeRing) gone(id totem.NodeID, conn cpg.ConnID) {
	r.nodes[id].svc.ConnGone(conn)
	r.rec.Gone(id, conn)
	r.collect(r.nodes[id])
}

func (r *fakeRing) check() {
	r.t.Helper()
	if err := r.rec.Check(); err != nil {
		r.t.Fatalf("CPG properties violated:\n%v", err)
	}
}

// eventsFor returns the events of node id addressed to conn (and ring
// changes), and clears nothing.
func (n *fakeNode) eventsFor(conn cpg.ConnID) []cpg.Event {
	var out []cpg.Event
	for _, ev := range n.events {
		switch e := ev.(type) {
		case cpg.Deliver:
			if e.Conn == conn {
				out = append(out, e)
			}
		case cpg.ConfChg:
			if e.Conn == conn {
				out = append(out, e)
			}
		}
	}
	return out
}

func (n *fakeNode) clear() { n.events = nil }

func describe(evs []cpg.Event) string {
	s := ""
	for _, ev := range evs {
		switch e := ev.(type) {
		case cpg.Deliver:
			s += fmt.Sprintf("  deliver %s from %d:%d %v %q\n", e.Group, e.Sender, e.Pid, e.Guarantee, e.Data)
		case cpg.ConfChg:
			s += fmt.Sprintf("  confchg %s members=%v joined=%v left=%v\n", e.Group, e.Members, e.Joined, e.Left)
		case cpg.RingChange:
			s += fmt.Sprintf("  ring %v %v\n", e.Ring, e.Members)
		}
	}
	return s
}
