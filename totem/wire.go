package totem

import (
	"encoding/binary"
	"errors"

	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// This file holds the small msgpack writer and reader the codec is built
// on. Encoding appends to a byte slice; decoding reads from one without
// copying byte strings (they alias the frame) and without reflection.

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= uint64(msgpcode.PosFixedNumHigh):
		return append(b, byte(v))
	case v <= 0xff:
		return append(b, msgpcode.Uint8, byte(v))
	case v <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, msgpcode.Uint16), uint16(v))
	case v <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, msgpcode.Uint32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, msgpcode.Uint64), v)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, msgpcode.True)
	}
	return append(b, msgpcode.False)
}

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, msgpcode.FixedArrayLow|byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, msgpcode.Array16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, msgpcode.Array32), uint32(n))
}

func appendBytes(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case n <= 0xff:
		b = append(b, msgpcode.Bin8, byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, msgpcode.Bin16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, msgpcode.Bin32), uint32(n))
	}
	return append(b, p...)
}

func appendNodeSet(b []byte, s NodeSet) []byte {
	b = appendArrayLen(b, len(s))
	for _, id := range s {
		b = appendUint(b, uint64(id))
	}
	return b
}

func appendRing(b []byte, r RingID) []byte {
	return appendUint(appendUint(b, uint64(r.Rep)), r.Seq)
}

var errShort = errors.New("truncated")

// reader decodes msgpack values from a byte slice. The first error sticks;
// later reads return zero values, so decoders check err once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *reader) take(n int) []byte {
	if n < 0 || len(r.b) < n {
		r.fail(errShort)
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) code() byte {
	p := r.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (r *reader) uint() uint64 {
	c := r.code()
	if r.err != nil {
		return 0
	}
	switch {
	case c <= msgpcode.PosFixedNumHigh:
		return uint64(c)
	case c == msgpcode.Uint8:
		if p := r.take(1); p != nil {
			return uint64(p[0])
		}
	case c == msgpcode.Uint16:
		if p := r.take(2); p != nil {
			return uint64(binary.BigEndian.Uint16(p))
		}
	case c == msgpcode.Uint32:
		if p := r.take(4); p != nil {
			return uint64(binary.BigEndian.Uint32(p))
		}
	case c == msgpcode.Uint64:
		if p := r.take(8); p != nil {
			return binary.BigEndian.Uint64(p)
		}
	default:
		r.fail(errors.New("expected an unsigned integer"))
	}
	return 0
}

func (r *reader) uint32() uint32 {
	v := r.uint()
	if v > 0xffffffff {
		r.fail(errors.New("integer out of range"))
	}
	return uint32(v)
}

func (r *reader) bool() bool {
	switch r.code() {
	case msgpcode.True:
		return true
	case msgpcode.False:
		return false
	}
	r.fail(errors.New("expected a boolean"))
	return false
}

// arrayLen reads an array header whose elements each take at least
// minElem bytes, so a forged length cannot make the decoder allocate more
// than the frame could hold.
func (r *reader) arrayLen(minElem int) int {
	c := r.code()
	var n int
	switch {
	case r.err != nil:
		return 0
	case msgpcode.IsFixedArray(c):
		n = int(c & msgpcode.FixedArrayMask)
	case c == msgpcode.Array16:
		if p := r.take(2); p != nil {
			n = int(binary.BigEndian.Uint16(p))
		}
	case c == msgpcode.Array32:
		if p := r.take(4); p != nil {
			n = int(binary.BigEndian.Uint32(p))
		}
	default:
		r.fail(errors.New("expected an array"))
	}
	if n*minElem > len(r.b) {
		r.fail(errShort)
		return 0
	}
	return n
}

func (r *reader) bytes() []byte {
	c := r.code()
	var n int
	switch {
	case r.err != nil:
		return nil
	case c == msgpcode.Bin8:
		if p := r.take(1); p != nil {
			n = int(p[0])
		}
	case c == msgpcode.Bin16:
		if p := r.take(2); p != nil {
			n = int(binary.BigEndian.Uint16(p))
		}
	case c == msgpcode.Bin32:
		if p := r.take(4); p != nil {
			n = int(binary.BigEndian.Uint32(p))
		}
	default:
		r.fail(errors.New("expected a byte string"))
		return nil
	}
	return r.take(n)
}

func (r *reader) nodeID() NodeID {
	v := r.uint()
	if v == 0 || v > 0xffffffff {
		r.fail(errors.New("invalid node id"))
	}
	return NodeID(v)
}

func (r *reader) nodeSet() NodeSet {
	n := r.arrayLen(1)
	if n == 0 {
		return nil
	}
	s := make(NodeSet, n)
	for i := range s {
		s[i] = r.nodeID()
		if i > 0 && s[i] <= s[i-1] && r.err == nil {
			r.fail(errors.New("node set not sorted"))
		}
	}
	return s
}

func (r *reader) ring() RingID {
	return RingID{Rep: NodeID(r.uint32()), Seq: r.uint()}
}
