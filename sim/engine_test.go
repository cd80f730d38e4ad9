package sim

import (
	"hash/fnv"
	"io"
	"strings"
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

// orderEngine records, per node, the order of the calls of each event the
// simulator handles (it ends each with Ready): whether a frame or proposal
// was handed over after the tick or before it.
type orderEngine struct {
	Engine
	calls     string // since the last Ready: "t" tick, "i" frame or proposal
	tickFirst int    // events "ti…"
	stepFirst int    // events "i…t"
}

func (e *orderEngine) Tick(now time.Duration) { e.calls += "t"; e.Engine.Tick(now) }

func (e *orderEngine) Step(frame []byte) error { e.calls += "i"; return e.Engine.Step(frame) }

func (e *orderEngine) Propose(p []byte, g totem.Guarantee) error {
	e.calls += "i"
	return e.Engine.Propose(p, g)
}

func (e *orderEngine) Ready() totem.Ready {
	switch c := e.calls; {
	case strings.HasPrefix(c, "ti") && !strings.HasSuffix(c, "t"):
		e.tickFirst++
	case strings.HasPrefix(c, "i") && strings.HasSuffix(c, "t"):
		e.stepFirst++
	}
	e.calls = ""
	return e.Engine.Ready()
}

// Nodes with even IDs get frames and proposals before the tick, as in
// totemd; odd ones after; with TickFirst every node gets them after.
func TestStepFirstOrder(t *testing.T) {
	for _, tickFirst := range []bool{false, true} {
		engines := map[totem.NodeID]*orderEngine{}
		factory := func(cfg totem.Config) (Engine, error) {
			eng, err := TotemEngine(cfg)
			e := &orderEngine{Engine: eng}
			engines[cfg.NodeID] = e
			return e, err
		}
		r := Run(Options{Seed: 3, Nodes: 4, NoFaults: true, Chaos: 300 * time.Millisecond, Engine: factory, TickFirst: tickFirst})
		for _, v := range r.Violations {
			t.Errorf("tick first %v: %v", tickFirst, v)
		}
		if len(engines) != 4 {
			t.Fatalf("%d engines built, want 4", len(engines))
		}
		for id, e := range engines {
			wantStepFirst := id%2 == 0 && !tickFirst
			if wantStepFirst && (e.tickFirst != 0 || e.stepFirst == 0) || !wantStepFirst && (e.stepFirst != 0 || e.tickFirst == 0) {
				t.Errorf("tick first %v: node %d had %d events ticked first and %d stepped first", tickFirst, id, e.tickFirst, e.stepFirst)
			}
		}
	}
}
