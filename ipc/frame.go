package ipc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// HeaderSize is the size of a frame's length prefix.
const HeaderSize = 4

// FrameTooBigError reports a frame over the receiver's limit.
type FrameTooBigError struct {
	Size, Limit int
}

func (e *FrameTooBigError) Error() string {
	return fmt.Sprintf("frame of %d bytes exceeds the limit of %d bytes", e.Size, e.Limit)
}

// ErrEmptyFrame is returned for a frame of length zero.
var ErrEmptyFrame = errors.New("ipc: empty frame")

// ReadFrame reads one frame's payload from r. A frame longer than limit
// returns a *FrameTooBigError without reading the payload.
func ReadFrame(r io.Reader, limit int) ([]byte, error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, ErrEmptyFrame
	}
	if uint64(n) > uint64(limit) {
		return nil, &FrameTooBigError{Size: int(n), Limit: limit}
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// AppendFrame appends v, msgpack-encoded with its length prefix, to b.
func AppendFrame(b []byte, v any) ([]byte, error) {
	body, err := msgpack.Marshal(v)
	if err != nil {
		return b, err
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...), nil
}

// Encode returns v as one frame, length prefix included.
func Encode(v any) ([]byte, error) { return AppendFrame(nil, v) }

// Decode decodes a frame payload into v.
func Decode(payload []byte, v any) error {
	if err := msgpack.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("ipc: malformed frame: %w", err)
	}
	return nil
}

// Conn is a framed connection: frames are written whole under a lock and
// read through a buffer. Reads must come from one goroutine.
type Conn struct {
	c     net.Conn
	r     *bufio.Reader
	wmu   sync.Mutex
	Limit int // largest frame accepted by Read
}

// NewConn wraps c, accepting frames up to limit bytes.
func NewConn(c net.Conn, limit int) *Conn {
	return &Conn{c: c, r: bufio.NewReaderSize(c, 64<<10), Limit: limit}
}

// Read reads the next frame and decodes it into v.
func (c *Conn) Read(v any) error {
	p, err := ReadFrame(c.r, c.Limit)
	if err != nil {
		return err
	}
	return Decode(p, v)
}

// maxBatchFrames bounds the frames ReadFrames returns at once.
const maxBatchFrames = 256

// ReadFrames reads the next frame and every further frame already
// received in full (up to the read buffer's size), appends their payloads
// to dst and returns it. The payloads share one allocation and belong to
// the caller. A frame over the limit or of length zero returns the same
// errors as ReadFrame when it comes first, and ends the batch otherwise
// (the next call reports it).
func (c *Conn) ReadFrames(dst [][]byte) ([][]byte, error) {
	hdr, err := c.r.Peek(HeaderSize)
	if err != nil {
		if len(hdr) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return dst, err
	}
	n := binary.BigEndian.Uint32(hdr)
	if n == 0 {
		return dst, ErrEmptyFrame
	}
	if uint64(n) > uint64(c.Limit) {
		return dst, &FrameTooBigError{Size: int(n), Limit: c.Limit}
	}
	// The frames received in full behind the first.
	end := HeaderSize + int(n)
	count := 1
	for count < maxBatchFrames && c.r.Buffered() >= end+HeaderSize {
		h, err := c.r.Peek(end + HeaderSize)
		if err != nil {
			break
		}
		m := int(binary.BigEndian.Uint32(h[end:]))
		if m == 0 || m > c.Limit || c.r.Buffered() < end+HeaderSize+m {
			break
		}
		end += HeaderSize + m
		count++
	}
	buf := make([]byte, end)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return dst, err
	}
	for len(buf) > 0 {
		m := int(binary.BigEndian.Uint32(buf))
		dst = append(dst, buf[HeaderSize:HeaderSize+m:HeaderSize+m])
		buf = buf[HeaderSize+m:]
	}
	return dst, nil
}

// ReadFrameShared reads the next frame without copying it when it fits in
// the read buffer: the payload is valid only until the next read.
func (c *Conn) ReadFrameShared() ([]byte, error) {
	hdr, err := c.r.Peek(HeaderSize)
	if err != nil {
		if len(hdr) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr))
	switch {
	case n == 0:
		return nil, ErrEmptyFrame
	case n > c.Limit:
		return nil, &FrameTooBigError{Size: n, Limit: c.Limit}
	case HeaderSize+n > c.r.Size():
		return ReadFrame(c.r, c.Limit)
	}
	p, err := c.r.Peek(HeaderSize + n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	c.r.Discard(HeaderSize + n)
	return p[HeaderSize:], nil
}

// Buffered reports the bytes received and not yet read.
func (c *Conn) Buffered() int { return c.r.Buffered() }

// Write encodes v and writes it as one frame.
func (c *Conn) Write(v any) error {
	f, err := Encode(v)
	if err != nil {
		return err
	}
	return c.WriteRaw(f)
}

// WriteRaw writes an already encoded frame.
func (c *Conn) WriteRaw(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.c.Write(frame)
	return err
}

// SetDeadline sets the underlying connection's deadline.
func (c *Conn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// SetWriteDeadline sets the underlying connection's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.c.SetWriteDeadline(t) }

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.c }
