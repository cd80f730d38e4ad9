package client

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totem-gcs/totem/ipc"
)

// fakeDaemon accepts one client on a Unix socket, completes the handshake
// and answers every request with answer(req) (nil: no reply), in order.
type fakeDaemon struct {
	socket string
	ln     net.Listener
	conn   chan *ipc.Conn
	// gate, when set, is waited on before the daemon starts reading
	// requests (a daemon that does not read).
	gate chan struct{}
	mu   sync.Mutex
	seen []ipc.Request
}

func startFake(t testing.TB, answer func(ipc.Request) *ipc.Reply, gate chan struct{}) *fakeDaemon {
	t.Helper()
	return startFakeWith(t, answer, gate, ipc.Welcome{Version: ipc.Version, NodeID: 1, PID: 2, MaxMessage: 1 << 20})
}

// startFakeWith is startFake with the given welcome.
func startFakeWith(t testing.TB, answer func(ipc.Request) *ipc.Reply, gate chan struct{}, welcome ipc.Welcome) *fakeDaemon {
	t.Helper()
	f := &fakeDaemon{socket: filepath.Join(t.TempDir(), "fake.sock"), conn: make(chan *ipc.Conn, 1), gate: gate}
	ln, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c := ipc.NewConn(nc, 8<<20)
		defer c.Close()
		var h ipc.Hello
		if c.Read(&h) != nil {
			return
		}
		if welcome.FlowEvents && !h.FlowEvents {
			welcome.FlowEvents = false
		}
		c.Write(ipc.ServerMsg{Kind: ipc.KindWelcome, Welcome: &welcome})
		f.conn <- c
		if f.gate != nil {
			<-f.gate
		}
		for {
			var req ipc.Request
			if err := c.Read(&req); err != nil {
				return
			}
			f.mu.Lock()
			f.seen = append(f.seen, req)
			f.mu.Unlock()
			if rep := answer(req); rep != nil {
				rep.ID = req.ID
				if c.Write(ipc.ServerMsg{Kind: ipc.KindReply, Reply: rep}) != nil {
					return
				}
			}
		}
	}()
	return f
}

func (f *fakeDaemon) requests() []ipc.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ipc.Request(nil), f.seen...)
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSendAsyncOrderAndErrors: every done is called once, in call order,
// with the error the daemon's reply stands for; the daemon sees the
// requests in order with their data.
func TestSendAsyncOrderAndErrors(t *testing.T) {
	f := startFake(t, func(r ipc.Request) *ipc.Reply {
		if r.Data[0]%3 == 0 {
			return &ipc.Reply{Code: ipc.TryAgain, Error: "busy"}
		}
		return &ipc.Reply{}
	}, nil)
	ctx := testContext(t)
	h, err := Connect(ctx, Options{Socket: f.socket})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	const n = 2000
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	wg.Add(n)
	buf := make([]byte, 2)
	for i := range n {
		buf[0], buf[1] = byte(i), byte(i>>8)
		err := h.SendAsync(ctx, "g", buf, Agreed, func(err error) {
			defer wg.Done()
			if want := i%256%3 == 0; errors.Is(err, ErrTryAgain) != want || (!want && err != nil) {
				t.Errorf("message %d: %v", i, err)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for i, got := range order {
		if got != i {
			t.Fatalf("done call %d was for message %d", i, got)
		}
	}
	reqs := f.requests()
	if len(reqs) != n {
		t.Fatalf("daemon saw %d requests", len(reqs))
	}
	for i, r := range reqs {
		if r.Op != ipc.OpSend || r.Group != "g" || int(r.Data[0])|int(r.Data[1])<<8 != i || r.ID != uint64(i+1) {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
	// Synchronous calls mixed in are answered in turn.
	if err := h.TrySend(ctx, "g", []byte{1}, Agreed); err != nil {
		t.Fatal(err)
	}
	if err := h.TrySend(ctx, "g", []byte{3}, Agreed); !errors.Is(err, ErrTryAgain) {
		t.Fatalf("try-again reply: %v", err)
	}
}

// TestSendAsyncMixedWithCalls: goroutines mixing SendAsync and TrySend
// never stall (queued requests are always written) and every request is
// answered.
func TestSendAsyncMixedWithCalls(t *testing.T) {
	f := startFake(t, func(ipc.Request) *ipc.Reply { return &ipc.Reply{} }, nil)
	ctx := testContext(t)
	h, err := Connect(ctx, Options{Socket: f.socket})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var inner sync.WaitGroup
			for i := range 500 {
				if (i+g)%7 == 0 {
					if err := h.TrySend(ctx, "g", []byte("sync"), Agreed); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				inner.Add(1)
				if err := h.SendAsync(ctx, "g", []byte("async"), Agreed, func(err error) {
					defer inner.Done()
					if err != nil {
						t.Error(err)
					}
				}); err != nil {
					t.Error(err)
					return
				}
			}
			inner.Wait()
		}()
	}
	wg.Wait()
	if got := len(f.requests()); got != 8*500 {
		t.Fatalf("daemon saw %d requests, want %d", got, 8*500)
	}
}

// TestSendAsyncHandleEnds: requests still unanswered when the handle ends
// get the handle's error in their done; later calls fail at once without
// calling done.
func TestSendAsyncHandleEnds(t *testing.T) {
	f := startFake(t, func(ipc.Request) *ipc.Reply { return nil }, nil)
	ctx := testContext(t)
	h, err := Connect(ctx, Options{Socket: f.socket})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 10)
	for range 10 {
		if err := h.SendAsync(ctx, "g", []byte("x"), Safe, func(err error) { errs <- err }); err != nil {
			t.Fatal(err)
		}
	}
	h.Close()
	for range 10 {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("done after Close: %v", err)
		}
	}
	called := false
	if err := h.SendAsync(ctx, "g", []byte("x"), Safe, func(error) { called = true }); !errors.Is(err, ErrClosed) || called {
		t.Fatalf("SendAsync after Close: %v (done called: %v)", err, called)
	}
	if err := h.SendAsync(ctx, "", nil, Safe, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty group: %v", err)
	}
	if err := h.SendAsync(ctx, "g", make([]byte, 1<<20+1), Safe, nil); !errors.Is(err, ErrTooBig) {
		t.Fatalf("too big: %v", err)
	}
}

// TestWriteTimeoutTakesBack: a request whose write cannot begin before
// its context ends (the daemon does not read) is taken back whole: the
// caller gets the context's error, the connection stays usable, and the
// daemon never sees that request.
func TestWriteTimeoutTakesBack(t *testing.T) {
	gate := make(chan struct{})
	f := startFake(t, func(ipc.Request) *ipc.Reply { return &ipc.Reply{} }, gate)
	ctx := testContext(t)
	h, err := Connect(ctx, Options{Socket: f.socket})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	// Fill the socket until a write blocks: a big message that cannot
	// go whole, in the background.
	big := make([]byte, 1<<20)
	bigDone := make(chan error, 1)
	go func() { bigDone <- h.TrySend(ctx, "g", big, Agreed) }()
	time.Sleep(100 * time.Millisecond)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = h.TrySend(short, "g", []byte("taken back"), Agreed)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked send: %v", err)
	}
	close(gate)
	if err := <-bigDone; err != nil {
		t.Fatalf("big send: %v", err)
	}
	// Nothing waits for the reply of the request taken back: a lazy
	// SendAsync is written at once.
	async := make(chan error, 1)
	if err := h.SendAsync(ctx, "g", []byte("async"), Agreed, func(err error) { async <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-async:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SendAsync after a request taken back was never answered")
	}
	if err := h.TrySend(ctx, "g", []byte("after"), Agreed); err != nil {
		t.Fatalf("send after the timeout: %v", err)
	}
	reqs := f.requests()
	for _, r := range reqs {
		if string(r.Data) == "taken back" {
			t.Fatalf("the daemon got the request taken back")
		}
	}
	if len(reqs) != 3 || string(reqs[2].Data) != "after" {
		t.Fatalf("daemon saw %d requests", len(reqs))
	}
}

// connectFlow connects a handle to a fake daemon that offers flow events
// and answers with answer.
func connectFlow(t *testing.T, answer func(ipc.Request) *ipc.Reply) (*fakeDaemon, *Handle) {
	t.Helper()
	f := startFakeWith(t, answer, nil, ipc.Welcome{Version: ipc.Version, NodeID: 1, PID: 2, MaxMessage: 1 << 20, FlowEvents: true})
	h, err := Connect(testContext(t), Options{Socket: f.socket})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return f, h
}

// TestFlowControl: after the daemon refuses a send with TryAgain, sends
// are refused locally (nothing reaches the daemon) until its EventReady;
// a Send waiting to retry goes at once then. Calls other than sends are
// not held back.
func TestFlowControl(t *testing.T) {
	var mu sync.Mutex
	full := true
	f, h := connectFlow(t, func(r ipc.Request) *ipc.Reply {
		mu.Lock()
		defer mu.Unlock()
		if r.Op == ipc.OpSend && full {
			return &ipc.Reply{Code: ipc.TryAgain, Error: "full"}
		}
		return &ipc.Reply{}
	})
	ctx := testContext(t)
	c := <-f.conn
	if err := h.TrySend(ctx, "g", []byte("1"), Agreed); !errors.Is(err, ErrTryAgain) {
		t.Fatalf("first send: %v", err)
	}
	if err := h.TrySend(ctx, "g", []byte("2"), Agreed); !errors.Is(err, ErrTryAgain) {
		t.Fatalf("second send: %v", err)
	}
	if err := h.SendAsync(ctx, "g", []byte("3"), Agreed, func(error) { t.Error("done called for a send refused locally") }); !errors.Is(err, ErrTryAgain) {
		t.Fatalf("async send: %v", err)
	}
	if err := h.Join(ctx, "g"); err != nil {
		t.Fatalf("join while sends are held back: %v", err)
	}
	if got := len(f.requests()); got != 2 {
		t.Fatalf("the daemon saw %d requests, want the first send and the join", got)
	}
	// Send waits; the EventReady lets it through long before flowHold
	// would have.
	sent := make(chan error, 1)
	go func() { sent <- h.Send(ctx, "g", []byte("4"), Agreed) }()
	time.Sleep(5 * time.Millisecond)
	mu.Lock()
	full = false
	mu.Unlock()
	start := time.Now()
	if err := c.WriteRaw(ipc.AppendEventFrame(nil, &ipc.Event{Type: ipc.EventReady})); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatalf("send after the ready event: %v", err)
	}
	if d := time.Since(start); d > 15*time.Millisecond {
		t.Logf("send took %v after the ready event (slow machine?)", d)
	}
	if err := h.TrySend(ctx, "g", []byte("5"), Agreed); err != nil {
		t.Fatalf("send after the ready event: %v", err)
	}
	// The ready event is the handle's own: the application sees none.
	select {
	case ev := <-h.Events():
		t.Fatalf("event %T handed out", ev)
	default:
	}
	var datas []string
	for _, r := range f.requests() {
		if r.Op == ipc.OpSend {
			datas = append(datas, string(r.Data))
		}
	}
	if strings.Join(datas, ",") != "1,4,5" {
		t.Fatalf("the daemon got sends %v, want 1,4,5", datas)
	}
}

// TestFlowControlHold: without an EventReady, sends go to the daemon
// again after flowHold.
func TestFlowControlHold(t *testing.T) {
	_, h := connectFlow(t, func(r ipc.Request) *ipc.Reply {
		if string(r.Data) == "1" {
			return &ipc.Reply{Code: ipc.TryAgain, Error: "full"}
		}
		return &ipc.Reply{}
	})
	ctx := testContext(t)
	if err := h.TrySend(ctx, "g", []byte("1"), Agreed); !errors.Is(err, ErrTryAgain) {
		t.Fatalf("first send: %v", err)
	}
	start := time.Now()
	if err := h.Send(ctx, "g", []byte("2"), Agreed); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < flowHold {
		t.Fatalf("send went through after %v, before flowHold", d)
	}
}
