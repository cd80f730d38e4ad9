package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/totem-gcs/totem/ipc"
)

// Options configure Connect. The zero value works.
type Options struct {
	// Socket is the daemon's socket path; empty means $TOTEMD_SOCKET, or
	// /run/totemd/totemd.sock.
	Socket string
	// Name identifies the client in the daemon's logs.
	Name string
	// RingChanges asks for a *RingChange event at every new ring.
	RingChanges bool
	// EventBuffer is the capacity of the Events channel (default 256).
	EventBuffer int
	// MaxPendingEvents bounds the events received but not yet read from
	// Events; beyond it the handle closes with ErrEventOverflow (default
	// 65536).
	MaxPendingEvents int
}

// SocketPath returns the socket Connect uses for opts.
func (o Options) SocketPath() string {
	if o.Socket != "" {
		return o.Socket
	}
	if s := os.Getenv(ipc.SocketEnv); s != "" {
		return s
	}
	return ipc.DefaultSocket
}

// connectTimeout bounds the handshake when ctx has no deadline.
const connectTimeout = 10 * time.Second

// maxUnwritten bounds the encoded requests waiting to be written beyond
// one message: past it, requests are refused with ErrTryAgain (the daemon
// is not reading).
const maxUnwritten = 4 << 20

// keepWriteBuf: write buffers up to this capacity are reused.
const keepWriteBuf = 256 << 10

// pendingReq is a request waiting for its reply: a call waits on ch, a
// SendAsync has done called.
type pendingReq struct {
	id   uint64
	op   ipc.Op
	ch   chan *ipc.Reply
	done func(error)
	// dead: the request was taken back before any of it was written; no
	// reply comes.
	dead bool
}

// Handle is one connection to totemd.
type Handle struct {
	conn    *ipc.Conn
	raw     syscall.RawConn // the socket, for the reader's non-blocking writes (nil: none)
	welcome ipc.Welcome

	// The request path: requests are encoded into wbuf in ID order and
	// written by whichever goroutine finds no write under way (several
	// requests then go in one write); the daemon answers in the same
	// order.
	wmu     sync.Mutex
	nextID  uint64
	wbuf    []byte // encoded requests not yet written
	wspare  []byte // a written buffer, for reuse
	taken   uint64 // bytes taken for writing so far: the stream offset of wbuf[0]
	writing bool   // a goroutine is writing (it goes on until wbuf is empty)
	wkick   chan struct{}

	mu      sync.Mutex
	pending []pendingReq // requests waiting for their reply, in ID order
	phead   int          // pending[:phead] are answered
	err     error        // why the handle ended
	queue   []Event
	maxQ    int
	pumping bool // the pump holds events not yet in the channel
	// progress is closed at the next delivery of a message from this
	// node, for Sends waiting to retry (nil: no one waits).
	progress chan struct{}

	// refusedAt is when the daemon last refused a send with TryAgain
	// (Unix nanoseconds; 0: it has room, as its EventReady said since).
	refusedAt atomic.Int64

	qwake     chan struct{}
	done      chan struct{}
	abandon   chan struct{} // closed by Close: stop delivering events
	closeOnce sync.Once
	events    chan Event
}

// Connect opens a handle to the daemon.
func Connect(ctx context.Context, opts Options) (*Handle, error) {
	path := opts.SocketPath()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, &DisconnectedError{Connecting: true, Err: fmt.Errorf("cannot connect to totemd at %s (is it running? set %s to use another socket): %w", path, ipc.SocketEnv, err)}
	}
	// Accept the largest frame a daemon could send before we know its limit.
	c := ipc.NewConn(nc, 64<<20)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(connectTimeout)
	}
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	fail := func(err error) (*Handle, error) {
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	// A daemon that refuses us says why and closes, maybe before our Hello
	// is written: read its answer even when the write fails.
	werr := c.Write(ipc.Hello{Magic: ipc.Magic, Version: ipc.Version, Name: opts.Name, RingEvents: opts.RingChanges, FlowEvents: true})
	var m ipc.ServerMsg
	if err := c.Read(&m); err != nil {
		if werr != nil {
			err = werr
		}
		return fail(&DisconnectedError{Connecting: true, Err: fmt.Errorf("handshake with totemd at %s: %w", path, err)})
	}
	switch {
	case m.Kind == ipc.KindBye:
		return fail(&DisconnectedError{Connecting: true, Reason: m.Bye})
	case m.Kind != ipc.KindWelcome || m.Welcome == nil:
		return fail(&DisconnectedError{Connecting: true, Err: fmt.Errorf("handshake with totemd at %s: unexpected message kind %d", path, m.Kind)})
	}
	if !stop() {
		return fail(ctx.Err())
	}
	c.SetDeadline(time.Time{})
	c.Limit = m.Welcome.MaxMessage + ipc.FrameOverhead
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 256
	}
	if opts.MaxPendingEvents <= 0 {
		opts.MaxPendingEvents = 65536
	}
	h := &Handle{
		conn:    c,
		raw:     rawConn(nc),
		welcome: *m.Welcome,
		wkick:   make(chan struct{}, 1),
		maxQ:    opts.MaxPendingEvents,
		qwake:   make(chan struct{}, 1),
		done:    make(chan struct{}),
		abandon: make(chan struct{}),
		events:  make(chan Event, opts.EventBuffer),
	}
	go h.reader()
	go h.pump()
	go h.writeLoop()
	return h, nil
}

// NodeID is the local node's ID.
func (h *Handle) NodeID() NodeID { return NodeID(h.welcome.NodeID) }

// PID is this process's ID as the daemon sees it; with NodeID it names
// this handle's membership in groups.
func (h *Handle) PID() uint32 { return h.welcome.PID }

// MaxMessageSize is the largest message Send accepts, in bytes.
func (h *Handle) MaxMessageSize() int { return h.welcome.MaxMessage }

// Events delivers messages and configuration changes of the joined groups
// in order. It is closed when the handle ends; Err says why.
func (h *Handle) Events() <-chan Event { return h.events }

// Done is closed when the handle ends.
func (h *Handle) Done() <-chan struct{} { return h.done }

// Err returns why the handle ended (nil while it is open): ErrClosed after
// Close, a *DisconnectedError, or ErrEventOverflow.
func (h *Handle) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// Close disconnects from the daemon; the daemon reports the handle's
// memberships as left (procdown). Events is closed without delivering
// what is still queued. Close is idempotent, and releases a handle that
// already ended on its own.
func (h *Handle) Close() error {
	h.end(ErrClosed)
	h.closeOnce.Do(func() { close(h.abandon) })
	return nil
}

// end records err as the reason the handle ended (first one wins), fails
// every pending request and closes the connection.
func (h *Handle) end(err error) {
	h.mu.Lock()
	if h.err != nil {
		h.mu.Unlock()
		return
	}
	h.err = err
	pending := h.pending[h.phead:]
	h.pending, h.phead = nil, 0
	h.mu.Unlock()
	for _, p := range pending {
		switch {
		case p.dead:
		case p.done != nil:
			p.done(err)
		default:
			close(p.ch)
		}
	}
	close(h.done)
	h.conn.Close()
	select {
	case h.qwake <- struct{}{}:
	default:
	}
}

// answer hands a reply to the request waiting for it.
func (h *Handle) answer(rep *ipc.Reply) {
	h.mu.Lock()
	var p pendingReq
	found := false
	for h.phead < len(h.pending) && h.pending[h.phead].id <= rep.ID {
		p = h.pending[h.phead]
		h.pending[h.phead] = pendingReq{}
		h.phead++
		found = p.id == rep.ID
	}
	if h.phead == len(h.pending) {
		h.pending, h.phead = h.pending[:0], 0
	} else if h.phead >= 1024 && h.phead*2 >= len(h.pending) {
		n := copy(h.pending, h.pending[h.phead:])
		clear(h.pending[n:])
		h.pending, h.phead = h.pending[:n], 0
	}
	h.mu.Unlock()
	if found && p.op == ipc.OpSend && rep.Code == ipc.TryAgain && h.welcome.FlowEvents {
		// Sends are refused here until the daemon says it has room.
		h.refusedAt.Store(time.Now().UnixNano())
	}
	switch {
	case !found || p.dead:
	case p.done != nil:
		p.done(replyError(p.op, rep))
	default:
		r := *rep // rep is the reader's scratch
		p.ch <- &r
	}
}

// replyError is the error a reply stands for (nil for OK).
func replyError(op ipc.Op, rep *ipc.Reply) error {
	if rep.Code == ipc.OK {
		return nil
	}
	return &RequestError{Op: op.String(), Code: rep.Code, Msg: rep.Error}
}

// pump moves queued events to the Events channel, so that the reader never
// blocks on a slow application and replies keep flowing.
func (h *Handle) pump() {
	defer close(h.events)
	for {
		h.mu.Lock()
		q := h.queue
		h.queue = nil
		h.pumping = len(q) > 0
		ended := h.err != nil
		h.mu.Unlock()
		for _, ev := range q {
			// What arrived before the end is still delivered, unless the
			// application closed the handle.
			select {
			case h.events <- ev:
			case <-h.abandon:
				return
			}
		}
		if ended && len(q) == 0 {
			return
		}
		if len(q) == 0 {
			<-h.qwake
		}
	}
}

func convertMembers(ms []ipc.Member) []Member {
	if len(ms) == 0 {
		return nil
	}
	out := make([]Member, len(ms))
	for i, m := range ms {
		out[i] = Member{NodeID: NodeID(m.NodeID), PID: m.PID, Reason: m.Reason}
	}
	return out
}

func convertEvent(e *ipc.Event) Event {
	if e == nil {
		return nil
	}
	switch e.Type {
	case ipc.EventDeliver:
		return &Message{Group: e.Group, NodeID: NodeID(e.NodeID), PID: e.PID, Guarantee: Guarantee(e.Guarantee), Data: e.Data}
	case ipc.EventConfchg:
		return &ConfChange{Group: e.Group, Members: convertMembers(e.Members), Joined: convertMembers(e.Joined), Left: convertMembers(e.Left),
			Transitional: e.Transitional, Ring: e.Ring}
	case ipc.EventUndelivered:
		return &Undelivered{Group: e.Group, Data: e.Data}
	case ipc.EventRing:
		ms := make([]NodeID, len(e.Nodes))
		for i, n := range e.Nodes {
			ms[i] = NodeID(n)
		}
		return &RingChange{Ring: e.Ring, Members: ms}
	}
	return nil
}

// call sends req and waits for its reply.
func (h *Handle) call(ctx context.Context, req ipc.Request) (*ipc.Reply, error) {
	ch := make(chan *ipc.Reply, 1)
	at, err := h.enqueue(ctx, &req, pendingReq{ch: ch}, false)
	if err != nil {
		return nil, err
	}
	select {
	case rep, ok := <-ch:
		if !ok {
			return nil, h.Err()
		}
		if err := replyError(req.Op, rep); err != nil {
			return nil, err
		}
		return rep, nil
	case <-ctx.Done():
		// A request still waiting to be written is taken back; else the
		// reply, when it comes, goes to the buffered channel.
		h.wmu.Lock()
		h.takeBack(at, req.ID)
		h.wmu.Unlock()
		return nil, ctx.Err()
	}
}

// takeBack removes the request with the given ID, encoded at stream
// offsets at, from wbuf if it is the last request there and none of it
// was taken for writing yet (removing one from the middle would move the
// offsets recorded for the later ones), and reports whether it did; h.wmu
// is held.
func (h *Handle) takeBack(at [2]uint64, id uint64) bool {
	if h.taken > at[0] || at[1] != h.taken+uint64(len(h.wbuf)) {
		return false
	}
	h.wbuf = h.wbuf[:at[0]-h.taken]
	// Being last in wbuf, it is the last request waiting for a reply:
	// drop it, so that no one waits for its reply (SendAsync writes
	// lazily while replies are due).
	h.mu.Lock()
	if k := len(h.pending) - 1; k >= h.phead && h.pending[k].id == id {
		h.pending[k] = pendingReq{}
		h.pending = h.pending[:k]
	} else {
		for i := h.phead; i < len(h.pending); i++ {
			if h.pending[i].id == id {
				h.pending[i] = pendingReq{id: id, dead: true}
			}
		}
	}
	h.mu.Unlock()
	return true
}

// enqueue encodes req behind the requests already queued and registers p
// for its reply; then it writes the queue out unless another goroutine is
// writing or, when lazy and a request is waiting for its reply, leaves it
// to the writer goroutine (so that a caller queueing many requests is not
// held up by writes, and they go out together). An error means the
// request was not sent and p gets no reply.
func (h *Handle) enqueue(ctx context.Context, req *ipc.Request, p pendingReq, lazy bool) (at [2]uint64, err error) {
	h.wmu.Lock()
	h.mu.Lock()
	if h.err != nil {
		err := h.err
		h.mu.Unlock()
		h.wmu.Unlock()
		return at, err
	}
	if len(h.wbuf) > maxUnwritten+h.welcome.MaxMessage {
		h.mu.Unlock()
		h.wmu.Unlock()
		return at, &RequestError{Op: req.Op.String(), Code: ipc.TryAgain,
			Msg: fmt.Sprintf("%d bytes of requests wait to be written: totemd is not reading", len(h.wbuf))}
	}
	// A reply to the last request is still due (it was not taken back).
	replyDue := len(h.pending) > h.phead && !h.pending[len(h.pending)-1].dead
	h.nextID++
	req.ID = h.nextID
	p.id, p.op = req.ID, req.Op
	start := len(h.wbuf)
	h.wbuf, err = ipc.AppendRequestFrame(h.wbuf, req)
	if err != nil {
		h.wbuf = h.wbuf[:start]
		h.nextID--
		h.mu.Unlock()
		h.wmu.Unlock()
		return at, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	h.pending = append(h.pending, p)
	h.mu.Unlock()
	at = [2]uint64{h.taken + uint64(start), h.taken + uint64(len(h.wbuf))}
	if h.writing {
		h.wmu.Unlock()
		return at, nil
	}
	if lazy && replyDue {
		// The writer goroutine writes it, with whatever the caller
		// queues meanwhile. (Leaving it to the reader, which writes
		// what is queued after each batch of replies, wakes no
		// goroutine but holds requests back: 64 B pipelined sends went
		// ~20% slower on a 3-node cluster.)
		h.wmu.Unlock()
		h.kickWriter()
		return at, nil
	}
	err = h.flushLocked(ctx, false)
	if err == nil {
		h.wmu.Unlock()
		return at, nil
	}
	if ctx.Err() == nil {
		h.wmu.Unlock()
		h.end(&DisconnectedError{Err: err})
		return at, h.Err()
	}
	// ctx ended the write. A request not begun is taken back; otherwise
	// the writer goroutine finishes the job and the request stands.
	took := h.takeBack(at, req.ID)
	more := len(h.wbuf) > 0
	h.wmu.Unlock()
	if more {
		h.kickWriter()
	}
	if took || p.done == nil {
		return at, ctx.Err()
	}
	return at, nil // done will be called
}

// flushLocked writes wbuf out until it is empty (other goroutines may add
// to it meanwhile); h.wmu is held on entry and on return, released during
// the writes. A write cut short by ctx leaves the rest in wbuf. With
// nonBlocking, it writes only what the socket takes at once and returns
// errWouldBlock when some is left.
func (h *Handle) flushLocked(ctx context.Context, nonBlocking bool) error {
	h.writing = true
	defer func() { h.writing = false }()
	for len(h.wbuf) > 0 {
		buf := h.wbuf
		h.wbuf, h.wspare = h.wspare[:0], nil
		h.taken += uint64(len(buf))
		h.wmu.Unlock()
		var n int
		var err error
		if nonBlocking {
			n, err = h.tryWrite(buf)
		} else {
			n, err = h.write(ctx, buf)
		}
		h.wmu.Lock()
		if n < len(buf) {
			h.taken -= uint64(len(buf) - n)
			rest := make([]byte, 0, len(buf)-n+len(h.wbuf))
			rest = append(append(rest, buf[n:]...), h.wbuf...)
			h.wbuf = rest
		} else if cap(buf) <= keepWriteBuf {
			h.wspare = buf[:0]
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// write writes buf, giving up when ctx ends (then it returns ctx's error
// and how much was written).
func (h *Handle) write(ctx context.Context, buf []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// First what the socket takes at once (a raw syscall, see readRaw).
	n, err := h.tryWrite(buf)
	if err != errWouldBlock {
		return n, err
	}
	k, err := h.writeBlocking(ctx, buf[n:])
	return n + k, err
}

// writeBlocking writes buf, waiting while the socket is full.
func (h *Handle) writeBlocking(ctx context.Context, buf []byte) (int, error) {
	nc := h.conn.NetConn()
	if ctx.Done() == nil {
		return nc.Write(buf)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		nc.SetWriteDeadline(time.Now())
		close(fired)
	})
	n, err := nc.Write(buf)
	if !stop() {
		<-fired
		nc.SetWriteDeadline(time.Time{})
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = ctx.Err()
	}
	return n, err
}

func (h *Handle) kickWriter() {
	select {
	case h.wkick <- struct{}{}:
	default:
	}
}

// writeLoop writes what the reader and timed-out writes leave queued.
func (h *Handle) writeLoop() {
	for {
		select {
		case <-h.wkick:
		case <-h.done:
			return
		}
		h.wmu.Lock()
		if h.writing || len(h.wbuf) == 0 {
			h.wmu.Unlock()
			continue
		}
		err := h.flushLocked(context.Background(), false)
		h.wmu.Unlock()
		if err != nil {
			h.end(&DisconnectedError{Err: err})
			return
		}
	}
}

func checkGroup(g string) error {
	if err := ipc.ValidGroupName(g); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// Join joins group.
func (h *Handle) Join(ctx context.Context, group string) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	for backoff := time.Millisecond; ; backoff = min(backoff*2, 100*time.Millisecond) {
		_, err := h.call(ctx, ipc.Request{Op: ipc.OpJoin, Group: group})
		if !errors.Is(err, ErrTryAgain) {
			return err
		}
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
	}
}

// Leave leaves group.
func (h *Handle) Leave(ctx context.Context, group string) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	for backoff := time.Millisecond; ; backoff = min(backoff*2, 100*time.Millisecond) {
		_, err := h.call(ctx, ipc.Request{Op: ipc.OpLeave, Group: group})
		if !errors.Is(err, ErrTryAgain) {
			return err
		}
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
	}
}

// flowHold bounds how long sends are refused locally after the daemon
// refused one, should its EventReady not come.
const flowHold = 20 * time.Millisecond

// flowCheck returns ErrTryAgain while the daemon's last answer to a send
// was TryAgain and it has not said since that it has room again: the
// send would only cross the socket to be refused (Corosync's libraries
// check the IPC flow-control flag the same way).
func (h *Handle) flowCheck() error {
	t := h.refusedAt.Load()
	if t == 0 {
		return nil
	}
	if time.Now().UnixNano()-t >= int64(flowHold) {
		h.refusedAt.CompareAndSwap(t, 0)
		return nil
	}
	return errHeldBack
}

// errHeldBack is flowCheck's refusal: one value, since a sender may be
// refused locally tens of thousands of times a second.
var errHeldBack = &RequestError{Op: ipc.OpSend.String(), Code: ipc.TryAgain, Msg: "totemd's send queue is full (refused locally until totemd has room)"}

// flowReady handles the daemon's EventReady: sends go to it again, and
// Sends waiting to retry do so now.
func (h *Handle) flowReady() {
	h.refusedAt.Store(0)
	h.noteProgress()
}

// checkSend checks the arguments of a send before anything is queued.
func (h *Handle) checkSend(group string, data []byte, g Guarantee) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	if g != Agreed && g != Safe {
		return fmt.Errorf("%w: guarantee must be Agreed or Safe", ErrInvalid)
	}
	if len(data) > h.welcome.MaxMessage {
		return &TooBigError{Size: len(data), Limit: h.welcome.MaxMessage}
	}
	return nil
}

// TrySend multicasts data to group (which this handle must have joined)
// with guarantee g, or returns ErrTryAgain at once when the ring cannot
// take it now. data may be reused once TrySend returns.
func (h *Handle) TrySend(ctx context.Context, group string, data []byte, g Guarantee) error {
	if err := h.checkSend(group, data, g); err != nil {
		return err
	}
	if err := h.flowCheck(); err != nil {
		return err
	}
	_, err := h.call(ctx, ipc.Request{Op: ipc.OpSend, Group: group, Guarantee: uint8(g), Data: data})
	return err
}

// SendAsync multicasts data to group like TrySend, without waiting for
// the daemon's answer: the request is queued behind the handle's earlier
// requests and written at once when nothing else is in flight, else by the
// handle's writer goroutine (or its reader, after a batch of replies)
// together with whatever is queued meanwhile (so that a stream of
// SendAsync calls goes out in few writes). Requests are answered in order.
//
// done, if not nil, is called exactly once with what TrySend would have
// returned: nil, or an error matching ErrTryAgain (nothing was sent: send
// it again later), ErrNotJoined, ... or the handle's error if it ends
// first. Calls come in the order of the SendAsync calls, from the
// handle's reader goroutine (or from Close): done must return quickly and
// must not call a method of the handle that waits for a reply.
//
// When SendAsync returns an error (a bad argument, the handle ended,
// ErrTryAgain because megabytes of requests wait to be written, ctx ended
// before the request could be written), nothing was sent and done is not
// called. data may be reused once SendAsync returns.
func (h *Handle) SendAsync(ctx context.Context, group string, data []byte, g Guarantee, done func(error)) error {
	if err := h.checkSend(group, data, g); err != nil {
		return err
	}
	if err := h.flowCheck(); err != nil {
		return err
	}
	if done == nil {
		done = func(error) {}
	}
	req := ipc.Request{Op: ipc.OpSend, Group: group, Guarantee: uint8(g), Data: data}
	_, err := h.enqueue(ctx, &req, pendingReq{done: done}, true)
	return err
}

// Send is TrySend that waits and retries while the daemon answers
// try-again, until ctx is done (then it returns ctx's error).
func (h *Handle) Send(ctx context.Context, group string, data []byte, g Guarantee) error {
	for backoff := 200 * time.Microsecond; ; backoff = min(backoff*2, 5*time.Millisecond) {
		progress := h.progressed()
		err := h.TrySend(ctx, group, data, g)
		if !errors.Is(err, ErrTryAgain) {
			return err
		}
		// Retry when a message sent from this node is delivered (the
		// ring took some of the node's queue), or after the backoff.
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-progress:
			backoff = 200 * time.Microsecond
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (the ring stayed busy: %v)", ctx.Err(), ErrTryAgain)
		}
		t.Stop()
	}
}

// progressed returns a channel closed at the next delivery of a message
// sent from this node (its send queue has moved).
func (h *Handle) progressed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.progress == nil {
		h.progress = make(chan struct{})
	}
	return h.progress
}

// noteProgress wakes the Sends waiting for progressed.
func (h *Handle) noteProgress() {
	h.mu.Lock()
	if h.progress != nil {
		close(h.progress)
		h.progress = nil
	}
	h.mu.Unlock()
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

// Members returns the current members of group, sorted by node and pid.
func (h *Handle) Members(ctx context.Context, group string) ([]Member, error) {
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	rep, err := h.call(ctx, ipc.Request{Op: ipc.OpMembers, Group: group})
	if err != nil {
		return nil, err
	}
	return convertMembers(rep.Members), nil
}

// Groups returns every group of the cluster with its members.
func (h *Handle) Groups(ctx context.Context) ([]Group, error) {
	rep, err := h.call(ctx, ipc.Request{Op: ipc.OpGroups})
	if err != nil {
		return nil, err
	}
	out := make([]Group, len(rep.Groups))
	for i, g := range rep.Groups {
		out[i] = Group{Name: g.Name, Members: convertMembers(g.Members)}
	}
	return out, nil
}

// Status returns the daemon's view of the node and the ring.
func (h *Handle) Status(ctx context.Context) (Status, error) {
	rep, err := h.call(ctx, ipc.Request{Op: ipc.OpStatus})
	if err != nil {
		return Status{}, err
	}
	if rep.Status == nil {
		return Status{}, &DisconnectedError{Err: errors.New("status reply without status")}
	}
	return *rep.Status, nil
}

// Stats returns the daemon's counters by name ("srp.mcast_tx", ...).
func (h *Handle) Stats(ctx context.Context) (map[string]uint64, error) {
	rep, err := h.call(ctx, ipc.Request{Op: ipc.OpStats})
	if err != nil {
		return nil, err
	}
	return rep.Stats, nil
}

// Links returns the state of every link to every node.
func (h *Handle) Links(ctx context.Context) ([]Link, error) {
	rep, err := h.call(ctx, ipc.Request{Op: ipc.OpLinks})
	if err != nil {
		return nil, err
	}
	return rep.Links, nil
}

// SetLinkFault injects faults on link of the local node, for tests (root
// or the daemon's own user only; otherwise ErrDenied).
func (h *Handle) SetLinkFault(ctx context.Context, link int, f LinkFault) error {
	_, err := h.call(ctx, ipc.Request{Op: ipc.OpLinkFault, Link: link, Fault: &ipc.LinkFault{
		Drop: f.Drop, Delay: int64(f.Delay), Duplicate: f.Duplicate, Cut: f.Cut,
	}})
	return err
}

// SetKeys makes the local daemon send with the key in file sendKey and
// accept packets under it and under the keys in acceptKeys (paths the
// daemon reads). Rotate the cluster key without a restart by running, on
// every node in turn: SetKeys(old, new), then SetKeys(new, old), then
// SetKeys(new). Root or the daemon's own user only (ErrDenied).
func (h *Handle) SetKeys(ctx context.Context, sendKey string, acceptKeys ...string) error {
	_, err := h.call(ctx, ipc.Request{Op: ipc.OpSetKeys, KeyFile: sendKey, AcceptKeys: acceptKeys})
	return err
}
