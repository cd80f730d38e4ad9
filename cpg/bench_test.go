package cpg_test

import (
	"fmt"
	"testing"

	"github.com/totem-gcs/totem/cpg"
	"github.com/totem-gcs/totem/totem"
)

// loopback is a Proposer that hands every proposal straight back.
type loopback struct {
	svc  *cpg.Service
	last []byte
	g    totem.Guarantee
}

func (l *loopback) Propose(p []byte, g totem.Guarantee) error {
	l.last, l.g = p, g
	return nil
}

// BenchmarkSendDeliver measures one Send and the Deliver of the resulting
// payload to a group with four local members (the per-message cost of the
// service, without Totem).
func BenchmarkSendDeliver(b *testing.B) {
	for _, size := range []int{64, 1024, 16 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			l := &loopback{}
			svc := cpg.New(1, l)
			l.svc = svc
			deliver := func() {
				svc.Deliver(totem.Delivery{Sender: 1, Guarantee: l.g, Payload: l.last})
			}
			svc.Deliver(totem.Delivery{Config: &totem.ConfigChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 1}, Members: totem.NodeSet{1}}})
			deliver() // the sync announcement
			for i := range 4 {
				if err := svc.Join(cpg.ConnID(i+1), uint32(100+i), "bench"); err != nil {
					b.Fatal(err)
				}
				deliver()
			}
			svc.Events()
			data := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := svc.Send(1, 100, "bench", data, totem.Agreed); err != nil {
					b.Fatal(err)
				}
				deliver()
				if len(svc.Events()) != 4 {
					b.Fatal("expected four deliveries")
				}
			}
		})
	}
}
