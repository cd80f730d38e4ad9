package cpg_test

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"testing"

	"github.com/totem-gcs/totem/cpg"
	"github.com/totem-gcs/totem/totem"
)

var (
	seeds = flag.Int("cpg.seeds", 200, "seeds for the randomised fake-ring test")
	seed0 = flag.Uint64("cpg.seed", 0, "run only this seed (non-zero)")
)

// proc is a client process in the randomised test.
type proc struct {
	node   totem.NodeID
	conn   cpg.ConnID
	pid    uint32
	joined map[string]bool
}

// TestRandomSchedules runs random workloads (joins, leaves, sends with
// both guarantees, client deaths, partitions, merges, crashes, restarts,
// back-pressure, old-ring messages in transitional configurations) over
// the fake ring and checks the CPG properties on every seed.
func TestRandomSchedules(t *testing.T) {
	first, last := uint64(1), uint64(*seeds)
	if *seed0 != 0 {
		first, last = *seed0, *seed0
	}
	totals = cpg.Stats{}
	for seed := first; seed <= last; seed++ {
		if err := runRandom(t, seed); err != nil {
			t.Fatalf("seed %d: %v\nreplay: go test ./cpg -run TestRandomSchedules -cpg.seed=%d -v", seed, err, seed)
		}
	}
	t.Logf("%d seeds: %d deliveries (surviving nodes), syncs %d completed, %d carried, %d abandoned, %d messages discarded",
		last-first+1, totals.Delivered, totals.Syncs, totals.CarriedSyncs, totals.PartialSyncs, totals.Discarded)
	if last-first >= 50 && (totals.CarriedSyncs == 0 || totals.PartialSyncs == 0) {
		t.Error("the schedules never cut a sync short both ways")
	}
}

func runRandom(t *testing.T, seed uint64) (err error) {
	ids := []totem.NodeID{1, 2, 3, 4, 5}
	r := newFakeRing(t, seed, ids...)
	r.inflight = seed%2 == 0
	rng := r.rng
	groups := []string{"alpha", "beta", "gamma"}
	var procs []*proc
	nextConn := cpg.ConnID(1)
	newProc := func(node totem.NodeID) *proc {
		p := &proc{node: node, conn: nextConn, pid: uint32(1000 + nextConn), joined: map[string]bool{}}
		nextConn++
		procs = append(procs, p)
		return p
	}
	for _, id := range ids {
		newProc(id)
		newProc(id)
	}
	down := map[totem.NodeID]bool{}
	msg := 0
	for step := 0; step < 400; step++ {
		switch x := rng.IntN(100); {
		case x < 20: // join
			p := procs[rng.IntN(len(procs))]
			g := groups[rng.IntN(len(groups))]
			if down[p.node] || p.joined[g] || r.nodes[p.node] == nil {
				continue
			}
			err := r.nodes[p.node].svc.Join(p.conn, p.pid, g)
			if err == nil {
				p.joined[g] = true
				r.rec.Bind(p.node, p.conn, p.pid, g)
			} else if !errors.Is(err, cpg.ErrTryAgain) {
				return fmt.Errorf("join: %v", err)
			}
			r.collect(r.nodes[p.node])
		case x < 26: // leave
			p := procs[rng.IntN(len(procs))]
			g := groups[rng.IntN(len(groups))]
			if down[p.node] || !p.joined[g] {
				continue
			}
			err := r.nodes[p.node].svc.Leave(p.conn, p.pid, g)
			if err == nil {
				delete(p.joined, g)
			} else if !errors.Is(err, cpg.ErrTryAgain) {
				return fmt.Errorf("leave: %v", err)
			}
			r.collect(r.nodes[p.node])
		case x < 60: // send
			p := procs[rng.IntN(len(procs))]
			g := groups[rng.IntN(len(groups))]
			if down[p.node] || !p.joined[g] {
				continue
			}
			gu := totem.Agreed
			if rng.IntN(2) == 0 {
				gu = totem.Safe
			}
			msg++
			err := r.send(p.node, p.conn, p.pid, g, fmt.Sprintf("m%d", msg), gu)
			if err != nil && !errors.Is(err, cpg.ErrTryAgain) {
				return fmt.Errorf("send: %v", err)
			}
		case x < 63: // client dies; a new process takes its place
			p := procs[rng.IntN(len(procs))]
			if down[p.node] {
				continue
			}
			r.gone(p.node, p.conn)
			procs = slices.DeleteFunc(procs, func(q *proc) bool { return q == p })
			newProc(p.node)
		case x < 66: // partition
			live := r.ids()
			rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
			k := 1 + rng.IntN(len(live))
			if k == len(live) {
				r.partition(live)
			} else {
				r.partition(live[:k], live[k:])
			}
		case x < 69: // merge everything
			r.partition(r.ids())
		case x < 71: // crash
			live := r.ids()
			if len(live) < 2 {
				continue
			}
			id := live[rng.IntN(len(live))]
			r.crash(id)
			down[id] = true
			procs = slices.DeleteFunc(procs, func(q *proc) bool { return q.node == id })
		case x < 74: // restart a crashed node and merge it
			for _, id := range ids {
				if down[id] {
					delete(down, id)
					r.start(id)
					newProc(id)
					comps := slices.Clone(r.comps)
					comps = append(comps, []totem.NodeID{id})
					r.partition(comps...)
					break
				}
			}
		case x < 78: // back-pressure on or off
			n := r.nodes[r.ids()[rng.IntN(len(r.ids()))]]
			n.limit = rng.IntN(4)
			if rng.IntN(3) == 0 {
				n.limit = 1 << 30
			}
		default: // let the ring run a little
			for _, id := range r.ids() {
				r.nodes[id].svc.Flush()
			}
			r.step(1 + rng.IntN(6))
		}
	}
	for _, n := range r.nodes {
		n.limit = 1 << 30
	}
	r.partition(r.ids())
	r.settle()
	// After settling in one ring, every node has the same view.
	want := r.nodes[r.ids()[0]].svc
	for _, id := range r.ids() {
		s := r.nodes[id].svc
		if s.Syncing() {
			return fmt.Errorf("node %d still syncing", id)
		}
		if !slices.Equal(s.Groups(), want.Groups()) {
			return fmt.Errorf("node %d groups %v, node %d %v", id, s.Groups(), want.Local(), want.Groups())
		}
		for _, g := range s.Groups() {
			if !slices.Equal(s.Members(g), want.Members(g)) {
				return fmt.Errorf("group %s: node %d members %v, node %d %v", g, id, s.Members(g), want.Local(), want.Members(g))
			}
		}
	}
	// And it matches what the live processes think they joined.
	for _, g := range groups {
		var exp []cpg.Member
		for _, p := range procs {
			if p.joined[g] {
				exp = append(exp, cpg.Member{Node: p.node, Pid: p.pid})
			}
		}
		slices.SortFunc(exp, func(a, b cpg.Member) int {
			if a.Node != b.Node {
				return int(a.Node) - int(b.Node)
			}
			return int(a.Pid) - int(b.Pid)
		})
		if got := want.Members(g); !slices.Equal(got, exp) {
			return fmt.Errorf("group %s: members %v, processes joined %v", g, got, exp)
		}
	}
	for _, n := range r.nodes {
		st := n.svc.Stats()
		totals.CarriedSyncs += st.CarriedSyncs
		totals.PartialSyncs += st.PartialSyncs
		totals.Syncs += st.Syncs
		totals.Discarded += st.Discarded
		totals.Delivered += st.Delivered
	}
	return r.rec.Check()
}

// totals sums a few counters over the randomised runs, to show what the
// schedules exercised.
var totals cpg.Stats
