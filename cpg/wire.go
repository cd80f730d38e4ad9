package cpg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/totem-gcs/totem/totem"
	"github.com/vmihailenco/msgpack/v5"
)

// Wire format (inside a Totem payload):
//
//	version byte (wireVersion)
//	msgpack array:
//	  data:    [1, group str, pid uint, data bin]
//	  control: [2, [[op uint, group str, pid uint], ...]]
//	  sync:    [3, ring rep uint, ring seq uint, part uint, last bool,
//	            [[group str, pid uint], ...]]
//
// The guarantee of a data message is Totem's own; the sender node is the
// one Totem reports, so a node can speak only for its own processes.
const wireVersion = 1

// Message types.
const (
	msgData    = 1
	msgControl = 2
	msgSync    = 3
)

// opKind is one control operation.
type opKind uint8

const (
	opJoin     opKind = 1
	opLeave    opKind = 2
	opProcDown opKind = 3
)

func (o opKind) reason() Reason {
	switch o {
	case opJoin:
		return ReasonJoin
	case opLeave:
		return ReasonLeave
	}
	return ReasonProcDown
}

// ctrlOp is one control operation on one membership of the sending node.
type ctrlOp struct {
	Op    opKind
	Group string
	Pid   uint32
}

// syncEntry is one local membership in a sync announcement.
type syncEntry struct {
	Group string
	Pid   uint32
}

// message is a decoded cpg message; Type selects the fields in use.
type message struct {
	Type uint8

	// data
	Group string
	Pid   uint32
	Data  []byte

	// control
	Ops []ctrlOp

	// sync
	Ring    totem.RingID
	Part    uint32
	Last    bool
	Entries []syncEntry
}

// errDecode wraps every decoding failure.
var errDecode = errors.New("cpg: malformed message")

// Sizes used to bound encoded messages.
const (
	opWireMax    = 1 + 2 + MaxGroupName + 5 + 5 // array header, op, group, pid
	entryWireMax = 1 + 2 + MaxGroupName + 5
	syncHeader   = 1 + 1 + 1 + 5 + 9 + 5 + 1 + 5
	ctrlHeader   = 1 + 1 + 1 + 5
)

// sliceWriter is the io.Writer the msgpack encoder writes into: a byte
// slice that is handed out as the payload and replaced for the next one.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *sliceWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

func (w *sliceWriter) WriteString(s string) (int, error) {
	w.b = append(w.b, s...)
	return len(s), nil
}

// encoder builds payloads with one reusable msgpack encoder. The errors of
// a slice-backed encoder cannot happen and are ignored.
type encoder struct {
	w   sliceWriter
	enc *msgpack.Encoder
}

func newEncoder() *encoder {
	e := &encoder{}
	e.enc = msgpack.NewEncoder(&e.w)
	return e
}

func (e *encoder) begin(size int) {
	e.w.b = make([]byte, 0, size)
	e.w.b = append(e.w.b, wireVersion)
}

func (e *encoder) end() []byte {
	b := e.w.b
	e.w.b = nil
	return b
}

// data encodes a data message.
func (e *encoder) data(group string, pid uint32, data []byte) []byte {
	e.begin(len(data) + len(group) + 24)
	_ = e.enc.EncodeArrayLen(4)
	_ = e.enc.EncodeUint(msgData)
	_ = e.enc.EncodeString(group)
	_ = e.enc.EncodeUint(uint64(pid))
	_ = e.enc.EncodeBytes(data)
	return e.end()
}

// control encodes a batch of control operations.
func (e *encoder) control(ops []ctrlOp) []byte {
	size := ctrlHeader
	for _, o := range ops {
		size += len(o.Group) + 16
	}
	e.begin(size)
	_ = e.enc.EncodeArrayLen(2)
	_ = e.enc.EncodeUint(msgControl)
	_ = e.enc.EncodeArrayLen(len(ops))
	for _, o := range ops {
		_ = e.enc.EncodeArrayLen(3)
		_ = e.enc.EncodeUint(uint64(o.Op))
		_ = e.enc.EncodeString(o.Group)
		_ = e.enc.EncodeUint(uint64(o.Pid))
	}
	return e.end()
}

// sync encodes one part of a sync announcement.
func (e *encoder) sync(ring totem.RingID, part uint32, last bool, entries []syncEntry) []byte {
	size := syncHeader
	for _, en := range entries {
		size += len(en.Group) + 12
	}
	e.begin(size)
	_ = e.enc.EncodeArrayLen(6)
	_ = e.enc.EncodeUint(msgSync)
	_ = e.enc.EncodeUint(uint64(ring.Rep))
	_ = e.enc.EncodeUint(ring.Seq)
	_ = e.enc.EncodeUint(uint64(part))
	_ = e.enc.EncodeBool(last)
	_ = e.enc.EncodeArrayLen(len(entries))
	for _, en := range entries {
		_ = e.enc.EncodeArrayLen(2)
		_ = e.enc.EncodeString(en.Group)
		_ = e.enc.EncodeUint(uint64(en.Pid))
	}
	return e.end()
}

// One-shot helpers, for tests and tools.
func encodeData(group string, pid uint32, data []byte) []byte {
	return newEncoder().data(group, pid, data)
}

func encodeControl(ops []ctrlOp) []byte { return newEncoder().control(ops) }

func encodeSync(ring totem.RingID, part uint32, last bool, entries []syncEntry) []byte {
	return newEncoder().sync(ring, part, last, entries)
}

// decoder reads one payload; the bytes.Reader keeps msgpack from buffering,
// so rd.Len() is what is left.
type decoder struct {
	rd  bytes.Reader
	dec *msgpack.Decoder
}

func newDecoder() *decoder {
	d := &decoder{}
	d.dec = msgpack.NewDecoder(&d.rd)
	return d
}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errDecode, fmt.Sprintf(format, args...))
}

func (d *decoder) arrayLen(want int) error {
	n, err := d.dec.DecodeArrayLen()
	if err != nil {
		return bad("%v", err)
	}
	if n != want {
		return bad("array of %d elements, want %d", n, want)
	}
	return nil
}

// listLen decodes an array header whose elements take at least minSize
// bytes each, so a forged length cannot make us allocate much.
func (d *decoder) listLen(minSize int) (int, error) {
	n, err := d.dec.DecodeArrayLen()
	if err != nil {
		return 0, bad("%v", err)
	}
	if n < 0 || n*minSize > d.rd.Len() {
		return 0, bad("list of %d elements in %d bytes", n, d.rd.Len())
	}
	return n, nil
}

func (d *decoder) uint(max uint64) (uint64, error) {
	c, err := d.dec.PeekCode()
	if err != nil {
		return 0, bad("%v", err)
	}
	// Only positive integers (fixint or uint8..64) are valid here.
	if !(c <= 0x7f || (c >= 0xcc && c <= 0xcf)) {
		return 0, bad("code %#x is not an unsigned integer", c)
	}
	v, err := d.dec.DecodeUint64()
	if err != nil {
		return 0, bad("%v", err)
	}
	if v > max {
		return 0, bad("value %d above %d", v, max)
	}
	return v, nil
}

func (d *decoder) group() (string, error) {
	s, err := d.dec.DecodeString()
	if err != nil {
		return "", bad("%v", err)
	}
	if err := checkGroup(s); err != nil {
		return "", bad("group name of %d bytes", len(s))
	}
	return s, nil
}

// decode parses a payload. It never panics. The data of a data message is
// a slice of p (read-only, like the Totem payload it comes from); the rest
// keeps no reference to p.
func (d *decoder) decode(p []byte) (message, error) {
	var m message
	if len(p) < 2 {
		return m, bad("payload of %d bytes", len(p))
	}
	if p[0] != wireVersion {
		return m, bad("version %d, want %d", p[0], wireVersion)
	}
	d.rd.Reset(p[1:])
	d.dec.Reset(&d.rd)
	n, err := d.dec.DecodeArrayLen()
	if err != nil || n < 2 {
		return m, bad("no message array")
	}
	t, err := d.uint(255)
	if err != nil {
		return m, err
	}
	m.Type = uint8(t)
	switch m.Type {
	case msgData:
		if n != 4 {
			return m, bad("data message of %d elements", n)
		}
		if m.Group, err = d.group(); err != nil {
			return m, err
		}
		pid, err := d.uint(math.MaxUint32)
		if err != nil {
			return m, err
		}
		m.Pid = uint32(pid)
		// The data is a slice of p, not a copy: Totem hands over each
		// payload for good, and this is the one copy a delivery needs less.
		size, err := d.dec.DecodeBytesLen()
		switch {
		case err != nil:
			return m, bad("data: %v", err)
		case size > d.rd.Len():
			return m, bad("data of %d bytes, %d left", size, d.rd.Len())
		case size <= 0:
			m.Data = []byte{}
		default:
			at := len(p) - d.rd.Len()
			m.Data = p[at : at+size : at+size]
			d.rd.Seek(int64(size), io.SeekCurrent)
		}
	case msgControl:
		if n != 2 {
			return m, bad("control message of %d elements", n)
		}
		cnt, err := d.listLen(4)
		if err != nil {
			return m, err
		}
		if cnt == 0 {
			return m, bad("empty control message")
		}
		m.Ops = make([]ctrlOp, 0, cnt)
		for range cnt {
			if err := d.arrayLen(3); err != nil {
				return m, err
			}
			op, err := d.uint(uint64(opProcDown))
			if err != nil {
				return m, err
			}
			if op < uint64(opJoin) {
				return m, bad("control operation %d", op)
			}
			g, err := d.group()
			if err != nil {
				return m, err
			}
			pid, err := d.uint(math.MaxUint32)
			if err != nil {
				return m, err
			}
			m.Ops = append(m.Ops, ctrlOp{Op: opKind(op), Group: g, Pid: uint32(pid)})
		}
	case msgSync:
		if n != 6 {
			return m, bad("sync message of %d elements", n)
		}
		rep, err := d.uint(math.MaxUint32)
		if err != nil {
			return m, err
		}
		seq, err := d.uint(math.MaxUint64)
		if err != nil {
			return m, err
		}
		m.Ring = totem.RingID{Rep: totem.NodeID(rep), Seq: seq}
		part, err := d.uint(math.MaxUint32)
		if err != nil {
			return m, err
		}
		m.Part = uint32(part)
		if m.Last, err = d.dec.DecodeBool(); err != nil {
			return m, bad("last: %v", err)
		}
		cnt, err := d.listLen(3)
		if err != nil {
			return m, err
		}
		m.Entries = make([]syncEntry, 0, cnt)
		for range cnt {
			if err := d.arrayLen(2); err != nil {
				return m, err
			}
			g, err := d.group()
			if err != nil {
				return m, err
			}
			pid, err := d.uint(math.MaxUint32)
			if err != nil {
				return m, err
			}
			m.Entries = append(m.Entries, syncEntry{Group: g, Pid: uint32(pid)})
		}
	default:
		return m, bad("unknown message type %d", m.Type)
	}
	if d.rd.Len() != 0 {
		return m, bad("%d trailing bytes", d.rd.Len())
	}
	return m, nil
}

// checkGroup validates a group name.
func checkGroup(g string) error {
	if len(g) == 0 || len(g) > MaxGroupName {
		return ErrBadGroupName
	}
	return nil
}

// DescribePayload returns a one-line description of a cpg payload, for
// traces and tools.
func DescribePayload(p []byte) string {
	m, err := newDecoder().decode(p)
	if err != nil {
		return err.Error()
	}
	switch m.Type {
	case msgData:
		return fmt.Sprintf("data %q pid %d %q", m.Group, m.Pid, m.Data)
	case msgControl:
		s := "control"
		for _, o := range m.Ops {
			s += fmt.Sprintf(" %s(%q,%d)", o.Op.reason(), o.Group, o.Pid)
		}
		return s
	}
	return fmt.Sprintf("sync ring %v part %d last %v %v", m.Ring, m.Part, m.Last, m.Entries)
}
