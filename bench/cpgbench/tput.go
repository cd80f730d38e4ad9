package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/totem-gcs/totem/client"
)

// tputResult is the outcome of one throughput phase. Rates follow
// cpgperf: own messages per second over the time from the phase start to
// the last own delivery; MB are 10^6 bytes of payload (header included).
type tputResult struct {
	Size      int     `json:"size"`
	Sent      uint64  `json:"sent"`      // messages the daemon accepted
	Delivered uint64  `json:"delivered"` // own messages delivered back (no duplicates)
	Secs      float64 `json:"secs"`      // phase start to the last own delivery
	OwnMsgsS  float64 `json:"own_msgs_s"`
	OwnMBs    float64 `json:"own_mb_s"`
	AllMsgsS  float64 `json:"all_msgs_s"` // any sender's messages delivered here during the window, per second
	AllMBs    float64 `json:"all_mb_s"`
	TryAgain  uint64  `json:"try_again"`  // sends the daemon answered with try-again
	Lost      uint64  `json:"lost"`       // accepted but never delivered back
	Dups      uint64  `json:"duplicates"` // delivered back more than once
	Reordered uint64  `json:"reordered"`  // delivered back out of one worker's send order
	Unknown   uint64  `json:"unknown"`    // delivered back but never accepted
	Started   string  `json:"started"`    // wall-clock start of the phase (RFC 3339)
}

// faulty reports whether the phase saw lost, duplicated, reordered or
// invented messages.
func (r tputResult) faulty() bool {
	return r.Lost+r.Dups+r.Reordered+r.Unknown > 0
}

// runThroughput runs one phase per size.
func (b *bench) runThroughput(ctx context.Context) ([]tputResult, error) {
	var out []tputResult
	for k, size := range b.opts.sizes {
		var start time.Time
		if !b.opts.startAt.IsZero() {
			start = b.opts.startAt.Add(time.Duration(k) * (b.opts.duration + b.opts.gap))
			if wait := time.Until(start); wait > 0 {
				b.progress.note("size %d B: starting at %s (in %.1fs)", size, start.Format("15:04:05.000"), wait.Seconds())
				if err := sleep(ctx, wait); err != nil {
					return out, err
				}
			} else {
				b.progress.warn("size %d B: start time %s has passed; starting now", size, start.Format("15:04:05.000"))
			}
		}
		res, err := b.phase(ctx, uint32(k), size)
		if err != nil {
			return out, err
		}
		out = append(out, res)
	}
	return out, nil
}

// phase sends size-byte messages for the configured duration from
// opts.inflight concurrent workers, then waits for every accepted message
// to come back.
func (b *bench) phase(ctx context.Context, index uint32, size int) (tputResult, error) {
	r := b.recv
	start := time.Now()
	p := &tputPhase{index: index, size: size, start: start, windowEnd: start.Add(b.opts.duration)}
	r.mu.Lock()
	r.phase = p
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.phase = nil
		r.mu.Unlock()
	}()

	var nextSeq, sent, tryAgain atomic.Uint64
	var wg sync.WaitGroup
	errc := make(chan error, b.opts.inflight)
	if !b.opts.syncSends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.pipelined(ctx, p, index, size, &nextSeq, &sent, &tryAgain); err != nil {
				errc <- err
			}
		}()
	}
	for w := 0; w < b.opts.inflight && b.opts.syncSends; w++ {
		wg.Add(1)
		go func(worker uint32) {
			defer wg.Done()
			buf := fill(size)
			hd := header{Kind: kindThroughput, Phase: index, Worker: worker, Run: b.run}
			for time.Now().Before(p.windowEnd) {
				hd.Seq = nextSeq.Add(1) - 1
				hd.put(buf)
				for {
					err := b.h.TrySend(ctx, b.opts.group, buf, b.opts.guarantee)
					if err == nil {
						sent.Add(1)
						r.mu.Lock()
						p.accepted.add(hd.Seq)
						r.mu.Unlock()
						break
					}
					if !errors.Is(err, client.ErrTryAgain) {
						errc <- err
						return
					}
					tryAgain.Add(1)
					// Wait for one of our messages to come back (the ring
					// made room), at most a millisecond, like cpgperf.
					t := time.NewTimer(time.Millisecond)
					select {
					case <-r.kick:
					case <-t.C:
					case <-ctx.Done():
					}
					t.Stop()
					if ctx.Err() != nil {
						errc <- ctx.Err()
						return
					}
					if !time.Now().Before(p.windowEnd) {
						return // seq abandoned: never accepted, not expected back
					}
				}
			}
		}(uint32(w))
	}
	stopProgress := b.progress.every(time.Second, func(final bool) string {
		r.mu.Lock()
		got := p.delivered
		r.mu.Unlock()
		el := time.Since(start).Seconds()
		return fmt.Sprintf("size %d B: %.1fs sent %d back %d (%.0f msgs/s) try-again %d",
			size, el, sent.Load(), got, float64(got)/el, tryAgain.Load())
	})
	defer stopProgress()
	wg.Wait()
	select {
	case err := <-errc:
		return tputResult{}, fmt.Errorf("size %d B: send: %w", size, err)
	default:
	}

	// Drain: wait until every accepted message came back.
	drainEnd := time.Now().Add(b.opts.drainTimeout)
	for {
		r.mu.Lock()
		got := p.delivered
		r.mu.Unlock()
		if got >= sent.Load() {
			break
		}
		if time.Now().After(drainEnd) {
			b.progress.warn("size %d B: %d of %d messages did not come back within %v", size, sent.Load()-got, sent.Load(), b.opts.drainTimeout)
			break
		}
		select {
		case <-r.kick:
		case <-time.After(10 * time.Millisecond):
		case <-b.h.Done():
			return tputResult{}, fmt.Errorf("size %d B: %w", size, b.h.Err())
		case <-ctx.Done():
			return tputResult{}, ctx.Err()
		}
	}
	stopProgress()

	r.mu.Lock()
	defer r.mu.Unlock()
	res := tputResult{
		Size:      size,
		Sent:      sent.Load(),
		Delivered: p.delivered,
		TryAgain:  tryAgain.Load(),
		Dups:      p.dups,
		Reordered: p.reordered,
		Lost:      p.accepted.andNotCount(p.seen),
		Unknown:   p.seen.andNotCount(p.accepted),
		Started:   start.UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
	}
	secs := p.lastOwn.Sub(start).Seconds()
	if p.delivered == 0 || secs <= 0 {
		secs = b.opts.duration.Seconds()
	}
	res.Secs = secs
	res.OwnMsgsS = float64(res.Delivered) / secs
	res.OwnMBs = res.OwnMsgsS * float64(size) / 1e6
	window := b.opts.duration.Seconds()
	res.AllMsgsS = float64(p.allMsgs) / window
	res.AllMBs = float64(p.allBytes) / window / 1e6
	return res, nil
}

// pipelined sends from one goroutine with SendAsync, keeping up to
// opts.inflight requests unanswered. Slot w is worker w of the header: it
// has at most one message in flight, and sends a message refused with
// try-again again (after one of our messages came back, or a millisecond)
// before its next one, so that each worker's messages stay in order.
// With opts.ahead > 0, no new message is started while that many sent
// ones have not come back yet (a window on deliveries: the daemon's queue
// is refilled as the ring empties it, with fewer refusals).
func (b *bench) pipelined(ctx context.Context, p *tputPhase, index uint32, size int, nextSeq, sent, tryAgain *atomic.Uint64) error {
	type result struct {
		slot int
		err  error
	}
	n := b.opts.inflight
	// At most one result per slot is ever waiting: done never blocks.
	results := make(chan result, n)
	bufs := make([][]byte, n)
	hds := make([]header, n)
	dones := make([]func(error), n)
	ready := make([]int, 0, n) // slots to send now
	var retry []int            // slots refused, waiting to send again
	var idle []int             // slots held back by the delivery window
	outstanding := 0           // requests not answered yet
	open := func() bool { return time.Now().Before(p.windowEnd) }
	// full reports whether the delivery window is full: messages sent or
	// being sent that have not come back.
	full := func() bool {
		if b.opts.ahead <= 0 {
			return false
		}
		b.recv.mu.Lock()
		back := p.delivered
		b.recv.mu.Unlock()
		return sent.Load()+uint64(outstanding+len(ready)+len(retry)) >= back+uint64(b.opts.ahead)
	}
	start := func(s int) {
		if full() {
			idle = append(idle, s)
			return
		}
		hds[s].Seq = nextSeq.Add(1) - 1
		hds[s].put(bufs[s])
		ready = append(ready, s)
	}
	release := func() {
		for len(idle) > 0 && open() && !full() {
			s := idle[len(idle)-1]
			idle = idle[:len(idle)-1]
			start(s)
		}
	}
	for s := range n {
		bufs[s] = fill(size)
		hds[s] = header{Kind: kindThroughput, Phase: index, Worker: uint32(s), Run: b.run}
		dones[s] = func(err error) { results <- result{s, err} }
		start(s)
	}
	handle := func(r result) error {
		outstanding--
		switch {
		case r.err == nil:
			sent.Add(1)
			b.recv.mu.Lock()
			p.accepted.add(hds[r.slot].Seq)
			b.recv.mu.Unlock()
			if open() {
				start(r.slot)
			}
		case errors.Is(r.err, client.ErrTryAgain):
			tryAgain.Add(1)
			retry = append(retry, r.slot)
		default:
			return r.err
		}
		return nil
	}
	requeue := func() {
		// After the window a refused seq is abandoned: never accepted,
		// not expected back.
		if open() {
			ready = append(ready, retry...)
		}
		retry = retry[:0]
	}
	var retryC <-chan time.Time
	var idleC <-chan time.Time
	for {
		for _, s := range ready {
			err := b.h.SendAsync(ctx, b.opts.group, bufs[s], b.opts.guarantee, dones[s])
			switch {
			case err == nil:
				outstanding++
			case errors.Is(err, client.ErrTryAgain):
				tryAgain.Add(1)
				retry = append(retry, s)
			default:
				return err
			}
		}
		ready = ready[:0]
		if outstanding == 0 && (len(retry) == 0 || !open()) && (len(idle) == 0 || !open()) {
			return nil
		}
		if len(retry) > 0 && retryC == nil {
			retryC = time.After(time.Millisecond)
		}
		if len(idle) > 0 && idleC == nil {
			// Deliveries kick us; this only bounds the wait.
			idleC = time.After(time.Millisecond)
		}
		select {
		case r := <-results:
			if err := handle(r); err != nil {
				return err
			}
			for more := true; more; {
				select {
				case r := <-results:
					if err := handle(r); err != nil {
						return err
					}
				default:
					more = false
				}
			}
		case <-retryC:
			retryC = nil
			requeue()
		case <-idleC:
			idleC = nil
		case <-b.recv.kick:
			if len(retry) > 0 {
				retryC = nil
				requeue()
			}
		case <-b.h.Done():
			return b.h.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
		release()
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
