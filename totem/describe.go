package totem

import (
	"fmt"
	"strings"
)

// Describe returns a one-line readable summary of a frame, for traces and
// packet dumps, with every field as name=value; a frame that does not
// decode is described by its error.
func Describe(frame []byte) string {
	p, err := Decode(frame)
	if err != nil {
		return fmt.Sprintf("frame of %d bytes that the engine cannot decode: %v", len(frame), err)
	}
	return fmt.Sprint(p)
}

// String summarises the token.
func (t *Token) String() string {
	s := fmt.Sprintf("token ring=%v token_seq=%d seq=%d aru=%d aru_setter=%d fcc=%d backlog=%d rtr=%v",
		t.Ring, t.TokenSeq, t.Seq, t.Aru, t.AruSetter, t.FCC, t.Backlog, t.Rtr)
	if len(t.RecoveryPending) > 0 {
		s += fmt.Sprintf(" recovery_pending=%v", t.RecoveryPending)
	}
	if t.Install {
		s += " install"
	}
	return s
}

// String summarises the frame.
func (m *Mcast) String() string {
	s := fmt.Sprintf("mcast ring=%v seq=%d sender=%d", m.Ring, m.Seq, m.Sender)
	if m.Recovery {
		return s + fmt.Sprintf(" recovery inner=(%s)", Describe(m.Inner))
	}
	es := make([]string, len(m.Entries))
	for i, e := range m.Entries {
		if e.Offset == 0 && int(e.Total) == len(e.Data) {
			es[i] = fmt.Sprintf("%v %dB", e.Guarantee, len(e.Data))
		} else {
			es[i] = fmt.Sprintf("%v %dB@%d/%d", e.Guarantee, len(e.Data), e.Offset, e.Total)
		}
	}
	return s + fmt.Sprintf(" entries=%d [%s]", len(m.Entries), strings.Join(es, ", "))
}

// String summarises the join.
func (j *Join) String() string {
	return fmt.Sprintf("join sender=%d ring_seq=%d proc=%v fail=%v", j.Sender, j.RingSeq, j.Proc, j.Fail)
}

// String summarises the commit token.
func (c *CommitToken) String() string {
	es := make([]string, len(c.Entries))
	for i, e := range c.Entries {
		id := NodeID(0)
		if i < len(c.Members) {
			id = c.Members[i]
		}
		if !e.Filled {
			es[i] = fmt.Sprintf("%d:-", id)
			continue
		}
		es[i] = fmt.Sprintf("%d:{old=%v aru=%d high=%d safe=%d}", id, e.OldRing, e.Aru, e.HighSeq, e.SafeSeq)
	}
	return fmt.Sprintf("commit ring=%v token_seq=%d round=%d members=%v entries=[%s]", c.Ring, c.TokenSeq, c.Round, c.Members, strings.Join(es, " "))
}

// String summarises the merge detect.
func (m *MergeDetect) String() string {
	return fmt.Sprintf("merge_detect sender=%d ring=%v", m.Sender, m.Ring)
}

// String summarises the hold cancel.
func (h *HoldCancel) String() string {
	return fmt.Sprintf("hold_cancel sender=%d ring=%v", h.Sender, h.Ring)
}

// String summarises the leave.
func (l *Leave) String() string { return fmt.Sprintf("leave sender=%d ring=%v", l.Sender, l.Ring) }
