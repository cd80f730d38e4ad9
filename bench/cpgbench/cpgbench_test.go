package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestHeaderRoundTrip(t *testing.T) {
	b := fill(64)
	want := header{Kind: kindThroughput, Phase: 3, Worker: 7, Seq: 1<<40 + 5, Run: 0xdeadbeefcafe}
	want.put(b)
	got, err := parseHeader(b)
	if err != nil || got != want {
		t.Fatalf("parseHeader = %+v, %v; want %+v", got, err, want)
	}
	if b[HeaderSize] != byte(HeaderSize*7) {
		t.Fatalf("filler overwritten")
	}
	for name, bad := range map[string][]byte{
		"short":     b[:HeaderSize-1],
		"magic":     append([]byte{0, 0, 0, 0}, b[4:]...),
		"bad kind":  func() []byte { c := bytes.Clone(b); c[4] = 9; return c }(),
		"empty":     nil,
		"foreign":   []byte(strings.Repeat("x", 64)),
		"zero kind": func() []byte { c := bytes.Clone(b); c[4] = 0; return c }(),
	} {
		if _, err := parseHeader(bad); err == nil {
			t.Errorf("%s: parseHeader accepted %x", name, bad)
		}
	}
}

func TestBitset(t *testing.T) {
	var a, b bitset
	for _, i := range []uint64{0, 1, 63, 64, 1000} {
		if a.add(i) {
			t.Fatalf("add(%d) reported a duplicate", i)
		}
	}
	if !a.add(63) {
		t.Fatal("second add(63) not reported as duplicate")
	}
	if a.count() != 5 || !a.has(1000) || a.has(999) || a.has(1<<20) {
		t.Fatalf("count %d has(1000) %v has(999) %v", a.count(), a.has(1000), a.has(999))
	}
	b.add(1)
	b.add(1000)
	b.add(5000)
	if n := a.andNotCount(b); n != 3 { // 0, 63, 64
		t.Fatalf("a\\b = %d, want 3", n)
	}
	if n := b.andNotCount(a); n != 1 { // 5000
		t.Fatalf("b\\a = %d, want 1", n)
	}
}

func TestOwnDeliveryCounts(t *testing.T) {
	p := &tputPhase{}
	now := time.Now()
	for _, d := range []struct {
		worker uint32
		seq    uint64
	}{{0, 0}, {1, 1}, {0, 2}, {1, 3}, {0, 2}, {1, 5}, {1, 4}} {
		p.ownDelivery(header{Worker: d.worker, Seq: d.seq}, now)
	}
	// seq 2 twice: one duplicate; worker 1 delivered 5 before 4: one reorder.
	if p.delivered != 6 || p.dups != 1 || p.reordered != 1 {
		t.Fatalf("delivered %d dups %d reordered %d; want 6 1 1", p.delivered, p.dups, p.reordered)
	}
	p.accepted.add(0)
	p.accepted.add(1)
	p.accepted.add(2)
	p.accepted.add(3)
	p.accepted.add(4)
	p.accepted.add(6) // never delivered
	if lost, unknown := p.accepted.andNotCount(p.seen), p.seen.andNotCount(p.accepted); lost != 1 || unknown != 1 {
		t.Fatalf("lost %d unknown %d; want 1 1", lost, unknown)
	}
}

func TestSummarize(t *testing.T) {
	var s []time.Duration
	for i := 100; i >= 1; i-- { // unsorted input
		s = append(s, time.Duration(i)*time.Microsecond)
	}
	r := summarize(s)
	if r.N != 100 || r.P50 != 51 || r.P90 != 91 || r.P99 != 100 || r.Max != 100 || r.Mean != 50.5 {
		t.Fatalf("summarize = %+v", r)
	}
	if s[0] != 100*time.Microsecond {
		t.Fatal("summarize sorted its input in place")
	}
	if r := summarize(nil); r.N != 0 {
		t.Fatalf("summarize(nil) = %+v", r)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--sizes", "64,1024", "--duration", "2s", "--guarantee", "safe", "--inflight", "4"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.sizes) != 2 || o.sizes[1] != 1024 || o.duration != 2*time.Second || o.guarantee.String() != "safe" || o.inflight != 4 {
		t.Fatalf("options %+v", o)
	}
	for _, bad := range [][]string{
		{"--sizes", "16"},
		{"--guarantee", "fifo"},
		{"--duration", "0s"},
		{"--count", "0"},
		{"--inflight", "0"},
		{"--start-at", "yesterday"},
		{"--recv", "--latency"},
		{"extra"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%v) accepted", bad)
		}
	}
}

func TestParseStartAt(t *testing.T) {
	now := time.Unix(1000, 0)
	if got, err := parseStartAt("now+5s", now); err != nil || !got.Equal(now.Add(5*time.Second)) {
		t.Fatalf("now+5s = %v, %v", got, err)
	}
	if got, err := parseStartAt("1700000000.25", now); err != nil || got.UnixMilli() != 1700000000250 {
		t.Fatalf("fractional = %v, %v", got, err)
	}
	for _, bad := range []string{"", "-3", "now+", "now+-1s", "NaN", "Inf"} {
		if _, err := parseStartAt(bad, now); err == nil {
			t.Errorf("parseStartAt(%q) accepted", bad)
		}
	}
}

func TestRunWithoutDaemon(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"--socket", t.TempDir() + "/none.sock", "-q"}, &out, &errb)
	if code != exitNoDaemon || !strings.Contains(errb.String(), "cannot connect") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

func TestTableFlagsFaults(t *testing.T) {
	var b bytes.Buffer
	writeTable(&b, report{Mode: "throughput", Throughput: []tputResult{
		{Size: 64, Sent: 10, Delivered: 10},
		{Size: 1024, Sent: 10, Delivered: 9, Lost: 1},
	}})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 || !strings.HasSuffix(lines[2], "none") || !strings.Contains(lines[3], "lost 1") {
		t.Fatalf("table:\n%s", b.String())
	}
}
