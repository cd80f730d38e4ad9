package rrp

// windowSize is the number of frame numbers behind the newest one that a
// receiver still accepts (once each).
const windowSize = 4096

// replayWindow remembers which of the last windowSize sequence numbers
// below and including the highest one were accepted. Sequence numbers
// start at 1; zero is never accepted.
type replayWindow struct {
	top  uint64 // highest accepted number, 0 = none yet
	bits [windowSize / 64]uint64
}

// check reports whether seq would be accepted, without recording it.
func (w *replayWindow) check(seq uint64) bool {
	if seq == 0 {
		return false
	}
	if seq > w.top {
		return true
	}
	if w.top-seq >= windowSize {
		return false
	}
	i := seq % windowSize
	return w.bits[i/64]&(1<<(i%64)) == 0
}

// accept records seq, reporting false (and recording nothing) if it is a
// duplicate or too old.
func (w *replayWindow) accept(seq uint64) bool {
	if !w.check(seq) {
		return false
	}
	if seq > w.top {
		gap := seq - w.top
		if gap >= windowSize {
			w.bits = [windowSize / 64]uint64{}
		} else {
			for s := w.top + 1; s < seq; s++ {
				i := s % windowSize
				w.bits[i/64] &^= 1 << (i % 64)
			}
		}
		w.top = seq
	}
	i := seq % windowSize
	w.bits[i/64] |= 1 << (i % 64)
	return true
}

// reset forgets everything.
func (w *replayWindow) reset() { *w = replayWindow{} }
