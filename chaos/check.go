package chaos

import (
	"fmt"
	"sort"
	"strings"
)

// Violation kinds, one per checked property.
const (
	// KindOrder: two members of one view delivered two messages in
	// different orders.
	KindOrder = "order"
	// KindSameSet: two members that moved together from a view to the same
	// next view (or both left it cleanly) delivered different messages in it.
	KindSameSet = "same-set"
	// KindDuplicate: a process delivered a message twice.
	KindDuplicate = "duplicate"
	// KindInvented: a delivered message that no process sent, or that
	// differs from what was sent (header, guarantee, bytes).
	KindInvented = "invented"
	// KindSelf: a process that ended cleanly never got back a message it
	// sent successfully.
	KindSelf = "self-delivery"
	// KindFIFO: a process delivered a sender's messages out of the order
	// they were sent.
	KindFIFO = "fifo"
	// KindSafe: a safe message delivered in a view was not delivered in it
	// by a member of the view that survived the view.
	KindSafe = "safe"
	// KindViews: views do not agree: a listed member that ended cleanly
	// never installed the view, a view without its own process, a view
	// that is not the previous one plus joined minus left, a delivery
	// outside any view, or one message delivered in different views.
	KindViews = "views"
	// KindLost: a message its sender saw delivered did not reach a member
	// that stayed with the sender in every view until both ended cleanly.
	KindLost = "lost"
	// KindLiveness: the run proved nothing: fewer processes than expected
	// ended cleanly (the last client of every slot should, after the heal),
	// or no message was delivered at all.
	KindLiveness = "liveness"
)

// Kinds lists every violation kind.
var Kinds = []string{KindOrder, KindSameSet, KindDuplicate, KindInvented, KindSelf, KindFIFO, KindSafe, KindViews, KindLost, KindLiveness}

// Violation is one broken property.
type Violation struct {
	Kind   string
	Detail string
}

// String formats the violation as "kind: detail".
func (v Violation) String() string { return v.Kind + ": " + v.Detail }

// Result is what Check found.
type Result struct {
	Processes  int // process logs read
	Messages   int // distinct messages sent (send attempts)
	Deliveries int // deliveries over all processes
	// Undelivered counts messages the service discarded and reported to
	// their senders (they are exempt from self delivery).
	Undelivered int
	Views       int // distinct views (group, members, occurrence)
	Violations  []Violation
	// Counts of violations by kind (all of them, even past the ones kept).
	Counts map[string]int
}

// Options tune Check.
type Options struct {
	// Seed, when not zero, must be the seed in every payload.
	Seed int64
	// MaxKept bounds the violations kept per kind (the count is exact).
	MaxKept int
	// ExpectClean, when not zero, is how many processes must have ended
	// cleanly; fewer, or no delivery at all, is a liveness violation.
	ExpectClean int
}

// msgID names one message: its sender and counter, in its group.
type msgID struct {
	Group   string
	NodeID  uint32
	PID     uint32
	Counter uint64
}

func (m msgID) String() string {
	return fmt.Sprintf("%s/%d:%d#%d", m.Group, m.NodeID, m.PID, m.Counter)
}

// viewKey names a view: group, sorted members, and how many times the same
// member list was installed before in the process's history. Every member
// of a view lives through every earlier view with the same member list, so
// every member that installs every view it is listed in counts alike.
type viewKey string

// pview is one view as one process saw it.
type pview struct {
	key        viewKey
	members    []Member
	deliveries []msgID
	safe       map[msgID]bool
	// left is who the confchg that opened the view removed.
	left []Member
	// parent is, for the view of a transitional configuration, the view
	// the process had before it: the old ring's last messages may be
	// delivered in either.
	parent viewKey
}

// proc is one parsed process.
type proc struct {
	log       *Log
	views     []*pview
	sent      map[uint64]bool // counters recorded as sent
	failed    map[uint64]bool // counters whose Send failed
	delivered map[msgID]viewKey
	clean     bool
}

type checker struct {
	opts   Options
	res    *Result
	procs  map[ProcID]*proc
	order  []ProcID
	sentBy map[msgID]*proc
	// parent maps each transitional view to the view before it.
	parent map[viewKey]viewKey
}

func (c *checker) add(kind, format string, args ...any) {
	c.res.Counts[kind]++
	kept := 0
	for _, v := range c.res.Violations {
		if v.Kind == kind {
			kept++
		}
	}
	if kept < c.opts.MaxKept {
		c.res.Violations = append(c.res.Violations, Violation{Kind: kind, Detail: fmt.Sprintf(format, args...)})
	}
}

func memberList(ms []Member) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = fmt.Sprintf("%d:%d", m.NodeID, m.PID)
	}
	return strings.Join(s, ",")
}

func sortedMembers(ms []Member) []Member {
	out := make([]Member, len(ms))
	for i, m := range ms {
		out[i] = Member{NodeID: m.NodeID, PID: m.PID}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].NodeID != out[j].NodeID {
			return out[i].NodeID < out[j].NodeID
		}
		return out[i].PID < out[j].PID
	})
	return out
}

// Check verifies the CPG virtual-synchrony properties over every process's
// log. It never stops at the first violation: it counts them all.
func Check(logs []*Log, opts Options) *Result {
	if opts.MaxKept <= 0 {
		opts.MaxKept = 5
	}
	c := &checker{opts: opts, res: &Result{Counts: map[string]int{}}, procs: map[ProcID]*proc{}, sentBy: map[msgID]*proc{}}
	c.res.Processes = len(logs)
	for _, l := range logs {
		if _, dup := c.procs[l.Proc]; dup {
			c.add(KindViews, "two logs claim process %v (pid reused?): %s", l.Proc, l.Name)
			continue
		}
		p := &proc{log: l, sent: map[uint64]bool{}, failed: map[uint64]bool{}, delivered: map[msgID]viewKey{}}
		c.procs[l.Proc] = p
		c.order = append(c.order, l.Proc)
		for _, r := range l.Records {
			switch r.Type {
			case TypeSent:
				p.sent[r.Counter] = true
				c.sentBy[msgID{l.Proc.Group, l.Proc.NodeID, l.Proc.PID, r.Counter}] = p
			case TypeSendFail, TypeUndelivered:
				p.failed[r.Counter] = true
				if r.Type == TypeUndelivered {
					c.res.Undelivered++
				}
			case TypeEnd:
				p.clean = r.Reason == EndStop
			}
		}
		c.res.Messages += len(p.sent)
	}
	for _, id := range c.order {
		c.buildViews(c.procs[id])
	}
	views := map[viewKey][]*proc{}
	viewOf := map[viewKey]*pview{}
	c.parent = map[viewKey]viewKey{}
	for _, id := range c.order {
		p := c.procs[id]
		for _, v := range p.views {
			views[v.key] = append(views[v.key], p)
			viewOf[v.key] = v
			// A transitional view that merges members (a sync completed
			// after the break) may follow different views on different
			// members; the first one recorded serves as its base.
			if _, ok := c.parent[v.key]; !ok && v.parent != "" {
				c.parent[v.key] = v.parent
			}
		}
	}
	c.res.Views = len(views)
	keys := make([]viewKey, 0, len(views))
	for k := range views {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		c.checkView(k, viewOf[k].members, views[k])
	}
	c.checkSelfAndLost()
	c.checkSameViewDelivery()
	if opts.ExpectClean > 0 {
		clean := 0
		for _, id := range c.order {
			if c.procs[id].clean {
				clean++
			}
		}
		if clean < opts.ExpectClean {
			c.add(KindLiveness, "%d processes ended cleanly, want %d (see their end records)", clean, opts.ExpectClean)
		}
		if c.res.Deliveries == 0 {
			c.add(KindLiveness, "no message was delivered at all")
		}
	}
	return c.res
}

// buildViews walks one process's records: views, deliveries, duplicates,
// invented messages and per-sender FIFO.
func (c *checker) buildViews(p *proc) {
	self := p.log.Proc
	seen := map[string]int{}
	var cur *pview
	var prev []Member
	lastFrom := map[[2]uint32]uint64{}
	for _, r := range p.log.Records {
		switch r.Type {
		case TypeConfChg:
			ms := sortedMembers(r.Members)
			list := memberList(ms)
			inView := false
			for _, m := range ms {
				if m.NodeID == self.NodeID && m.PID == self.PID {
					inView = true
				}
			}
			if !inView {
				// The leaver may be told of its own leave; it is no view of its.
				if cur != nil && containsMember(r.Left, self) {
					continue
				}
				c.add(KindViews, "%s installed view [%s] without itself", self, list)
			}
			c.checkTransition(p, prev, r, cur == nil)
			inRing := list + "|ring " + r.RingID
			seen[inRing]++
			key := viewKey(fmt.Sprintf("%s|%s|#%d", self.Group, inRing, seen[inRing]))
			var parent viewKey
			if r.Transitional {
				key += "|transitional"
				if cur != nil {
					parent = cur.key
				}
			}
			cur = &pview{key: key, members: ms, safe: map[msgID]bool{}, left: r.Left, parent: parent}
			p.views = append(p.views, cur)
			prev = ms
		case TypeDeliver:
			c.res.Deliveries++
			pl, err := DecodePayload(r.Data)
			if err != nil {
				c.add(KindInvented, "%s delivered %q from %d:%d: %v", self, abbreviate(r.Data), r.NodeID, r.PID, err)
				continue
			}
			id := msgID{self.Group, pl.NodeID, pl.PID, pl.Counter}
			switch {
			case pl.NodeID != r.NodeID || pl.PID != r.PID:
				c.add(KindInvented, "%s delivered %v with sender %d:%d in the header", self, id, r.NodeID, r.PID)
				continue
			case pl.Guarantee != r.Guarantee:
				c.add(KindInvented, "%s delivered %v as %s, sent as %s", self, id, r.Guarantee, pl.Guarantee)
			case c.opts.Seed != 0 && pl.Seed != c.opts.Seed:
				c.add(KindInvented, "%s delivered %v of seed %d, not %d", self, id, pl.Seed, c.opts.Seed)
			case c.sentBy[id] == nil:
				c.add(KindInvented, "%s delivered %v, which its sender never recorded sending", self, id)
			}
			if _, dup := p.delivered[id]; dup {
				c.add(KindDuplicate, "%s delivered %v twice", self, id)
				continue
			}
			if cur == nil {
				c.add(KindViews, "%s delivered %v before any view", self, id)
				p.delivered[id] = ""
				continue
			}
			from := [2]uint32{pl.NodeID, pl.PID}
			if last, ok := lastFrom[from]; ok && pl.Counter <= last {
				c.add(KindFIFO, "%s delivered %v after #%d of the same sender", self, id, last)
			}
			lastFrom[from] = pl.Counter
			p.delivered[id] = cur.key
			cur.deliveries = append(cur.deliveries, id)
			if r.Guarantee == "safe" {
				cur.safe[id] = true
			}
		}
	}
}

func containsMember(ms []Member, p ProcID) bool {
	for _, m := range ms {
		if m.NodeID == p.NodeID && m.PID == p.PID {
			return true
		}
	}
	return false
}

// checkTransition verifies that a confchg is its predecessor plus joined
// minus left, and that a process's first view says it joined.
func (c *checker) checkTransition(p *proc, prev []Member, r Record, first bool) {
	self := p.log.Proc
	if first {
		if !containsMember(r.Joined, self) {
			c.add(KindViews, "%s: first view [%s] does not list itself as joined", self, memberList(sortedMembers(r.Members)))
		}
		return
	}
	want := map[[2]uint32]bool{}
	for _, m := range prev {
		want[[2]uint32{m.NodeID, m.PID}] = true
	}
	for _, m := range r.Left {
		k := [2]uint32{m.NodeID, m.PID}
		if !want[k] {
			c.add(KindViews, "%s: %d:%d left view [%s] it was not in", self, m.NodeID, m.PID, memberList(prev))
		}
		delete(want, k)
	}
	for _, m := range r.Joined {
		k := [2]uint32{m.NodeID, m.PID}
		if want[k] {
			c.add(KindViews, "%s: %d:%d joined view [%s] it was already in", self, m.NodeID, m.PID, memberList(prev))
		}
		want[k] = true
	}
	got := sortedMembers(r.Members)
	ok := len(got) == len(want)
	for _, m := range got {
		ok = ok && want[[2]uint32{m.NodeID, m.PID}]
	}
	if !ok {
		c.add(KindViews, "%s: view [%s] is not [%s] + joined [%s] - left [%s]", self, memberList(got), memberList(prev), memberList(r.Joined), memberList(r.Left))
	}
}

// successor names where a process went after view i: the next view, "left"
// for a clean end in it, or "" for a crash (not compared).
func successor(p *proc, i int) viewKey {
	if i+1 < len(p.views) {
		return p.views[i+1].key
	}
	if p.clean {
		return "left"
	}
	return ""
}

// failedInView reports whether m, listed in view k but absent from it,
// failed there as far as the installers can tell: one of them saw m leave
// with NODEDOWN next. A node cut off while the others installed a ring
// with it (extended virtual synchrony lets a member of a configuration
// fail to install it) shows up that way, and may well survive elsewhere.
func failedInView(installed []*proc, k viewKey, m Member) bool {
	for _, p := range installed {
		for _, v := range p.views[indexOf(p, k)+1:] {
			if containsMember(v.members, ProcID{NodeID: m.NodeID, PID: m.PID}) {
				continue
			}
			for _, l := range v.left {
				if l.NodeID == m.NodeID && l.PID == m.PID && l.Reason == "nodedown" {
					return true
				}
			}
			break
		}
	}
	return false
}

func indexOf(p *proc, k viewKey) int {
	for i, v := range p.views {
		if v.key == k {
			return i
		}
	}
	return -1
}

// checkView checks one view over every process that installed it: order,
// same set, safe delivery and agreement on the view itself.
func (c *checker) checkView(k viewKey, members []Member, installed []*proc) {
	group := strings.SplitN(string(k), "|", 2)[0]
	have := map[ProcID]bool{}
	for _, p := range installed {
		have[p.log.Proc] = true
	}
	// Views agree: every listed member that ended cleanly installed it.
	for _, m := range members {
		id := ProcID{group, m.NodeID, m.PID}
		q := c.procs[id]
		if q == nil {
			c.add(KindViews, "view %s lists %v, which has no log", k, id)
			continue
		}
		if !have[id] && q.clean && !failedInView(installed, k, m) {
			c.add(KindViews, "view %s lists %v, which never installed it and ended cleanly", k, id)
		}
	}
	pvs := make([]*pview, len(installed))
	for i, p := range installed {
		pvs[i] = p.views[indexOf(p, k)]
	}
	// Agreed order within the view, pairwise.
	for i := range installed {
		pos := map[msgID]int{}
		for n, m := range pvs[i].deliveries {
			pos[m] = n
		}
		for j := i + 1; j < len(installed); j++ {
			last, lastID := -1, msgID{}
			for _, m := range pvs[j].deliveries {
				n, ok := pos[m]
				if !ok {
					continue
				}
				if n < last {
					c.add(KindOrder, "view %s: %v delivered %v before %v, %v the other way", k, installed[i].log.Proc, m, lastID, installed[j].log.Proc)
					break
				}
				last, lastID = n, m
			}
		}
	}
	// Same set for processes that moved on together.
	bySucc := map[viewKey][]int{}
	for i, p := range installed {
		if s := successor(p, indexOf(p, k)); s != "" {
			bySucc[s] = append(bySucc[s], i)
		}
	}
	for s, idx := range bySucc {
		base := set(pvs[idx[0]].deliveries)
		for _, j := range idx[1:] {
			other := set(pvs[j].deliveries)
			if diff := difference(base, other, other, base); diff != "" {
				c.add(KindSameSet, "view %s, next %s: %v and %v delivered different messages: %s", k, s, installed[idx[0]].log.Proc, installed[j].log.Proc, diff)
			}
		}
	}
	// Safe: delivered by anyone, delivered by every member that survived
	// the view (moved to a next view; clean leavers may have left first),
	// in it or in the transitional views that follow it.
	safe := map[msgID]ProcID{}
	for i, v := range pvs {
		for m := range v.safe {
			safe[m] = installed[i].log.Proc
		}
	}
	for m, by := range safe {
		for i, p := range installed {
			at := indexOf(p, k)
			if at+1 >= len(p.views) {
				continue
			}
			got := set(pvs[i].deliveries)
			// The old ring's last messages may come in the transitional
			// views that follow.
			for _, next := range p.views[at+1:] {
				if next.parent == "" {
					break
				}
				for _, d := range next.deliveries {
					got[d] = struct{}{}
				}
			}
			if _, ok := got[m]; !ok {
				c.add(KindSafe, "view %s: safe %v delivered by %v but not by %v, which survived the view", k, m, by, p.log.Proc)
			}
		}
	}
}

func set(ms []msgID) map[msgID]struct{} {
	s := make(map[msgID]struct{}, len(ms))
	for _, m := range ms {
		s[m] = struct{}{}
	}
	return s
}

// difference describes a−b and c−d briefly ("" if both are empty).
func difference(a, b, c, d map[msgID]struct{}) string {
	var only1, only2 []string
	for m := range a {
		if _, ok := b[m]; !ok {
			only1 = append(only1, m.String())
		}
	}
	for m := range c {
		if _, ok := d[m]; !ok {
			only2 = append(only2, m.String())
		}
	}
	if len(only1) == 0 && len(only2) == 0 {
		return ""
	}
	sort.Strings(only1)
	sort.Strings(only2)
	return fmt.Sprintf("only first %s; only second %s", brief(only1), brief(only2))
}

func brief(s []string) string {
	if len(s) > 4 {
		return fmt.Sprintf("[%s ... (%d)]", strings.Join(s[:4], " "), len(s))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// checkSelfAndLost: a clean process got back every message it sent
// successfully; a message its sender got back reached every member that
// stayed with the sender from that view to the end.
func (c *checker) checkSelfAndLost() {
	for _, id := range c.order {
		p := c.procs[id]
		if !p.clean {
			continue
		}
		var missing []uint64
		for n := range p.sent {
			if p.failed[n] {
				continue
			}
			if _, ok := p.delivered[msgID{id.Group, id.NodeID, id.PID, n}]; !ok {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
			c.add(KindSelf, "%v ended cleanly without getting back %d of its messages, first #%d", id, len(missing), missing[0])
		}
		for i, v := range p.views {
			rest := p.views[i:]
			for _, m := range v.deliveries {
				if m.NodeID != id.NodeID || m.PID != id.PID {
					continue
				}
				for _, mem := range v.members {
					q := c.procs[ProcID{id.Group, mem.NodeID, mem.PID}]
					if q == nil || q == p || !q.clean || !sameTail(q, rest) {
						continue
					}
					if _, ok := q.delivered[m]; !ok {
						c.add(KindLost, "%v got %v back in view %s, but %v, with it in every view since, never delivered it", id, m, v.key, q.log.Proc)
					}
				}
			}
		}
	}
}

// sameTail reports whether q's views end with exactly the given views.
func sameTail(q *proc, tail []*pview) bool {
	if len(q.views) < len(tail) {
		return false
	}
	off := len(q.views) - len(tail)
	for i, v := range tail {
		if q.views[off+i].key != v.key {
			return false
		}
	}
	return true
}

// checkSameViewDelivery: every process that delivered a message did so in
// the same view, a transitional view counting as its parent. Two processes
// that both delivered it in transitional views are not compared: extended
// virtual synchrony lets the old ring's last messages (and the messages of
// a ring whose group sync never completed there) be delivered in different
// transitional configurations on different sides of a partition.
func (c *checker) checkSameViewDelivery() {
	where := map[msgID]viewKey{}
	who := map[msgID]ProcID{}
	for _, id := range c.order {
		p := c.procs[id]
		for m, k := range p.delivered {
			if k == "" {
				continue
			}
			if w, ok := where[m]; ok && c.base(w) != c.base(k) && !(isTransitional(w) && isTransitional(k)) {
				c.add(KindViews, "%v delivered in view %s by %v but in view %s by %v", m, w, who[m], k, id)
				continue
			}
			where[m], who[m] = k, id
		}
	}
}

// isTransitional reports whether k is the view of a transitional
// configuration.
func isTransitional(k viewKey) bool { return strings.HasSuffix(string(k), "|transitional") }

// base is the view a message delivered in view k was ordered in: k, or
// for a transitional view the last regular view before it.
func (c *checker) base(k viewKey) viewKey {
	for i := 0; i < 1000; i++ {
		p, ok := c.parent[k]
		if !ok {
			break
		}
		k = p
	}
	return k
}

func abbreviate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// Total is the number of violations of every kind.
func (r *Result) Total() int {
	n := 0
	for _, v := range r.Counts {
		n += v
	}
	return n
}

// Summary is the one-line result, naming the seed so the run can be
// repeated.
func (r *Result) Summary(seed int64, faults int) string {
	s := fmt.Sprintf("chaos: seed=%d processes=%d messages=%d deliveries=%d views=%d faults=%d violations=%d",
		seed, r.Processes, r.Messages, r.Deliveries, r.Views, faults, r.Total())
	var parts []string
	for _, k := range Kinds {
		if n := r.Counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, n))
		}
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, " ") + ")"
	}
	if r.Undelivered > 0 {
		s += fmt.Sprintf(" undelivered=%d", r.Undelivered)
	}
	return s
}
