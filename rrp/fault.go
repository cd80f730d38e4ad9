package rrp

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Fault describes faults injected on one link, for tests. The zero value
// injects nothing. Drop, Delay and Duplicate apply to datagrams this node
// sends on the link; Cut drops everything sent and received on it, as if
// the cable were pulled.
type Fault struct {
	// Drop is the probability (0..1) that a datagram is dropped.
	Drop float64
	// Delay holds every datagram back this long before sending it.
	Delay time.Duration
	// Duplicate is the probability (0..1) that a datagram is sent twice.
	Duplicate float64
	// Cut drops all traffic on the link in both directions.
	Cut bool
}

func (f Fault) active() bool { return f.Drop > 0 || f.Delay > 0 || f.Duplicate > 0 || f.Cut }

func (f Fault) validate() error {
	// Written so that NaN fails too.
	if !(f.Drop >= 0 && f.Drop <= 1) || !(f.Duplicate >= 0 && f.Duplicate <= 1) {
		return fmt.Errorf("rrp: fault rates must be within 0..1 (drop %v, duplicate %v)", f.Drop, f.Duplicate)
	}
	if f.Delay < 0 {
		return fmt.Errorf("rrp: negative fault delay %v", f.Delay)
	}
	return nil
}

// SetFault sets the faults injected on link (see Fault); the zero Fault
// clears them.
func (t *Transport) SetFault(link int, f Fault) error {
	if link < 0 || link >= len(t.links) {
		return fmt.Errorf("rrp: no link %d", link)
	}
	if err := f.validate(); err != nil {
		return err
	}
	l := t.links[link]
	if !f.active() {
		l.fault.Store(nil)
		return nil
	}
	l.fault.Store(&f)
	return nil
}

// faultCopies returns how many copies of a datagram to send (0, 1 or 2)
// under fault f.
func faultCopies(f *Fault) int {
	if f.Cut || (f.Drop > 0 && rand.Float64() < f.Drop) {
		return 0
	}
	if f.Duplicate > 0 && rand.Float64() < f.Duplicate {
		return 2
	}
	return 1
}
