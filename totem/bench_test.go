package totem

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkRing measures messages per second through a 3-node ring over
// the in-memory network: one node proposes, every node delivers. The
// figure is engine CPU only (no sockets, no crypto); allocs/op counts the
// engines and the harness together, per message.
func BenchmarkRing(b *testing.B) {
	for _, size := range []int{64, 1024, 64 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			c := newTestCluster(b, 3, func(id NodeID) Config {
				cfg := FastConfig(id)
				cfg.MaxQueueBytes = 64 << 20
				return cfg
			})
			c.keep = false
			c.run(300 * time.Millisecond)
			payload := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			proposed := 0
			for proposed < b.N {
				for proposed < b.N && c.nodes[1].Propose(payload, Agreed) == nil {
					proposed++
				}
				c.run(100 * time.Microsecond)
			}
			for c.count[3] < b.N || c.count[2] < b.N || c.count[1] < b.N {
				c.run(100 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
