package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
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

// Handle is one connection to totemd.
type Handle struct {
	conn    *ipc.Conn
	welcome ipc.Welcome

	wmu    sync.Mutex // serialises request writes with ID allocation
	nextID uint64

	mu      sync.Mutex
	pending map[uint64]chan *ipc.Reply
	err     error // why the handle ended
	queue   []Event
	maxQ    int

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
	werr := c.Write(ipc.Hello{Magic: ipc.Magic, Version: ipc.Version, Name: opts.Name, RingEvents: opts.RingChanges})
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
		welcome: *m.Welcome,
		pending: map[uint64]chan *ipc.Reply{},
		maxQ:    opts.MaxPendingEvents,
		qwake:   make(chan struct{}, 1),
		done:    make(chan struct{}),
		abandon: make(chan struct{}),
		events:  make(chan Event, opts.EventBuffer),
	}
	go h.reader()
	go h.pump()
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
	pending := h.pending
	h.pending = nil
	h.mu.Unlock()
	for _, ch := range pending {
		close(ch)
	}
	close(h.done)
	h.conn.Close()
	select {
	case h.qwake <- struct{}{}:
	default:
	}
}

func (h *Handle) reader() {
	var bye string
	for {
		var m ipc.ServerMsg
		err := h.conn.Read(&m)
		if err != nil {
			h.end(&DisconnectedError{Reason: bye, Err: err})
			return
		}
		switch m.Kind {
		case ipc.KindReply:
			if m.Reply == nil {
				continue
			}
			h.mu.Lock()
			ch := h.pending[m.Reply.ID]
			delete(h.pending, m.Reply.ID)
			h.mu.Unlock()
			if ch != nil {
				ch <- m.Reply
			}
		case ipc.KindEvent:
			if ev := convertEvent(m.Event); ev != nil {
				h.mu.Lock()
				if len(h.queue) >= h.maxQ {
					h.mu.Unlock()
					h.end(fmt.Errorf("%w: %d events waiting", ErrEventOverflow, h.maxQ))
					return
				}
				h.queue = append(h.queue, ev)
				h.mu.Unlock()
				select {
				case h.qwake <- struct{}{}:
				default:
				}
			}
		case ipc.KindBye:
			bye = m.Bye
		}
	}
}

// pump moves queued events to the Events channel, so that the reader never
// blocks on a slow application and replies keep flowing.
func (h *Handle) pump() {
	defer close(h.events)
	for {
		h.mu.Lock()
		q := h.queue
		h.queue = nil
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
	h.wmu.Lock()
	h.mu.Lock()
	if h.err != nil {
		err := h.err
		h.mu.Unlock()
		h.wmu.Unlock()
		return nil, err
	}
	h.nextID++
	req.ID = h.nextID
	h.pending[req.ID] = ch
	h.mu.Unlock()
	f, err := ipc.Encode(req)
	n := 0
	if err == nil {
		// A write blocked on a daemon that does not read ends with ctx.
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			h.conn.SetWriteDeadline(time.Now())
			close(fired)
		})
		n, err = h.conn.NetConn().Write(f)
		if !stop() {
			<-fired
			h.conn.SetWriteDeadline(time.Time{})
		}
	}
	h.wmu.Unlock()
	if err != nil {
		h.forget(req.ID)
		timedOut := errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil
		switch {
		case timedOut && n == 0:
			// Nothing written: the connection is intact.
			return nil, context.DeadlineExceeded
		case timedOut:
			// The frame is half written: the connection is unusable.
			h.end(&DisconnectedError{Err: fmt.Errorf("request abandoned mid-write: %w", context.DeadlineExceeded)})
			return nil, context.DeadlineExceeded
		}
		h.end(&DisconnectedError{Err: err})
		return nil, h.Err()
	}
	select {
	case rep, ok := <-ch:
		if !ok {
			return nil, h.Err()
		}
		if rep.Code != ipc.OK {
			return nil, &RequestError{Op: req.Op.String(), Code: rep.Code, Msg: rep.Error}
		}
		return rep, nil
	case <-ctx.Done():
		h.forget(req.ID)
		return nil, ctx.Err()
	}
}

// forget drops the reply slot of a request whose caller stopped waiting.
func (h *Handle) forget(id uint64) {
	h.mu.Lock()
	if h.pending != nil {
		delete(h.pending, id)
	}
	h.mu.Unlock()
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

// TrySend multicasts data to group (which this handle must have joined)
// with guarantee g, or returns ErrTryAgain at once when the ring cannot
// take it now. data may be reused once TrySend returns.
func (h *Handle) TrySend(ctx context.Context, group string, data []byte, g Guarantee) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	if g != Agreed && g != Safe {
		return fmt.Errorf("%w: guarantee must be Agreed or Safe", ErrInvalid)
	}
	if len(data) > h.welcome.MaxMessage {
		return &TooBigError{Size: len(data), Limit: h.welcome.MaxMessage}
	}
	_, err := h.call(ctx, ipc.Request{Op: ipc.OpSend, Group: group, Guarantee: uint8(g), Data: data})
	return err
}

// Send is TrySend that waits and retries while the daemon answers
// try-again, until ctx is done (then it returns ctx's error).
func (h *Handle) Send(ctx context.Context, group string, data []byte, g Guarantee) error {
	for backoff := 200 * time.Microsecond; ; backoff = min(backoff*2, 5*time.Millisecond) {
		err := h.TrySend(ctx, group, data, g)
		if !errors.Is(err, ErrTryAgain) {
			return err
		}
		if err := sleep(ctx, backoff); err != nil {
			return fmt.Errorf("%w (the ring stayed busy: %v)", err, ErrTryAgain)
		}
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
