package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/totem-gcs/totem/client"
)

// Result is the outcome of one scenario.
type Result struct {
	Scenario string `json:"scenario"`
	// Round numbers the repetitions of --repeat (0: not repeated).
	Round int `json:"round,omitempty"`
	// Done says what the scenario did, in words.
	Done    string  `json:"done"`
	Seconds float64 `json:"seconds"`
	// Sent counts the messages the daemons accepted, SentBytes their
	// payload; Delivered counts deliveries to the scenario's readers,
	// Expected the deliveries due to them; Undelivered the messages the
	// cluster reported discarded.
	Sent        int64 `json:"sent"`
	SentBytes   int64 `json:"sent_bytes"`
	Delivered   int64 `json:"delivered"`
	Expected    int64 `json:"expected"`
	Undelivered int64 `json:"undelivered"`
	// Nodes holds each daemon's memory.
	Nodes []NodeMem `json:"nodes"`
	// Slow is the fate of each client that never read, and SlowDrops the
	// increase of node 1's ipc.disconnected_slow counter (slow-client
	// scenario only).
	Slow      []SlowResult `json:"slow,omitempty"`
	SlowDrops uint64       `json:"slow_drops,omitempty"`
	// RingStable tells whether the ring stayed the same during the scenario.
	RingStable bool     `json:"ring_stable"`
	Notes      []string `json:"notes,omitempty"`
}

// tasks runs functions in goroutines; the first error cancels the
// others' context and is returned by Wait.
type tasks struct {
	wg     sync.WaitGroup
	once   sync.Once
	err    error
	cancel context.CancelFunc
}

// newTasks returns an empty set of tasks and the context they should use.
func newTasks(ctx context.Context) (*tasks, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	return &tasks{cancel: cancel}, ctx
}

// Go runs f in a goroutine.
func (t *tasks) Go(f func() error) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		if err := f(); err != nil {
			t.once.Do(func() { t.err = err; t.cancel() })
		}
	}()
}

// Wait waits for every function and returns the first error.
func (t *tasks) Wait() error {
	t.wg.Wait()
	t.cancel()
	return t.err
}

// reader counts what one handle receives.
type reader struct {
	h           *client.Handle
	msgs        atomic.Int64
	undelivered atomic.Int64
	done        chan struct{}
}

// newReader starts reading h's events, counting messages to groups that
// start with prefix.
func newReader(h *client.Handle, prefix string) *reader {
	r := &reader{h: h, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ev := range h.Events() {
			switch ev := ev.(type) {
			case *client.Message:
				if strings.HasPrefix(ev.Group, prefix) {
					r.msgs.Add(1)
				}
			case *client.Undelivered:
				r.undelivered.Add(1)
			}
		}
	}()
	return r
}

// handles is a set of client handles with their readers.
type handles struct {
	node    []int // node of each handle
	readers []*reader
	want    []int64 // messages due to each handle
}

func (hs *handles) add(node int, h *client.Handle, prefix string) {
	hs.node = append(hs.node, node)
	hs.readers = append(hs.readers, newReader(h, prefix))
	hs.want = append(hs.want, 0)
}

func (hs *handles) closeAll() {
	for _, r := range hs.readers {
		r.h.Close()
		<-r.done
	}
}

func (hs *handles) delivered() (msgs, undelivered int64) {
	for _, r := range hs.readers {
		msgs += r.msgs.Load()
		undelivered += r.undelivered.Load()
	}
	return
}

// waitDelivered waits until every handle's count reaches want(i), less
// the messages the cluster reported undelivered to their senders (after a
// configuration change; such a message may miss any receiver), or
// timeout, or a handle ends. After a ring change, a receiver that was cut
// off misses the messages of the configurations it was not in (virtual
// synchrony allows that): once changed reports a change and no delivery
// came for quiet, it stops waiting and reports short.
func (hs *handles) waitDelivered(ctx context.Context, timeout time.Duration, changed func() bool) (short bool, err error) {
	const quiet = 3 * time.Second
	deadline := time.Now().Add(timeout)
	lastTotal, lastProgress := int64(-1), time.Now()
	for {
		total, lost := hs.delivered()
		if total != lastTotal {
			lastTotal, lastProgress = total, time.Now()
		}
		behind := -1
		for i, r := range hs.readers {
			if r.msgs.Load() < hs.want[i]-lost {
				behind = i
				break
			}
		}
		if behind < 0 {
			return false, nil
		}
		r := hs.readers[behind]
		select {
		case <-r.done:
			return true, fmt.Errorf("handle on node %d ended after %d of %d messages: %v", hs.node[behind], r.msgs.Load(), hs.want[behind], r.h.Err())
		default:
		}
		if time.Since(lastProgress) > quiet && changed() {
			return true, nil
		}
		if time.Now().After(deadline) {
			return true, fmt.Errorf("after %v, a handle on node %d had %d of %d messages", timeout, hs.node[behind], r.msgs.Load(), hs.want[behind])
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return true, err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// guarantee alternates Agreed and Safe.
func guarantee(i int) client.Guarantee {
	if i%2 == 0 {
		return client.Agreed
	}
	return client.Safe
}

// payload returns n random bytes.
func payload(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// baseline lets the cluster idle.
func (r *runner) baseline(ctx context.Context, res *Result) error {
	res.Done = fmt.Sprintf("cluster idle for %v", r.o.baselineTime)
	return sleepCtx(ctx, r.o.baselineTime)
}

// groups joins r.o.groups groups, each by handles on r.o.groupMembers
// nodes, and has each group's first member send r.o.groupMsgs messages to
// it (Agreed and Safe in turn).
func (r *runner) groups(ctx context.Context, res *Result) error {
	o := r.o
	n := len(r.c.procs)
	var hs handles
	defer hs.closeAll()
	byNode := make([][]*client.Handle, n)
	for node := 1; node <= n; node++ {
		for k := 0; k < o.groupHandles; k++ {
			h, err := r.c.connect(ctx, node, fmt.Sprintf("memload-groups-%d", k))
			if err != nil {
				return err
			}
			hs.add(node, h, "memload-g")
			byNode[node-1] = append(byNode[node-1], h)
		}
	}
	members := min(o.groupMembers, n)
	// Group g's j-th member is handle (g/n)%groupHandles on node
	// (g+j)%n + 1: one handle per node, so one process joins each group
	// at most once per node.
	member := func(g, j int) *client.Handle { return byNode[(g+j)%n][(g/n)%o.groupHandles] }
	// New names every round: state kept per name would show as a leak.
	name := func(g int) string { return fmt.Sprintf("memload-g%d-%04d", r.round, g) }
	joins := map[*client.Handle][]int{}
	sends := map[*client.Handle][]int{}
	for g := 0; g < o.groups; g++ {
		for j := 0; j < members; j++ {
			joins[member(g, j)] = append(joins[member(g, j)], g)
		}
		sends[member(g, 0)] = append(sends[member(g, 0)], g)
	}
	start := time.Now()
	ts, tctx := newTasks(ctx)
	for h, gs := range joins {
		ts.Go(func() error {
			jctx, cancel := context.WithTimeout(tctx, o.drain)
			defer cancel()
			for _, g := range gs {
				if err := h.Join(jctx, name(g)); err != nil {
					return fmt.Errorf("join %s: %w", name(g), err)
				}
			}
			return nil
		})
	}
	if err := ts.Wait(); err != nil {
		return err
	}
	// Send once every member is in: no message may miss one.
	last := name(o.groups - 1)
	for _, h := range []*client.Handle{member(o.groups-1, 0)} {
		for {
			ms, err := h.Members(ctx, last)
			if err != nil {
				return err
			}
			if len(ms) == members {
				break
			}
			if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
				return err
			}
		}
	}
	joined := time.Since(start)
	data := payload(o.groupSize)
	var sent atomic.Int64
	ts, tctx = newTasks(ctx)
	for h, gs := range sends {
		ts.Go(func() error {
			sctx, cancel := context.WithTimeout(tctx, o.drain)
			defer cancel()
			for i := 0; i < o.groupMsgs; i++ {
				for _, g := range gs {
					if err := h.Send(sctx, name(g), data, guarantee(i)); err != nil {
						return fmt.Errorf("send to %s: %w", name(g), err)
					}
					sent.Add(1)
				}
			}
			return nil
		})
	}
	if err := ts.Wait(); err != nil {
		return err
	}
	for i, rd := range hs.readers {
		hs.want[i] = int64(len(joins[rd.h]) * o.groupMsgs)
		res.Expected += hs.want[i]
	}
	res.Sent = sent.Load()
	res.SentBytes = res.Sent * int64(o.groupSize)
	short, err := hs.waitDelivered(ctx, o.drain, r.ringChanged)
	if short && err == nil {
		res.Notes = append(res.Notes, "deliveries short after a ring change")
	}
	res.Delivered, res.Undelivered = hs.delivered()
	res.Done = fmt.Sprintf("%d groups, each joined on %d node(s), by %d handles (%d per node) in %.1fs; %d messages of %s sent to each group (agreed, safe)",
		o.groups, members, len(hs.readers), o.groupHandles, joined.Seconds(), o.groupMsgs, sizeString(o.groupSize))
	return err
}

// load has one sender on every node send size-byte messages to group at
// full rate for d (at most count each; 0: no limit), while every sender
// also reads. One per node: a process is a group's member once per node,
// and every sender here is this process. during, if not nil, runs once
// the senders have joined; it must return when ctx is done, and may call
// stop to end the sending early.
func (r *runner) load(ctx context.Context, res *Result, group string, size int, d time.Duration, count int,
	during func(ctx context.Context, stop func())) error {
	o := r.o
	var hs handles
	defer hs.closeAll()
	for node := 1; node <= len(r.c.procs); node++ {
		h, err := r.c.connect(ctx, node, "memload-sender")
		if err != nil {
			return err
		}
		hs.add(node, h, group)
	}
	for i, rd := range hs.readers {
		jctx, cancel := context.WithTimeout(ctx, o.drain)
		err := rd.h.Join(jctx, group)
		cancel()
		if err != nil {
			return fmt.Errorf("node %d: join %s: %w", hs.node[i], group, err)
		}
	}
	// Wait until every sender sees every other as a member, so that no
	// message is sent before all can receive it.
	for i, rd := range hs.readers {
		for {
			ms, err := rd.h.Members(ctx, group)
			if err != nil {
				return err
			}
			if len(ms) == len(hs.readers) {
				break
			}
			if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
				return fmt.Errorf("node %d: %d of %d members in %s: %w", hs.node[i], len(ms), len(hs.readers), group, err)
			}
		}
	}
	var wg sync.WaitGroup
	dctx, dcancel := context.WithCancel(ctx)
	defer dcancel()
	var stopped atomic.Bool
	if during != nil {
		wg.Add(1)
		go func() { defer wg.Done(); during(dctx, func() { stopped.Store(true) }) }()
	}
	data := payload(size)
	until := time.Now().Add(d)
	var sent atomic.Int64
	eg, ectx := newTasks(ctx)
	for i, rd := range hs.readers {
		eg.Go(func() error {
			for k := 0; (count == 0 || k < count) && time.Now().Before(until) && !stopped.Load(); k++ {
				sctx, cancel := context.WithTimeout(ectx, o.drain)
				err := rd.h.Send(sctx, group, data, guarantee(k))
				cancel()
				if err != nil {
					return fmt.Errorf("node %d: send: %w", hs.node[i], err)
				}
				sent.Add(1)
			}
			return nil
		})
	}
	err := eg.Wait()
	res.Sent = sent.Load()
	res.SentBytes = res.Sent * int64(size)
	res.Expected = res.Sent * int64(len(hs.readers))
	if err == nil {
		for i := range hs.want {
			hs.want[i] = res.Sent
		}
		var short bool
		short, err = hs.waitDelivered(ctx, o.drain, r.ringChanged)
		if short && err == nil {
			res.Notes = append(res.Notes, "deliveries short after a ring change")
		}
	}
	dcancel()
	wg.Wait()
	res.Delivered, res.Undelivered = hs.delivered()
	return err
}

// big sends 1 MiB messages (--big-size) from every node.
func (r *runner) big(ctx context.Context, res *Result) error {
	o := r.o
	most := "no limit"
	if o.bigCount > 0 {
		most = fmt.Sprintf("at most %d each", o.bigCount)
	}
	res.Done = fmt.Sprintf("one sender per node sent %s messages to one group for %v (%s; agreed, safe); every sender reads",
		sizeString(o.bigSize), o.bigTime, most)
	return r.load(ctx, res, "memload-big", o.bigSize, o.bigTime, o.bigCount, nil)
}

// sizeString prints a byte count with a binary unit.
func sizeString(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
