package sim

import (
	"hash/fnv"
	"io"
	"testing"
	"time"

	"github.com/totem-gcs/totem/sim/evs"
	"github.com/totem-gcs/totem/totem"
)

// These tests drive the real totem engine.

func TestTotemWithoutFaults(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		r := Run(Options{Seed: seed, NoFaults: true, Chaos: 500 * time.Millisecond})
		for _, v := range r.Violations {
			t.Errorf("seed %d: %v\n  replay: %s", seed, v, r.ReplayCommand())
		}
		// Nodes that start late miss what was delivered before they
		// joined, so each message is delivered at least once, usually
		// by all.
		if r.Proposed == 0 || r.Delivered < r.Proposed*(r.Nodes-1) {
			t.Errorf("seed %d: %d nodes, proposed %d, delivered %d", seed, r.Nodes, r.Proposed, r.Delivered)
		}
	}
}

func traceHash(t *testing.T, o Options) (uint64, Result) {
	t.Helper()
	h := fnv.New64a()
	o.Trace = h
	o.DescribeFrame = totem.Describe
	r := Run(o)
	return h.Sum64(), r
}

func TestTotemRunsAreReproducible(t *testing.T) {
	o := Options{Seed: 11, Chaos: 700 * time.Millisecond}
	a, ra := traceHash(t, o)
	b, rb := traceHash(t, o)
	if a != b || ra.Delivered != rb.Delivered || ra.Configs != rb.Configs || ra.Events != rb.Events {
		t.Fatalf("seed 11 ran twice differently: trace %x vs %x, delivered %d vs %d, configs %d vs %d",
			a, b, ra.Delivered, rb.Delivered, ra.Configs, rb.Configs)
	}
	if ra.Configs <= ra.Nodes {
		t.Errorf("a run with faults installed only %d configurations on %d nodes", ra.Configs, ra.Nodes)
	}
	// Tracing must not change the schedule.
	o.Trace = io.Discard
	if rc := Run(Options{Seed: 11, Chaos: 700 * time.Millisecond}); rc.Events != ra.Events {
		t.Fatalf("tracing changed the schedule: %d events vs %d", ra.Events, rc.Events)
	}
}

// TestBrokenEngineIsCaught proves the checker can fail: an engine told to
// break a rule must be reported within a few seeds, with the property
// that rule protects among the violations.
func TestBrokenEngineIsCaught(t *testing.T) {
	cases := []struct {
		rule string
		want []evs.Property
	}{
		{totem.BreakSafeEarly, []evs.Property{evs.SafeDelivery}},
		{totem.BreakSkipRecovery, []evs.Property{evs.FailureAtomicity, evs.SafeDelivery}},
	}
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			seen := map[evs.Property]bool{}
			failed := 0
			for seed := uint64(1); seed <= 8; seed++ {
				r := Run(Options{Seed: seed, Break: c.rule, Chaos: time.Second})
				if r.Failed() {
					failed++
				}
				for _, v := range r.Violations {
					seen[v.Property] = true
				}
			}
			if failed == 0 {
				t.Fatalf("no violation in 8 seeds with the engine breaking %q", c.rule)
			}
			for _, p := range c.want {
				if !seen[p] {
					t.Errorf("breaking %q never showed a %s violation (saw %v)", c.rule, p, seen)
				}
			}
		})
	}
}
