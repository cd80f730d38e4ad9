package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/totem-gcs/totem/client"
	"github.com/totem-gcs/totem/ipc"
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

// SlowResult tells what became of the client that never read.
type SlowResult struct {
	Node         int    `json:"node"`
	Conn         uint64 `json:"conn"`
	Disconnected bool   `json:"disconnected"`
	// Reason is the daemon's reason, from its Bye if the client got it,
	// else from the daemon's log; Source says which ("bye", "log").
	Reason string `json:"reason,omitempty"`
	Source string `json:"source,omitempty"`
	// After is the time from the join to the disconnection, in seconds
	// (from the daemon's log; zero when unknown).
	After float64 `json:"after,omitempty"`
	// BytesRead is what the client read after the run, from the kernel's
	// socket buffers and the daemon (when it was not disconnected).
	BytesRead int64 `json:"bytes_read"`
}

// tasks runs functions in goroutines; the first error cancels the
// others' context and is returned by wait.
type tasks struct {
	wg     sync.WaitGroup
	once   sync.Once
	err    error
	cancel context.CancelFunc
}

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
}

func (hs *handles) add(node int, h *client.Handle, prefix string) {
	hs.node = append(hs.node, node)
	hs.readers = append(hs.readers, newReader(h, prefix))
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

// waitDelivered waits until every handle's count reaches want(i), or
// timeout, or a handle ends.
func (hs *handles) waitDelivered(ctx context.Context, timeout time.Duration, want func(i int) int64) error {
	deadline := time.Now().Add(timeout)
	for {
		short := -1
		for i, r := range hs.readers {
			if r.msgs.Load() < want(i) {
				short = i
				break
			}
		}
		if short < 0 {
			return nil
		}
		r := hs.readers[short]
		select {
		case <-r.done:
			return fmt.Errorf("handle on node %d ended after %d of %d messages: %v", hs.node[short], r.msgs.Load(), want(short), r.h.Err())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v, a handle on node %d had %d of %d messages", timeout, hs.node[short], r.msgs.Load(), want(short))
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
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
	want := make([]int64, len(hs.readers))
	for i, rd := range hs.readers {
		want[i] = int64(len(joins[rd.h]) * o.groupMsgs)
		res.Expected += want[i]
	}
	res.Sent = sent.Load()
	res.SentBytes = res.Sent * int64(o.groupSize)
	err := hs.waitDelivered(ctx, o.drain, func(i int) int64 { return want[i] })
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
		err = hs.waitDelivered(ctx, o.drain, func(int) int64 { return res.Sent })
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

// slowClient runs load while client processes on node 1 join the group
// and never read their sockets. Each is this program run again as a child
// (see slowChildMain): group members are processes, and this one's sender
// on node 1 is a member already.
func (r *runner) slowClient(ctx context.Context, res *Result) error {
	o := r.o
	p := r.c.procs[0]
	before, err := r.c.stats(ctx, p.id)
	if err != nil {
		return err
	}
	reads := "never read"
	if o.slowRate > 0 {
		reads = fmt.Sprintf("read only %s/s", sizeString(o.slowRate))
	}
	res.Done = fmt.Sprintf("%d client process(es) on node 1 joined the group and %s while one sender per node sent %s messages (agreed, safe) for at most %v, until %v after the daemon disconnected every slow client",
		o.slowClients, reads, sizeString(o.slowSize), o.slowTime, o.slowAfter)
	var children []*slowChild
	defer func() {
		for _, c := range children {
			c.kill()
		}
	}()
	var joinedAt []time.Time
	var cerr error
	err = r.load(ctx, res, "memload-busy", o.slowSize, o.slowTime, 0, func(ctx context.Context, stop func()) {
		for range o.slowClients {
			c, err := startSlowChild(ctx, p.socket, "memload-busy", o.slowRate)
			if err != nil {
				cerr = err
				stop()
				return
			}
			children = append(children, c)
			joinedAt = append(joinedAt, time.Now())
		}
		// Once the daemon has disconnected every slow client, send for
		// --slow-after more, then stop.
		h, err := r.c.connect(ctx, p.id, "memload-watch")
		if err != nil {
			return
		}
		defer h.Close()
		for ctx.Err() == nil {
			st, err := h.Stats(ctx)
			if err == nil && st["ipc.disconnected_slow"]-before["ipc.disconnected_slow"] >= uint64(o.slowClients) {
				if sleepCtx(ctx, o.slowAfter) == nil {
					stop()
				}
				return
			}
			sleepCtx(ctx, 100*time.Millisecond)
		}
	})
	if cerr != nil {
		return fmt.Errorf("slow client: %w", cerr)
	}
	if len(children) < o.slowClients {
		return err
	}
	for i, c := range children {
		sr := SlowResult{Node: p.id, Conn: c.conn}
		// The child now reads what is there: the socket buffers, then a
		// Bye or EOF if the daemon disconnected it, or more events if it
		// did not.
		rep, ferr := c.finish()
		if ferr != nil {
			return fmt.Errorf("slow client: %w", ferr)
		}
		sr.BytesRead = rep.Bytes
		if rep.Bye != "" {
			sr.Disconnected, sr.Reason, sr.Source = true, rep.Bye, "bye"
		} else if rep.Closed {
			sr.Disconnected = true
		}
		if reason, at, ok := findDisconnect(p.log, c.conn); ok {
			sr.Disconnected = true
			if sr.Reason == "" {
				sr.Reason, sr.Source = reason, "log"
			}
			if !at.IsZero() {
				sr.After = at.Sub(joinedAt[i]).Seconds()
			}
		}
		res.Slow = append(res.Slow, sr)
	}
	if after, e := r.c.stats(ctx, p.id); e == nil {
		res.SlowDrops = after["ipc.disconnected_slow"] - before["ipc.disconnected_slow"]
	}
	return err
}

// Environment of the slow client child process.
const (
	slowSocketEnv = "MEMLOAD_SLOW_SOCKET"
	slowGroupEnv  = "MEMLOAD_SLOW_GROUP"
	slowRateEnv   = "MEMLOAD_SLOW_RATE"
)

// slowReport is what the slow client child tells its parent: first its
// connection once joined (or an error), then, once its stdin closes, what
// it read.
type slowReport struct {
	Conn   uint64 `json:"conn,omitempty"`
	Error  string `json:"error,omitempty"`
	Bye    string `json:"bye,omitempty"`
	Bytes  int64  `json:"bytes"`
	Closed bool   `json:"closed"`
}

// isSlowChild reports whether this process was started as the slow client.
func isSlowChild() bool { return os.Getenv(slowSocketEnv) != "" }

// slowChildMain is the slow client: it joins the group, reports its
// connection on stdout, reads nothing (or reads at $MEMLOAD_SLOW_RATE
// bytes per second) until its stdin closes, then drains its socket at full
// speed for up to 3 seconds and reports what it found. It returns the exit
// status.
func slowChildMain() int {
	enc := json.NewEncoder(os.Stdout)
	rate, err := strconv.ParseInt(cmp.Or(os.Getenv(slowRateEnv), "0"), 10, 64)
	if err != nil || rate < 0 {
		enc.Encode(slowReport{Error: fmt.Sprintf("bad %s %q", slowRateEnv, os.Getenv(slowRateEnv))})
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	s, err := dialSlow(ctx, os.Getenv(slowSocketEnv), os.Getenv(slowGroupEnv))
	cancel()
	if err != nil {
		enc.Encode(slowReport{Error: err.Error()})
		return 1
	}
	enc.Encode(slowReport{Conn: s.id})
	tr := &trickleReader{r: s.c.NetConn()}
	tr.rate.Store(rate)
	done := make(chan slowReport, 1)
	read := func() {
		bye, closed := readFrames(bufio.NewReaderSize(tr, 64<<10), s.c.Limit)
		done <- slowReport{Bye: bye, Bytes: tr.n.Load(), Closed: closed}
	}
	if rate > 0 {
		go read()
	}
	io.Copy(io.Discard, os.Stdin)
	tr.rate.Store(0)
	s.c.SetDeadline(time.Now().Add(3 * time.Second))
	if rate == 0 {
		go read()
	}
	rep := <-done
	s.c.Close()
	enc.Encode(rep)
	return 0
}

// readFrames reads frames until an error and returns the daemon's Bye
// reason (if one came) and whether the connection was closed (rather than
// timed out).
func readFrames(rd *bufio.Reader, limit int) (bye string, closed bool) {
	for {
		f, err := ipc.ReadFrame(rd, limit)
		if err != nil {
			var ne net.Error
			return bye, !(errors.As(err, &ne) && ne.Timeout())
		}
		var m ipc.ServerMsg
		if ipc.Decode(f, &m) == nil && m.Kind == ipc.KindBye {
			bye = m.Bye
		}
	}
}

// trickleReader reads at most rate bytes per second (no limit when rate
// is 0) and counts the bytes read.
type trickleReader struct {
	r    io.Reader
	rate atomic.Int64
	n    atomic.Int64
}

func (t *trickleReader) Read(b []byte) (int, error) {
	rate := t.rate.Load()
	if rate > 0 && len(b) > 4096 {
		b = b[:4096]
	}
	n, err := t.r.Read(b)
	t.n.Add(int64(n))
	if rate > 0 && n > 0 {
		time.Sleep(time.Duration(int64(n) * int64(time.Second) / rate))
	}
	return n, err
}

// slowChild is a running slow client process.
type slowChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	conn  uint64
}

// startSlowChild starts the slow client and waits until it has joined.
// rate is the bytes per second it reads (0: nothing).
func startSlowChild(ctx context.Context, socket, group string, rate int) (*slowChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), slowSocketEnv+"="+socket, slowGroupEnv+"="+group, slowRateEnv+"="+strconv.Itoa(rate))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &slowChild{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	stopKill := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	defer stopKill()
	rep, err := c.report()
	if err != nil {
		c.kill()
		return nil, err
	}
	c.conn = rep.Conn
	return c, nil
}

// report reads the child's next report.
func (c *slowChild) report() (slowReport, error) {
	var rep slowReport
	if !c.out.Scan() {
		return rep, fmt.Errorf("slow client exited without a report (%v)", c.out.Err())
	}
	if err := json.Unmarshal(c.out.Bytes(), &rep); err != nil {
		return rep, fmt.Errorf("slow client: bad report %q", c.out.Text())
	}
	if rep.Error != "" {
		return rep, errors.New(rep.Error)
	}
	return rep, nil
}

// finish tells the child to drain its socket and returns its report.
func (c *slowChild) finish() (slowReport, error) {
	c.stdin.Close()
	t := time.AfterFunc(30*time.Second, func() { c.cmd.Process.Kill() })
	defer t.Stop()
	rep, err := c.report()
	if werr := c.cmd.Wait(); err == nil && werr != nil {
		err = werr
	}
	c.cmd = nil
	return rep, err
}

// kill ends the child if it still runs.
func (c *slowChild) kill() {
	if c.cmd != nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
		c.cmd = nil
	}
}

// slowConn is a raw IPC connection that stops reading after its join.
type slowConn struct {
	c  *ipc.Conn
	id uint64
}

// dialSlow connects to the daemon, joins group and reads nothing more.
func dialSlow(ctx context.Context, socket, group string) (*slowConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, err
	}
	c := ipc.NewConn(nc, 2<<20)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fail := func(err error) (*slowConn, error) { c.Close(); return nil, err }
	if err := c.Write(ipc.Hello{Magic: ipc.Magic, Version: ipc.Version, Name: "memload-slow"}); err != nil {
		return fail(err)
	}
	var m ipc.ServerMsg
	if err := c.Read(&m); err != nil {
		return fail(err)
	}
	if m.Kind != ipc.KindWelcome || m.Welcome == nil {
		return fail(fmt.Errorf("no welcome: %q", m.Bye))
	}
	c.Limit = m.Welcome.MaxMessage + ipc.FrameOverhead
	s := &slowConn{c: c, id: m.Welcome.ConnID}
	if err := c.Write(ipc.Request{ID: 1, Op: ipc.OpJoin, Group: group}); err != nil {
		return fail(err)
	}
	for {
		var m ipc.ServerMsg
		if err := c.Read(&m); err != nil {
			return fail(fmt.Errorf("join: %w", err))
		}
		if m.Kind == ipc.KindBye {
			return fail(fmt.Errorf("join: daemon said bye: %s", m.Bye))
		}
		if m.Kind == ipc.KindReply && m.Reply != nil && m.Reply.ID == 1 {
			if m.Reply.Code != ipc.OK {
				return fail(fmt.Errorf("join: %s", m.Reply.Error))
			}
			break
		}
	}
	c.SetDeadline(time.Time{})
	return s, nil
}

// findDisconnect looks in a daemon's JSON log for the disconnection of
// connection conn and returns its reason and time.
func findDisconnect(path string, conn uint64) (string, time.Time, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", time.Time{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct {
			Time   time.Time `json:"time"`
			Msg    string    `json:"msg"`
			Conn   uint64    `json:"conn"`
			Reason string    `json:"reason"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		if rec.Msg == "ipc: client disconnected" && rec.Conn == conn && rec.Reason != "" {
			return rec.Reason, rec.Time, true
		}
	}
	return "", time.Time{}, false
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
