// Package cpgcheck checks the closed process group properties over the
// event logs of several cpg services (a test harness over a fake ring, or
// the simulator over the real Totem engine).
//
// The harness tells a Recorder what clients asked for (Bind, Sent, Gone,
// Crashed) and every batch of events each node's service produced
// (Events); Check then verifies, for every group:
//
//   - no creation: every delivered message was sent (accepted by Send) by
//     the sender, pid and guarantee it carries, to that group;
//   - no duplication: a process delivers a message at most once;
//   - sender order: a process delivers the messages of one sender in the
//     order they were sent;
//   - delivery within the view: a process delivers only while its view
//     holds both itself and the sender (the old ring's last messages may
//     come from members that left, in a transitional view);
//   - consistent views: each configuration change of a process follows
//     from the previous one (members = previous + joined − left) and
//     carries reasons;
//   - same order: two processes deliver their common messages in the same
//     order;
//   - same view: two processes deliver each common message in the same
//     view (the same member list), unless one of them delivers it in a
//     transitional configuration (after old-ring messages it missed);
//   - same messages: between two consecutive common messages, a process
//     whose view did not change there delivers every message the other
//     delivered there in that same view, unless a transitional
//     configuration (Transitional) intervened on either side;
//   - safe delivery: a safe message delivered in a view is delivered by
//     every member of that view that survived it (installed a next view),
//     in the view or in the transitional views right after it; a view is
//     its member list in the Totem ring it was installed in (a node that
//     missed a ring never installed that ring's views);
//   - self delivery: a process delivers its own messages, unless it left
//     the group, its view dropped it, its connection went away, its node
//     crashed, or the service reported the message Undelivered.
package cpgcheck

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/totem-gcs/totem/cpg"
	"github.com/totem-gcs/totem/totem"
)

// MaxErrors bounds the violations Check reports.
const MaxErrors = 20

// streamKey names one process's event stream in one group on one node
// incarnation.
type streamKey struct {
	node  totem.NodeID
	inc   int
	conn  cpg.ConnID
	group string
}

type entry struct {
	isView  bool
	isMark  bool // a configuration change of the node
	regular bool // for a mark: regular (else transitional)
	// message
	msg       string
	sentAt    int // sent.n, or -1 if unknown
	sender    totem.NodeID
	pid       uint32
	guarantee totem.Guarantee
	// view
	members      []cpg.Member
	joined       []cpg.Member
	left         []cpg.Member
	transitional bool
	ring         totem.RingID
}

type stream struct {
	key     streamKey
	pid     uint32
	bound   bool
	entries []entry
	closed  bool // connection gone or node crashed
	pending []sendRec
	// undelivered are own messages the service reported discarded.
	undelivered map[string]bool
}

type sendRec struct {
	msg string
	pos int
}

type sent struct {
	n         int // order of the send in the whole run
	node      totem.NodeID
	pid       uint32
	group     string
	guarantee totem.Guarantee
}

// Recorder collects what happened on every node. Payloads must be unique
// across the whole run (they identify messages).
type Recorder struct {
	inc     map[totem.NodeID]int
	streams map[streamKey]*stream
	order   []*stream
	sent    map[string]sent // group + "\x00" + data
	errs    []error
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{
		inc:     make(map[totem.NodeID]int),
		streams: make(map[streamKey]*stream),
		sent:    make(map[string]sent),
	}
}

func (r *Recorder) fail(format string, args ...any) {
	if len(r.errs) < MaxErrors {
		r.errs = append(r.errs, fmt.Errorf(format, args...))
	}
}

func (r *Recorder) stream(node totem.NodeID, conn cpg.ConnID, group string) *stream {
	k := streamKey{node: node, inc: r.inc[node], conn: conn, group: group}
	s := r.streams[k]
	if s == nil {
		s = &stream{key: k}
		r.streams[k] = s
		r.order = append(r.order, s)
	}
	return s
}

// Bind records that connection conn on node belongs to process pid and
// asked to join group (call it when Join returns nil).
func (r *Recorder) Bind(node totem.NodeID, conn cpg.ConnID, pid uint32, group string) {
	s := r.stream(node, conn, group)
	s.pid, s.bound = pid, true
}

// Sent records a message accepted by Send. data must be unique.
func (r *Recorder) Sent(node totem.NodeID, conn cpg.ConnID, pid uint32, group string, data []byte, g totem.Guarantee) {
	k := group + "\x00" + string(data)
	if _, dup := r.sent[k]; dup {
		r.fail("harness: payload %q sent twice to %q", short(string(data)), group)
		return
	}
	r.sent[k] = sent{n: len(r.sent), node: node, pid: pid, group: group, guarantee: g}
	s := r.stream(node, conn, group)
	s.pending = append(s.pending, sendRec{msg: string(data), pos: len(s.entries)})
}

// Gone records that connection conn on node went away (ConnGone).
func (r *Recorder) Gone(node totem.NodeID, conn cpg.ConnID) {
	for _, s := range r.order {
		if s.key.node == node && s.key.inc == r.inc[node] && s.key.conn == conn {
			s.closed = true
		}
	}
}

// Crashed records that node crashed: its streams end, and a restarted
// service on it starts new ones.
func (r *Recorder) Crashed(node totem.NodeID) {
	for _, s := range r.order {
		if s.key.node == node && s.key.inc == r.inc[node] {
			s.closed = true
		}
	}
	r.inc[node]++
}

// Config records that node's service is about to be handed a totem
// configuration change of kind k. From a transitional configuration to the
// next regular one, a process may deliver old-ring messages that
// processes in other partitions do not, and miss some that changed views
// there (extended virtual synchrony allows such holes), so the same-view
// and same-messages rules are not applied to that stretch.
func (r *Recorder) Config(node totem.NodeID, k totem.ConfigKind) {
	for _, s := range r.order {
		if s.key.node == node && s.key.inc == r.inc[node] {
			s.entries = append(s.entries, entry{isMark: true, regular: k == totem.Regular})
		}
	}
}

// Events records a batch of events produced by node's service, in order.
func (r *Recorder) Events(node totem.NodeID, evs []cpg.Event) {
	for _, ev := range evs {
		switch e := ev.(type) {
		case cpg.Deliver:
			s := r.stream(node, e.Conn, e.Group)
			k := e.Group + "\x00" + string(e.Data)
			snt, ok := r.sent[k]
			switch {
			case !ok:
				r.fail("node %d conn %d group %q: delivered %q that nobody sent", node, e.Conn, e.Group, short(string(e.Data)))
			case snt.node != e.Sender || snt.pid != e.Pid:
				r.fail("node %d conn %d group %q: %q delivered from %d:%d, sent by %d:%d", node, e.Conn, e.Group, short(string(e.Data)), e.Sender, e.Pid, snt.node, snt.pid)
			case snt.guarantee != e.Guarantee:
				r.fail("node %d conn %d group %q: %q delivered %v, sent %v", node, e.Conn, e.Group, short(string(e.Data)), e.Guarantee, snt.guarantee)
			}
			at := -1
			if ok {
				at = snt.n
			}
			s.entries = append(s.entries, entry{msg: string(e.Data), sentAt: at, sender: e.Sender, pid: e.Pid, guarantee: e.Guarantee})
		case cpg.Undelivered:
			s := r.stream(node, e.Conn, e.Group)
			if s.undelivered == nil {
				s.undelivered = make(map[string]bool)
			}
			s.undelivered[string(e.Data)] = true
		case cpg.ConfChg:
			s := r.stream(node, e.Conn, e.Group)
			s.entries = append(s.entries, entry{
				isView:       true,
				members:      stripReasons(e.Members),
				joined:       slices.Clone(e.Joined),
				left:         slices.Clone(e.Left),
				transitional: e.Transitional,
				ring:         e.Ring,
			})
		}
	}
}

func stripReasons(ms []cpg.Member) []cpg.Member {
	out := make([]cpg.Member, len(ms))
	for i, m := range ms {
		out[i] = cpg.Member{Node: m.Node, Pid: m.Pid}
	}
	return out
}

func has(ms []cpg.Member, node totem.NodeID, pid uint32) bool {
	for _, m := range ms {
		if m.Node == node && m.Pid == pid {
			return true
		}
	}
	return false
}

func (s *stream) name() string {
	return fmt.Sprintf("%d:%d (conn %d, incarnation %d) in %q", s.key.node, s.pid, s.key.conn, s.key.inc, s.key.group)
}

// Check verifies every property over what was recorded and returns the
// violations found (nil if none). Call it once the run has settled:
// self delivery assumes every message that could be delivered was.
func (r *Recorder) Check() error {
	errs := slices.Clone(r.errs)
	fail := func(format string, args ...any) {
		if len(errs) < MaxErrors {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	byGroup := make(map[string][]*stream)
	for _, s := range r.order {
		if !s.bound {
			// Events for a connection the harness never bound: still
			// check, taking the pid from its first join.
			for _, e := range s.entries {
				if e.isView {
					for _, j := range e.joined {
						if j.Node == s.key.node && j.Reason == cpg.ReasonJoin {
							s.pid, s.bound = j.Pid, true
						}
					}
				}
				if s.bound {
					break
				}
			}
		}
		r.checkStream(s, fail)
		byGroup[s.key.group] = append(byGroup[s.key.group], s)
	}
	for _, g := range sortedGroups(byGroup) {
		ss := byGroup[g]
		checkSafe(ss, fail)
		for i := range ss {
			for j := i + 1; j < len(ss); j++ {
				checkPair(ss[i], ss[j], fail)
			}
		}
	}
	return errors.Join(errs...)
}

func sortedGroups(m map[string][]*stream) []string {
	out := make([]string, 0, len(m))
	for g := range m {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// checkStream verifies one stream on its own.
func (r *Recorder) checkStream(s *stream, fail func(string, ...any)) {
	var view []cpg.Member
	inView, transView := false, false
	seen := make(map[string]bool)
	lastFrom := make(map[cpg.Member]entry) // FIFO per sender
	self := func() bool { return has(view, s.key.node, s.pid) }
	for i, e := range s.entries {
		if e.isMark {
			continue
		}
		if e.isView {
			for _, m := range e.joined {
				if m.Reason != cpg.ReasonJoin && m.Reason != cpg.ReasonNodeUp {
					fail("%s: entry %d: joined %v with reason %v", s.name(), i, m, m.Reason)
				}
				if !has(e.members, m.Node, m.Pid) {
					fail("%s: entry %d: joined %v missing from members %v", s.name(), i, m, e.members)
				}
				if inView && has(view, m.Node, m.Pid) {
					fail("%s: entry %d: joined %v already in previous view %v", s.name(), i, m, view)
				}
			}
			for _, m := range e.left {
				if m.Reason < cpg.ReasonLeave || m.Reason > cpg.ReasonProcDown || m.Reason == cpg.ReasonNodeUp {
					fail("%s: entry %d: left %v with reason %v", s.name(), i, m, m.Reason)
				}
				if has(e.members, m.Node, m.Pid) {
					fail("%s: entry %d: left %v still in members %v", s.name(), i, m, e.members)
				}
				if inView && !has(view, m.Node, m.Pid) {
					fail("%s: entry %d: left %v not in previous view %v", s.name(), i, m, view)
				}
			}
			if inView {
				want := slices.Clone(view)
				for _, m := range e.left {
					want = slices.DeleteFunc(want, func(x cpg.Member) bool { return x.Node == m.Node && x.Pid == m.Pid })
				}
				for _, m := range e.joined {
					want = append(want, cpg.Member{Node: m.Node, Pid: m.Pid})
				}
				slices.SortFunc(want, cmpMember)
				if !slices.Equal(want, e.members) {
					fail("%s: entry %d: view %v after %v joined=%v left=%v, want %v", s.name(), i, e.members, view, e.joined, e.left, want)
				}
			} else if !has(e.joined, s.key.node, s.pid) && has(e.members, s.key.node, s.pid) {
				fail("%s: entry %d: first view %v does not list the process as joined (%v)", s.name(), i, e.members, e.joined)
			}
			view = e.members
			transView = e.transitional
			inView = self()
			continue
		}
		if seen[e.msg] {
			fail("%s: entry %d: %q delivered twice", s.name(), i, short(e.msg))
		}
		from := cpg.Member{Node: e.sender, Pid: e.pid}
		if prev, ok := lastFrom[from]; ok && e.sentAt >= 0 && prev.sentAt > e.sentAt {
			fail("%s: entry %d: %q from %v delivered after %q, sent later", s.name(), i, short(e.msg), from, short(prev.msg))
		}
		lastFrom[from] = e
		seen[e.msg] = true
		if !inView {
			fail("%s: entry %d: %q delivered outside the process's view %v", s.name(), i, short(e.msg), view)
		} else if !has(view, e.sender, e.pid) && !transView {
			// The old ring's last messages may come from members that
			// left, in a transitional view: a process must be able to
			// tell them from the messages of its regular view.
			fail("%s: entry %d: %q from %d:%d delivered in view %v without the sender", s.name(), i, short(e.msg), e.sender, e.pid, view)
		}
	}
	// Self delivery.
	if s.closed {
		return
	}
	for _, p := range s.pending {
		if seen[p.msg] || s.undelivered[p.msg] {
			continue
		}
		excused := false
		for _, e := range s.entries[p.pos:] {
			if e.isView && !has(e.members, s.key.node, s.pid) {
				excused = true
				break
			}
		}
		if !excused {
			fail("%s: own message %q never delivered", s.name(), short(p.msg))
		}
	}
}

func cmpMember(a, b cpg.Member) int {
	if a.Node != b.Node {
		return int(int64(a.Node) - int64(b.Node))
	}
	return int(int64(a.Pid) - int64(b.Pid))
}

// viewIndex returns, for every message of s, the index of the last view
// entry before it (-1 if none) and whether it was delivered between a
// transitional configuration and the next regular one.
func viewIndex(s *stream) (map[string]int, map[string]bool) {
	idx := make(map[string]int)
	trans := make(map[string]bool)
	last, inTrans := -1, false
	for i, e := range s.entries {
		switch {
		case e.isView:
			last = i
		case e.isMark:
			inTrans = !e.regular
		default:
			idx[e.msg] = last
			trans[e.msg] = inTrans
		}
	}
	return idx, trans
}

// checkPair compares two streams of the same group.
func checkPair(a, b *stream, fail func(string, ...any)) {
	posA := make(map[string]int)
	for i, e := range a.entries {
		if !e.isView && !e.isMark {
			posA[e.msg] = i
		}
	}
	// Common messages in b's order, with positions in both.
	type common struct {
		msg    string
		ia, ib int
	}
	var cs []common
	for i, e := range b.entries {
		if e.isView || e.isMark {
			continue
		}
		if ia, ok := posA[e.msg]; ok {
			cs = append(cs, common{e.msg, ia, i})
		}
	}
	if len(cs) == 0 {
		return
	}
	for k := 1; k < len(cs); k++ {
		if cs[k].ia < cs[k-1].ia {
			fail("%s and %s deliver %q and %q in different orders", a.name(), b.name(), short(cs[k-1].msg), short(cs[k].msg))
			return
		}
	}
	va, ta := viewIndex(a)
	vb, tb := viewIndex(b)
	viewOf := func(s *stream, idx map[string]int, msg string) []cpg.Member {
		if i := idx[msg]; i >= 0 {
			return s.entries[i].members
		}
		return nil
	}
	for _, c := range cs {
		if ta[c.msg] || tb[c.msg] {
			// Delivered in a transitional configuration on one side:
			// old-ring messages one side missed may have changed its view
			// (extended virtual synchrony allows such holes).
			continue
		}
		ma, mb := viewOf(a, va, c.msg), viewOf(b, vb, c.msg)
		if !slices.Equal(ma, mb) {
			fail("%s delivers %q in view %v, %s in view %v", a.name(), short(c.msg), ma, b.name(), mb)
			return
		}
	}
	// Between consecutive common messages: a process whose view did not
	// change there must deliver whatever the other delivered there in that
	// same view.
	for k := 1; k < len(cs); k++ {
		if ta[cs[k-1].msg] || tb[cs[k-1].msg] {
			continue // inside a transitional configuration on one side
		}
		segA := a.entries[cs[k-1].ia+1 : cs[k].ia]
		segB := b.entries[cs[k-1].ib+1 : cs[k].ib]
		if msg, ok := missing(segA, segB, viewOf(a, va, cs[k].msg)); !ok {
			fail("between %q and %q, %s delivers %q in view %v and %s, in that view throughout, does not", short(cs[k-1].msg), short(cs[k].msg), b.name(), short(msg), viewOf(a, va, cs[k].msg), a.name())
			return
		}
		if msg, ok := missing(segB, segA, viewOf(b, vb, cs[k].msg)); !ok {
			fail("between %q and %q, %s delivers %q in view %v and %s, in that view throughout, does not", short(cs[k-1].msg), short(cs[k].msg), a.name(), short(msg), viewOf(b, vb, cs[k].msg), b.name())
			return
		}
	}
}

// missing checks that if mine holds no view change, every message of
// theirs delivered in view v is in mine; it returns the first one missing.
// Across a transitional configuration on either side nothing is required.
func missing(mine, theirs []entry, v []cpg.Member) (string, bool) {
	have := make(map[string]bool)
	for _, e := range mine {
		if e.isView || e.isMark {
			return "", true
		}
		have[e.msg] = true
	}
	var cur []cpg.Member
	known := false
	for _, e := range theirs {
		switch {
		case e.isMark:
			return "", true
		case e.isView:
			cur, known = e.members, true
		case (!known || slices.Equal(cur, v)) && !have[e.msg]:
			// Before their first view change there, they were in the
			// view of the common message that opens the segment, which
			// equals v.
			return e.msg, false
		}
	}
	return "", true
}

func fmtViews(vs [][]cpg.Member) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprint(v)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// short trims a payload for messages.
func short(m string) string {
	if len(m) > 40 {
		return fmt.Sprintf("%s…(%d bytes)", m[:32], len(m))
	}
	return m
}

// pview is one view a stream installed, with what it delivered there.
type pview struct {
	key          string // members, ring, occurrence of that pair in the stream, transitional mark
	members      []cpg.Member
	transitional bool
	delivered    map[string]bool
	safe         []string
}

// viewProc is a stream with its views.
type viewProc struct {
	s     *stream
	views []*pview
	at    map[string]int // view key -> index
}

// views splits a stream into the views it installed.
func views(s *stream) []*pview {
	var out []*pview
	seen := make(map[string]int)
	var cur *pview
	for _, e := range s.entries {
		switch {
		case e.isMark:
		case e.isView:
			if !has(e.members, s.key.node, s.pid) {
				cur = nil
				continue
			}
			// The ring tells apart views with the same members that a
			// process missed (it was not in a ring the others went
			// through) from ones it installed again.
			list := fmt.Sprintf("%v in ring %v", e.members, e.ring)
			seen[list]++
			key := fmt.Sprintf("%s #%d", list, seen[list])
			if e.transitional {
				key += "/transitional"
			}
			cur = &pview{key: key, members: e.members, transitional: e.transitional, delivered: make(map[string]bool)}
			out = append(out, cur)
		case cur != nil:
			cur.delivered[e.msg] = true
			if e.guarantee == totem.Safe {
				cur.safe = append(cur.safe, e.msg)
			}
		}
	}
	return out
}

// checkSafe checks safe delivery over the streams of one group: a safe
// message delivered in a view is delivered by every member of that view
// that survived it (installed a next view), in that view or in the
// transitional views that immediately follow it there (Totem may hand the
// old ring's last messages over only after the break).
func checkSafe(ss []*stream, fail func(string, ...any)) {
	// A restarted node may reuse a pid: a member names every stream of
	// that node and pid, and the one that installed the view is meant.
	procs := make(map[cpg.Member][]*viewProc)
	var all []*viewProc
	for _, s := range ss {
		if !s.bound {
			continue
		}
		p := &viewProc{s: s, views: views(s), at: make(map[string]int)}
		for i, v := range p.views {
			p.at[v.key] = i
		}
		m := cpg.Member{Node: s.key.node, Pid: s.pid}
		procs[m] = append(procs[m], p)
		all = append(all, p)
	}
	for _, a := range all {
		for _, v := range a.views {
			if len(v.safe) == 0 {
				continue
			}
			for _, m := range v.members {
				var b *viewProc
				i := -1
				for _, c := range procs[m] {
					if j, ok := c.at[v.key]; ok {
						b, i = c, j
						break
					}
				}
				if b == nil || b == a || i+1 >= len(b.views) {
					continue
				}
				got := make(map[string]bool)
				for k := i; k < len(b.views) && (k == i || b.views[k].transitional); k++ {
					for msg := range b.views[k].delivered {
						got[msg] = true
					}
				}
				for _, msg := range v.safe {
					if !got[msg] {
						fail("%s delivered safe %q in view %s, but %s, which survived it, did not", a.s.name(), short(msg), v.key, b.s.name())
					}
				}
			}
		}
	}
}
