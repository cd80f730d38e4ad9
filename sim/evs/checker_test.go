package evs

import (
	"strings"
	"testing"

	"github.com/totem-gcs/totem/membership"
	"github.com/totem-gcs/totem/totem"
)

// Helpers to write synthetic logs tersely.

func pid(n totem.NodeID) ProcID { return ProcID{Node: n} }

func ns(ids ...totem.NodeID) totem.NodeSet { return membership.NewNodeSet(ids...) }

func reg(seq uint64, members ...totem.NodeID) Config {
	return Config{Kind: totem.Regular, Ring: totem.RingID{Rep: members[0], Seq: seq}, Members: ns(members...)}
}

// after returns regular configuration next with Joined and Left computed
// against prev, as the engine reports them when every member of prev that
// is in next came through the same transitional configuration.
func after(prev, next Config) Config {
	next.Joined = next.Members.Minus(prev.Members)
	next.Left = prev.Members.Minus(next.Members)
	return next
}

func trans(next Config, members ...totem.NodeID) Config {
	return Config{Kind: totem.Transitional, Ring: next.Ring, Members: ns(members...)}
}

func msg(from ProcID, seq uint64, g totem.Guarantee) Message {
	return Message{ID: MsgID{From: from, Seq: seq}, Sender: from.Node, Guarantee: g, Digest: seq*7919 + uint64(from.Node), Size: int(seq) + 10}
}

// world proposes messages and installs configurations on several
// processes at once.
type world struct {
	t *testing.T
	c *Checker
}

func newWorld(t *testing.T) *world { return &world{t: t, c: New()} }

func (w *world) propose(m Message) Message { w.c.Proposed(m.ID.From, m); return m }

func (w *world) install(cfg Config, ps ...ProcID) {
	for _, p := range ps {
		w.c.Config(p, cfg)
	}
}

func (w *world) deliver(m Message, ps ...ProcID) {
	for _, p := range ps {
		w.c.Deliver(p, m)
	}
}

// expect finishes the run and asserts the violations found: none when
// prop is empty, else at least one, all of property prop, the first
// mentioning every word in words.
func (w *world) expect(settled bool, prop Property, words ...string) {
	w.t.Helper()
	w.c.Finish(settled)
	vs := w.c.Violations()
	if prop == "" {
		for _, v := range vs {
			w.t.Errorf("unexpected violation: %v", v)
		}
		return
	}
	if len(vs) == 0 {
		w.t.Fatalf("expected a %s violation, found none", prop)
	}
	for _, v := range vs {
		if v.Property != prop {
			w.t.Errorf("expected only %s violations, got: %v", prop, v)
		}
	}
	s := vs[0].String()
	for _, word := range words {
		if !strings.Contains(s, word) {
			w.t.Errorf("violation %q does not mention %q", s, word)
		}
	}
}

// expectIncludes finishes the run and asserts that some violation of
// property prop mentions every word in words.
func (w *world) expectIncludes(settled bool, prop Property, words ...string) {
	w.t.Helper()
	w.c.Finish(settled)
	for _, v := range w.c.Violations() {
		s, ok := v.String(), v.Property == prop
		for _, word := range words {
			ok = ok && strings.Contains(s, word)
		}
		if ok {
			return
		}
	}
	w.t.Errorf("no %s violation mentions %q; got %v", prop, words, w.c.Violations())
}

var (
	n1, n2, n3 = pid(1), pid(2), pid(3)
	c123       = reg(1, 1, 2, 3)
)

func TestCleanRunWithPartitionAndMerge(t *testing.T) {
	w := newWorld(t)
	a := w.propose(msg(n1, 1, totem.Agreed))
	b := w.propose(msg(n2, 1, totem.Safe))
	w.install(c123, n1, n2, n3)
	w.deliver(a, n1, n2, n3)
	w.deliver(b, n1, n2, n3)
	// n3 partitions away; n3's message reached n1 and n2 only in recovery.
	d := w.propose(msg(n3, 1, totem.Agreed))
	c12 := reg(2, 1, 2)
	c3 := reg(2, 3)
	w.install(trans(c12, 1, 2), n1, n2)
	w.deliver(d, n1, n2)
	w.install(after(c123, c12), n1, n2)
	w.install(trans(c3, 3), n3)
	w.deliver(d, n3)
	w.install(after(c123, c3), n3)
	e := w.propose(msg(n1, 2, totem.Safe))
	w.deliver(e, n1, n2)
	// Merge.
	c123b := reg(3, 1, 2, 3)
	w.install(trans(c123b, 1, 2), n1, n2)
	w.install(after(c12, c123b), n1, n2)
	w.install(trans(c123b, 3), n3)
	w.install(after(c3, c123b), n3)
	f := w.propose(msg(n3, 2, totem.Safe))
	w.deliver(f, n1, n2, n3)
	w.expect(true, "")
	if got := w.c.Delivered(); got != 14 {
		t.Errorf("Delivered() = %d, want 14", got)
	}
	if got := w.c.Configs(); got != 15 {
		t.Errorf("Configs() = %d, want 15", got)
	}
}

func TestDeliveryOutsideConfiguration(t *testing.T) {
	w := newWorld(t)
	a := w.propose(msg(n1, 1, totem.Agreed))
	w.deliver(a, n1)
	w.expect(false, NoConfig, "n1", "m[n1#1]")
}

func TestDuplicateDelivery(t *testing.T) {
	w := newWorld(t)
	a := w.propose(msg(n1, 1, totem.Agreed))
	w.install(reg(1, 1), n1)
	w.deliver(a, n1, n1)
	w.expect(false, NoDuplicates, "n1", "m[n1#1]", "second time")
}

func TestNoCreation(t *testing.T) {
	cases := map[string]func(m Message) Message{
		"never accepted": nil,
		"payload bytes differ": func(m Message) Message {
			m.Digest++
			return m
		},
		"bytes instead of": func(m Message) Message {
			m.Size++
			return m
		},
		"guarantee safe instead of agreed": func(m Message) Message {
			m.Guarantee = totem.Safe
			return m
		},
		"sender node 2 instead of 1": func(m Message) Message {
			m.Sender = 2
			return m
		},
	}
	for want, alter := range cases {
		t.Run(want, func(t *testing.T) {
			w := newWorld(t)
			w.install(reg(1, 1, 2), n1, n2)
			m := msg(n1, 1, totem.Agreed)
			if alter == nil {
				w.deliver(m, n2)
			} else {
				w.propose(m)
				w.deliver(m, n1)
				w.deliver(alter(m), n2)
			}
			w.expect(false, NoCreation, "n2", "m[n1#1]", want)
		})
	}
	t.Run("garbled", func(t *testing.T) {
		w := newWorld(t)
		w.install(reg(1, 1, 2), n1, n2)
		w.c.Garbled(n2, 1, 5, "too short")
		w.expect(false, NoCreation, "n2", "5-byte", "too short")
	})
}

func TestSenderInConfiguration(t *testing.T) {
	t.Run("not a member", func(t *testing.T) {
		w := newWorld(t)
		m := w.propose(msg(n3, 1, totem.Agreed))
		w.install(reg(1, 1, 2), n1, n2)
		w.deliver(m, n1)
		w.expect(false, SenderMember, "n1", "m[n3#1]", "not a member")
	})
	t.Run("old incarnation", func(t *testing.T) {
		w := newWorld(t)
		m := w.propose(msg(n2, 1, totem.Agreed))
		w.c.Crash(n2)
		n2b := ProcID{2, 1}
		w.install(reg(5, 1, 2), n1, n2b)
		w.deliver(m, n1)
		w.expect(false, SenderMember, "m[n2#1]", "n2.i1")
	})
	t.Run("sender never installed", func(t *testing.T) {
		w := newWorld(t)
		m := w.propose(msg(n2, 1, totem.Agreed))
		w.install(reg(1, 1, 2), n1)
		w.deliver(m, n1)
		w.expect(false, SenderMember, "m[n2#1]", "never installed")
	})
	t.Run("transitional delivers messages of the previous ring", func(t *testing.T) {
		w := newWorld(t)
		w.install(c123, n1, n2, n3)
		m := w.propose(msg(n3, 1, totem.Agreed))
		c12 := reg(2, 1, 2)
		w.install(trans(c12, 1, 2), n1, n2)
		w.deliver(m, n1, n2)
		w.install(after(c123, c12), n1, n2)
		w.c.Crash(n3)
		w.expect(true, "")
	})
}

func TestAgreedOrder(t *testing.T) {
	t.Run("pair", func(t *testing.T) {
		w := newWorld(t)
		w.install(reg(1, 1, 2), n1, n2)
		a := w.propose(msg(n1, 1, totem.Agreed))
		b := w.propose(msg(n2, 1, totem.Agreed))
		w.deliver(a, n1)
		w.deliver(b, n1, n2)
		w.deliver(a, n2)
		w.expect(false, AgreedOrder, "n1", "n2", "m[n1#1] before m[n2#1]")
	})
	t.Run("across configurations", func(t *testing.T) {
		w := newWorld(t)
		w.install(reg(1, 1, 2), n1, n2)
		a := w.propose(msg(n2, 1, totem.Agreed))
		b := w.propose(msg(n2, 2, totem.Agreed))
		w.deliver(a, n1)
		w.deliver(b, n1)
		w.install(after(reg(1, 1, 2), reg(2, 2)), n2)
		w.deliver(b, n2)
		w.install(after(reg(2, 2), reg(3, 2, 3)), n2)
		w.deliver(a, n2)
		w.expect(false, AgreedOrder, "m[n2#1] before m[n2#2]")
	})
	t.Run("cycle of three", func(t *testing.T) {
		// Every pair agrees on its common messages, yet no total order
		// fits all three logs.
		w := newWorld(t)
		w.install(c123, n1, n2, n3)
		x := w.propose(msg(n1, 1, totem.Agreed))
		y := w.propose(msg(n2, 1, totem.Agreed))
		z := w.propose(msg(n3, 1, totem.Agreed))
		w.deliver(x, n1)
		w.deliver(y, n1)
		w.deliver(y, n2)
		w.deliver(z, n2)
		w.deliver(z, n3)
		w.deliver(x, n3)
		w.expect(false, AgreedOrder, "no common total order", "m[n1#1]", "m[n2#1]", "m[n3#1]")
	})
}

func TestConfigurationAgreement(t *testing.T) {
	t.Run("joined and left ignore the transitional configuration", func(t *testing.T) {
		w := newWorld(t)
		c12 := reg(2, 1, 2)
		w.install(c123, n1, n2, n3)
		w.install(trans(c12, 2), n2) // 1 passed through another ring
		w.install(after(c123, c12), n2)
		w.expect(false, ConfigAgreement, "expected joined={1} left={1 3}")
	})
	t.Run("members differ", func(t *testing.T) {
		w := newWorld(t)
		w.install(reg(1, 1, 2), n1)
		w.install(reg(1, 1, 2, 3), n2)
		w.expect(false, ConfigAgreement, "ring 1.1", "{1 2}", "{1 2 3}")
	})
	t.Run("not a member", func(t *testing.T) {
		w := newWorld(t)
		w.install(reg(1, 1, 2), n3)
		w.expect(false, ConfigAgreement, "n3", "not a member")
	})
	t.Run("ring goes backwards", func(t *testing.T) {
		w := newWorld(t)
		w.install(reg(5, 1), n1)
		w.install(after(reg(5, 1), reg(4, 1, 2)), n1)
		w.expect(false, ConfigAgreement, "n1", "must grow")
	})
	t.Run("joined and left", func(t *testing.T) {
		w := newWorld(t)
		w.install(c123, n1)
		bad := reg(2, 1, 2)
		bad.Joined = ns(2)
		w.install(bad, n1)
		w.expect(false, ConfigAgreement, "joined={2} left={}", "expected joined={} left={3}")
	})
	t.Run("transitional members outside the old ring", func(t *testing.T) {
		w := newWorld(t)
		w.install(reg(1, 1, 2), n1)
		w.install(trans(reg(2, 1, 3), 1, 3), n1)
		w.expect(false, ConfigAgreement, "n1", "not in its regular configuration")
	})
	t.Run("transitional of another ring", func(t *testing.T) {
		w := newWorld(t)
		w.install(reg(1, 1, 2), n1)
		w.install(trans(reg(2, 1), 1), n1)
		w.install(after(reg(1, 1, 2), reg(3, 1)), n1)
		w.expect(false, ConfigAgreement, "the rings differ")
	})
}

func TestFailureAtomicity(t *testing.T) {
	c12 := reg(2, 1, 2)
	t.Run("different messages before the transitional configuration", func(t *testing.T) {
		w := newWorld(t)
		w.install(c123, n1, n2, n3)
		a := w.propose(msg(n1, 1, totem.Agreed))
		w.deliver(a, n1)
		w.install(trans(c12, 1, 2), n1, n2)
		w.install(after(c123, c12), n1, n2)
		w.c.Crash(n3)
		w.expect(true, FailureAtomicity, "n1", "n2", "m[n1#1]", "regular 1.1{1 2 3}")
	})
	t.Run("transitional configuration at different places", func(t *testing.T) {
		// Same set in the epoch, but n2 delivers a after the transitional
		// configuration and n1 before it.
		w := newWorld(t)
		w.install(c123, n1, n2, n3)
		a := w.propose(msg(n1, 1, totem.Agreed))
		w.deliver(a, n1)
		w.install(trans(c12, 1, 2), n1, n2)
		w.deliver(a, n2)
		w.install(after(c123, c12), n1, n2)
		w.c.Crash(n3)
		w.expect(true, FailureAtomicity, "m[n1#1]")
	})
	t.Run("different transitional configurations", func(t *testing.T) {
		w := newWorld(t)
		w.install(c123, n1, n2, n3)
		w.install(trans(c12, 1, 2), n1)
		w.install(trans(c12, 2), n2)
		w.install(after(c123, c12), n1)
		// n2 came alone: it reports 1 as having left and joined.
		c12n2 := c12
		c12n2.Joined, c12n2.Left = ns(1), ns(1, 3)
		w.install(c12n2, n2)
		w.c.Crash(n3)
		w.expect(true, FailureAtomicity, "different transitional configurations")
	})
	t.Run("missing message in the transitional configuration", func(t *testing.T) {
		w := newWorld(t)
		w.install(c123, n1, n2, n3)
		a := w.propose(msg(n3, 1, totem.Agreed))
		w.install(trans(c12, 1, 2), n1, n2)
		w.deliver(a, n2)
		w.install(after(c123, c12), n1, n2)
		w.c.Crash(n3)
		w.expect(true, FailureAtomicity, "1 only at n2", "m[n3#1]", "trans 1.2{1 2}")
	})
}

func TestSafeDelivery(t *testing.T) {
	c12 := reg(2, 1, 2)
	c3 := reg(2, 3)
	setup := func(t *testing.T) (*world, Message) {
		w := newWorld(t)
		w.install(c123, n1, n2, n3)
		s := w.propose(msg(n1, 1, totem.Safe))
		w.deliver(s, n1, n2)
		w.install(trans(c12, 1, 2), n1, n2)
		w.install(after(c123, c12), n1, n2)
		return w, s
	}
	t.Run("member moved on without it", func(t *testing.T) {
		w, _ := setup(t)
		w.install(trans(c3, 3), n3)
		w.install(after(c123, c3), n3)
		w.expect(false, SafeDelivery, "n3", "m[n1#1]", "regular 1.1{1 2 3}")
	})
	t.Run("member delivered it in its transitional configuration", func(t *testing.T) {
		w, s := setup(t)
		w.install(trans(c3, 3), n3)
		w.deliver(s, n3)
		w.install(after(c123, c3), n3)
		w.expect(false, "")
	})
	t.Run("member crashed", func(t *testing.T) {
		w, _ := setup(t)
		w.c.Crash(n3)
		w.expect(true, "")
	})
	t.Run("member still running at an unsettled end", func(t *testing.T) {
		w, _ := setup(t)
		w.expect(false, "")
	})
	t.Run("member never installed the ring", func(t *testing.T) {
		w := newWorld(t)
		w.install(c123, n1, n2)
		s := w.propose(msg(n1, 1, totem.Safe))
		w.deliver(s, n1, n2)
		w.expect(false, SafeDelivery, "node 3 never installed")
	})
	t.Run("transitional configuration", func(t *testing.T) {
		// Safe in the transitional configuration {1 2}: n3, not in it,
		// need not have it; n2, in it, must.
		w := newWorld(t)
		w.install(c123, n1, n2, n3)
		s := w.propose(msg(n1, 1, totem.Safe))
		w.install(trans(c12, 1, 2), n1, n2)
		w.deliver(s, n1)
		w.install(after(c123, c12), n1)
		w.install(trans(c3, 3), n3)
		w.install(after(c123, c3), n3)
		w.c.Crash(n2)
		w.expect(false, "")
	})
	t.Run("missing in the transitional configuration", func(t *testing.T) {
		w := newWorld(t)
		w.install(c123, n1, n2, n3)
		s := w.propose(msg(n1, 1, totem.Safe))
		w.install(trans(c12, 1, 2), n1, n2)
		w.deliver(s, n1)
		w.install(after(c123, c12), n1)
		w.c.Crash(n3)
		// n2 is stuck in the transitional configuration at the end: also a
		// liveness failure, but the missing safe message must be named.
		w.expectIncludes(true, SafeDelivery, "n2", "transitional", "m[n1#1]")
	})
}

func TestSelfDelivery(t *testing.T) {
	run := func(t *testing.T, crash, settled bool, prop Property) {
		w := newWorld(t)
		w.install(reg(1, 1, 2), n1, n2)
		w.propose(msg(n2, 1, totem.Agreed))
		if crash {
			w.c.Crash(n2)
			w.install(after(reg(1, 1, 2), reg(2, 1)), n1)
		}
		w.expect(settled, prop, "n2", "m[n2#1]")
	}
	t.Run("lost", func(t *testing.T) { run(t, false, true, SelfDelivery) })
	t.Run("sender crashed", func(t *testing.T) { run(t, true, true, "") })
	t.Run("unsettled", func(t *testing.T) { run(t, false, false, "") })
}

func TestLiveness(t *testing.T) {
	t.Run("two rings", func(t *testing.T) {
		w := newWorld(t)
		w.install(reg(1, 1, 2), n1)
		w.install(reg(1, 2, 1), n2) // another ring id, same members
		w.expect(true, Liveness, "n1", "n2", "ring 1.1", "ring 2.1")
	})
	t.Run("live node missing", func(t *testing.T) {
		w := newWorld(t)
		w.install(reg(1, 1, 2), n1, n2)
		w.install(reg(1, 3), n3)
		w.expect(true, Liveness, "not of all live nodes {1 2 3}")
	})
	t.Run("ended in a transitional configuration", func(t *testing.T) {
		w := newWorld(t)
		w.install(reg(1, 1), n1)
		w.install(trans(reg(2, 1), 1), n1)
		w.expect(true, Liveness, "ended in transitional")
	})
	t.Run("different messages in the last ring", func(t *testing.T) {
		w := newWorld(t)
		w.install(reg(1, 1, 2), n1, n2)
		a := w.propose(msg(n1, 1, totem.Agreed))
		w.deliver(a, n1)
		w.expect(true, Liveness, "m[n1#1]")
	})
	t.Run("crashed node not required", func(t *testing.T) {
		w := newWorld(t)
		w.install(reg(1, 1, 2), n1, n2)
		w.c.Crash(n2)
		w.install(after(reg(1, 1, 2), reg(2, 1)), n1)
		w.c.Start(n3)
		w.c.Crash(n3)
		w.expect(true, "")
	})
}

func TestLimitCountsBeyondRecorded(t *testing.T) {
	c := New()
	c.Limit = 2
	for i := range 5 {
		c.Deliver(n1, msg(n1, uint64(i), totem.Agreed))
	}
	if c.Finish(false) != 5 || len(c.Violations()) != 2 {
		t.Fatalf("count %d recorded %d, want 5 and 2", c.Count(), len(c.Violations()))
	}
}
