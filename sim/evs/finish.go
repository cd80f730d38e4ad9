package evs

import (
	"fmt"
	"slices"

	"github.com/totem-gcs/totem/membership"
	"github.com/totem-gcs/totem/totem"
)

// Finish runs the checks that need the whole run: the total order, safe
// delivery, senders still unresolved and, when settled is true, self
// delivery and liveness. settled says that faults stopped long enough
// before the end for every live process to be in one ring of all live
// nodes with every accepted message delivered; with settled false, live
// processes are excused from obligations they might still meet later.
// Finish returns the number of violations found in the whole run.
func (c *Checker) Finish(settled bool) int {
	if c.finished {
		return c.count
	}
	c.finished = true
	for _, s := range c.pending {
		c.checkSender(s, true)
	}
	c.pending = nil
	c.checkOrder()
	c.checkSafe(settled)
	if settled {
		c.checkSelf()
		c.checkLiveness()
	}
	return c.count
}

// checkOrder verifies that all deliveries fit one total order: first pair
// by pair (to name two processes and two messages), then globally (three
// or more processes can each agree pairwise yet form a cycle).
func (c *Checker) checkOrder() {
	found := false
	for i, a := range c.procOrder {
		for _, b := range c.procOrder[i+1:] {
			if c.checkPair(c.procs[a], c.procs[b]) {
				found = true
			}
		}
	}
	if !found {
		c.checkCycle()
	}
}

func (c *Checker) checkPair(a, b *proc) bool {
	if len(a.msgs) == 0 || len(b.msgs) == 0 {
		return false
	}
	maxPos := -1
	var maxID MsgID
	for _, id := range a.msgs {
		pos, ok := b.pos[id]
		if !ok {
			continue
		}
		if pos < maxPos {
			c.report(Violation{Property: AgreedOrder, Procs: []ProcID{a.id, b.id}, Msgs: []MsgID{maxID, id},
				Detail: fmt.Sprintf("%v delivered %v before %v (its deliveries #%d and #%d), %v delivered them the other way round (#%d and #%d)",
					a.id, maxID, id, a.pos[maxID]+1, a.pos[id]+1, b.id, pos+1, maxPos+1)})
			return true
		}
		maxPos, maxID = pos, id
	}
	return false
}

// checkCycle looks for a cycle in the graph whose edges join each
// process's consecutive deliveries.
func (c *Checker) checkCycle() {
	type edge struct {
		to  MsgID
		via ProcID
	}
	out := make(map[MsgID][]edge)
	indeg := make(map[MsgID]int)
	var nodes []MsgID
	for _, p := range c.procOrder {
		msgs := c.procs[p].msgs
		for i, id := range msgs {
			if _, ok := indeg[id]; !ok {
				indeg[id] = 0
				nodes = append(nodes, id)
			}
			if i > 0 {
				out[msgs[i-1]] = append(out[msgs[i-1]], edge{id, p})
				indeg[id]++
			}
		}
	}
	queue := make([]MsgID, 0, len(nodes))
	for _, id := range nodes {
		if indeg[id] == 0 {
			queue = append(queue, id)
		}
	}
	seen := 0
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		seen++
		for _, e := range out[id] {
			indeg[e.to]--
			if indeg[e.to] == 0 {
				queue = append(queue, e.to)
			}
		}
	}
	if seen == len(nodes) {
		return
	}
	// Walk the leftover graph to a repeated message: that is a cycle.
	var start MsgID
	for _, id := range nodes {
		if indeg[id] > 0 {
			start = id
			break
		}
	}
	index := map[MsgID]int{}
	var path []MsgID
	var via []ProcID
	cur := start
	for {
		if i, ok := index[cur]; ok {
			path, via = path[i:], via[i:]
			break
		}
		index[cur] = len(path)
		path = append(path, cur)
		for _, e := range out[cur] {
			if indeg[e.to] > 0 {
				via = append(via, e.via)
				cur = e.to
				break
			}
		}
	}
	detail := "the deliveries admit no common total order; cycle:"
	for i, id := range path {
		detail += fmt.Sprintf(" %v -(%v)->", id, via[i])
	}
	detail += fmt.Sprintf(" %v", path[0])
	c.report(Violation{Property: AgreedOrder, Procs: uniq(via), Msgs: clip(path), Detail: detail})
}

func uniq(ps []ProcID) []ProcID {
	var out []ProcID
	for _, p := range ps {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// checkSafe verifies safe delivery: a safe message delivered in the
// regular part of a configuration reached every member (in the regular or
// transitional part), one delivered in a transitional part every member of
// that transitional configuration, unless the member crashed first.
func (c *Checker) checkSafe(settled bool) {
	for ring, ri := range sortedRings(c.rings) {
		if len(ri.safe.ids) == 0 {
			continue
		}
		for _, n := range ri.members {
			if _, ok := ri.installers[n]; !ok {
				c.report(Violation{Property: SafeDelivery, Procs: []ProcID{ri.safe.by[0]}, Msgs: clip(ri.safe.ids),
					Config: "regular " + ring.String() + ri.members.String(),
					Detail: fmt.Sprintf("%v delivered safe %v in ring %v, but member node %d never installed that ring",
						ri.safe.by[0], ri.safe.ids[0], ring, n)})
			}
		}
	}
	for _, p := range c.procOrder {
		pr := c.procs[p]
		for _, e := range pr.epochs {
			if e.crashed || (e.open() && !settled) {
				continue
			}
			if e.reg != nil {
				ri := c.rings[e.reg.Ring]
				c.missingSafe(p, e.reg.Key(), &ri.safe, e.regMsgs, e.transMsgs, "regular")
			}
			if e.trans != nil {
				if s := c.trans[e.trans.Key()]; s != nil {
					c.missingSafe(p, e.trans.Key(), s, e.transMsgs, nil, "transitional")
				}
			}
		}
	}
}

func (c *Checker) missingSafe(p ProcID, cfg string, s *safeSet, a, b []MsgID, kind string) {
	if len(s.ids) == 0 {
		return
	}
	got := make(map[MsgID]bool, len(a)+len(b))
	for _, id := range a {
		got[id] = true
	}
	for _, id := range b {
		got[id] = true
	}
	var missing []MsgID
	var by ProcID
	for i, id := range s.ids {
		if !got[id] {
			if len(missing) == 0 {
				by = s.by[i]
			}
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return
	}
	where := "there or in the transitional configuration after it"
	if kind == "transitional" {
		where = "there"
	}
	c.report(Violation{Property: SafeDelivery, Procs: []ProcID{by, p}, Msgs: clip(missing), Config: cfg,
		Detail: fmt.Sprintf("%d safe messages delivered in %s configuration %v (first %v, by %v) were not delivered by member %v %s, which did not crash",
			len(missing), kind, cfg, missing[0], by, p, where)})
}

// checkSelf verifies that every live process delivered every message it
// proposed.
func (c *Checker) checkSelf() {
	for _, p := range c.procOrder {
		pr := c.procs[p]
		if pr.crashed {
			continue
		}
		var missing []MsgID
		for _, id := range pr.proposed {
			if _, ok := pr.pos[id]; !ok {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			c.report(Violation{Property: SelfDelivery, Procs: []ProcID{p}, Msgs: clip(missing),
				Detail: fmt.Sprintf("%v never delivered %d of the %d messages it proposed (first %v)",
					p, len(missing), len(pr.proposed), missing[0])})
		}
	}
}

// checkLiveness verifies that the live processes ended in one regular
// configuration of all live nodes and delivered the same messages in it.
func (c *Checker) checkLiveness() {
	var live []*proc
	var liveNodes []totem.NodeID
	for _, p := range c.procOrder {
		if pr := c.procs[p]; !pr.crashed {
			live = append(live, pr)
			liveNodes = append(liveNodes, p.Node)
		}
	}
	if len(live) == 0 {
		return
	}
	want := membership.NewNodeSet(liveNodes...)
	var first *proc
	var firstEpoch *epoch
	for _, pr := range live {
		e := pr.current()
		if e == nil || e.reg == nil || e.trans != nil {
			state := "no configuration"
			if e != nil && e.trans != nil {
				state = "transitional configuration " + e.trans.Key()
			}
			c.report(Violation{Property: Liveness, Procs: []ProcID{pr.id},
				Detail: fmt.Sprintf("%v ended in %s instead of a regular configuration of all live nodes %v", pr.id, state, want)})
			continue
		}
		if !e.reg.Members.Equal(want) {
			c.report(Violation{Property: Liveness, Procs: []ProcID{pr.id}, Config: e.reg.Key(),
				Detail: fmt.Sprintf("%v ended in a ring of %v, not of all live nodes %v", pr.id, e.reg.Members, want)})
			continue
		}
		if first == nil {
			first, firstEpoch = pr, e
			continue
		}
		if e.reg.Ring != firstEpoch.reg.Ring {
			c.report(Violation{Property: Liveness, Procs: []ProcID{first.id, pr.id},
				Detail: fmt.Sprintf("%v ended in ring %v and %v in ring %v", first.id, firstEpoch.reg.Ring, pr.id, e.reg.Ring)})
			continue
		}
		if !slices.Equal(firstEpoch.regMsgs, e.regMsgs) {
			c.report(diffViolation(Liveness, e.reg.Key(), fmt.Sprintf("%v and %v ended in the same ring", first.id, pr.id),
				first.id, firstEpoch.regMsgs, pr.id, e.regMsgs))
		}
	}
}

func sortedRings(m map[totem.RingID]*ringInfo) func(func(totem.RingID, *ringInfo) bool) {
	keys := make([]totem.RingID, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b totem.RingID) int {
		if a.Seq != b.Seq {
			if a.Seq < b.Seq {
				return -1
			}
			return 1
		}
		return int(a.Rep) - int(b.Rep)
	})
	return func(yield func(totem.RingID, *ringInfo) bool) {
		for _, k := range keys {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}
