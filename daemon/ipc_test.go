package daemon

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/totem-gcs/totem/client"
	"github.com/totem-gcs/totem/internal/testbin"
	"github.com/totem-gcs/totem/ipc"
	"github.com/totem-gcs/totem/totem"
)

const testTimeout = 60 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// rawConn opens a connection and completes the handshake by hand.
func rawConn(t *testing.T, socket string) (*ipc.Conn, ipc.Welcome) {
	t.Helper()
	return rawConnHello(t, socket, ipc.Hello{Magic: ipc.Magic, Version: ipc.Version, Name: "raw"})
}

// rawConnHello is rawConn with the given Hello.
func rawConnHello(t *testing.T, socket string, hello ipc.Hello) (*ipc.Conn, ipc.Welcome) {
	t.Helper()
	nc, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	c := ipc.NewConn(nc, 64<<20)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testTimeout))
	if err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	var m ipc.ServerMsg
	if err := c.Read(&m); err != nil || m.Kind != ipc.KindWelcome {
		t.Fatalf("handshake: %v %+v", err, m)
	}
	return c, *m.Welcome
}

// expectBye reads until the daemon's Bye and returns its reason; the
// connection must then end.
func expectBye(t *testing.T, c *ipc.Conn) string {
	t.Helper()
	for {
		var m ipc.ServerMsg
		if err := c.Read(&m); err != nil {
			t.Fatalf("connection ended without a reason: %v", err)
		}
		if m.Kind == ipc.KindBye {
			var after ipc.ServerMsg
			if err := c.Read(&after); err == nil {
				t.Fatalf("message after bye: %+v", after)
			}
			return m.Bye
		}
	}
}

func connect(t *testing.T, socket string) *client.Handle {
	t.Helper()
	h, err := client.Connect(testCtx(t), client.Options{Socket: socket, Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestMalformedFrames sends garbage in several shapes; each connection is
// ended with a reason, and the daemon keeps serving others.
func TestMalformedFrames(t *testing.T) {
	l := startLone(t, 1<<20, IPCOptions{})
	cases := map[string][]byte{
		"garbage msgpack": binary.BigEndian.AppendUint32(nil, 3),
		"empty frame":     {0, 0, 0, 0},
		"not a request":   mustFrame(t, []string{"a", "b"}),
	}
	cases["garbage msgpack"] = append(cases["garbage msgpack"], 0xc1, 0xc1, 0xc1)
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			c, _ := rawConn(t, l.socket)
			if _, err := c.NetConn().Write(frame); err != nil {
				t.Fatal(err)
			}
			if bye := expectBye(t, c); !strings.Contains(bye, "malformed") {
				t.Fatalf("bye %q does not say malformed", bye)
			}
		})
	}
	t.Run("bad handshake", func(t *testing.T) {
		nc, err := net.Dial("unix", l.socket)
		if err != nil {
			t.Fatal(err)
		}
		c := ipc.NewConn(nc, 1<<20)
		defer c.Close()
		c.SetDeadline(time.Now().Add(testTimeout))
		c.Write(ipc.Hello{Magic: "http", Version: 1})
		if bye := expectBye(t, c); !strings.Contains(bye, "magic") {
			t.Fatalf("bye %q", bye)
		}
	})
	t.Run("wrong version", func(t *testing.T) {
		nc, err := net.Dial("unix", l.socket)
		if err != nil {
			t.Fatal(err)
		}
		c := ipc.NewConn(nc, 1<<20)
		defer c.Close()
		c.SetDeadline(time.Now().Add(testTimeout))
		c.Write(ipc.Hello{Magic: ipc.Magic, Version: 99})
		if bye := expectBye(t, c); !strings.Contains(bye, "version 99") {
			t.Fatalf("bye %q", bye)
		}
	})
	t.Run("unknown op", func(t *testing.T) {
		c, _ := rawConn(t, l.socket)
		c.Write(ipc.Request{ID: 5, Op: 77})
		var m ipc.ServerMsg
		if err := c.Read(&m); err != nil || m.Kind != ipc.KindReply || m.Reply.ID != 5 || m.Reply.Code != ipc.Invalid {
			t.Fatalf("reply %v %+v", err, m.Reply)
		}
	})
	// The daemon still serves a well-behaved client.
	h := connect(t, l.socket)
	if _, err := h.Status(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := l.d.srv.badFrame.Load(); got < 4 {
		t.Fatalf("bad frames counted: %d", got)
	}
}

func mustFrame(t *testing.T, v any) []byte {
	f, err := ipc.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestOversizedMessage checks that a message over the limit is refused
// with an error naming the limit, by the library, by the daemon, and at
// the frame level.
func TestOversizedMessage(t *testing.T) {
	const limit = 1 << 20
	l := startLone(t, limit, IPCOptions{})
	ctx := testCtx(t)
	h := connect(t, l.socket)
	if h.MaxMessageSize() != limit {
		t.Fatalf("MaxMessageSize %d", h.MaxMessageSize())
	}
	if err := h.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	err := h.Send(ctx, "g", make([]byte, limit+1), client.Agreed)
	var tb *client.TooBigError
	if !errors.As(err, &tb) || tb.Limit != limit || !strings.Contains(err.Error(), fmt.Sprint(limit)) {
		t.Fatalf("library: %v", err)
	}
	if err := h.Send(ctx, "g", make([]byte, limit), client.Agreed); err != nil {
		t.Fatalf("message of exactly the limit: %v", err)
	}

	// The daemon checks too, for clients that do not.
	c, _ := rawConn(t, l.socket)
	c.Write(ipc.Request{ID: 1, Op: ipc.OpJoin, Group: "g"})
	c.Write(ipc.Request{ID: 2, Op: ipc.OpSend, Group: "g", Guarantee: ipc.Agreed, Data: make([]byte, limit+1)})
	for {
		var m ipc.ServerMsg
		if err := c.Read(&m); err != nil {
			t.Fatal(err)
		}
		if m.Kind == ipc.KindReply && m.Reply.ID == 2 {
			if m.Reply.Code != ipc.TooBig || !strings.Contains(m.Reply.Error, fmt.Sprint(limit)) {
				t.Fatalf("daemon reply %+v", m.Reply)
			}
			break
		}
	}
	// A frame over the frame limit ends the connection with the limit.
	hdr := binary.BigEndian.AppendUint32(nil, uint32(limit+ipc.FrameOverhead+1))
	c.NetConn().Write(hdr)
	if bye := expectBye(t, c); !strings.Contains(bye, fmt.Sprint(limit+ipc.FrameOverhead)) {
		t.Fatalf("bye %q does not name the limit", bye)
	}
}

// TestClientThatNeverReads checks that a client that stops reading is
// disconnected with a reason while a busy sender in the same group is not
// slowed and loses nothing.
func TestClientThatNeverReads(t *testing.T) {
	l := startLone(t, 1<<20, IPCOptions{QueueMessages: 64, QueueBytes: 1 << 20})
	ctx := testCtx(t)
	slow, _ := rawConn(t, l.socket)
	slow.Write(ipc.Request{ID: 1, Op: ipc.OpJoin, Group: "g"})
	// Make sure the join is in before the sender starts.
	var m ipc.ServerMsg
	if err := slow.Read(&m); err != nil || m.Kind != ipc.KindReply || m.Reply.Code != ipc.OK {
		t.Fatalf("join: %v %+v", err, m)
	}

	h := connect(t, l.socket)
	if err := h.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	got := make(chan int)
	go func() {
		count := 0
		for ev := range h.Events() {
			if msg, ok := ev.(*client.Message); ok {
				if want := fmt.Sprint(count) + " "; !bytes.HasPrefix(msg.Data, []byte(want)) {
					t.Errorf("message %d: %q", count, msg.Data)
				}
				count++
				if count == n {
					break
				}
			}
		}
		got <- count
	}()
	// 2000 messages of 1 KiB are more than the slow client's socket buffer
	// and its queue at the daemon hold.
	pad := bytes.Repeat([]byte("x"), 1000)
	for i := 0; i < n; i++ {
		if err := h.Send(ctx, "g", append([]byte(fmt.Sprint(i)+" "), pad...), client.Agreed); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if c := <-got; c != n {
		t.Fatalf("sender got %d of its %d messages", c, n)
	}
	if l.d.srv.dropped.Load() != 1 {
		t.Fatalf("slow clients disconnected: %d", l.d.srv.dropped.Load())
	}
	// The slow client finds a reason once it reads again.
	// The slow client's connection ends. The reason comes last, after what
	// filled its socket buffer, so it reaches the client only if the client
	// reads again soon enough; it is always logged and counted.
	slow.SetDeadline(time.Now().Add(testTimeout))
	for {
		var m ipc.ServerMsg
		if err := slow.Read(&m); err != nil {
			break
		}
		if m.Kind == ipc.KindBye && !strings.Contains(m.Bye, "stopped reading") {
			t.Fatalf("bye %q", m.Bye)
		}
	}
	// Its membership ended as procdown, seen by the sender.
	for {
		ms, err := h.Members(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("members after the slow client left: %v", ms)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTryAgain checks Send's retry and TrySend's ErrTryAgain.
func TestTryAgain(t *testing.T) {
	l := startLone(t, 1<<20, IPCOptions{}, func(g *instantGroups) { g.tryAgain = 3 })
	ctx := testCtx(t)
	h := connect(t, l.socket)
	if err := h.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if err := h.TrySend(ctx, "g", []byte("a"), client.Safe); !errors.Is(err, client.ErrTryAgain) {
		t.Fatalf("TrySend: %v", err)
	}
	if err := h.Send(ctx, "g", []byte("b"), client.Safe); err != nil {
		t.Fatalf("Send: %v", err)
	}
	for ev := range h.Events() {
		if m, ok := ev.(*client.Message); ok {
			if string(m.Data) != "b" || m.Guarantee != client.Safe {
				t.Fatalf("delivered %+v", m)
			}
			break
		}
	}
	// A Send whose context ends while the ring stays busy returns.
	l2 := startLone(t, 1<<20, IPCOptions{}, func(g *instantGroups) { g.tryAgain = 1 << 30 })
	h2 := connect(t, l2.socket)
	if err := h2.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := h2.Send(short, "g", []byte("c"), client.Agreed); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send on a busy ring: %v", err)
	}
}

// TestFlowEvents: a client that asked for flow events gets one EventReady
// after its sends were refused with TryAgain, once a send would be
// accepted again, and before the reply to the send that then goes
// through; a client that did not ask gets none.
func TestFlowEvents(t *testing.T) {
	for _, asked := range []bool{true, false} {
		l := startLone(t, 1<<20, IPCOptions{}, func(g *instantGroups) { g.tryAgain = 2 })
		c, w := rawConnHello(t, l.socket, ipc.Hello{Magic: ipc.Magic, Version: ipc.Version, Name: "flow", FlowEvents: asked})
		if w.FlowEvents != asked {
			t.Fatalf("asked for flow events: %v; welcome says %v", asked, w.FlowEvents)
		}
		c.Write(ipc.Request{ID: 1, Op: ipc.OpJoin, Group: "g"})
		var trace []string
		read := func() ipc.ServerMsg {
			var m ipc.ServerMsg
			if err := c.Read(&m); err != nil {
				t.Fatalf("after %v: %v", trace, err)
			}
			switch {
			case m.Kind == ipc.KindReply:
				trace = append(trace, fmt.Sprintf("reply %d %v", m.Reply.ID, m.Reply.Code))
			case m.Kind == ipc.KindEvent && m.Event.Type == ipc.EventReady:
				trace = append(trace, "ready")
			}
			return m
		}
		for m := read(); m.Kind != ipc.KindReply; m = read() {
		}
		// One send per round trip: refused, refused, then accepted.
		for id := uint64(2); id <= 4; id++ {
			c.Write(ipc.Request{ID: id, Op: ipc.OpSend, Group: "g", Guarantee: ipc.Agreed, Data: []byte("x")})
			for m := read(); m.Kind != ipc.KindReply; m = read() {
			}
		}
		want := "reply 1 ok, reply 2 try-again, reply 3 try-again, ready, reply 4 ok"
		if !asked {
			want = "reply 1 ok, reply 2 try-again, reply 3 try-again, reply 4 ok"
		}
		if got := strings.Join(trace, ", "); got != want {
			t.Errorf("flow events %v: got %s, want %s", asked, got, want)
		}
	}
}

// TestDaemonGone checks that a handle whose daemon stops fails fast with
// the daemon's reason and closes Events.
func TestDaemonGone(t *testing.T) {
	l := startLone(t, 1<<20, IPCOptions{})
	ctx := testCtx(t)
	h := connect(t, l.socket)
	if err := h.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	l.stop()
	for range h.Events() {
	}
	if err := h.Err(); !errors.Is(err, client.ErrDisconnected) || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("Err after the daemon stopped: %v", err)
	}
	if err := h.Send(ctx, "g", []byte("x"), client.Agreed); !errors.Is(err, client.ErrDisconnected) {
		t.Fatalf("Send after the daemon stopped: %v", err)
	}
	if _, err := client.Connect(ctx, client.Options{Socket: l.socket}); !errors.Is(err, client.ErrDisconnected) {
		t.Fatalf("Connect to a stopped daemon: %v", err)
	}
}

// TestSeveralHandles checks that two handles of one process are distinct
// members of one group.
func TestSeveralHandles(t *testing.T) {
	l := startLone(t, 1<<20, IPCOptions{})
	ctx := testCtx(t)
	a, b := connect(t, l.socket), connect(t, l.socket)
	if err := a.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if err := a.Join(ctx, "g"); !errors.Is(err, client.ErrExists) {
		t.Fatalf("second join: %v", err)
	}
	if err := b.Send(ctx, "g", []byte("x"), client.Agreed); !errors.Is(err, client.ErrNotJoined) {
		t.Fatalf("send without join: %v", err)
	}
	if err := b.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	groups, err := a.Groups(ctx)
	if err != nil || len(groups) != 1 || groups[0].Name != "g" || len(groups[0].Members) != 2 {
		t.Fatalf("groups %+v %v", groups, err)
	}
	if a.PID() != uint32(os.Getpid()) || a.NodeID() != 1 {
		t.Fatalf("pid %d node %d", a.PID(), a.NodeID())
	}
}

// TestStatsCoverEngineCounters checks that every counter of totem.Stats is
// reported under srp.
func TestStatsCoverEngineCounters(t *testing.T) {
	l := startLone(t, 1<<20, IPCOptions{})
	h := connect(t, l.socket)
	st, err := h.Stats(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k := range st {
		if strings.HasPrefix(k, "srp.") {
			n++
		}
	}
	if want := reflect.TypeOf(totem.Stats{}).NumField(); n != want {
		t.Fatalf("%d srp counters reported, totem.Stats has %d", n, want)
	}
	for _, k := range []string{"ipc.clients", "ipc.denied", "ipc.disconnected_slow", "ipc.bad_frames",
		"srp.orf_token_tx", "srp.mcast_retx", "srp.rx_msg_dropped", "srp.membership_changes", "srp.memb_commit_token_rx",
		"cpg.proposals_refused", "daemon.persist_errors"} {
		if _, ok := st[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
}

func TestLinkFault(t *testing.T) {
	l := startLone(t, 1<<20, IPCOptions{})
	ctx := testCtx(t)
	h := connect(t, l.socket)
	if err := h.SetLinkFault(ctx, 0, client.LinkFault{Drop: 0.5}); err != nil {
		t.Fatalf("owner: %v", err)
	}
	if err := h.SetLinkFault(ctx, 3, client.LinkFault{}); !errors.Is(err, client.ErrInvalid) || !strings.Contains(err.Error(), "no link 3") {
		t.Fatalf("bad link: %v", err)
	}
}

func TestAccessPolicy(t *testing.T) {
	p := AccessPolicy{OwnerUID: 1000, UIDs: []int{1001}, GIDs: []int{50}}
	for _, tc := range []struct {
		peer Peer
		ok   bool
	}{
		{Peer{UID: 0, GID: 0}, true},
		{Peer{UID: 1000, GID: 1000}, true},
		{Peer{UID: 1001, GID: 1001}, true},
		{Peer{UID: 1002, GID: 50}, true},
		{Peer{UID: 1002, GID: 1002, Groups: []uint32{7, 50}}, true},
		{Peer{UID: 1002, GID: 1002, Groups: []uint32{7}}, false},
		{Peer{UID: 65534, GID: 65534}, false},
	} {
		err := p.Check(tc.peer)
		if (err == nil) != tc.ok {
			t.Errorf("%+v: %v, want allowed=%v", tc.peer, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "allow_uids") {
			t.Errorf("refusal does not say what to configure: %v", err)
		}
	}
}

// TestDeniedUID connects from a child process running as nobody (needs
// root) and expects a refusal with a reason; then allows nobody's uid.
func TestDeniedUID(t *testing.T) {
	if os.Getenv("TOTEMD_TEST_CHILD_SOCKET") != "" {
		return // the helper mode runs in TestMain
	}
	if os.Geteuid() != 0 {
		t.Skip("connecting as another uid needs root")
	}
	const nobody = 65534
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The child must be able to reach the socket and the binary.
	dir, err := os.MkdirTemp("", "totemd-uid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "helper")
	if data, err := os.ReadFile(exe); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(socket string) (string, error) {
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), "TOTEMD_TEST_CHILD_SOCKET="+socket)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	sockDir := filepath.Join(dir, "denied")
	os.Mkdir(sockDir, 0o755)
	l := startLoneAt(t, filepath.Join(sockDir, "s.sock"), IPCOptions{})
	out, err := run(l.socket)
	if err == nil || !strings.Contains(out, "access denied: uid 65534") {
		t.Fatalf("nobody was not refused with a reason: %v\n%s", err, out)
	}
	if l.d.srv.denied.Load() != 1 {
		t.Fatalf("denied count %d", l.d.srv.denied.Load())
	}
	allowDir := filepath.Join(dir, "allowed")
	os.Mkdir(allowDir, 0o755)
	l2 := startLoneAt(t, filepath.Join(allowDir, "s.sock"), IPCOptions{AllowUIDs: []int{nobody}})
	out, err = run(l2.socket)
	if err != nil || !strings.Contains(out, "connected as uid 65534") {
		t.Fatalf("allowed uid refused: %v\n%s", err, out)
	}
	if !strings.Contains(out, "link fault: totem: link-fault: injecting link faults needs root") {
		t.Fatalf("an allowed uid that is not the owner could inject faults:\n%s", out)
	}
}

func startLoneAt(t *testing.T, socket string, opts IPCOptions) *lone {
	return startLoneSocket(t, socket, 1<<20, opts)
}

// TestMain runs the access-test helper when asked to.
func TestMain(m *testing.M) {
	if s := os.Getenv("TOTEMD_TEST_CHILD_SOCKET"); s != "" {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		h, err := client.Connect(ctx, client.Options{Socket: s})
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		if _, err := h.Status(ctx); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Printf("connected as uid %d\n", os.Getuid())
		fmt.Printf("link fault: %v\n", h.SetLinkFault(ctx, 0, client.LinkFault{Cut: true}))
		os.Exit(0)
	}
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}
