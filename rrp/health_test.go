package rrp

import (
	"math/rand/v2"
	"testing"
	"time"
)

// end is one side of a simulated link for the health state machine.
type end struct {
	h linkHealth
	// history of up/down transitions (true = up).
	hist []bool
}

func (e *end) eval(now time.Time, timeout time.Duration) {
	if e.h.evaluate(now, timeout) || len(e.hist) < int(e.h.ups+e.h.downs) {
		for len(e.hist) < int(e.h.ups+e.h.downs) {
			e.hist = append(e.hist, len(e.hist)%2 == 0)
		}
	}
}

// simLink exchanges heartbeats between two ends each interval; a->b and
// b->a deliver only when the direction works.
func simLink(t *testing.T, seed uint64, steps int, dirWorks func(step int, aToB bool) bool) (*end, *end) {
	t.Helper()
	const interval = 10 * time.Millisecond
	const timeout = 50 * time.Millisecond
	a, b := &end{}, &end{}
	now := time.Unix(1000, 0)
	rng := rand.New(rand.NewPCG(seed, 1))
	for s := 0; s < steps; s++ {
		now = now.Add(interval)
		// Each end evaluates then sends a heartbeat about the other.
		a.eval(now, timeout)
		b.eval(now, timeout)
		aHears, aEpoch := a.h.hears(now, timeout), a.h.epoch
		bHears, bEpoch := b.h.hears(now, timeout), b.h.epoch
		order := rng.IntN(2)
		for k := 0; k < 2; k++ {
			if (k == 0) == (order == 0) {
				if dirWorks(s, true) {
					b.h.heard(now)
					b.h.report(now, aHears, aEpoch)
					b.eval(now, timeout)
				}
			} else if dirWorks(s, false) {
				a.h.heard(now)
				a.h.report(now, bHears, bEpoch)
				a.eval(now, timeout)
			}
		}
		if d := int(a.h.epoch) - int(b.h.epoch); d > 2 || d < -2 {
			t.Fatalf("step %d: epochs %d and %d differ by more than 2", s, a.h.epoch, b.h.epoch)
		}
	}
	return a, b
}

func TestHealthUpWhenBothDirectionsWork(t *testing.T) {
	a, b := simLink(t, 1, 20, func(int, bool) bool { return true })
	if !a.h.up() || !b.h.up() {
		t.Fatalf("link not up at both ends: a epoch %d, b epoch %d", a.h.epoch, b.h.epoch)
	}
}

func TestHealthOneWayLinkIsDown(t *testing.T) {
	for _, dir := range []bool{true, false} {
		a, b := simLink(t, 2, 200, func(s int, aToB bool) bool { return s < 20 || aToB == dir })
		if a.h.up() || b.h.up() {
			t.Fatalf("one-way link (a->b works: %v) up: a %v, b %v", dir, a.h.up(), b.h.up())
		}
		if a.h.epoch != b.h.epoch {
			t.Fatalf("histories differ: %d vs %d", a.h.epoch, b.h.epoch)
		}
	}
}

func TestHealthDownWithinTimeoutAndHeals(t *testing.T) {
	cut := func(s int, _ bool) bool { return s < 20 || s >= 40 }
	a, b := simLink(t, 3, 25+6, cut) // 6 intervals = 60 ms > 50 ms timeout
	if a.h.up() || b.h.up() {
		t.Fatal("link still up more than a timeout after the cut")
	}
	a, b = simLink(t, 3, 60, cut)
	if !a.h.up() || !b.h.up() {
		t.Fatal("link did not heal")
	}
	if a.h.ups != 2 || a.h.downs != 1 || b.h.ups != 2 || b.h.downs != 1 {
		t.Fatalf("transitions: a %d up %d down, b %d up %d down", a.h.ups, a.h.downs, b.h.ups, b.h.downs)
	}
}

// TestHealthConsistentHistoryUnderFlapping flaps each direction at random
// and checks that, once the link settles, both ends recorded the same
// sequence of transitions.
func TestHealthConsistentHistoryUnderFlapping(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		pattern := make([][2]bool, 400)
		for i := range pattern {
			if i < 300 {
				pattern[i] = [2]bool{rng.IntN(10) > 2, rng.IntN(10) > 2}
			} else {
				pattern[i] = [2]bool{true, true}
			}
		}
		a, b := simLink(t, seed, len(pattern), func(s int, aToB bool) bool {
			if aToB {
				return pattern[s][0]
			}
			return pattern[s][1]
		})
		if a.h.epoch != b.h.epoch || a.h.ups != b.h.ups || a.h.downs != b.h.downs {
			t.Fatalf("seed %d: histories differ: a epoch %d (%d/%d), b epoch %d (%d/%d)",
				seed, a.h.epoch, a.h.ups, a.h.downs, b.h.epoch, b.h.ups, b.h.downs)
		}
		if !a.h.up() {
			t.Fatalf("seed %d: link not up after settling", seed)
		}
	}
}
