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
