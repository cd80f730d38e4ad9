package sim

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/totem-gcs/totem/sim/evs"
)

func TestPayloadRoundTrip(t *testing.T) {
	for _, size := range []int{0, PayloadHeader, 31, 1500, 70000} {
		id := evs.MsgID{From: evs.ProcID{Node: 7, Inc: 3}, Seq: uint64(size) + 11}
		b := MakePayload(id, size)
		if len(b) != max(size, PayloadHeader) {
			t.Fatalf("size %d: got %d bytes", size, len(b))
		}
		got, err := ParsePayload(b)
		if err != nil || got != id {
			t.Fatalf("size %d: parsed %v, %v; want %v", size, got, err, id)
		}
		if !bytes.Equal(b, MakePayload(id, size)) {
			t.Fatalf("size %d: payload not deterministic", size)
		}
		if len(b) > PayloadHeader {
			c := bytes.Clone(b)
			c[len(c)-1] ^= 1
			if Digest(c) == Digest(b) {
				t.Fatalf("size %d: a flipped bit keeps the digest", size)
			}
		}
		if _, err := ParsePayload(b[:len(b)-1]); err == nil {
			t.Fatalf("size %d: truncated payload parsed", size)
		}
	}
	if _, err := ParsePayload([]byte("hello, this is not a payload")); err == nil {
		t.Fatal("foreign payload parsed")
	}
}

func fakeOpts(seed uint64, broken bool) Options {
	return Options{Seed: seed, Engine: newSeqEngine(broken), NoFaults: true, AnyFrameSize: true, Chaos: 300 * time.Millisecond}
}

func TestHarnessWithSequencerEngine(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		r := Run(fakeOpts(seed, false))
		for _, v := range r.Violations {
			t.Errorf("seed %d: %v", seed, v)
		}
		if r.Proposed == 0 || r.Delivered < r.Proposed*r.Nodes {
			t.Errorf("seed %d: proposed %d delivered %d on %d nodes", seed, r.Proposed, r.Delivered, r.Nodes)
		}
		if r.Configs != r.Nodes {
			t.Errorf("seed %d: %d configurations on %d nodes", seed, r.Configs, r.Nodes)
		}
		if r.End >= 300*time.Millisecond+300*time.Millisecond+time.Second {
			t.Errorf("seed %d: did not settle early (ended at %v)", seed, r.End)
		}
	}
}

func TestCheckerCatchesBrokenEngine(t *testing.T) {
	failed := 0
	for seed := uint64(1); seed <= 10; seed++ {
		r := Run(fakeOpts(seed, true))
		if !r.Failed() {
			continue
		}
		failed++
		if r.Violations[0].Property != evs.AgreedOrder {
			t.Errorf("seed %d: first violation %v, want agreed-order", seed, r.Violations[0])
		}
	}
	if failed < 5 {
		t.Fatalf("only %d of 10 seeds caught an engine that delivers its own messages first", failed)
	}
}

func TestDeterministicTrace(t *testing.T) {
	trace := func(seed uint64) string {
		var b strings.Builder
		o := fakeOpts(seed, false)
		o.Trace = &b
		Run(o)
		return b.String()
	}
	a, b, c := trace(3), trace(3), trace(4)
	if a != b {
		t.Fatal("the same seed gave two different traces")
	}
	if a == c {
		t.Fatal("two seeds gave the same trace")
	}
	for _, want := range []string{"seed 3:", "start", "install regular", "propose m[n1#0]", "deliver m[", "send frame("} {
		if !strings.Contains(a, want) {
			t.Errorf("trace lacks %q", want)
		}
	}
}

func TestReplayCommand(t *testing.T) {
	r := Result{Seed: 12, opts: Options{Nodes: 5, Break: "safe-early"}}
	if got, want := r.ReplayCommand(), "totemsim --seed 12 --nodes 5 --break safe-early --trace"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	r = Result{Seed: 3}
	if got, want := r.ReplayCommand(), "totemsim --seed 3 --trace"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
