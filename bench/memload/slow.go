package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/totem-gcs/totem/ipc"
)

// The slow-client scenario: client processes that join a busy group and
// never read (or read slowly), and what the daemon does about them.

// SlowResult tells what became of one slow client.
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
	// BytesRead is what the client read in all: while slow (with
	// --slow-read-rate), then at full speed after the run from the
	// kernel's socket buffers (and the daemon, when it was not
	// disconnected).
	BytesRead int64 `json:"bytes_read"`
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
