package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/totem-gcs/totem/client"
	"github.com/totem-gcs/totem/internal/testbin"
)

// The cluster test runs three totemd processes on 127.0.0.1 (udpu, the
// fast profile, distinct ports and sockets; no root needed) and drives them
// with the client library and totemctl.

// clusterTimeout bounds every wait: generous, the box may be busy.
const clusterTimeout = 90 * time.Second

type cluster struct {
	t       *testing.T
	dir     string
	totemd  string
	ctl     string
	key     string
	ports   []int
	procs   []*exec.Cmd
	waits   []chan error
	sockets []string
}

// buildBinaries builds totemd and totemctl once per test binary.
func buildBinaries(t *testing.T) (totemd, totemctl string) {
	dir, err := testbin.Build("daemon/totemd", "tools/totemctl")
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "totemd"), filepath.Join(dir, "totemctl")
}

func freeUDPPorts(t *testing.T, n int) []int {
	var ports []int
	var conns []net.PacketConn
	for len(ports) < n {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
	}
	for _, c := range conns {
		c.Close()
	}
	return ports
}

func newCluster(t *testing.T, n int) *cluster {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	totemd, ctl := buildBinaries(t)
	c := &cluster{t: t, dir: t.TempDir(), totemd: totemd, ctl: ctl, ports: freeUDPPorts(t, n)}
	c.key = filepath.Join(c.dir, "authkey")
	if out, err := exec.Command(ctl, "keygen", c.key).CombinedOutput(); err != nil {
		t.Fatalf("totemctl keygen: %v\n%s", err, out)
	}
	if fi, err := os.Stat(c.key); err != nil || fi.Mode().Perm() != 0o400 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	c.procs = make([]*exec.Cmd, n)
	c.waits = make([]chan error, n)
	for i := 0; i < n; i++ {
		c.sockets = append(c.sockets, filepath.Join(c.dir, fmt.Sprintf("n%d", i+1), "totemd.sock"))
	}
	for i := 1; i <= n; i++ {
		c.start(i)
	}
	t.Cleanup(c.stopAll)
	return c
}

// start starts node id (1-based).
func (c *cluster) start(id int) {
	c.t.Helper()
	args := []string{"--config", filepath.Join(c.dir, "none.toml"), "--nodeid", fmt.Sprint(id),
		"--keyfile", c.key, "--state-dir", filepath.Join(c.dir, fmt.Sprintf("n%d", id)),
		"--socket", c.sockets[id-1], "--profile", "fast", "--log-level", "debug", "--cluster-name", "test"}
	for j, p := range c.ports {
		args = append(args, "--node", fmt.Sprintf("%d=127.0.0.1:%d", j+1, p))
	}
	os.WriteFile(filepath.Join(c.dir, "none.toml"), nil, 0o644)
	logf, err := os.OpenFile(filepath.Join(c.dir, fmt.Sprintf("totemd%d.log", id)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.totemd, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Die with the test binary, even if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	logf.Close()
	w := make(chan error, 1)
	go func() { w <- cmd.Wait() }()
	c.procs[id-1], c.waits[id-1] = cmd, w
}

// signal sends sig to node id and waits for it to exit.
func (c *cluster) signal(id int, sig syscall.Signal) error {
	c.t.Helper()
	c.procs[id-1].Process.Signal(sig)
	select {
	case err := <-c.waits[id-1]:
		c.procs[id-1] = nil
		return err
	case <-time.After(clusterTimeout):
		c.t.Fatalf("node %d did not exit after %v", id, sig)
		return nil
	}
}

func (c *cluster) stopAll() {
	for i, p := range c.procs {
		if p != nil {
			c.signal(i+1, syscall.SIGKILL)
		}
	}
	if c.t.Failed() {
		for i := range c.procs {
			b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("totemd%d.log", i+1)))
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			c.t.Logf("--- totemd%d.log (tail) ---\n%s", i+1, b)
		}
	}
}

// connect opens a handle on node id, retrying while the daemon starts.
func (c *cluster) connect(ctx context.Context, id int) *client.Handle {
	c.t.Helper()
	for {
		h, err := client.Connect(ctx, client.Options{Socket: c.sockets[id-1], Name: c.t.Name()})
		if err == nil {
			c.t.Cleanup(func() { h.Close() })
			return h
		}
		if ctx.Err() != nil {
			c.t.Fatalf("connect to node %d: %v", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRing waits until node id is operational in a ring of exactly members.
func (c *cluster) waitRing(ctx context.Context, id int, members ...uint32) {
	c.t.Helper()
	h := c.connect(ctx, id)
	defer h.Close()
	var last client.Status
	for {
		st, err := h.Status(ctx)
		if err == nil && st.State == "operational" && slices.Equal(st.Members, members) {
			return
		}
		last = st
		select {
		case werr := <-c.waits[id-1]:
			c.procs[id-1] = nil
			c.t.Fatalf("node %d exited: %v", id, werr)
		default:
		}
		if ctx.Err() != nil {
			c.t.Fatalf("node %d did not reach ring %v: last status %+v, err %v", id, members, last, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run runs totemctl against node id and returns its standard output (and
// standard error, after it) and exit code.
func (c *cluster) run(id int, args ...string) (string, int) {
	stdout, stderr, code := c.run2(id, args...)
	return stdout + stderr, code
}

func (c *cluster) run2(id int, args ...string) (string, string, int) {
	cmd := exec.Command(c.ctl, append([]string{"--socket", c.sockets[id-1], "--timeout", "60s"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// events collects a handle's events.
type events struct {
	mu  sync.Mutex
	evs []client.Event
	new chan struct{}
}

func collect(h *client.Handle) *events {
	e := &events{new: make(chan struct{}, 1)}
	go func() {
		for ev := range h.Events() {
			e.mu.Lock()
			e.evs = append(e.evs, ev)
			e.mu.Unlock()
			select {
			case e.new <- struct{}{}:
			default:
			}
		}
	}()
	return e
}

// waitFor waits until some event from index from on satisfies ok and
// returns its index.
func (e *events) waitFor(t *testing.T, ctx context.Context, what string, from int, ok func(client.Event) bool) int {
	t.Helper()
	for {
		e.mu.Lock()
		for i := from; i < len(e.evs); i++ {
			if ok(e.evs[i]) {
				e.mu.Unlock()
				return i
			}
		}
		e.mu.Unlock()
		select {
		case <-e.new:
		case <-ctx.Done():
			e.mu.Lock()
			defer e.mu.Unlock()
			var s []string
			for _, ev := range e.evs[from:] {
				s = append(s, fmt.Sprintf("%+v", ev))
			}
			t.Fatalf("timed out waiting for %s; events since: %s", what, strings.Join(s, "\n"))
		}
	}
}

func (e *events) messages(group string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.evs {
		if m, ok := ev.(*client.Message); ok && m.Group == group {
			out = append(out, fmt.Sprintf("%d:%d:%s:%s", m.NodeID, m.PID, m.Guarantee, m.Data))
		}
	}
	return out
}

func (e *events) len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.evs)
}

func viewIs(group string, n int) func(client.Event) bool {
	return func(ev client.Event) bool {
		cc, ok := ev.(*client.ConfChange)
		// Every view names the ring it belongs to.
		return ok && cc.Group == group && len(cc.Members) == n && cc.Ring.Seq != 0
	}
}

func leftWith(group string, node client.NodeID, pid uint32, reason client.Reason) func(client.Event) bool {
	return func(ev client.Event) bool {
		cc, ok := ev.(*client.ConfChange)
		if !ok || cc.Group != group {
			return false
		}
		for _, m := range cc.Left {
			if m.NodeID == node && (pid == 0 || m.PID == pid) && m.Reason == reason {
				return true
			}
		}
		return false
	}
}

func TestCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*clusterTimeout)
	defer cancel()
	start := time.Now()
	phase := func(name string) { t.Logf("%6.2fs %s", time.Since(start).Seconds(), name) }
	c := newCluster(t, 3)
	for id := 1; id <= 3; id++ {
		c.waitRing(ctx, id, 1, 2, 3)
	}
	phase("ring of 3 formed")

	// status --json from totemctl (exit 0 once the node is operational:
	// on a busy box the fast profile may be reforming the ring).
	var st struct {
		NodeID  uint32   `json:"nodeid"`
		State   string   `json:"state"`
		RingID  string   `json:"ring_id"`
		Members []uint32 `json:"members"`
		Links   []struct {
			NodeID uint32 `json:"nodeid"`
			State  string `json:"state"`
		} `json:"links"`
	}
	for {
		out, stderr, code := c.run2(1, "status", "--json")
		err := json.Unmarshal([]byte(out), &st)
		if err != nil || st.NodeID != 1 {
			t.Fatalf("totemctl status --json: exit %d, %v\n%s%s", code, err, out, stderr)
		}
		if code == 0 && st.State == "operational" && len(st.Members) == 3 {
			break
		}
		if code != 2 || st.State == "operational" || ctx.Err() != nil {
			t.Fatalf("totemctl status --json: exit %d (state %s)\n%s%s", code, st.State, out, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var out string
	var code int

	phase("join")
	// Join: one member per node.
	const g = "cluster-test"
	hs := make([]*client.Handle, 3)
	evs := make([]*events, 3)
	for i := range hs {
		hs[i] = c.connect(ctx, i+1)
		evs[i] = collect(hs[i])
		if err := hs[i].Join(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	for i := range hs {
		evs[i].waitFor(t, ctx, "a view of 3", 0, viewIs(g, 3))
	}
	out, code = c.run(2, "members", g, "--json")
	if code != 0 || strings.Count(out, `"nodeid"`) != 3 {
		t.Fatalf("totemctl members: exit %d\n%s", code, out)
	}

	phase("send")
	// Send with both guarantees from every node, concurrently: every member
	// delivers the same sequence.
	const per = 50
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < per; k++ {
				gu := client.Agreed
				if k%2 == 1 {
					gu = client.Safe
				}
				if err := h.Send(ctx, g, []byte(fmt.Sprintf("n%d-%d", i+1, k)), gu); err != nil {
					t.Errorf("node %d send %d: %v", i+1, k, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := range hs {
		for len(evs[i].messages(g)) < 3*per {
			select {
			case <-evs[i].new:
			case <-ctx.Done():
				t.Fatalf("node %d delivered %d of %d messages", i+1, len(evs[i].messages(g)), 3*per)
			}
		}
	}
	ref := evs[0].messages(g)
	for i := 1; i < 3; i++ {
		if got := evs[i].messages(g); !slices.Equal(got, ref) {
			t.Fatalf("node %d delivered another order:\n%v\nnode 1:\n%v", i+1, got, ref)
		}
	}
	if !slices.ContainsFunc(ref, func(s string) bool { return strings.Contains(s, ":safe:") }) {
		t.Fatal("no safe message delivered")
	}

	// Back-pressure: a sender that outruns the ring gets try-again from
	// TrySend (the ring's queue is bounded), and everything accepted is
	// delivered.
	phase("try-again")
	mark := evs[1].len()
	big := make([]byte, 256<<10)
	accepted, tryAgain := 0, false
	for i := 0; i < 4096 && !tryAgain; i++ {
		big[0], big[1] = byte(i), byte(i>>8)
		switch err := hs[0].TrySend(ctx, g, big, client.Agreed); {
		case err == nil:
			accepted++
		case errors.Is(err, client.ErrTryAgain):
			tryAgain = true
		default:
			t.Fatal(err)
		}
	}
	if !tryAgain {
		t.Fatalf("%d messages of 256 KiB accepted without try-again", accepted)
	}
	t.Logf("try-again after %d messages of 256 KiB", accepted)
	got := 0
	for got < accepted {
		i := evs[1].waitFor(t, ctx, "the accepted big messages", mark, func(ev client.Event) bool {
			m, ok := ev.(*client.Message)
			return ok && len(m.Data) == len(big)
		})
		mark = i + 1
		got++
	}

	phase("totemctl cpg send")
	// totemctl cpg send, while node 1's member listens.
	mark = evs[0].len()
	out, code = c.run(3, "cpg", "send", g, "--safe", "--count", "5", "--size", "100")
	if code != 0 {
		t.Fatalf("totemctl cpg send: exit %d\n%s", code, out)
	}
	evs[0].waitFor(t, ctx, "totemctl's leave", mark, func(ev client.Event) bool {
		cc, ok := ev.(*client.ConfChange)
		return ok && len(cc.Left) == 1 && cc.Left[0].Reason == client.ReasonLeave && cc.Left[0].NodeID == 3
	})

	phase("leave")
	// Leave: node 3's member leaves; the others see reason leave.
	mark = evs[0].len()
	if err := hs[2].Leave(ctx, g); err != nil {
		t.Fatal(err)
	}
	evs[0].waitFor(t, ctx, "leave of node 3's member", mark, leftWith(g, 3, hs[2].PID(), client.ReasonLeave))

	phase("listener stopped")
	// totemctl cpg listen stopped with SIGTERM leaves, prints the view
	// that removes it as its last line, and exits 0.
	mark = evs[0].len()
	stopped := exec.Command(c.ctl, "--socket", c.sockets[1], "cpg", "listen", g, "--json")
	sout, _ := stopped.StdoutPipe()
	if err := stopped.Start(); err != nil {
		t.Fatal(err)
	}
	spid := uint32(stopped.Process.Pid)
	evs[0].waitFor(t, ctx, "the stopped listener's join", mark, func(ev client.Event) bool {
		cc, ok := ev.(*client.ConfChange)
		return ok && len(cc.Joined) == 1 && cc.Joined[0].PID == spid
	})
	stopped.Process.Signal(syscall.SIGTERM)
	all, _ := io.ReadAll(sout)
	if err := stopped.Wait(); err != nil {
		t.Fatalf("cpg listen after SIGTERM: %v\n%s", err, all)
	}
	outLines := strings.Split(strings.TrimSpace(string(all)), "\n")
	last := outLines[len(outLines)-1]
	if want := fmt.Sprintf(`"left":[{"nodeid":2,"pid":%d,"reason":"leave"}]`, spid); !strings.Contains(last, want) {
		t.Fatalf("cpg listen's last line after SIGTERM is %q, want its own leave (%s)", last, want)
	}

	phase("client killed")
	// A client killed: totemctl cpg listen on node 3, killed with SIGKILL.
	mark = evs[0].len()
	listen := exec.Command(c.ctl, "--socket", c.sockets[2], "cpg", "listen", g, "--json")
	stdout, _ := listen.StdoutPipe()
	if err := listen.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), `{"type":"confchg","group":"`+g+`","members":[`) {
		t.Fatalf("cpg listen --json first line: %q", lines.Text())
	}
	lpid := uint32(listen.Process.Pid)
	evs[0].waitFor(t, ctx, "the listener's join", mark, func(ev client.Event) bool {
		cc, ok := ev.(*client.ConfChange)
		return ok && len(cc.Joined) == 1 && cc.Joined[0].PID == lpid && cc.Joined[0].Reason == client.ReasonJoin
	})
	listen.Process.Kill()
	listen.Wait()
	evs[0].waitFor(t, ctx, "procdown of the killed client", mark, leftWith(g, 3, lpid, client.ReasonProcDown))

	phase("daemon killed")
	// A daemon killed: node 3 dies with a member; the others see nodedown.
	h3 := c.connect(ctx, 3)
	ev3 := collect(h3)
	if err := h3.Join(ctx, g); err != nil {
		t.Fatal(err)
	}
	ev3.waitFor(t, ctx, "node 3's view", 0, viewIs(g, 3))
	mark = evs[0].len()
	c.signal(3, syscall.SIGKILL)
	evs[0].waitFor(t, ctx, "nodedown of node 3's member", mark, leftWith(g, 3, h3.PID(), client.ReasonNodeDown))
	<-h3.Done()
	if !errors.Is(h3.Err(), client.ErrDisconnected) {
		t.Fatalf("handle on the killed daemon: %v", h3.Err())
	}
	c.waitRing(ctx, 1, 1, 2)

	phase("restart")
	// Restart: node 3 rejoins and learns the groups.
	c.start(3)
	for id := 1; id <= 3; id++ {
		c.waitRing(ctx, id, 1, 2, 3)
	}
	h3 = c.connect(ctx, 3)
	for {
		gs, err := h3.Groups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(gs, func(x client.Group) bool { return x.Name == g })
		if i >= 0 && len(gs[i].Members) == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("restarted node 3 did not learn group %s: %+v", g, gs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, code = c.run(3, "groups", "--json")
	if code != 0 || !strings.Contains(out, g) {
		t.Fatalf("totemctl groups: exit %d\n%s", code, out)
	}

	phase("key rotation")
	key2 := filepath.Join(c.dir, "authkey2")
	if out, code := c.run(1, "keygen", key2); code != 0 {
		t.Fatalf("keygen: %s", out)
	}
	for _, step := range [][]string{{c.key, key2}, {key2, c.key}, {key2}} {
		for id := 1; id <= 3; id++ {
			if out, code := c.run(id, append([]string{"key", "set"}, step...)...); code != 0 {
				t.Fatalf("node %d: key set %v: exit %d\n%s", id, step, code, out)
			}
		}
	}
	// The ring works under the new key alone.
	mark = evs[0].len()
	if out, code := c.run(1, "cpg", "send", g, "after-rotation"); code != 0 {
		t.Fatalf("send after key rotation: exit %d\n%s", code, out)
	}
	evs[0].waitFor(t, ctx, "a message after key rotation", mark, func(ev client.Event) bool {
		m, ok := ev.(*client.Message)
		return ok && string(m.Data) == "after-rotation"
	})
	for id := 1; id <= 3; id++ {
		c.waitRing(ctx, id, 1, 2, 3)
	}

	phase("sigterm")
	// SIGTERM leaves gracefully: node 2 exits 0 and the others see its
	// member leave with nodedown.
	mark = evs[0].len()
	if err := c.signal(2, syscall.SIGTERM); err != nil {
		t.Fatalf("totemd 2 after SIGTERM: %v", err)
	}
	evs[0].waitFor(t, ctx, "nodedown after node 2's graceful leave", mark, leftWith(g, 2, 0, client.ReasonNodeDown))
	c.waitRing(ctx, 1, 1, 3)
	phase("done")
	if out, code := c.run(2, "status"); code != 2 {
		t.Fatalf("totemctl status on a stopped daemon: exit %d, want 2\n%s", code, out)
	}
}
