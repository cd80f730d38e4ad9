package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"unsafe"

	"github.com/totem-gcs/totem/ipc"
	"golang.org/x/sys/unix"
)

// The reader reads the daemon's frames in large chunks and handles every
// frame of a chunk as one batch: it decodes them all first, then hands the
// batch's events to the Events channel in one go and answers its replies,
// in the order the frames came. An application goroutine waiting on Events
// is thus woken once per chunk rather than once per event, and requests
// queued meanwhile are written once per chunk, by the reader itself.

// readBufSize is the reader's buffer: a few of the daemon's write batches
// (one writev of up to ~60 KB), so that one read takes what is there.
const readBufSize = 256 << 10

// dataChunk is the size of the allocations that the Data of small
// delivered messages share; data larger than ownData gets its own.
const (
	dataChunk = 32 << 10
	ownData   = 8 << 10
)

// slabSize is how many Messages share one allocation.
const slabSize = 32

// inFrame is one decoded frame of a batch: an event or a reply.
type inFrame struct {
	ev    Event
	rep   ipc.Reply
	isRep bool
	ready bool // the daemon's EventReady
}

// batchReader is the reader goroutine's state.
type batchReader struct {
	h     *Handle
	names ipc.StringCache
	// Scratch for the decoder.
	reply ipc.Reply
	event ipc.Event
	batch []inFrame
	data  []byte    // the free rest of the current data chunk
	slab  []Message // free Messages of the current slab
	own   bool      // the batch holds a delivery of a message from this node
	bye   string
}

// errWouldBlock: the socket took only part of a non-blocking write.
var errWouldBlock = errors.New("write would block")

func (h *Handle) reader() {
	br := &batchReader{h: h}
	buf := make([]byte, readBufSize)
	// Frames the handshake's buffered reader already holds come first.
	w := 0
	for h.conn.Buffered() > 0 {
		p, err := h.conn.ReadFrameShared()
		if err != nil {
			h.end(&DisconnectedError{Err: err})
			return
		}
		if need := w + ipc.HeaderSize + len(p); need > len(buf) {
			buf = append(buf[:w], make([]byte, need-w)...)
		}
		binary.BigEndian.PutUint32(buf[w:], uint32(len(p)))
		w += ipc.HeaderSize + copy(buf[w+ipc.HeaderSize:], p)
	}
	nc := h.conn.NetConn()
	r := 0
	for {
		// Every frame received in full, as one batch.
		var ferr error
		for w-r >= ipc.HeaderSize {
			n := int(binary.BigEndian.Uint32(buf[r:]))
			if n == 0 {
				ferr = ipc.ErrEmptyFrame
				break
			}
			if n > h.conn.Limit {
				ferr = &ipc.FrameTooBigError{Size: n, Limit: h.conn.Limit}
				break
			}
			if ipc.HeaderSize+n > len(buf) {
				// Larger than the buffer: read it into its own
				// allocation, which its Data may then share.
				p := make([]byte, n)
				k := copy(p, buf[r+ipc.HeaderSize:w])
				r, w = 0, 0
				if _, err := io.ReadFull(nc, p[k:]); err != nil {
					if err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					ferr = err
					break
				}
				if ferr = br.decode(p, true, 0); ferr != nil {
					break
				}
				continue
			}
			if w-r < ipc.HeaderSize+n {
				break
			}
			p := buf[r+ipc.HeaderSize : r+ipc.HeaderSize+n]
			r += ipc.HeaderSize + n
			if ferr = br.decode(p, false, w-r); ferr != nil {
				break
			}
		}
		if !br.dispatch() {
			return
		}
		if ferr != nil {
			h.end(&DisconnectedError{Reason: br.bye, Err: ferr})
			return
		}
		// Requests queued behind the replies just handled go out now,
		// before we wait for more.
		h.flushFromReader()
		// Keep the partial frame at the front and read more.
		if r == w {
			r, w = 0, 0
		} else if r > 0 {
			w = copy(buf, buf[r:w])
			r = 0
		}
		n, err := h.readRaw(nc, buf[w:])
		w += n
		if err != nil && n == 0 {
			h.end(&DisconnectedError{Reason: br.bye, Err: err})
			return
		}
	}
}

// decode adds the frame p to the batch. Unless p is the reader's own
// (owned), an event's data is copied out of the read buffer; rest is how
// many bytes of the buffer follow p (a hint for the data chunk's size).
func (br *batchReader) decode(p []byte, owned bool, rest int) error {
	m := ipc.ServerMsg{Reply: &br.reply, Event: &br.event}
	if err := ipc.DecodeServerMsg(p, &m, &br.names); err != nil {
		return err
	}
	switch m.Kind {
	case ipc.KindReply:
		if m.Reply != nil {
			br.batch = append(br.batch, inFrame{rep: *m.Reply, isRep: true})
		}
	case ipc.KindEvent:
		e := m.Event
		if e == nil {
			return nil
		}
		if e.Data != nil && !owned {
			e.Data = br.copyData(e.Data, rest)
		}
		var ev Event
		switch e.Type {
		case ipc.EventReady:
			br.batch = append(br.batch, inFrame{ready: true})
			return nil
		case ipc.EventDeliver:
			if len(br.slab) == 0 {
				br.slab = make([]Message, slabSize)
			}
			msg := &br.slab[0]
			br.slab = br.slab[1:]
			*msg = Message{Group: e.Group, NodeID: NodeID(e.NodeID), PID: e.PID, Guarantee: Guarantee(e.Guarantee), Data: e.Data}
			ev = msg
			if e.NodeID == br.h.welcome.NodeID {
				br.own = true
			}
		default:
			ev = convertEvent(e)
		}
		if ev != nil {
			br.batch = append(br.batch, inFrame{ev: ev})
		}
	case ipc.KindBye:
		br.bye = m.Bye
	}
	return nil
}

// copyData copies d out of the read buffer. Small data share chunks sized
// by what else the buffer holds: a Message kept by the application keeps
// at most dataChunk bytes alive.
func (br *batchReader) copyData(d []byte, rest int) []byte {
	if len(d) > ownData {
		return bytes.Clone(d)
	}
	n := len(d)
	if n > len(br.data) {
		br.data = make([]byte, min(max(rest+n, 4<<10), dataChunk))
	}
	out := br.data[:n:n]
	copy(out, d)
	br.data = br.data[n:]
	return out
}

// dispatch hands the batch's events to the application and its replies to
// their requests, in order; false means the handle ended because the
// application stopped reading events.
func (br *batchReader) dispatch() bool {
	h := br.h
	b := br.batch
	run := 0
	ok := true
	for i := range b {
		if !b[i].isRep && !b[i].ready {
			continue
		}
		if run < i && !h.queueEvents(b[run:i]) {
			ok = false
			break
		}
		if b[i].ready {
			h.flowReady()
		} else {
			h.answer(&b[i].rep)
		}
		run = i + 1
	}
	if ok && run < len(b) {
		ok = h.queueEvents(b[run:])
	}
	clear(b)
	br.batch = b[:0]
	if br.own {
		br.own = false
		h.noteProgress()
	}
	return ok
}

// queueEvents hands the events of fs to the application, or queues them
// for the pump; it reports false when the handle ended because the
// application stopped reading.
func (h *Handle) queueEvents(fs []inFrame) bool {
	h.mu.Lock()
	if len(h.queue) == 0 && !h.pumping && h.err == nil {
		// Nothing waits before them: straight to the channel while it
		// has room, without waking the pump.
	direct:
		for len(fs) > 0 {
			select {
			case h.events <- fs[0].ev:
				fs = fs[1:]
			default:
				break direct
			}
		}
	}
	if len(fs) == 0 {
		h.mu.Unlock()
		return true
	}
	for _, f := range fs {
		if len(h.queue) >= h.maxQ {
			h.mu.Unlock()
			h.end(fmt.Errorf("%w: %d events waiting", ErrEventOverflow, h.maxQ))
			return false
		}
		h.queue = append(h.queue, f.ev)
	}
	h.mu.Unlock()
	select {
	case h.qwake <- struct{}{}:
	default:
	}
	return true
}

// flushFromReader writes the queued requests if no write is under way,
// without blocking: what the socket does not take at once is left to the
// writer goroutine.
func (h *Handle) flushFromReader() {
	h.wmu.Lock()
	if len(h.wbuf) == 0 || h.writing {
		h.wmu.Unlock()
		return
	}
	err := h.flushLocked(context.Background(), true)
	more := len(h.wbuf) > 0
	h.wmu.Unlock()
	switch {
	case err == errWouldBlock:
		if more {
			h.kickWriter()
		}
	case err != nil:
		h.end(&DisconnectedError{Err: err})
	}
}

// tryWrite writes what of buf the socket takes without blocking; it
// returns errWouldBlock when that is not all of it.
func (h *Handle) tryWrite(buf []byte) (int, error) {
	if h.raw == nil {
		return 0, errWouldBlock
	}
	var n int
	var werr error
	err := h.raw.Write(func(fd uintptr) bool {
		for n < len(buf) {
			m, err := rawSyscall(unix.SYS_WRITE, fd, buf[n:])
			if m > 0 {
				n += m
			}
			if err == unix.EINTR {
				continue
			}
			if err != 0 {
				werr = err
				break
			}
		}
		return true
	})
	switch {
	case err != nil:
		return n, err
	case werr == unix.EAGAIN:
		return n, errWouldBlock
	}
	return n, werr
}

// readRaw reads into p once data is there, with ipc.RawRead when the
// socket's descriptor is reachable.
func (h *Handle) readRaw(nc net.Conn, p []byte) (int, error) {
	if h.raw == nil {
		return nc.Read(p)
	}
	return ipc.RawRead(h.raw, p)
}

// rawSyscall makes the read or write syscall nr on fd with p, without
// the scheduler's bookkeeping (for non-blocking descriptors only).
func rawSyscall(nr, fd uintptr, p []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall(nr, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(r), e
}

// rawConn returns the socket's raw connection, or nil.
func rawConn(c any) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}
