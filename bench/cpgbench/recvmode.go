package main

import (
	"context"
	"fmt"
	"time"
)

// recvResult is what --recv saw.
type recvResult struct {
	Msgs  uint64  `json:"msgs"`
	Bytes uint64  `json:"bytes"`
	Secs  float64 `json:"secs"`
}

// runRecv stays in the group and counts deliveries until ctx ends (a
// signal) or --recv-time passes; a member like cpgperf's recv, so that
// every node of a benchmark delivers to a client.
func (b *bench) runRecv(ctx context.Context) (recvResult, error) {
	if b.opts.recvTime > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.recvTime)
		defer cancel()
	}
	start := time.Now()
	var lastMsgs, lastBytes uint64
	last := start
	stop := b.progress.every(time.Second, func(final bool) string {
		m, by := b.recv.totals()
		now := time.Now()
		el := now.Sub(last).Seconds()
		line := fmt.Sprintf("recv: %d msgs %.2f MB total, %.0f msgs/s %.2f MB/s", m, float64(by)/1e6,
			float64(m-lastMsgs)/el, float64(by-lastBytes)/el/1e6)
		lastMsgs, lastBytes, last = m, by, now
		return line
	})
	defer stop()
	select {
	case <-ctx.Done():
	case <-b.h.Done():
		return recvResult{}, b.h.Err()
	}
	stop()
	m, by := b.recv.totals()
	return recvResult{Msgs: m, Bytes: by, Secs: time.Since(start).Seconds()}, nil
}
