package cpgcheck

import (
	"strings"
	"testing"

	"github.com/totem-gcs/totem/cpg"
	"github.com/totem-gcs/totem/totem"
)

func mem(node totem.NodeID, pid uint32) cpg.Member { return cpg.Member{Node: node, Pid: pid} }

func join(node totem.NodeID, pid uint32) cpg.Member {
	return cpg.Member{Node: node, Pid: pid, Reason: cpg.ReasonJoin}
}

func view(conn cpg.ConnID, members []cpg.Member, joined, left []cpg.Member) cpg.ConfChg {
	return cpg.ConfChg{Conn: conn, Group: "g", Members: members, Joined: joined, Left: left}
}

func msg(conn cpg.ConnID, from totem.NodeID, pid uint32, data string) cpg.Deliver {
	return cpg.Deliver{Conn: conn, Group: "g", Sender: from, Pid: pid, Guarantee: totem.Agreed, Data: []byte(data)}
}

// setup returns a recorder where 1:10 (conn 1) and 2:20 (conn 2) joined g
// and both see the view {1:10, 2:20}; 1:10 sent a and b.
func setup() *Recorder {
	r := NewRecorder()
	r.Bind(1, 1, 10, "g")
	r.Bind(2, 2, 20, "g")
	both := []cpg.Member{mem(1, 10), mem(2, 20)}
	r.Events(1, []cpg.Event{
		view(1, []cpg.Member{mem(1, 10)}, []cpg.Member{join(1, 10)}, nil),
		view(1, both, []cpg.Member{join(2, 20)}, nil),
	})
	r.Events(2, []cpg.Event{view(2, both, []cpg.Member{join(2, 20)}, nil)})
	r.Sent(1, 1, 10, "g", []byte("a"), totem.Agreed)
	r.Sent(1, 1, 10, "g", []byte("b"), totem.Agreed)
	r.Sent(1, 1, 10, "g", []byte("c"), totem.Agreed)
	return r
}

func expect(t *testing.T, r *Recorder, want string) {
	t.Helper()
	err := r.Check()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected violation: %v", err)
	case want != "" && err == nil:
		t.Fatalf("violation %q not found", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("got %v, want one mentioning %q", err, want)
	}
}

func TestCleanRun(t *testing.T) {
	r := setup()
	for _, n := range []struct {
		node totem.NodeID
		conn cpg.ConnID
	}{{1, 1}, {2, 2}} {
		r.Events(n.node, []cpg.Event{msg(n.conn, 1, 10, "a"), msg(n.conn, 1, 10, "b"), msg(n.conn, 1, 10, "c")})
	}
	expect(t, r, "")
}

func TestViolations(t *testing.T) {
	cases := map[string]struct {
		want string
		do   func(r *Recorder)
	}{
		"creation": {"nobody sent", func(r *Recorder) {
			r.Events(2, []cpg.Event{msg(2, 1, 10, "zzz")})
		}},
		"wrong sender": {"sent by", func(r *Recorder) {
			r.Events(2, []cpg.Event{msg(2, 2, 20, "a")})
		}},
		"duplicate": {"twice", func(r *Recorder) {
			r.Events(2, []cpg.Event{msg(2, 1, 10, "a"), msg(2, 1, 10, "a")})
		}},
		"order": {"different orders", func(r *Recorder) {
			r.Events(1, []cpg.Event{msg(1, 1, 10, "a"), msg(1, 1, 10, "c")})
			r.Events(2, []cpg.Event{msg(2, 1, 10, "c"), msg(2, 1, 10, "a")})
		}},
		"sender order": {"sent later", func(r *Recorder) {
			r.Events(1, []cpg.Event{msg(1, 1, 10, "b"), msg(1, 1, 10, "a"), msg(1, 1, 10, "c")})
		}},
		"self delivery": {"never delivered", func(r *Recorder) {
			r.Events(1, []cpg.Event{msg(1, 1, 10, "a"), msg(1, 1, 10, "b")})
		}},
		"same view": {"in view", func(r *Recorder) {
			r.Events(1, []cpg.Event{msg(1, 1, 10, "a"), msg(1, 1, 10, "b"), msg(1, 1, 10, "c")})
			r.Events(2, []cpg.Event{
				msg(2, 1, 10, "a"),
				view(2, []cpg.Member{mem(1, 10), mem(2, 20), mem(3, 30)}, []cpg.Member{join(3, 30)}, nil),
				msg(2, 1, 10, "b"), msg(2, 1, 10, "c"),
			})
		}},
		"same messages": {"does not", func(r *Recorder) {
			r.Events(1, []cpg.Event{msg(1, 1, 10, "a"), msg(1, 1, 10, "b"), msg(1, 1, 10, "c")})
			r.Events(2, []cpg.Event{msg(2, 1, 10, "a"), msg(2, 1, 10, "c")})
		}},
		"outside the view": {"outside", func(r *Recorder) {
			r.Bind(3, 3, 30, "g")
			r.Events(3, []cpg.Event{msg(3, 1, 10, "a")})
		}},
		"inconsistent view": {"want", func(r *Recorder) {
			r.Events(2, []cpg.Event{view(2, []cpg.Member{mem(2, 20)}, nil, nil)})
		}},
		"bad reason": {"reason", func(r *Recorder) {
			r.Events(2, []cpg.Event{view(2, []cpg.Member{mem(2, 20)}, nil,
				[]cpg.Member{{Node: 1, Pid: 10, Reason: cpg.ReasonNodeUp}})})
		}},
		"sender not in view": {"without the sender", func(r *Recorder) {
			r.Events(2, []cpg.Event{
				view(2, []cpg.Member{mem(2, 20)}, nil, []cpg.Member{{Node: 1, Pid: 10, Reason: cpg.ReasonLeave}}),
				msg(2, 1, 10, "a"),
			})
		}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := setup()
			c.do(r)
			expect(t, r, c.want)
		})
	}
}

func TestExcuses(t *testing.T) {
	// Own messages reported Undelivered, or lost with a crash, are excused.
	r := setup()
	r.Events(1, []cpg.Event{msg(1, 1, 10, "a"), cpg.Undelivered{Conn: 1, Group: "g", Pid: 10, Data: []byte("b")}, msg(1, 1, 10, "c")})
	r.Events(2, []cpg.Event{msg(2, 1, 10, "a"), msg(2, 1, 10, "c")})
	// b was never delivered anywhere; 2 delivered a and c like 1.
	expect(t, r, "")

	r = setup()
	r.Events(2, []cpg.Event{msg(2, 1, 10, "a")})
	r.Crashed(1)
	expect(t, r, "")

	// Between a transitional and a regular configuration, messages may
	// differ (EVS holes).
	r = setup()
	r.Events(1, []cpg.Event{msg(1, 1, 10, "a")})
	r.Events(2, []cpg.Event{msg(2, 1, 10, "a")})
	r.Config(1, totem.Transitional)
	r.Config(2, totem.Transitional)
	joined3 := view(1, []cpg.Member{mem(1, 10), mem(2, 20), mem(3, 30)}, []cpg.Member{join(3, 30)}, nil)
	r.Events(1, []cpg.Event{msg(1, 1, 10, "b"), joined3, msg(1, 1, 10, "c")})
	joined3.Conn = 2
	r.Events(2, []cpg.Event{joined3, msg(2, 1, 10, "c")})
	expect(t, r, "")
}

// A safe message delivered in a view must reach every member that
// survives it, in that view or in the transitional view after it.
func TestSafeDelivery(t *testing.T) {
	safe := func(conn cpg.ConnID, data string) cpg.Deliver {
		d := msg(conn, 1, 10, data)
		d.Guarantee = totem.Safe
		return d
	}
	one := []cpg.Member{mem(1, 10)}
	two := []cpg.Member{mem(2, 20)}
	oneLeft := []cpg.Member{{Node: 1, Pid: 10, Reason: cpg.ReasonNodeDown}}
	transitional := view(2, two, nil, oneLeft)
	transitional.Transitional = true
	for _, c := range []struct {
		name  string
		node2 []cpg.Event
		want  string
	}{
		{"delivered by both", []cpg.Event{safe(2, "s")}, ""},
		{"delivered after the break, in the transitional view", []cpg.Event{transitional, safe(2, "s")}, ""},
		{"missed by a survivor", []cpg.Event{view(2, two, nil, oneLeft)}, "which survived it, did not"},
		{"delivered only after a regular view", []cpg.Event{view(2, two, nil, oneLeft), safe(2, "s")}, "which survived it, did not"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := NewRecorder()
			r.Bind(1, 1, 10, "g")
			r.Bind(2, 2, 20, "g")
			both := []cpg.Member{mem(1, 10), mem(2, 20)}
			r.Events(1, []cpg.Event{view(1, one, []cpg.Member{join(1, 10)}, nil), view(1, both, []cpg.Member{join(2, 20)}, nil)})
			r.Events(2, []cpg.Event{view(2, both, []cpg.Member{join(2, 20)}, nil)})
			r.Sent(1, 1, 10, "g", []byte("s"), totem.Safe)
			r.Events(1, []cpg.Event{safe(1, "s"), view(1, one, nil, []cpg.Member{{Node: 2, Pid: 20, Reason: cpg.ReasonNodeDown}})})
			if cc, ok := c.node2[0].(cpg.ConfChg); ok && cc.Transitional {
				r.Config(2, totem.Transitional)
			}
			r.Events(2, c.node2)
			expect(t, r, c.want)
		})
	}
}

// A node that missed a ring (others installed it with that node as a
// member, it never did) has fewer views with the same members than the
// others: views are told apart by their ring, not by how often a member
// list came back. Here 1:10 delivers safe "s0" in ring 2's view
// {1:10, 2:20}, which node 2 never installed; node 2's next view with
// those members is ring 3's, where "s0" is rightly absent. Without rings
// the checker would pair the two views and report a false violation.
func TestViewsToldApartByRing(t *testing.T) {
	for _, withRings := range []bool{true, false} {
		at := func(cc cpg.ConfChg, seq uint64) cpg.ConfChg {
			if withRings {
				cc.Ring = totem.RingID{Seq: seq, Rep: 1}
			}
			return cc
		}
		safe := msg(1, 1, 10, "s0")
		safe.Guarantee = totem.Safe
		down := func(node totem.NodeID, pid uint32) []cpg.Member {
			return []cpg.Member{{Node: node, Pid: pid, Reason: cpg.ReasonNodeDown}}
		}
		up := func(node totem.NodeID, pid uint32) []cpg.Member {
			return []cpg.Member{{Node: node, Pid: pid, Reason: cpg.ReasonNodeUp}}
		}
		leave := func(node totem.NodeID, pid uint32) []cpg.Member {
			return []cpg.Member{{Node: node, Pid: pid, Reason: cpg.ReasonLeave}}
		}
		one, two := []cpg.Member{mem(1, 10)}, []cpg.Member{mem(2, 20)}
		both := []cpg.Member{mem(1, 10), mem(2, 20)}
		three := []cpg.Member{mem(1, 10), mem(1, 11), mem(2, 20)}

		r := NewRecorder()
		r.Bind(1, 1, 10, "g")
		r.Bind(2, 2, 20, "g")
		r.Events(1, []cpg.Event{at(view(1, one, []cpg.Member{join(1, 10)}, nil), 1), at(view(1, both, []cpg.Member{join(2, 20)}, nil), 1)})
		r.Events(2, []cpg.Event{at(view(2, both, []cpg.Member{join(2, 20)}, nil), 1)})
		r.Sent(1, 1, 10, "g", []byte("s0"), totem.Safe)
		// Ring 2, which node 2 never installed.
		r.Config(1, totem.Regular)
		r.Events(1, []cpg.Event{
			at(view(1, three, []cpg.Member{join(1, 11)}, nil), 2),
			at(view(1, both, nil, leave(1, 11)), 2),
			safe,
		})
		// Ring 3: node 1 from ring 2, node 2 from ring 1.
		r.Config(1, totem.Regular)
		r.Events(1, []cpg.Event{at(view(1, one, nil, down(2, 20)), 3), at(view(1, both, up(2, 20), nil), 3)})
		trans := at(view(2, two, nil, down(1, 10)), 3)
		trans.Transitional = true
		r.Config(2, totem.Transitional)
		r.Events(2, []cpg.Event{trans})
		r.Config(2, totem.Regular)
		r.Events(2, []cpg.Event{at(view(2, both, up(1, 10), nil), 3), at(view(2, two, nil, leave(1, 10)), 3)})
		r.Events(1, []cpg.Event{at(view(1, two, nil, leave(1, 10)), 3)})
		if withRings {
			expect(t, r, "")
		} else {
			expect(t, r, "which survived it, did not")
		}
	}
}
