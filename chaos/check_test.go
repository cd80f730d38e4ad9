package chaos

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The scenario: group g, processes a=1:10, b=2:20, c=3:30. All three join;
// a sends agreed #1, b sends safe #1; c is partitioned away (a, b see
// [a b]; c sees [c]); a sends #2 seen by a and b; c sends #1 seen by c;
// the partition heals ([a b c] again); b sends #2; everyone leaves cleanly.

const seed = 7

var (
	pa = Member{NodeID: 1, PID: 10}
	pb = Member{NodeID: 2, PID: 20}
	pc = Member{NodeID: 3, PID: 30}
)

func payload(from Member, n uint64, g string) []byte {
	return Payload{Seed: seed, NodeID: from.NodeID, PID: from.PID, Counter: n, Guarantee: g, Size: 40}.Encode()
}

func deliver(from Member, n uint64, g string) Record {
	return Record{Type: TypeDeliver, Group: "g", NodeID: from.NodeID, PID: from.PID, Guarantee: g, Data: payload(from, n, g)}
}

func conf(members, joined, left []Member) Record {
	return Record{Type: TypeConfChg, Group: "g", Members: members, Joined: joined, Left: left}
}

func sent(n uint64) Record { return Record{Type: TypeSent, Counter: n} }

func ms(m ...Member) []Member { return m }

func nodedown(m ...Member) []Member {
	out := make([]Member, len(m))
	for i, x := range m {
		out[i] = Member{NodeID: x.NodeID, PID: x.PID, Reason: "nodedown"}
	}
	return out
}

// scenario returns the correct logs as record lists, keyed a, b, c.
func scenario() map[string][]Record {
	abc := ms(pa, pb, pc)
	return map[string][]Record{
		"a": {
			conf(ms(pa), ms(pa), nil),
			conf(ms(pa, pb), ms(pb), nil),
			conf(abc, ms(pc), nil),
			sent(1),
			deliver(pa, 1, "agreed"),
			deliver(pb, 1, "safe"),
			conf(ms(pa, pb), nil, nodedown(pc)),
			sent(2),
			deliver(pa, 2, "agreed"),
			conf(abc, ms(pc), nil),
			deliver(pb, 2, "agreed"),
			{Type: TypeEnd, Reason: EndStop},
		},
		"b": {
			conf(ms(pa, pb), ms(pb), nil),
			conf(abc, ms(pc), nil),
			deliver(pa, 1, "agreed"),
			sent(1),
			deliver(pb, 1, "safe"),
			conf(ms(pa, pb), nil, nodedown(pc)),
			deliver(pa, 2, "agreed"),
			conf(abc, ms(pc), nil),
			sent(2),
			deliver(pb, 2, "agreed"),
			{Type: TypeEnd, Reason: EndStop},
		},
		"c": {
			conf(abc, ms(pc), nil),
			deliver(pa, 1, "agreed"),
			deliver(pb, 1, "safe"),
			conf(ms(pc), nil, nodedown(pa, pb)),
			sent(1),
			deliver(pc, 1, "agreed"),
			conf(abc, ms(pa, pb), nil),
			deliver(pb, 2, "agreed"),
			{Type: TypeEnd, Reason: EndStop},
		},
	}
}

var who = map[string]Member{"a": pa, "b": pb, "c": pc}

// encode writes records as a log file, through JSON, as a process would.
func encode(t *testing.T, name string, recs []Record) *Log {
	t.Helper()
	m := who[name]
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.Encode(Record{Type: TypeSelf, Group: "g", NodeID: m.NodeID, PID: m.PID})
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	l, err := ParseLog(name, &buf)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func run(t *testing.T, s map[string][]Record) *Result {
	t.Helper()
	var logs []*Log
	for _, n := range []string{"a", "b", "c"} {
		if recs, ok := s[n]; ok {
			logs = append(logs, encode(t, n, recs))
		}
	}
	return Check(logs, Options{Seed: seed})
}

func TestCorrectRunPasses(t *testing.T) {
	r := run(t, scenario())
	if r.Total() != 0 {
		t.Fatalf("violations in a correct run: %v", r.Violations)
	}
	if r.Messages != 5 || r.Processes != 3 || r.Deliveries != 12 {
		t.Errorf("counted %d messages, %d processes, %d deliveries; want 5, 3, 12", r.Messages, r.Processes, r.Deliveries)
	}
	// Views: [a], [a b]#1, [a b c]#1, [a b]#2, [a b c]#2, [c].
	if r.Views != 6 {
		t.Errorf("views = %d, want 6", r.Views)
	}
	if got := r.Summary(seed, 4); !strings.HasPrefix(got, "chaos: seed=7 processes=3 messages=5 deliveries=12 views=6 faults=4 violations=0") {
		t.Errorf("summary %q", got)
	}
}

// mutate returns the scenario with one change made by f.
func mutate(f func(s map[string][]Record)) map[string][]Record {
	s := scenario()
	f(s)
	return s
}

func remove(recs []Record, i int) []Record {
	return append(append([]Record{}, recs[:i]...), recs[i+1:]...)
}

func TestEachViolationIsCaught(t *testing.T) {
	cases := []struct {
		name string
		kind string
		s    map[string][]Record
	}{
		{"order swapped at b", KindOrder, mutate(func(s map[string][]Record) {
			b := s["b"]
			b[2], b[4] = b[4], b[2]
			b[3], b[2] = b[2], b[3] // keep sent(1) before b's own delivery
		})},
		{"b misses a#2 though a and b moved on together", KindSameSet, mutate(func(s map[string][]Record) {
			s["b"] = remove(s["b"], 6)
		})},
		{"a delivers b#2 twice", KindDuplicate, mutate(func(s map[string][]Record) {
			a := s["a"]
			s["a"] = append(a[:len(a)-1:len(a)-1], deliver(pb, 2, "agreed"), a[len(a)-1])
		})},
		{"c delivers a message nobody sent", KindInvented, mutate(func(s map[string][]Record) {
			c := s["c"]
			c = append(c[:len(c)-1:len(c)-1], deliver(pa, 9, "agreed"), c[len(c)-1])
			s["c"] = c
		})},
		{"corrupted filler", KindInvented, mutate(func(s map[string][]Record) {
			r := &s["c"][1]
			r.Data = bytes.Clone(r.Data)
			r.Data[len(r.Data)-1] ^= 1
		})},
		{"header names another sender", KindInvented, mutate(func(s map[string][]Record) {
			s["c"][1].PID = 99
		})},
		{"guarantee changed", KindInvented, mutate(func(s map[string][]Record) {
			s["c"][2].Guarantee = "agreed"
		})},
		{"a never gets its #2 back", KindSelf, mutate(func(s map[string][]Record) {
			s["a"] = remove(s["a"], 8)
			s["b"] = remove(s["b"], 6)
		})},
		{"c misses safe b#1 though it survived the view", KindSafe, mutate(func(s map[string][]Record) {
			s["c"] = remove(s["c"], 2)
		})},
		{"c misses a view it is listed in", KindViews, mutate(func(s map[string][]Record) {
			c := s["c"]
			// c stays in [c] and never sees the heal, but ends cleanly.
			s["c"] = append(c[:6:6], Record{Type: TypeEnd, Reason: EndStop})
		})},
		{"view not previous + joined - left", KindViews, mutate(func(s map[string][]Record) {
			s["a"][1].Joined = nil
		})},
		{"view without itself", KindViews, mutate(func(s map[string][]Record) {
			s["c"][3].Members = ms(pa)
		})},
		{"message delivered in different views", KindViews, mutate(func(s map[string][]Record) {
			// b delivers b#2 before the heal view, a and c after it.
			b := s["b"]
			b[7], b[8], b[9] = sent(2), deliver(pb, 2, "agreed"), conf(ms(pa, pb, pc), ms(pc), nil)
		})},
		{"fifo from one sender reversed", KindFIFO, mutate(func(s map[string][]Record) {
			a := s["a"]
			s["a"] = append(a[:len(a)-1:len(a)-1], deliver(pa, 0, "agreed"), a[len(a)-1])
			s["a"] = append(s["a"][:3:3], append([]Record{sent(0)}, s["a"][3:]...)...)
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.s)
			if r.Counts[tc.kind] == 0 {
				t.Fatalf("%s not caught; found %v", tc.kind, r.Violations)
			}
			if !strings.Contains(r.Summary(seed, 0), tc.kind+"=") {
				t.Errorf("summary does not name %s: %s", tc.kind, r.Summary(seed, 0))
			}
		})
	}
}

// Lost: a sends #3 in the final [a b c] view and gets it back; b, with a in
// every view since, ends cleanly without it. Same-set catches it too; lost
// names the sender's point of view.
func TestLostMessageCaught(t *testing.T) {
	s := scenario()
	a := s["a"]
	s["a"] = append(a[:len(a)-1:len(a)-1], sent(3), deliver(pa, 3, "agreed"), a[len(a)-1])
	c := s["c"]
	s["c"] = append(c[:len(c)-1:len(c)-1], deliver(pa, 3, "agreed"), c[len(c)-1])
	r := run(t, s)
	if r.Counts[KindLost] != 1 {
		t.Fatalf("lost = %d, want 1 (b); violations %v", r.Counts[KindLost], r.Violations)
	}
}

// Crashed processes are excused from survival properties: c killed while
// partitioned (its log just stops) is not required to see the heal view,
// and its own send need not come back.
func TestCrashedProcessExcused(t *testing.T) {
	s := scenario()
	s["c"] = s["c"][:5] // killed right after sent(1)
	a, b := s["a"], s["b"]
	// a and b never see c again.
	s["a"] = append(append([]Record{}, a[:9]...), deliver(pb, 2, "agreed"), a[len(a)-1])
	s["b"] = append(append([]Record{}, b[:7]...), sent(2), deliver(pb, 2, "agreed"), b[len(b)-1])
	r := run(t, s)
	if r.Total() != 0 {
		t.Fatalf("violations: %v", r.Violations)
	}
}

func TestParseLog(t *testing.T) {
	good := `{"type":"self","group":"g","nodeid":1,"pid":10}
{"type":"confchg","group":"g","members":[{"nodeid":1,"pid":10}],"joined":[{"nodeid":1,"pid":10,"reason":"join"}],"left":[]}
{"type":"deliver","group":"g","nodeid":1,"pid":10,"guarantee":"agreed","data":"aGk="}
{"type":"deliv`
	l, err := ParseLog("x", strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if !l.Truncated || len(l.Records) != 2 || l.Proc != (ProcID{"g", 1, 10}) || string(l.Records[1].Data) != "hi" {
		t.Errorf("parsed %+v", l)
	}
	for _, empty := range []string{"", `{"type":"self","gro`} {
		if _, err := ParseLog("x", strings.NewReader(empty)); !errors.Is(err, ErrEmptyLog) {
			t.Errorf("%q: err %v, want ErrEmptyLog", empty, err)
		}
	}
	for _, bad := range []string{
		`{"type":"deliver","group":"g"}` + "\n",
		`{"type":"self","group":"g","nodeid":1,"pid":10}` + "\nnot json\n",
		`{"type":"self","group":"g","nodeid":1,"pid":10}` + "\n" + `{"type":"confchg","group":"h"}` + "\n",
		`{"type":"self","group":"g","nodeid":1,"pid":10}` + "\n" + `{"type":"weird"}` + "\n",
	} {
		if _, err := ParseLog("x", strings.NewReader(bad)); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	p := Payload{Seed: -3, NodeID: 4, PID: 99, Counter: 12345, Guarantee: "safe", Size: 200}
	b := p.Encode()
	if len(b) != 200 {
		t.Fatalf("len %d", len(b))
	}
	q, err := DecodePayload(b)
	if err != nil || q != p {
		t.Fatalf("decoded %+v, %v; want %+v", q, err, p)
	}
	for _, bad := range []string{"hello", "chaos|x|1|2|3|safe|", "chaos|1|1|2|3|safe|zzz"} {
		if _, err := DecodePayload([]byte(bad)); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}

func TestLivenessCaught(t *testing.T) {
	s := scenario()
	var logs []*Log
	for _, n := range []string{"a", "b", "c"} {
		logs = append(logs, encode(t, n, s[n]))
	}
	if r := Check(logs, Options{Seed: seed, ExpectClean: 3}); r.Total() != 0 {
		t.Fatalf("violations: %v", r.Violations)
	}
	if r := Check(logs, Options{Seed: seed, ExpectClean: 4}); r.Counts[KindLiveness] != 1 {
		t.Fatalf("4 clean processes expected, 3 ended cleanly: %v", r.Violations)
	}
	// Processes that never got a view: nothing delivered.
	idle := []*Log{encode(t, "a", []Record{{Type: TypeEnd, Reason: EndStop}})}
	if r := Check(idle, Options{ExpectClean: 1}); r.Counts[KindLiveness] != 1 {
		t.Fatalf("no deliveries not caught: %v", r.Violations)
	}
}

// A message the service reported undelivered to its sender need not come
// back; one that was neither delivered nor reported is a self-delivery
// violation.
func TestUndeliveredExcused(t *testing.T) {
	s := scenario()
	a := s["a"]
	s["a"] = append(a[:len(a)-1:len(a)-1], sent(3), Record{Type: TypeUndelivered, Counter: 3}, a[len(a)-1])
	r := run(t, s)
	if r.Total() != 0 || r.Undelivered != 1 {
		t.Fatalf("violations %v, undelivered %d", r.Violations, r.Undelivered)
	}
	if got := r.Summary(seed, 0); !strings.HasSuffix(got, " undelivered=1") {
		t.Errorf("summary %q", got)
	}
	s["a"] = append(a[:len(a)-1:len(a)-1], sent(3), a[len(a)-1])
	if r := run(t, s); r.Counts[KindSelf] != 1 {
		t.Fatalf("self = %d, want 1; violations %v", r.Counts[KindSelf], r.Violations)
	}
}

// trans is the view of a transitional configuration.
func trans(members, left []Member) Record {
	r := conf(members, nil, left)
	r.Transitional = true
	return r
}

// The ring breaks up while b's safe #1 is in flight. a and b, who stay
// together, can deliver it only after the break, in the transitional view
// [a b]; c, cut off, may have delivered it in [a b c] (then Totem gave it
// to every node of that ring) or not at all. If c delivered it in [a b c]
// but a and b never did, that is a violation.
func TestTransitionalViews(t *testing.T) {
	abc := ms(pa, pb, pc)
	logs := func(abDeliver, cDelivers bool) map[string][]Record {
		ab := func(self Member, sentRec Record) []Record {
			r := []Record{}
			if self == pa {
				r = append(r, conf(ms(pa), ms(pa), nil), conf(ms(pa, pb), ms(pb), nil))
			} else {
				r = append(r, conf(ms(pa, pb), ms(pb), nil))
			}
			r = append(r, conf(abc, ms(pc), nil), deliver(pa, 1, "agreed"), sentRec, trans(ms(pa, pb), nodedown(pc)))
			if abDeliver {
				r = append(r, deliver(pb, 1, "safe"))
			}
			return append(r, Record{Type: TypeEnd, Reason: EndStop})
		}
		c := []Record{conf(abc, ms(pc), nil), deliver(pa, 1, "agreed")}
		if cDelivers {
			c = append(c, deliver(pb, 1, "safe"))
		}
		c = append(c, trans(ms(pc), nodedown(pa, pb)), Record{Type: TypeEnd, Reason: EndStop})
		bSent := sent(1)
		if !abDeliver {
			bSent = Record{Type: TypeUndelivered, Counter: 1}
		}
		return map[string][]Record{"a": ab(pa, sent(1)), "b": append([]Record{sent(1)}, ab(pb, bSent)...), "c": c}
	}
	for _, ok := range []struct{ ab, c bool }{{true, false}, {true, true}} {
		if r := run(t, logs(ok.ab, ok.c)); r.Total() != 0 {
			t.Fatalf("a, b deliver in the transitional view: %v, c in [a b c]: %v: %v", ok.ab, ok.c, r.Violations)
		}
	}
	if r := run(t, logs(false, true)); r.Counts[KindSafe] != 2 || r.Total() != 2 {
		t.Fatalf("want a's and b's missed safe message, got %v", r.Violations)
	}
	// Delivered in [a b c]'s transitional successors by a, b and c: fine;
	// but in a regular view that follows it, it is a different view.
	s := logs(true, false)
	c := s["c"]
	c[2] = conf(ms(pc), nil, nodedown(pa, pb))
	s["c"] = append(append([]Record{}, c[:3]...), deliver(pb, 1, "safe"), c[3])
	if r := run(t, s); r.Counts[KindViews] == 0 {
		t.Fatalf("c delivered b's #1 in its regular view [c]; violations %v", r.Violations)
	}
}

// A process that missed a ring has fewer views with the same members than
// the others. a goes through ring 2, which b never installed (a counts b
// as a member all along): c joins and leaves there, and a delivers its
// safe #1 in ring 2's [a b]. In ring 3, a sees b go (nodedown) and come
// back (nodeup); b sees a go in a transitional view and come back. Ring
// ids tell ring 2's [a b] from ring 3's; counting member lists alone pairs
// them and finds b missing a safe message it never had to deliver.
func TestViewsToldApartByRing(t *testing.T) {
	for _, withRings := range []bool{true, false} {
		in := func(r Record, ring string) Record {
			if withRings {
				r.RingID = ring
			}
			return r
		}
		nodeup := func(m Member) []Member { return []Member{{NodeID: m.NodeID, PID: m.PID, Reason: "nodeup"}} }
		leave := func(m Member) []Member { return []Member{{NodeID: m.NodeID, PID: m.PID, Reason: "leave"}} }
		tb := trans(ms(pb), nodedown(pa))
		s := map[string][]Record{
			"a": {
				in(conf(ms(pa), ms(pa), nil), "1.1"),
				in(conf(ms(pa, pb), ms(pb), nil), "1.1"),
				in(conf(ms(pa, pb, pc), ms(pc), nil), "1.2"),
				in(conf(ms(pa, pb), nil, leave(pc)), "1.2"),
				sent(1),
				deliver(pa, 1, "safe"),
				in(conf(ms(pa), nil, nodedown(pb)), "1.3"),
				in(conf(ms(pa, pb), nodeup(pb), nil), "1.3"),
				{Type: TypeEnd, Reason: EndStop},
			},
			"b": {
				in(conf(ms(pa, pb), ms(pb), nil), "1.1"),
				in(tb, "1.3"),
				in(conf(ms(pa, pb), nodeup(pa), nil), "1.3"),
				in(conf(ms(pb), nil, leave(pa)), "1.3"),
				{Type: TypeEnd, Reason: EndStop},
			},
			"c": {
				in(conf(ms(pa, pb, pc), ms(pc), nil), "1.2"),
				{Type: TypeEnd, Reason: EndStop},
			},
		}
		r := run(t, s)
		switch {
		case withRings && r.Total() != 0:
			t.Fatalf("with ring ids: violations %v", r.Violations)
		case !withRings && r.Counts[KindSafe] == 0:
			t.Fatalf("without ring ids the views should be confused (safe); got %v", r.Violations)
		}
	}
}

// b's #1 is ordered in a ring that breaks up before anyone installs a view
// for it: a and c are on different sides afterwards, and each delivers it
// in its own transitional view, with different parents. Extended virtual
// synchrony allows that; delivering it in a regular view other than the
// transitional view's parent is still a violation.
func TestDifferentTransitionalViews(t *testing.T) {
	build := func(cRegular bool) map[string][]Record {
		abc := ms(pa, pb, pc)
		cView := trans(ms(pc), nodedown(pa, pb))
		if cRegular {
			cView = conf(ms(pc), nil, nodedown(pa, pb))
		}
		return map[string][]Record{
			"a": {conf(ms(pa), ms(pa), nil), conf(ms(pa, pb), ms(pb), nil), conf(abc, ms(pc), nil),
				conf(ms(pa, pb), nil, nodedown(pc)), trans(ms(pa), nodedown(pb)), deliver(pb, 1, "agreed"),
				{Type: TypeEnd, Reason: EndStop}},
			"b": {conf(ms(pa, pb), ms(pb), nil), conf(abc, ms(pc), nil), conf(ms(pa, pb), nil, nodedown(pc)), sent(1)},
			"c": {conf(abc, ms(pc), nil), cView, deliver(pb, 1, "agreed"), {Type: TypeEnd, Reason: EndStop}},
		}
	}
	if r := run(t, build(false)); r.Counts[KindViews] != 0 {
		t.Fatalf("delivered in two transitional views: %v", r.Violations)
	}
	if r := run(t, build(true)); r.Counts[KindViews] == 0 {
		t.Fatalf("c delivered b's #1 in a regular view [c] that a never had; violations %v", r.Violations)
	}
}
