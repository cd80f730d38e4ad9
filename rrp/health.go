package rrp

import "time"

// linkHealth is one node's view of one link towards one peer: the
// consistent-history state machine. It is pure; the transport feeds it
// receive times and heartbeat entries and asks it to evaluate.
type linkHealth struct {
	// epoch counts transitions: odd while up, even while down.
	epoch uint32
	// peerEpoch is the epoch the peer last reported for this link (for
	// this node's current incarnation).
	peerEpoch uint32
	// peerHears is the peer's last report of whether it hears this node.
	peerHears bool
	// lastRx is when anything authenticated last arrived from the peer on
	// this link; lastReport when a heartbeat entry for this node did.
	lastRx, lastReport time.Time
	// hbSeq is the sequence number of the last heartbeat accepted.
	hbSeq uint64

	ups, downs uint64
	lastChange time.Time
}

func (h *linkHealth) up() bool { return h.epoch%2 == 1 }

// heard records that something arrived from the peer on the link.
func (h *linkHealth) heard(now time.Time) { h.lastRx = now }

// report records a heartbeat entry from the peer about this node.
func (h *linkHealth) report(now time.Time, hears bool, epoch uint32) {
	h.peerHears = hears
	h.peerEpoch = epoch
	h.lastReport = now
}

// hears reports whether the peer was heard within timeout.
func (h *linkHealth) hears(now time.Time, timeout time.Duration) bool {
	return !h.lastRx.IsZero() && now.Sub(h.lastRx) < timeout
}

// step advances the epoch by one, recording the transition.
func (h *linkHealth) step(now time.Time) {
	h.epoch++
	if h.up() {
		h.ups++
	} else {
		h.downs++
	}
	h.lastChange = now
}

// evaluate applies the rules and reports whether the up/down state
// changed:
//   - catch up with transitions the peer made (its epoch is ahead);
//   - go up when both directions work, unless already one transition
//     ahead of the peer;
//   - go down as soon as either direction fails.
func (h *linkHealth) evaluate(now time.Time, timeout time.Duration) bool {
	was := h.up()
	if h.peerEpoch > h.epoch {
		if h.peerEpoch-h.epoch <= 2 {
			for h.epoch < h.peerEpoch {
				h.step(now)
			}
		} else {
			// Far behind (should not happen between live peers): jump.
			up := h.peerEpoch%2 == 1
			h.epoch = h.peerEpoch - 1
			if up != was {
				h.step(now)
			} else {
				h.epoch++
			}
		}
	}
	fresh := !h.lastReport.IsZero() && now.Sub(h.lastReport) < timeout
	want := h.hears(now, timeout) && fresh && h.peerHears
	switch {
	case want && !h.up() && h.epoch <= h.peerEpoch:
		h.step(now)
	case !want && h.up():
		h.step(now)
	}
	return h.up() != was
}

// reset forgets the peer's state (it restarted).
func (h *linkHealth) reset(now time.Time) {
	if h.up() {
		h.step(now)
	}
	ups, downs, lc := h.ups, h.downs, h.lastChange
	*h = linkHealth{ups: ups, downs: downs, lastChange: lc}
}
