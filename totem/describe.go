package totem

import (
	"fmt"
	"strings"
)

// Describe returns a one-line readable summary of a frame, for traces and
// packet dumps; a frame that does not decode is described by its error.
func Describe(frame []byte) string {
	p, err := Decode(frame)
	if err != nil {
		return fmt.Sprintf("undecodable(%d bytes: %v)", len(frame), err)
	}
	return fmt.Sprint(p)
}

// String summarises the token.
func (t *Token) String() string {
	s := fmt.Sprintf("token ring=%v tseq=%d seq=%d aru=%d/%d fcc=%d backlog=%d", t.Ring, t.TokenSeq, t.Seq, t.Aru, t.AruSetter, t.FCC, t.Backlog)
	if len(t.Rtr) > 0 {
		s += fmt.Sprintf(" rtr=%v", t.Rtr)
	}
	if len(t.RecoveryPending) > 0 {
		s += fmt.Sprintf(" pending=%v", t.RecoveryPending)
	}
	if t.Install {
		s += " install"
	}
	return s
}

// String summarises the frame.
func (m *Mcast) String() string {
	if m.Recovery {
		return fmt.Sprintf("mcast ring=%v seq=%d from=%d recovery(%s)", m.Ring, m.Seq, m.Sender, Describe(m.Inner))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mcast ring=%v seq=%d from=%d", m.Ring, m.Seq, m.Sender)
	for _, e := range m.Entries {
		if e.Offset == 0 && int(e.Total) == len(e.Data) {
			fmt.Fprintf(&b, " [%v %dB]", e.Guarantee, e.Total)
		} else {
			fmt.Fprintf(&b, " [%v %d-%d/%dB]", e.Guarantee, e.Offset, int(e.Offset)+len(e.Data), e.Total)
		}
	}
	return b.String()
}

// String summarises the join.
func (j *Join) String() string {
	return fmt.Sprintf("join from=%d ringseq=%d proc=%v fail=%v", j.Sender, j.RingSeq, j.Proc, j.Fail)
}

// String summarises the commit token.
func (c *CommitToken) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "commit ring=%v round=%d members=%v", c.Ring, c.Round, c.Members)
	for i, e := range c.Entries {
		if e.Filled {
			fmt.Fprintf(&b, " %d:{old=%v aru=%d high=%d safe=%d}", c.Members[i], e.OldRing, e.Aru, e.HighSeq, e.SafeSeq)
		}
	}
	return b.String()
}

// String summarises the merge detect.
func (m *MergeDetect) String() string {
	return fmt.Sprintf("merge-detect from=%d ring=%v", m.Sender, m.Ring)
}

// String summarises the hold cancel.
func (h *HoldCancel) String() string {
	return fmt.Sprintf("hold-cancel from=%d ring=%v", h.Sender, h.Ring)
}

// String summarises the leave.
func (l *Leave) String() string { return fmt.Sprintf("leave from=%d ring=%v", l.Sender, l.Ring) }
