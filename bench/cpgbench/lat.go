package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/totem-gcs/totem/client"
)

// latResult is the self-delivery latency of one size: the time from
// handing a message to the daemon until it is delivered back, one message
// at a time, in microseconds.
type latResult struct {
	Size  int     `json:"size"`
	N     int     `json:"n"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	Max   float64 `json:"max_us"`
	Mean  float64 `json:"mean_us"`
	Retry uint64  `json:"try_again"`
}

// latTimeout bounds the wait for one message to come back.
const latTimeout = 10 * time.Second

// runLatency measures every size in turn.
func (b *bench) runLatency(ctx context.Context) ([]latResult, error) {
	var out []latResult
	var seq uint64
	// One message is in flight at a time: the channel never fills.
	sendErr := make(chan error, 1)
	refused := func(err error) {
		if err != nil {
			sendErr <- err
		}
	}
	for k, size := range b.opts.sizes {
		buf := fill(size)
		hd := header{Kind: kindLatency, Phase: uint32(k), Run: b.run}
		warm := b.opts.count / 10
		samples := make([]time.Duration, 0, b.opts.count)
		var retries uint64
		var done atomic.Int64
		stop := b.progress.every(time.Second, func(bool) string {
			return fmt.Sprintf("latency %d B: %d/%d", size, done.Load(), b.opts.count+warm)
		})
		for i := -warm; i < b.opts.count; i++ {
			seq++
			hd.Seq = seq
			hd.put(buf)
			b.recv.expectLatency(seq)
			t0 := time.Now()
			// SendAsync: only the delivery wakes us, or a refusal
			// (done reports errors only).
			t := time.NewTimer(latTimeout)
		wait:
			for {
				if err := b.h.SendAsync(ctx, b.opts.group, buf, b.opts.guarantee, refused); err != nil && !errors.Is(err, client.ErrTryAgain) {
					stop()
					return out, fmt.Errorf("latency %d B: send: %w", size, err)
				} else if err != nil {
					retries++
					if err := sleep(ctx, 100*time.Microsecond); err != nil {
						stop()
						return out, err
					}
					continue
				}
				select {
				case t1 := <-b.recv.lat:
					if i >= 0 {
						samples = append(samples, t1.Sub(t0))
					}
					break wait
				case err := <-sendErr:
					if !errors.Is(err, client.ErrTryAgain) {
						stop()
						return out, fmt.Errorf("latency %d B: send: %w", size, err)
					}
					retries++
					if err := sleep(ctx, 100*time.Microsecond); err != nil {
						stop()
						return out, err
					}
				case <-t.C:
					stop()
					return out, fmt.Errorf("latency %d B: message %d did not come back within %v", size, seq, latTimeout)
				case <-b.h.Done():
					stop()
					return out, fmt.Errorf("latency %d B: %w", size, b.h.Err())
				case <-ctx.Done():
					stop()
					return out, ctx.Err()
				}
			}
			t.Stop()
			done.Store(int64(i + warm + 1))
		}
		stop()
		res := summarize(samples)
		res.Size, res.Retry = size, retries
		out = append(out, res)
	}
	return out, nil
}

// summarize computes the percentiles of samples (nearest rank, as
// cpgperf: the sample at index floor(n*q) of the sorted samples).
func summarize(samples []time.Duration) latResult {
	n := len(samples)
	if n == 0 {
		return latResult{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	at := func(q float64) float64 { return us(s[min(int(float64(n)*q), n-1)]) }
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return latResult{N: n, P50: at(0.5), P90: at(0.9), P99: at(0.99), Max: us(s[n-1]), Mean: us(sum / time.Duration(n))}
}
