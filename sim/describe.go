package sim

import (
	"fmt"
	"strings"

	"github.com/totem-gcs/totem/totem"
)

// DescribeTotemFrame names a Totem frame for the trace: its packet type
// and the fields that matter when reading a schedule (ring, sequence
// numbers, aru, retransmit requests, membership sets).
func DescribeTotemFrame(frame []byte) string {
	p, err := totem.Decode(frame)
	if err != nil {
		return fmt.Sprintf("undecodable frame(%dB): %v", len(frame), err)
	}
	switch p := p.(type) {
	case *totem.Token:
		var b strings.Builder
		fmt.Fprintf(&b, "token ring %v tseq %d seq %d aru %d/n%d fcc %d backlog %d", p.Ring, p.TokenSeq, p.Seq, p.Aru, p.AruSetter, p.FCC, p.Backlog)
		if len(p.Rtr) > 0 {
			fmt.Fprintf(&b, " rtr %v", p.Rtr)
		}
		if len(p.RecoveryPending) > 0 {
			fmt.Fprintf(&b, " recovery-pending %v", p.RecoveryPending)
		}
		if p.Install {
			b.WriteString(" INSTALL")
		}
		return b.String()
	case *totem.Mcast:
		if p.Recovery {
			return fmt.Sprintf("mcast ring %v seq %d from n%d recovering [%s]", p.Ring, p.Seq, p.Sender, DescribeTotemFrame(p.Inner))
		}
		var b strings.Builder
		fmt.Fprintf(&b, "mcast ring %v seq %d from n%d:", p.Ring, p.Seq, p.Sender)
		for _, e := range p.Entries {
			if int(e.Total) == len(e.Data) {
				fmt.Fprintf(&b, " %v %dB", e.Guarantee, e.Total)
			} else {
				fmt.Fprintf(&b, " %v %dB@%d/%d", e.Guarantee, len(e.Data), e.Offset, e.Total)
			}
		}
		return b.String()
	case *totem.Join:
		return fmt.Sprintf("join from n%d ringseq %d proc %v fail %v", p.Sender, p.RingSeq, p.Proc, p.Fail)
	case *totem.CommitToken:
		var b strings.Builder
		fmt.Fprintf(&b, "commit-token ring %v tseq %d round %d members %v:", p.Ring, p.TokenSeq, p.Round, p.Members)
		for i, e := range p.Entries {
			if !e.Filled {
				continue
			}
			id := totem.NodeID(0)
			if i < len(p.Members) {
				id = p.Members[i]
			}
			fmt.Fprintf(&b, " n%d(old %v aru %d high %d safe %d)", id, e.OldRing, e.Aru, e.HighSeq, e.SafeSeq)
		}
		return b.String()
	case *totem.MergeDetect:
		return fmt.Sprintf("merge-detect from n%d ring %v", p.Sender, p.Ring)
	case *totem.HoldCancel:
		return fmt.Sprintf("hold-cancel from n%d ring %v", p.Sender, p.Ring)
	case *totem.Leave:
		return fmt.Sprintf("leave from n%d ring %v", p.Sender, p.Ring)
	}
	return fmt.Sprintf("%v frame(%dB)", p.Type(), len(frame))
}
