package cpg_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/totem-gcs/totem/cpg"
	"github.com/totem-gcs/totem/totem"
)

func m(node totem.NodeID, pid uint32) cpg.Member { return cpg.Member{Node: node, Pid: pid} }

func mr(node totem.NodeID, pid uint32, r cpg.Reason) cpg.Member {
	return cpg.Member{Node: node, Pid: pid, Reason: r}
}

// confchgs returns the ConfChg events of conn on node for group.
func confchgs(n *fakeNode, conn cpg.ConnID, group string) []cpg.ConfChg {
	var out []cpg.ConfChg
	for _, ev := range n.eventsFor(conn) {
		if c, ok := ev.(cpg.ConfChg); ok && c.Group == group {
			out = append(out, c)
		}
	}
	return out
}

// delivered returns the payloads conn on node delivered for group.
func delivered(n *fakeNode, conn cpg.ConnID, group string) []string {
	var out []string
	for _, ev := range n.eventsFor(conn) {
		if d, ok := ev.(cpg.Deliver); ok && d.Group == group {
			out = append(out, fmt.Sprintf("%d:%d:%s:%v", d.Sender, d.Pid, d.Data, d.Guarantee))
		}
	}
	return out
}

func lastConfchg(t *testing.T, n *fakeNode, conn cpg.ConnID, group string) cpg.ConfChg {
	t.Helper()
	cs := confchgs(n, conn, group)
	if len(cs) == 0 {
		t.Fatalf("node %d conn %d: no confchg for %q; events:\n%s", n.id, conn, group, describe(n.events))
	}
	return cs[len(cs)-1]
}

func TestJoinSendLeave(t *testing.T) {
	r := newFakeRing(t, 1, 1, 2, 3)
	r.settle()
	r.join(1, 10, 100, "g")
	r.settle()
	c := lastConfchg(t, r.node(1), 10, "g")
	if !slices.Equal(c.Members, []cpg.Member{m(1, 100)}) || !slices.Equal(c.Joined, []cpg.Member{mr(1, 100, cpg.ReasonJoin)}) {
		t.Fatalf("first join: %+v", c)
	}
	r.join(2, 20, 200, "g")
	r.join(3, 30, 300, "g")
	r.settle()
	want := []cpg.Member{m(1, 100), m(2, 200), m(3, 300)}
	for _, id := range []totem.NodeID{1, 2, 3} {
		if got := r.node(id).svc.Members("g"); !slices.Equal(got, want) {
			t.Fatalf("node %d members %v, want %v", id, got, want)
		}
	}
	// The first member saw each join, with reason JOIN.
	cs := confchgs(r.node(1), 10, "g")
	if len(cs) != 3 || !slices.Equal(cs[2].Members, want) || !slices.Equal(cs[2].Joined, []cpg.Member{mr(3, 300, cpg.ReasonJoin)}) {
		t.Fatalf("node 1 confchgs %+v", cs)
	}

	if err := r.send(1, 10, 100, "g", "a1", totem.Agreed); err != nil {
		t.Fatal(err)
	}
	if err := r.send(2, 20, 200, "g", "s1", totem.Safe); err != nil {
		t.Fatal(err)
	}
	if err := r.send(3, 30, 300, "g", "a2", totem.Agreed); err != nil {
		t.Fatal(err)
	}
	r.settle()
	ref := delivered(r.node(1), 10, "g")
	if len(ref) != 3 || !slices.Contains(ref, "2:200:s1:safe") || !slices.Contains(ref, "1:100:a1:agreed") {
		t.Fatalf("node 1 delivered %v", ref)
	}
	for _, p := range []struct {
		id   totem.NodeID
		conn cpg.ConnID
	}{{2, 20}, {3, 30}} {
		if got := delivered(r.node(p.id), p.conn, "g"); !slices.Equal(got, ref) {
			t.Fatalf("node %d delivered %v, node 1 %v", p.id, got, ref)
		}
	}

	// Leave: the leaver and the others see it, with reason LEAVE.
	if err := r.node(2).svc.Leave(20, 200, "g"); err != nil {
		t.Fatal(err)
	}
	r.settle()
	left := []cpg.Member{mr(2, 200, cpg.ReasonLeave)}
	for _, p := range []struct {
		id   totem.NodeID
		conn cpg.ConnID
	}{{1, 10}, {2, 20}, {3, 30}} {
		c := lastConfchg(t, r.node(p.id), p.conn, "g")
		if !slices.Equal(c.Left, left) || !slices.Equal(c.Members, []cpg.Member{m(1, 100), m(3, 300)}) {
			t.Fatalf("node %d after leave: %+v", p.id, c)
		}
	}
	if err := r.node(2).svc.Send(20, 200, "g", []byte("late"), totem.Agreed); !errors.Is(err, cpg.ErrNotMember) {
		t.Fatalf("send after leave: %v", err)
	}
	if err := r.node(2).svc.Leave(20, 200, "g"); !errors.Is(err, cpg.ErrNotMember) {
		t.Fatalf("second leave: %v", err)
	}
	if got := r.node(3).svc.Groups(); !slices.Equal(got, []string{"g"}) {
		t.Fatalf("groups %v", got)
	}
	r.check()
}

func TestSeveralGroupsPerConnection(t *testing.T) {
	r := newFakeRing(t, 2, 1, 2)
	r.join(1, 1, 11, "a")
	r.join(1, 1, 11, "b")
	r.join(2, 2, 22, "b")
	r.settle()
	if err := r.node(1).svc.Join(1, 99, "c"); !errors.Is(err, cpg.ErrBadPid) {
		t.Fatalf("join with another pid on the same connection: %v", err)
	}
	if err := r.node(1).svc.Join(1, 11, "a"); !errors.Is(err, cpg.ErrExist) {
		t.Fatalf("second join: %v", err)
	}
	if err := r.node(1).svc.Join(5, 11, "a"); !errors.Is(err, cpg.ErrExist) {
		t.Fatalf("same process on another connection: %v", err)
	}
	if err := r.send(1, 1, 11, "b", "to-b", totem.Agreed); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if got := delivered(r.node(2), 2, "b"); !slices.Equal(got, []string{"1:11:to-b:agreed"}) {
		t.Fatalf("node 2 delivered %v", got)
	}
	if got := delivered(r.node(1), 1, "a"); len(got) != 0 {
		t.Fatalf("group a got %v", got)
	}
	if got := r.node(1).svc.LocalMembers(1); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("local members %v", got)
	}
	r.check()
}

func TestProcDown(t *testing.T) {
	r := newFakeRing(t, 3, 1, 2)
	r.join(1, 1, 11, "g")
	r.join(1, 2, 12, "g")
	r.join(2, 3, 21, "g")
	r.settle()
	r.node(1).clear()
	r.gone(1, 1)
	r.settle()
	for _, p := range []struct {
		id   totem.NodeID
		conn cpg.ConnID
	}{{1, 2}, {2, 3}} {
		c := lastConfchg(t, r.node(p.id), p.conn, "g")
		if !slices.Equal(c.Left, []cpg.Member{mr(1, 11, cpg.ReasonProcDown)}) || !slices.Equal(c.Members, []cpg.Member{m(1, 12), m(2, 21)}) {
			t.Fatalf("node %d after procdown: %+v", p.id, c)
		}
	}
	if evs := r.node(1).eventsFor(1); len(evs) != 0 {
		t.Fatalf("the dead connection got events: %s", describe(evs))
	}
	// The pid can join again (a new connection of the same process).
	r.join(1, 7, 11, "g")
	r.settle()
	if got := r.node(2).svc.Members("g"); !slices.Equal(got, []cpg.Member{m(1, 11), m(1, 12), m(2, 21)}) {
		t.Fatalf("members %v", got)
	}
	r.check()
}

func TestConnGoneBeforeJoinDelivered(t *testing.T) {
	r := newFakeRing(t, 4, 1, 2)
	r.join(2, 9, 90, "g")
	r.settle()
	r.join(1, 1, 11, "g")
	r.gone(1, 1) // the join is still in flight
	r.settle()
	cs := confchgs(r.node(2), 9, "g")
	if len(cs) != 3 || !slices.Equal(cs[1].Joined, []cpg.Member{mr(1, 11, cpg.ReasonJoin)}) ||
		!slices.Equal(cs[2].Left, []cpg.Member{mr(1, 11, cpg.ReasonProcDown)}) {
		t.Fatalf("node 2 saw %+v", cs)
	}
	if got := r.node(1).svc.Members("g"); !slices.Equal(got, []cpg.Member{m(2, 90)}) {
		t.Fatalf("members %v", got)
	}
	r.check()
}

func TestNodeDown(t *testing.T) {
	r := newFakeRing(t, 5, 1, 2, 3)
	r.join(1, 1, 11, "g")
	r.join(2, 2, 21, "g")
	r.join(3, 3, 31, "g")
	r.join(3, 4, 32, "h")
	r.settle()
	r.crash(3)
	r.settle()
	for _, p := range []struct {
		id   totem.NodeID
		conn cpg.ConnID
	}{{1, 1}, {2, 2}} {
		c := lastConfchg(t, r.node(p.id), p.conn, "g")
		if !slices.Equal(c.Left, []cpg.Member{mr(3, 31, cpg.ReasonNodeDown)}) || !slices.Equal(c.Members, []cpg.Member{m(1, 11), m(2, 21)}) {
			t.Fatalf("node %d after nodedown: %+v", p.id, c)
		}
	}
	if got := r.node(1).svc.Groups(); !slices.Equal(got, []string{"g"}) {
		t.Fatalf("groups after the crash: %v", got)
	}
	ring := r.node(1).svc.Ring()
	if !slices.Equal(ring.Members, totem.NodeSet{1, 2}) {
		t.Fatalf("ring %+v", ring)
	}
	r.check()
}

func TestJoiningNodeLearnsEveryGroup(t *testing.T) {
	r := newFakeRing(t, 6, 1, 2)
	r.join(1, 1, 11, "a")
	r.join(2, 2, 21, "b")
	r.join(2, 3, 22, "c")
	r.settle()
	n3 := r.start(3)
	r.partition([]totem.NodeID{1, 2}, []totem.NodeID{3})
	r.settle()
	r.join(3, 5, 31, "b")
	r.settle()
	if got := n3.svc.Groups(); len(got) != 1 {
		t.Fatalf("alone, node 3 knows %v", got)
	}
	r.partition([]totem.NodeID{1, 2, 3})
	r.settle()
	for _, g := range []string{"a", "b", "c"} {
		if got, want := n3.svc.Members(g), r.node(1).svc.Members(g); !slices.Equal(got, want) {
			t.Fatalf("group %q: node 3 has %v, node 1 %v", g, got, want)
		}
	}
	if got := n3.svc.Groups(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("node 3 groups %v", got)
	}
	// Node 3's member of b learns node 2's with reason NODEUP, and node 2's
	// learns node 3's the same way.
	c := lastConfchg(t, n3, 5, "b")
	if !slices.Equal(c.Joined, []cpg.Member{mr(2, 21, cpg.ReasonNodeUp)}) || !slices.Equal(c.Members, []cpg.Member{m(2, 21), m(3, 31)}) {
		t.Fatalf("node 3 after merge: %+v", c)
	}
	c = lastConfchg(t, r.node(2), 2, "b")
	if !slices.Equal(c.Joined, []cpg.Member{mr(3, 31, cpg.ReasonNodeUp)}) {
		t.Fatalf("node 2 after merge: %+v", c)
	}
	r.check()
}

func TestMergeSameGroupBothSides(t *testing.T) {
	r := newFakeRing(t, 7, 1, 2, 3, 4)
	r.join(1, 1, 11, "g")
	r.join(3, 3, 31, "g")
	r.settle()
	r.partition([]totem.NodeID{1, 2}, []totem.NodeID{3, 4})
	r.settle()
	if got := r.node(1).svc.Members("g"); !slices.Equal(got, []cpg.Member{m(1, 11)}) {
		t.Fatalf("side A: %v", got)
	}
	r.join(2, 2, 21, "g")
	r.join(4, 4, 41, "g")
	r.settle()
	if err := r.send(1, 1, 11, "g", "from-a", totem.Agreed); err != nil {
		t.Fatal(err)
	}
	if err := r.send(4, 4, 41, "g", "from-b", totem.Safe); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if got := delivered(r.node(3), 3, "g"); !slices.Equal(got, []string{"4:41:from-b:safe"}) {
		t.Fatalf("side B delivered %v", got)
	}
	r.partition([]totem.NodeID{1, 2, 3, 4})
	r.settle()
	all := []cpg.Member{m(1, 11), m(2, 21), m(3, 31), m(4, 41)}
	for id := totem.NodeID(1); id <= 4; id++ {
		if got := r.node(id).svc.Members("g"); !slices.Equal(got, all) {
			t.Fatalf("node %d members %v", id, got)
		}
	}
	c := lastConfchg(t, r.node(1), 1, "g")
	if !slices.Equal(c.Joined, []cpg.Member{mr(3, 31, cpg.ReasonNodeUp), mr(4, 41, cpg.ReasonNodeUp)}) || !slices.Equal(c.Members, all) {
		t.Fatalf("side A after merge: %+v", c)
	}
	c = lastConfchg(t, r.node(4), 4, "g")
	if !slices.Equal(c.Joined, []cpg.Member{mr(1, 11, cpg.ReasonNodeUp), mr(2, 21, cpg.ReasonNodeUp)}) {
		t.Fatalf("side B after merge: %+v", c)
	}
	if err := r.send(2, 2, 21, "g", "after", totem.Agreed); err != nil {
		t.Fatal(err)
	}
	r.settle()
	for _, p := range []struct {
		id   totem.NodeID
		conn cpg.ConnID
	}{{1, 1}, {2, 2}, {3, 3}, {4, 4}} {
		got := delivered(r.node(p.id), p.conn, "g")
		if len(got) == 0 || got[len(got)-1] != "2:21:after:agreed" {
			t.Fatalf("node %d delivered %v", p.id, got)
		}
	}
	r.check()
}

func TestMessagesHeldDuringSyncUseTheNewView(t *testing.T) {
	r := newFakeRing(t, 8, 1)
	r.join(1, 1, 11, "g")
	r.settle()
	n2 := r.start(2)
	r.partition([]totem.NodeID{1}, []totem.NodeID{2})
	r.join(2, 2, 21, "g")
	r.settle()
	// Node 1 sends before it sees the merge; the message is ordered after
	// the new ring's regular configuration, while the sync runs.
	if err := r.send(1, 1, 11, "g", "crossing", totem.Agreed); err != nil {
		t.Fatal(err)
	}
	r.partition([]totem.NodeID{1, 2})
	if !n2.svc.Syncing() {
		t.Fatal("node 2 is not syncing after the merge")
	}
	if err := n2.svc.Send(2, 21, "g", []byte("x"), totem.Agreed); !errors.Is(err, cpg.ErrTryAgain) {
		t.Fatalf("send while syncing: %v", err)
	}
	r.settle()
	// Node 2's member learns node 1's member first, then delivers.
	evs := n2.eventsFor(2)
	last := evs[len(evs)-1]
	d, ok := last.(cpg.Deliver)
	if !ok || string(d.Data) != "crossing" {
		t.Fatalf("node 2 events:\n%s", describe(evs))
	}
	if c, ok := evs[len(evs)-2].(cpg.ConfChg); !ok || !slices.Equal(c.Members, []cpg.Member{m(1, 11), m(2, 21)}) {
		t.Fatalf("node 2 events:\n%s", describe(evs))
	}
	if st := n2.svc.Stats(); st.HeldBack == 0 {
		t.Fatalf("nothing held back: %+v", st)
	}
	r.check()
}

func TestSyncCutShortReportsUndelivered(t *testing.T) {
	r := newFakeRing(t, 9, 1, 2)
	r.join(1, 1, 11, "g")
	r.join(2, 2, 21, "g")
	r.settle()
	if err := r.send(1, 1, 11, "g", "doomed", totem.Agreed); err != nil {
		t.Fatal(err)
	}
	// A new ring forms; the message is delivered while the sync runs, and
	// another configuration change comes before the sync completes.
	r.partition([]totem.NodeID{1, 2})
	n1 := r.node(1)
	// Deliver only node 1's queued data message (the first in its queue).
	p := n1.queue[0]
	n1.queue = n1.queue[1:]
	for _, id := range []totem.NodeID{1, 2} {
		r.deliver(r.node(id), totem.Delivery{Sender: 1, Guarantee: p.g, Payload: p.payload})
	}
	// The ring splits before the sync completes.
	r.partition([]totem.NodeID{1}, []totem.NodeID{2})
	r.settle()
	r.partition([]totem.NodeID{1, 2})
	r.settle()
	var undelivered []string
	for _, ev := range n1.events {
		if u, ok := ev.(cpg.Undelivered); ok {
			undelivered = append(undelivered, string(u.Data))
		}
	}
	if !slices.Equal(undelivered, []string{"doomed"}) {
		t.Fatalf("undelivered %v; events:\n%s", undelivered, describe(n1.events))
	}
	if got := delivered(r.node(2), 2, "g"); len(got) != 0 {
		t.Fatalf("node 2 delivered %v", got)
	}
	if st := n1.svc.Stats(); st.PartialSyncs == 0 || st.Discarded != 1 {
		t.Fatalf("stats %+v", st)
	}
	r.check()
}

func TestBackPressure(t *testing.T) {
	r := newFakeRing(t, 10, 1, 2)
	r.join(1, 1, 11, "g")
	r.settle()
	n1 := r.node(1)
	n1.refuse = true
	if err := n1.svc.Send(1, 11, "g", []byte("x"), totem.Agreed); !errors.Is(err, cpg.ErrTryAgain) {
		t.Fatalf("send with a full queue: %v", err)
	}
	// Control operations are kept and proposed later.
	r.join(1, 2, 12, "g")
	if n1.svc.PendingControl() != 1 {
		t.Fatalf("pending control %d", n1.svc.PendingControl())
	}
	// While a join waits, data sends wait too (so the join goes first).
	n1.refuse = false
	n1.limit = len(n1.queue) // full
	if err := n1.svc.Send(1, 11, "g", []byte("y"), totem.Agreed); !errors.Is(err, cpg.ErrTryAgain) {
		t.Fatalf("send with control waiting: %v", err)
	}
	n1.limit = 1 << 30
	n1.svc.Flush()
	if n1.svc.PendingControl() != 0 {
		t.Fatalf("pending control after flush %d", n1.svc.PendingControl())
	}
	if err := r.send(1, 2, 12, "g", "after-join", totem.Agreed); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if got := delivered(r.node(1), 2, "g"); !slices.Equal(got, []string{"1:12:after-join:agreed"}) {
		t.Fatalf("delivered %v", got)
	}
	if st := n1.svc.Stats(); st.ProposalsRefused == 0 {
		t.Fatalf("stats %+v", st)
	}
	r.check()
}

func TestControlQueueIsBounded(t *testing.T) {
	r := newFakeRing(t, 11)
	r.cfg = cpg.Config{MaxPendingControl: 3}
	r.start(1)
	r.partition([]totem.NodeID{1})
	r.settle()
	n := r.node(1)
	n.refuse = true
	for i := range 3 {
		if err := n.svc.Join(1, 11, fmt.Sprint("g", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.svc.Join(1, 11, "g3"); !errors.Is(err, cpg.ErrTryAgain) {
		t.Fatalf("fourth join: %v", err)
	}
	// Procdown is never refused.
	n.svc.ConnGone(1)
	if got := n.svc.PendingControl(); got != 6 {
		t.Fatalf("pending %d, want 3 joins and 3 procdowns", got)
	}
	n.refuse = false
	r.settle()
	if got := n.svc.Groups(); len(got) != 0 {
		t.Fatalf("groups %v", got)
	}
}

func TestBadRequests(t *testing.T) {
	r := newFakeRing(t, 12)
	r.cfg = cpg.Config{MaxMessageSize: 1000}
	r.start(1)
	n := r.node(1)
	if err := n.svc.Send(1, 11, "g", []byte("x"), totem.Agreed); !errors.Is(err, cpg.ErrNotMember) {
		t.Fatalf("send before join: %v", err)
	}
	if err := n.svc.Join(1, 11, "g"); err != nil {
		t.Fatal(err)
	}
	if err := n.svc.Send(1, 11, "g", []byte("x"), totem.Agreed); !errors.Is(err, cpg.ErrTryAgain) {
		t.Fatalf("send before any ring: %v", err)
	}
	r.partition([]totem.NodeID{1})
	r.settle()
	for _, name := range []string{"", strings.Repeat("x", cpg.MaxGroupName+1)} {
		if err := n.svc.Join(1, 11, name); !errors.Is(err, cpg.ErrBadGroupName) {
			t.Fatalf("join %d-byte name: %v", len(name), err)
		}
		if err := n.svc.Send(1, 11, name, nil, totem.Agreed); !errors.Is(err, cpg.ErrBadGroupName) {
			t.Fatalf("send to %d-byte name: %v", len(name), err)
		}
		if err := n.svc.Leave(1, 11, name); !errors.Is(err, cpg.ErrBadGroupName) {
			t.Fatalf("leave %d-byte name: %v", len(name), err)
		}
	}
	long := strings.Repeat("y", cpg.MaxGroupName)
	if err := n.svc.Join(1, 11, long); err != nil {
		t.Fatalf("join %d-byte name: %v", len(long), err)
	}
	err := n.svc.Send(1, 11, "g", make([]byte, 1001), totem.Agreed)
	var tb *cpg.TooBigError
	if !errors.Is(err, cpg.ErrTooBig) || !errors.As(err, &tb) || tb.Limit != 1000 || !strings.Contains(err.Error(), "1000") {
		t.Fatalf("oversize send: %v", err)
	}
	if err := n.svc.Send(1, 11, "g", []byte("x"), totem.Guarantee(7)); !errors.Is(err, cpg.ErrBadGuarantee) {
		t.Fatalf("bad guarantee: %v", err)
	}
	if err := n.svc.Leave(2, 11, "g"); !errors.Is(err, cpg.ErrNotMember) {
		t.Fatalf("leave from another connection: %v", err)
	}
	if err := n.svc.Send(1, 11, "g", make([]byte, 1000), totem.Safe); err != nil {
		t.Fatalf("send at the limit: %v", err)
	}
	r.settle()
	if _, err := cpg.NewWithConfig(0, n, cpg.Config{}); err == nil {
		t.Fatal("node id 0 accepted")
	}
}

func TestGarbledPayloadIsCountedAndSkipped(t *testing.T) {
	r := newFakeRing(t, 13, 1)
	r.join(1, 1, 11, "g")
	r.settle()
	n := r.node(1)
	before := len(n.events)
	for _, p := range [][]byte{nil, {1}, {9, 0x90}, {1, 0x94, 1, 0xa1}, []byte("TS garbage")} {
		r.deliver(n, totem.Delivery{Sender: 1, Guarantee: totem.Agreed, Payload: p})
	}
	if len(n.events) != before {
		t.Fatalf("events from garbage: %s", describe(n.events[before:]))
	}
	if st := n.svc.Stats(); st.DecodeErrors != 5 {
		t.Fatalf("decode errors %d", st.DecodeErrors)
	}
}

func TestRingChangeAndSafeGuarantee(t *testing.T) {
	r := newFakeRing(t, 14, 1, 2)
	var rings []cpg.RingChange
	for _, ev := range r.node(2).events {
		if rc, ok := ev.(cpg.RingChange); ok {
			rings = append(rings, rc)
		}
	}
	if len(rings) != 1 || !slices.Equal(rings[0].Members, totem.NodeSet{1, 2}) || rings[0].Ring != r.node(2).svc.Ring().ID {
		t.Fatalf("ring changes %+v, ring %+v", rings, r.node(2).svc.Ring())
	}
	r.join(1, 1, 11, "g")
	r.settle()
	if err := r.send(1, 1, 11, "g", "safe-one", totem.Safe); err != nil {
		t.Fatal(err)
	}
	// The proposal reached Totem with the safe guarantee.
	if q := r.node(1).queue; len(q) != 1 || q[0].g != totem.Safe {
		t.Fatalf("queued %+v", q)
	}
	r.settle()
	r.check()
}

func TestLargeSyncIsSplitInParts(t *testing.T) {
	r := newFakeRing(t, 15)
	r.cfg = cpg.Config{SyncChunk: 1024}
	r.start(1)
	r.start(2)
	r.partition([]totem.NodeID{1}, []totem.NodeID{2})
	r.settle()
	for i := range 60 {
		r.join(1, cpg.ConnID(i+1), uint32(100+i), fmt.Sprintf("group-%03d-%s", i, strings.Repeat("z", 60)))
	}
	r.settle()
	r.partition([]totem.NodeID{1, 2})
	r.settle()
	if got := r.node(2).svc.Groups(); len(got) != 60 {
		t.Fatalf("node 2 learned %d groups", len(got))
	}
	r.check()
}

func TestSyncCutShortWhileTheRingMovesOnKeepsMessages(t *testing.T) {
	r := newFakeRing(t, 16, 1, 2)
	r.join(1, 1, 11, "g")
	r.join(2, 2, 21, "g")
	r.settle()
	if err := r.send(1, 1, 11, "g", "kept", totem.Agreed); err != nil {
		t.Fatal(err)
	}
	n3 := r.start(3)
	r.partition([]totem.NodeID{1, 2}, []totem.NodeID{3})
	r.join(3, 3, 31, "g")
	r.settle()
	// A new ring of 1 and 2 (a merge attempt); the data message is
	// delivered while its sync runs; then node 3 merges before the sync
	// completes. Nodes 1 and 2 moved on together: nothing is lost.
	if err := r.send(1, 1, 11, "g", "kept-2", totem.Agreed); err != nil {
		t.Fatal(err)
	}
	r.partition([]totem.NodeID{1, 2}, []totem.NodeID{3})
	n1 := r.node(1)
	p := n1.queue[0]
	n1.queue = n1.queue[1:]
	for _, id := range []totem.NodeID{1, 2} {
		r.deliver(r.node(id), totem.Delivery{Sender: 1, Guarantee: p.g, Payload: p.payload})
	}
	r.partition([]totem.NodeID{1, 2, 3})
	r.settle()
	for _, p := range []struct {
		id   totem.NodeID
		conn cpg.ConnID
	}{{1, 1}, {2, 2}} {
		got := delivered(r.node(p.id), p.conn, "g")
		if !slices.Contains(got, "1:11:kept-2:agreed") {
			t.Fatalf("node %d delivered %v", p.id, got)
		}
	}
	if got := delivered(n3, 3, "g"); slices.Contains(got, "1:11:kept-2:agreed") {
		t.Fatalf("node 3, not in the ring that ordered it, delivered %v", got)
	}
	if st := n1.svc.Stats(); st.CarriedSyncs == 0 || st.Discarded != 0 {
		t.Fatalf("stats %+v", st)
	}
	want := []cpg.Member{m(1, 11), m(2, 21), m(3, 31)}
	for id := totem.NodeID(1); id <= 3; id++ {
		if got := r.node(id).svc.Members("g"); !slices.Equal(got, want) {
			t.Fatalf("node %d members %v", id, got)
		}
	}
	r.check()
}

func TestStaleSyncIgnoredAndLocalMemberLimit(t *testing.T) {
	r := newFakeRing(t, 17)
	r.cfg = cpg.Config{MaxLocalMembers: 2}
	n := r.start(1)
	r.partition([]totem.NodeID{1})
	r.settle()
	old := n.svc.Ring().ID
	// A sync announcement of an older ring, replayed, changes nothing.
	r.join(1, 1, 11, "a")
	r.settle()
	r.partition([]totem.NodeID{1})
	stale := n.queue[0].payload // this ring's announcement, not yet ordered
	r.settle()
	r.partition([]totem.NodeID{1})
	r.settle()
	before := n.svc.Stats().StaleSync
	r.deliver(n, totem.Delivery{Sender: 1, Guarantee: totem.Agreed, Payload: stale})
	if got := n.svc.Stats().StaleSync; got != before+1 {
		t.Fatalf("stale sync count %d, want %d", got, before+1)
	}
	if got := n.svc.Members("a"); !slices.Equal(got, []cpg.Member{m(1, 11)}) {
		t.Fatalf("members %v", got)
	}
	if n.svc.Ring().ID == old {
		t.Fatal("ring did not change")
	}
	r.join(1, 1, 11, "b")
	if err := n.svc.Join(1, 11, "c"); !errors.Is(err, cpg.ErrNoSpace) {
		t.Fatalf("third membership: %v", err)
	}
	r.settle()
	r.check()
}

// A node may stay in a ring that the others leave and come back to: Totem
// then gives it a regular configuration whose joined set holds them (they
// passed through configurations it never saw). Its members must see theirs
// leave and come back, as they saw its own do, so that every view a
// process installs is installed by every member it lists (the chaos soak
// found node 1's processes missing a view the others installed).
func TestNodesBackFromRingsWeDidNotSeeLeaveAndRejoin(t *testing.T) {
	r := newFakeRing(t, 12, 1, 2, 3)
	r.join(1, 1, 11, "g")
	r.join(2, 2, 21, "g")
	r.join(3, 3, 31, "g")
	r.settle()
	r.unaware = map[totem.NodeID]bool{1: true}
	r.partition([]totem.NodeID{1}, []totem.NodeID{2, 3})
	r.settle()
	r.unaware = nil
	r.partition([]totem.NodeID{1, 2, 3})
	r.settle()
	if err := r.send(2, 2, 21, "g", "after", totem.Safe); err != nil {
		t.Fatal(err)
	}
	r.settle()

	all := []cpg.Member{m(1, 11), m(2, 21), m(3, 31)}
	views := func(id totem.NodeID, conn cpg.ConnID) [][]cpg.Member {
		var out [][]cpg.Member
		for _, c := range confchgs(r.node(id), conn, "g") {
			out = append(out, c.Members)
		}
		return out
	}
	// Node 1 never saw a change, yet its member sees 2 and 3 go and come back.
	cs := confchgs(r.node(1), 1, "g")
	if n := len(cs); n < 2 ||
		!slices.Equal(cs[n-2].Left, []cpg.Member{mr(2, 21, cpg.ReasonNodeDown), mr(3, 31, cpg.ReasonNodeDown)}) ||
		!slices.Equal(cs[n-2].Members, []cpg.Member{m(1, 11)}) ||
		!slices.Equal(cs[n-1].Joined, []cpg.Member{mr(2, 21, cpg.ReasonNodeUp), mr(3, 31, cpg.ReasonNodeUp)}) ||
		!slices.Equal(cs[n-1].Members, all) {
		t.Fatalf("node 1's views: %v", views(1, 1))
	}
	// Every process installed the full view as many times: the views are
	// the same views, and the message is delivered in the same one.
	count := func(vs [][]cpg.Member) int {
		k := 0
		for _, v := range vs {
			if slices.Equal(v, all) {
				k++
			}
		}
		return k
	}
	want := count(views(1, 1))
	for _, p := range []struct {
		id   totem.NodeID
		conn cpg.ConnID
	}{{2, 2}, {3, 3}} {
		if got := count(views(p.id, p.conn)); got != want {
			t.Fatalf("node %d installed the full view %d times, node 1 %d times: %v / %v", p.id, got, want, views(p.id, p.conn), views(1, 1))
		}
	}
	for id := totem.NodeID(1); id <= 3; id++ {
		if got := delivered(r.node(id), cpg.ConnID(id), "g"); !slices.Contains(got, "2:21:after:safe") {
			t.Fatalf("node %d delivered %v", id, got)
		}
	}
	r.check()
}

// When the ring breaks up, the members of nodes that did not come along
// leave at once in a transitional view, and the old ring's last messages
// are delivered in it: Totem guarantees a safe message delivered there
// only to the nodes of the transitional configuration.
func TestTransitionalViewBeforeOldRingMessages(t *testing.T) {
	r := newFakeRing(t, 13, 1, 2, 3)
	r.join(1, 1, 11, "g")
	r.join(2, 2, 21, "g")
	r.join(3, 3, 31, "g")
	r.settle()
	r.inflight = true
	for i := range 3 {
		if err := r.send(1, 1, 11, "g", fmt.Sprint("late", i), totem.Safe); err != nil {
			t.Fatal(err)
		}
	}
	// Node 1's proposals are still queued; the ring breaks before they
	// are ordered, so the part that goes out is delivered in the
	// transitional configuration.
	r.partition([]totem.NodeID{1, 2}, []totem.NodeID{3})
	r.inflight = false
	r.settle()
	for _, p := range []struct {
		id   totem.NodeID
		conn cpg.ConnID
	}{{1, 1}, {2, 2}} {
		evs := r.node(p.id).eventsFor(p.conn)
		at := slices.IndexFunc(evs, func(ev cpg.Event) bool {
			c, ok := ev.(cpg.ConfChg)
			return ok && c.Transitional
		})
		if at < 0 {
			t.Fatalf("node %d: no transitional view: %s", p.id, describe(evs))
		}
		c := evs[at].(cpg.ConfChg)
		if !slices.Equal(c.Members, []cpg.Member{m(1, 11), m(2, 21)}) || !slices.Equal(c.Left, []cpg.Member{mr(3, 31, cpg.ReasonNodeDown)}) {
			t.Fatalf("node %d: transitional view %+v", p.id, c)
		}
		late := 0
		for i, ev := range evs {
			if d, ok := ev.(cpg.Deliver); ok && strings.Contains(string(d.Data), "late") {
				if i < at {
					t.Fatalf("node %d delivered %q before the transitional view: %s", p.id, d.Data, describe(evs))
				}
				late++
			}
		}
		if late != 3 {
			t.Fatalf("node %d delivered %d of node 1's 3 last messages: %s", p.id, late, describe(evs))
		}
	}
	r.check()
}

// A sync that completes among the old ring's last messages, after the ring
// broke up, may apply messages from senders outside the restricted view
// (members of nodes on the other side). The local members must then be in
// a transitional view of this configuration, even when the restricted
// view has the same members as their current one: nodes 1 and 2 merge
// from rings of their own, and the merged ring breaks before its sync is
// ordered, so each side may complete it in its transitional configuration
// with its current view unchanged, and apply the other side's messages
// that reached the merged ring during the sync.
func TestOutsideSendersOnlyInTransitionalViews(t *testing.T) {
	hit := 0
	for seed := uint64(1); seed <= 300; seed++ {
		r := newFakeRing(t, seed, 1, 2)
		r.partition([]totem.NodeID{1}, []totem.NodeID{2})
		r.join(1, 1, 11, "g")
		r.join(2, 2, 21, "g")
		r.settle()
		// Proposed on the rings of one node, ordered only in the merged
		// ring, while its sync runs.
		if err := r.send(1, 1, 11, "g", fmt.Sprint("from1-", seed), totem.Agreed); err != nil {
			t.Fatal(err)
		}
		if err := r.send(2, 2, 21, "g", fmt.Sprint("from2-", seed), totem.Agreed); err != nil {
			t.Fatal(err)
		}
		r.partition([]totem.NodeID{1, 2})
		r.inflight = true
		r.partition([]totem.NodeID{1}, []totem.NodeID{2})
		r.inflight = false
		r.settle()
		for _, id := range []totem.NodeID{1, 2} {
			evs := r.node(id).eventsFor(cpg.ConnID(id)) // node i's process is on conn i
			var view *cpg.ConfChg
			for _, ev := range evs {
				switch e := ev.(type) {
				case cpg.ConfChg:
					view = &e
				case cpg.Deliver:
					if view == nil || slices.Contains(view.Members, m(e.Sender, e.Pid)) {
						continue
					}
					hit++
					if !view.Transitional {
						t.Fatalf("seed %d: node %d delivered %q from %d:%d outside its view %+v, which is not transitional: %s",
							seed, id, e.Data, e.Sender, e.Pid, *view, describe(evs))
					}
				}
			}
		}
		r.check()
	}
	if hit == 0 {
		t.Fatal("no seed delivered a message from outside the view: the scenario does not happen")
	}
	t.Logf("%d deliveries from senders outside the view, all in transitional views", hit)
}

// queueProposer accepts every proposal and reports a queue that grows with
// them, like a *totem.Node whose token never comes.
type queueProposer struct {
	st  totem.Status
	out [][]byte
}

func (q *queueProposer) Propose(p []byte, _ totem.Guarantee) error {
	q.st.QueuedMessages++
	q.st.QueuedBytes += len(p)
	q.out = append(q.out, p)
	return nil
}

func (q *queueProposer) Status() totem.Status { return q.st }

// flush returns what was proposed, as if the token had taken it all.
func (q *queueProposer) flush() [][]byte {
	out := q.out
	q.out, q.st = nil, totem.Status{}
	return out
}

// Send refuses with ErrTryAgain once Totem's queue holds MaxQueued
// messages or MaxQueuedBytes bytes, whichever comes first.
func TestSendBoundedByTotemQueue(t *testing.T) {
	for _, c := range []struct {
		size, want int
	}{
		{64, 1024},     // small messages: the count bound
		{60 << 10, 18}, // large ones: the byte bound (1 MiB is passed by the 18th)
	} {
		q := &queueProposer{}
		s := cpg.New(1, q)
		s.Deliver(totem.Delivery{Config: &totem.ConfigChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 4}, Members: totem.NodeSet{1}, Joined: totem.NodeSet{1}}})
		for _, p := range q.flush() {
			s.Deliver(totem.Delivery{Sender: 1, Guarantee: totem.Safe, Payload: p})
		}
		if err := s.Join(1, 10, "g"); err != nil {
			t.Fatal(err)
		}
		for _, p := range q.flush() {
			s.Deliver(totem.Delivery{Sender: 1, Guarantee: totem.Safe, Payload: p})
		}
		sent := 0
		for ; sent < 5000; sent++ {
			err := s.Send(1, 10, "g", make([]byte, c.size), totem.Agreed)
			if errors.Is(err, cpg.ErrTryAgain) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if sent != c.want {
			t.Errorf("%d-byte messages: %d accepted before try-again, want %d", c.size, sent, c.want)
		}
		// SendReady says when to try again: once the queue is down to
		// three quarters of the bound that refused.
		if s.SendReady() {
			t.Errorf("%d-byte messages: SendReady with a full queue", c.size)
		}
		drained := 0
		for !s.SendReady() && q.st.QueuedMessages > 0 {
			q.st.QueuedMessages--
			q.st.QueuedBytes -= len(q.out[drained])
			drained++
		}
		if st := q.st; st.QueuedMessages == 0 || st.QueuedMessages*4 > 3*cpg.DefaultMaxQueued || st.QueuedBytes*4 > 3*cpg.DefaultMaxQueuedBytes {
			t.Errorf("%d-byte messages: SendReady with %d messages (%d bytes) of %d queued, want the first point at three quarters of the bounds", c.size, st.QueuedMessages, st.QueuedBytes, sent)
		}
		if err := s.Send(1, 10, "g", make([]byte, c.size), totem.Agreed); err != nil {
			t.Errorf("%d-byte messages: send after SendReady: %v", c.size, err)
		}
	}
}
