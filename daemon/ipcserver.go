package daemon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/totem-gcs/totem/ipc"
)

// handshakeTimeout bounds how long a new client may take to say Hello.
const handshakeTimeout = 10 * time.Second

// byeTimeout bounds how long the daemon tries to tell a client why it is
// disconnected.
const byeTimeout = 200 * time.Millisecond

// ipcServer accepts clients on the Unix socket and runs one reader and one
// writer goroutine per client. A reader hands the event loop, through in,
// every request its client has sent so far in one input; the loop answers
// through each client's bounded queue, encoding small frames into the
// connection's own buffers, and after each round writes the queues itself
// with one non-blocking writev per client (flushClients). The writer
// takes over only what the socket did not accept, so a client that reads
// slowly never blocks the loop.
type ipcServer struct {
	log      *slog.Logger
	ln       *net.UnixListener
	policy   AccessPolicy
	nodeID   uint32
	maxMsg   int
	qMsgs    int
	qBytes   int
	in       chan<- loopInput
	nextID   atomic.Uint64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[uint64]*ipcConn
	closing  atomic.Bool
	accepted atomic.Uint64
	denied   atomic.Uint64
	dropped  atomic.Uint64 // clients disconnected for not reading
	badFrame atomic.Uint64

	// loopWrites: the event loop writes what it queued for a client
	// itself when the client's writer is idle and the socket takes it
	// without blocking (flushClients), instead of waking the writer;
	// dirty lists the connections it queued for since the last flush.
	// Both belong to the loop.
	loopWrites bool
	dirty      []*ipcConn
}

// loopInput is one item for the event loop from the IPC side.
type loopInput struct {
	conn *ipcConn
	kind inputKind
	// reqs are the requests the client had sent when the reader looked
	// (inputRequests), in order; their Data share one buffer.
	reqs []ipc.Request
}

type inputKind uint8

const (
	inputOpen inputKind = iota + 1
	inputRequests
	inputGone
)

// listenUnix creates the socket at path, replacing a stale one, with mode
// 0666: access is decided by the peer-credential check, so that a refused
// client gets a reason instead of EACCES.
func listenUnix(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another daemon is listening on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func (s *ipcServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if s.closing.Load() {
				return
			}
			s.log.Error("ipc accept", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.wg.Add(1)
		go s.handshake(c)
	}
}

func peerOf(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, err
	}
	if cerr != nil {
		return Peer{}, cerr
	}
	return Peer{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid, Groups: supplementaryGroups(cred.Pid)}, nil
}

func (s *ipcServer) handshake(uc *net.UnixConn) {
	defer s.wg.Done()
	c := ipc.NewConn(newRawReadConn(uc), s.maxMsg+ipc.FrameOverhead)
	bye := func(reason string) {
		c.SetDeadline(time.Now().Add(byeTimeout))
		c.Write(ipc.ServerMsg{Kind: ipc.KindBye, Bye: reason})
		c.Close()
	}
	peer, err := peerOf(uc)
	if err != nil {
		s.log.Warn("ipc: cannot read peer credentials", "err", err)
		bye("cannot read peer credentials: " + err.Error())
		return
	}
	if err := s.policy.Check(peer); err != nil {
		s.denied.Add(1)
		s.log.Warn("ipc: client refused", "pid", peer.PID, "uid", peer.UID, "gid", peer.GID)
		bye(err.Error())
		return
	}
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	var h ipc.Hello
	if err := c.Read(&h); err != nil {
		s.badFrame.Add(1)
		bye("handshake failed: " + err.Error())
		return
	}
	if h.Magic != ipc.Magic {
		s.badFrame.Add(1)
		bye(fmt.Sprintf("handshake failed: bad magic %q, this is totemd", h.Magic))
		return
	}
	if h.Version != ipc.Version {
		bye(fmt.Sprintf("protocol version %d not supported; totemd speaks version %d", h.Version, ipc.Version))
		return
	}
	c.SetDeadline(time.Time{})
	ic := &ipcConn{
		id:         s.nextID.Add(1),
		srv:        s,
		c:          c,
		peer:       peer,
		name:       h.Name,
		ringEvents: h.RingEvents,
		flowEvents: h.FlowEvents,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	if sc, ok := uc.SyscallConn(); ok == nil {
		ic.raw = sc
	}
	if err := c.Write(ipc.ServerMsg{Kind: ipc.KindWelcome, Welcome: &ipc.Welcome{
		Version: ipc.Version, NodeID: s.nodeID, PID: uint32(peer.PID), MaxMessage: s.maxMsg, ConnID: ic.id,
		FlowEvents: h.FlowEvents,
	}}); err != nil {
		c.Close()
		return
	}
	if s.closing.Load() {
		bye("totemd is shutting down")
		return
	}
	s.accepted.Add(1)
	s.mu.Lock()
	s.conns[ic.id] = ic
	s.mu.Unlock()
	s.log.Debug("ipc: client connected", "conn", ic.id, "pid", peer.PID, "uid", peer.UID, "name", h.Name)
	s.in <- loopInput{conn: ic, kind: inputOpen}
	s.wg.Add(1)
	go ic.writer()
	ic.reader()
}

// close stops accepting and disconnects every client with reason.
func (s *ipcServer) close(reason string) {
	s.closing.Store(true)
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.closeWith(reason)
	}
	s.mu.Unlock()
}

// ipcConn is one client connection.
type ipcConn struct {
	id   uint64
	srv  *ipcServer
	c    *ipc.Conn
	peer Peer
	name string
	// ringEvents: the client asked for an event at every new ring.
	ringEvents bool
	// flowEvents: the client asked for an EventReady after a refused
	// send; sendBlocked (the loop's): one was refused and the event is
	// owed.
	flowEvents  bool
	sendBlocked bool

	mu sync.Mutex
	// q holds the buffers waiting for the writer, in order: frames shared
	// with other clients, and buffers of the connection's own into which
	// small frames are appended (the last one while tailOwned).
	q         []outBuf
	tailOwned bool
	frames    int // frames in q
	qBytes    int // queued and in-flight bytes
	// inflight is the number of frames the writer is writing.
	inflight int
	// writing: the writer or the loop is writing to the socket (the
	// other keeps off it).
	writing bool
	spare   [][]byte // written buffers of our own, for reuse
	// raw is the socket for the loop's non-blocking writes (nil: none).
	raw syscall.RawConn
	iov []unix.Iovec // the loop's writev vector
	// dirty: on the server's dirty list (the loop's).
	dirty  bool
	closed bool
	reason string
	wake   chan struct{}
	done   chan struct{}
}

// outBuf is one buffer for the writer.
type outBuf struct {
	b     []byte
	owned bool // ours, reusable once written (else shared: never modified)
}

// Owned buffers: a frame is appended to the last one while it is below
// ownedFlush bytes; one written buffer of up to ownedKeep bytes of
// capacity (room for a full one grown past ownedFlush) is kept for reuse:
// what an idle connection holds.
const (
	ownedFlush = 64 << 10
	ownedKeep  = 128 << 10
	spareMax   = 1
)

// reader reads requests and hands them to the event loop until the
// connection ends; then it tells the loop the client is gone.
func (ic *ipcConn) reader() {
	s := ic.srv
	defer func() {
		s.mu.Lock()
		delete(s.conns, ic.id)
		s.mu.Unlock()
		s.in <- loopInput{conn: ic, kind: inputGone}
	}()
	var frames [][]byte
	var names ipc.StringCache
	for {
		var err error
		frames, err = ic.c.ReadFrames(frames[:0])
		if len(frames) > 0 {
			// Every request the client has sent so far goes to the loop
			// in one input; Data alias the batch's buffer, which is
			// never reused.
			reqs := make([]ipc.Request, 0, len(frames))
			for _, p := range frames {
				var req ipc.Request
				if err = ipc.DecodeRequest(p, &req, &names); err != nil {
					break
				}
				reqs = append(reqs, req)
			}
			clear(frames)
			if len(reqs) > 0 {
				s.in <- loopInput{conn: ic, kind: inputRequests, reqs: reqs}
			}
		}
		if err == nil {
			continue
		}
		var tb *ipc.FrameTooBigError
		switch {
		case errors.As(err, &tb):
			s.badFrame.Add(1)
			ic.closeWith(fmt.Sprintf("frame of %d bytes exceeds the limit of %d bytes (largest message %d bytes)", tb.Size, tb.Limit, s.maxMsg))
		case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET):
			ic.closeWith("")
		default:
			if ic.isClosed() {
				break
			}
			s.badFrame.Add(1)
			ic.closeWith(fmt.Sprintf("malformed frame: %v", err))
		}
		return
	}
}

func (ic *ipcConn) isClosed() bool {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.closed
}

// queued reports the frames and bytes waiting for the client.
func (ic *ipcConn) queued() (int, int) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.frames + ic.inflight, ic.qBytes
}

// congested reports whether the client's queue is more than half full, so
// that its sends should get try-again until it reads.
func (ic *ipcConn) congested() bool {
	n, b := ic.queued()
	return n*2 > ic.srv.qMsgs || b*2 > ic.srv.qBytes
}

// send queues v for the client without blocking. A client whose queue is
// full is disconnected: it stopped reading.
func (ic *ipcConn) send(v *ipc.ServerMsg) {
	ic.appendFrame(func(b []byte) ([]byte, error) { return ipc.AppendServerFrame(b, v) })
}

// sendReply queues a reply.
func (ic *ipcConn) sendReply(r *ipc.Reply) {
	ic.appendFrame(func(b []byte) ([]byte, error) { return ipc.AppendReplyFrame(b, r) })
}

// sendEvent queues an event.
func (ic *ipcConn) sendEvent(e *ipc.Event) {
	ic.appendFrame(func(b []byte) ([]byte, error) { return ipc.AppendEventFrame(b, e), nil })
}

// appendFrame encodes one frame with enc into the connection's own
// buffer, within the queue's limits.
func (ic *ipcConn) appendFrame(enc func([]byte) ([]byte, error)) {
	ic.mu.Lock()
	if ic.closed {
		ic.mu.Unlock()
		return
	}
	var buf []byte
	tail := ic.tailOwned && len(ic.q) > 0 && len(ic.q[len(ic.q)-1].b) < ownedFlush
	switch {
	case tail:
		buf = ic.q[len(ic.q)-1].b
	case len(ic.spare) > 0:
		buf = ic.spare[len(ic.spare)-1][:0]
		ic.spare = ic.spare[:len(ic.spare)-1]
	}
	n0 := len(buf)
	buf, err := enc(buf)
	if err != nil {
		ic.mu.Unlock()
		ic.srv.log.Error("ipc: encode", "err", err)
		return
	}
	size := len(buf) - n0
	if ic.overLimits(size) {
		ic.mu.Unlock()
		ic.disconnectSlow()
		return
	}
	if tail {
		ic.q[len(ic.q)-1].b = buf
	} else {
		ic.q = append(ic.q, outBuf{b: buf, owned: true})
		ic.tailOwned = true
	}
	ic.frames++
	ic.qBytes += size
	ic.mu.Unlock()
	ic.queuedMore()
}

// overLimits reports whether one more frame of size bytes would pass the
// client's queue limits; ic.mu is held.
func (ic *ipcConn) overLimits(size int) bool {
	return ic.frames+ic.inflight+1 > ic.srv.qMsgs || ic.qBytes+size > ic.srv.qBytes
}

// disconnectSlow ends the connection of a client whose queue is full.
func (ic *ipcConn) disconnectSlow() {
	n, b := ic.queued()
	ic.srv.dropped.Add(1)
	ic.srv.log.Warn("ipc: disconnecting a client that stopped reading", "conn", ic.id, "pid", ic.peer.PID, "queued", n, "bytes", b)
	ic.closeWith(fmt.Sprintf("client stopped reading: %d messages (%d bytes) waiting, limits %d messages / %d bytes", n, b, ic.srv.qMsgs, ic.srv.qBytes))
}

// queuedMore tells that frames were queued: the loop writes them at its
// next flush, or else the writer is woken.
func (ic *ipcConn) queuedMore() {
	s := ic.srv
	if !s.loopWrites || ic.raw == nil {
		ic.kick()
		return
	}
	if !ic.dirty {
		ic.dirty = true
		s.dirty = append(s.dirty, ic)
	}
}

func (ic *ipcConn) kick() {
	select {
	case ic.wake <- struct{}{}:
	default:
	}
}

// flushClients writes out what the loop queued for clients (the loop
// calls it after each round).
func (s *ipcServer) flushClients() {
	for i, ic := range s.dirty {
		ic.dirty = false
		ic.writeNow()
		s.dirty[i] = nil
	}
	s.dirty = s.dirty[:0]
}

// maxIOV bounds the buffers of one writev.
const maxIOV = 1024

// loopWriteMax bounds what the loop writes itself in one round for one
// client: more (large messages) goes to the writer, so that copying it
// into the socket never holds up the loop.
const loopWriteMax = 128 << 10

// writeNow (the loop) writes the queue with one non-blocking writev when
// no one else is writing and it is small; what the socket does not take
// stays queued, for the writer. Only the loop adds to the queue, so it
// stays put meanwhile.
func (ic *ipcConn) writeNow() {
	ic.mu.Lock()
	if ic.writing || ic.closed || len(ic.q) == 0 || len(ic.q) > maxIOV || ic.qBytes > loopWriteMax {
		busy := ic.writing
		ic.mu.Unlock()
		if !busy {
			ic.kick()
		}
		return
	}
	ic.writing = true
	q := ic.q
	ic.mu.Unlock()

	iov := ic.iov[:0]
	total := 0
	for _, o := range q {
		if len(o.b) == 0 {
			continue
		}
		v := unix.Iovec{Base: &o.b[0]}
		v.SetLen(len(o.b))
		iov = append(iov, v)
		total += len(o.b)
	}
	n, err := 0, error(nil)
	if rerr := ic.raw.Write(func(fd uintptr) bool {
		n, err = rawWritev(fd, iov)
		return true // one attempt: never wait for the socket
	}); rerr != nil {
		err = rerr
	}
	clear(iov)
	ic.iov = iov[:0]
	if n < 0 {
		n = 0
	}
	if err == unix.EAGAIN || err == unix.EINTR {
		err = nil
	}
	ic.mu.Lock()
	ic.writing = false
	if err != nil {
		ic.mu.Unlock()
		ic.closeWith("")
		return
	}
	ic.qBytes -= n
	if n == total {
		for _, o := range q {
			if o.owned && cap(o.b) <= ownedKeep && len(ic.spare) < spareMax {
				ic.spare = append(ic.spare, o.b[:0])
			}
		}
		clear(q)
		ic.q = q[:0]
		ic.tailOwned = false
		ic.frames = 0
		ic.mu.Unlock()
		return
	}
	// Drop what was written; the writer takes the rest (its frames still
	// count, whole, against the limits).
	k := 0
	for k < len(q) && n >= len(q[k].b) {
		n -= len(q[k].b)
		k++
	}
	if n > 0 {
		q[k] = outBuf{b: q[k].b[n:]}
		if k == len(q)-1 {
			ic.tailOwned = false
		}
	}
	rest := copy(q, q[k:])
	clear(q[rest:])
	ic.q = q[:rest]
	ic.mu.Unlock()
	ic.kick()
}

// rawWritev is writev(2) on a non-blocking socket, entered directly rather
// than through the runtime's syscall path: that path woke the runtime's
// monitor thread on most writes of an otherwise idle daemon (880 futex
// wakeups a second at 18,000 msgs/s), and the write never blocks.
func rawWritev(fd uintptr, iov []unix.Iovec) (int, error) {
	if len(iov) == 0 {
		return 0, nil
	}
	for {
		n, _, e := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return -1, e
	}
}

// rawReadConn is a client's socket read with ipc.RawRead, as rawWritev
// writes. Through the runtime's syscall path, a read that outlasted the
// runtime monitor's 20 µs tick lost the daemon's only P (gomaxprocs 1) to
// another thread, and the event loop then resumed on that thread after a
// futex hand-off: with one client sending one message at a time, the
// client's node made ~250 such hand-offs a second and the others none.
type rawReadConn struct {
	*net.UnixConn
	raw syscall.RawConn
}

// newRawReadConn wraps uc; if its descriptor cannot be reached, reads go
// through uc as usual.
func newRawReadConn(uc *net.UnixConn) net.Conn {
	raw, err := uc.SyscallConn()
	if err != nil {
		return uc
	}
	return &rawReadConn{UnixConn: uc, raw: raw}
}

// Read reads what the socket holds, waiting while it holds nothing.
func (c *rawReadConn) Read(p []byte) (int, error) { return ipc.RawRead(c.raw, p) }

// sendFrame queues an encoded frame made of parts, in order (which may be
// shared with other clients: they are never modified).
func (ic *ipcConn) sendFrame(parts ...[]byte) {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	ic.mu.Lock()
	if ic.closed {
		ic.mu.Unlock()
		return
	}
	if ic.overLimits(size) {
		ic.mu.Unlock()
		ic.disconnectSlow()
		return
	}
	for _, p := range parts {
		if len(p) > 0 {
			ic.q = append(ic.q, outBuf{b: p})
		}
	}
	ic.tailOwned = false
	ic.frames++
	ic.qBytes += size
	ic.mu.Unlock()
	ic.queuedMore()
}

// closeWith ends the connection; a non-empty reason is sent as Bye first
// when the client still reads.
func (ic *ipcConn) closeWith(reason string) {
	ic.mu.Lock()
	if ic.closed {
		ic.mu.Unlock()
		return
	}
	ic.closed = true
	ic.reason = reason
	ic.mu.Unlock()
	if reason != "" {
		ic.srv.log.Info("ipc: client disconnected", "conn", ic.id, "pid", ic.peer.PID, "reason", reason)
	}
	// Unblock a writer stuck on a client that does not read.
	ic.c.SetWriteDeadline(time.Now().Add(byeTimeout))
	close(ic.done)
}

func (ic *ipcConn) writer() {
	defer ic.srv.wg.Done()
	defer ic.c.Close()
	var batch []outBuf
	var iov [][]byte
	for {
		select {
		case <-ic.wake:
		case <-ic.done:
		}
		// Write until the queue is empty (or the loop is writing: it
		// wakes us if it leaves anything).
		for {
			ic.mu.Lock()
			closed := ic.closed
			if ic.writing || len(ic.q) == 0 {
				ic.mu.Unlock()
				break
			}
			batch, ic.q = ic.q, batch[:0]
			ic.tailOwned = false
			ic.writing = true
			// The batch counts against the client's limits until it is
			// written: a client that reads slowly holds at most one
			// queue.
			ic.inflight, ic.frames = ic.frames, 0
			ic.mu.Unlock()
			n := 0
			iov = iov[:0]
			for _, o := range batch {
				n += len(o.b)
				iov = append(iov, o.b)
			}
			// One writev for the whole batch (WriteTo consumes iov).
			bufs := net.Buffers(iov)
			_, err := bufs.WriteTo(ic.c.NetConn())
			ic.mu.Lock()
			ic.writing = false
			ic.inflight = 0
			if err != nil {
				ic.mu.Unlock()
				ic.closeWith("")
				return
			}
			ic.qBytes -= n
			for _, o := range batch {
				if o.owned && cap(o.b) <= ownedKeep && len(ic.spare) < spareMax {
					ic.spare = append(ic.spare, o.b[:0])
				}
			}
			ic.mu.Unlock()
			clear(batch)
			if closed {
				break
			}
		}
		ic.mu.Lock()
		closed, reason, busy := ic.closed, ic.reason, ic.writing
		ic.mu.Unlock()
		if closed && !busy {
			if reason != "" {
				ic.c.SetWriteDeadline(time.Now().Add(byeTimeout))
				ic.c.Write(ipc.ServerMsg{Kind: ipc.KindBye, Bye: reason})
			}
			return
		}
	}
}
