package ipc

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

// The fast codecs below encode and decode the frames of the data path
// (send requests, plain replies, events) straight from and into byte
// slices, without the msgpack library's reflection, pools and copies. They
// write and read the same msgpack as the library (the wire does not
// change: a peer using Encode and Decode understands them); whatever they
// do not handle (an unusual shape, a field they do not know, a malformed
// frame) falls back to the library, which also words the errors.

// errSlow sends a decoder back to the msgpack library.
var errSlow = errors.New("ipc: not on the fast path")

// msgpack codes used here.
const (
	mpNil     = 0xc0
	mpFalse   = 0xc2
	mpTrue    = 0xc3
	mpBin8    = 0xc4
	mpBin16   = 0xc5
	mpBin32   = 0xc6
	mpUint8   = 0xcc
	mpUint16  = 0xcd
	mpUint32  = 0xce
	mpUint64  = 0xcf
	mpInt8    = 0xd0
	mpInt16   = 0xd1
	mpInt32   = 0xd2
	mpInt64   = 0xd3
	mpStr8    = 0xd9
	mpStr16   = 0xda
	mpStr32   = 0xdb
	mpArray16 = 0xdc
	mpArray32 = 0xdd
	mpMap16   = 0xde
	mpMap32   = 0xdf
)

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, mpUint8, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpUint16), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, mpUint32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, mpUint64), v)
}

func appendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, mpInt8, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, mpInt16), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, mpInt32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, mpInt64), uint64(v))
}

func appendLen(b []byte, n int, fix byte, fixMax int, c16, c32 byte) []byte {
	switch {
	case n <= fixMax:
		return append(b, fix|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, c16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, c32), uint32(n))
}

func appendArrayLen(b []byte, n int) []byte { return appendLen(b, n, 0x90, 15, mpArray16, mpArray32) }
func appendMapLen(b []byte, n int) []byte   { return appendLen(b, n, 0x80, 15, mpMap16, mpMap32) }

func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n <= 31:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, mpStr8, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, mpStr16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpStr32), uint32(n))
	}
	return append(b, s...)
}

// appendBin appends data as bin, or nil for a nil slice (as the library).
func appendBin(b []byte, data []byte) []byte {
	return append(appendBinHeader(b, data), data...)
}

// appendBinHeader appends what precedes data in appendBin.
func appendBinHeader(b []byte, data []byte) []byte {
	if data == nil {
		return append(b, mpNil)
	}
	switch n := len(data); {
	case n <= math.MaxUint8:
		b = append(b, mpBin8, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, mpBin16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpBin32), uint32(n))
	}
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, mpTrue)
	}
	return append(b, mpFalse)
}

func appendMembers(b []byte, ms []Member) []byte {
	b = appendArrayLen(b, len(ms))
	for _, m := range ms {
		b = append(b, 0x93)
		b = appendUint(b, uint64(m.NodeID))
		b = appendUint(b, uint64(m.PID))
		b = appendUint(b, uint64(m.Reason))
	}
	return b
}

// beginFrame reserves a frame's length prefix; endFrame fills it in.
func beginFrame(b []byte) ([]byte, int) {
	return append(b, 0, 0, 0, 0), len(b)
}

func endFrame(b []byte, at int) []byte {
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-HeaderSize))
	return b
}

// AppendRequestFrame appends r as one frame, length prefix included, to b:
// the same msgpack as Encode(r), without its allocations.
func AppendRequestFrame(b []byte, r *Request) ([]byte, error) {
	b, at := beginFrame(b)
	b = appendArrayLen(b, requestFields)
	b = appendUint(b, r.ID)
	b = appendUint(b, uint64(r.Op))
	b = appendStr(b, r.Group)
	b = appendUint(b, uint64(r.Guarantee))
	b = appendBin(b, r.Data)
	b = appendInt(b, int64(r.Link))
	if r.Fault == nil {
		b = append(b, mpNil)
	} else {
		f, err := msgpack.Marshal(r.Fault)
		if err != nil {
			return b[:at], err
		}
		b = append(b, f...)
	}
	b = appendStr(b, r.KeyFile)
	if r.AcceptKeys == nil {
		b = append(b, mpNil)
	} else {
		b = appendArrayLen(b, len(r.AcceptKeys))
		for _, k := range r.AcceptKeys {
			b = appendStr(b, k)
		}
	}
	return endFrame(b, at), nil
}

// simpleReply reports whether the fast encoder handles r (no lists, no
// status).
func simpleReply(r *Reply) bool {
	return r.Members == nil && r.Groups == nil && r.Status == nil && r.Stats == nil && r.Links == nil
}

func appendReply(b []byte, r *Reply) []byte {
	n := 2
	if r.Error != "" {
		n++
	}
	b = appendMapLen(b, n)
	b = appendStr(b, "id")
	b = appendUint(b, r.ID)
	b = appendStr(b, "code")
	b = appendUint(b, uint64(r.Code))
	if r.Error != "" {
		b = appendStr(b, "error")
		b = appendStr(b, r.Error)
	}
	return b
}

func appendEvent(b []byte, e *Event) []byte {
	return appendEventTail(append(appendEventHead(b, e), e.Data...), e)
}

// appendEventHead appends the fields of e up to its data, whose length
// it includes; appendEventTail the fields after the data.
func appendEventHead(b []byte, e *Event) []byte {
	b = appendArrayLen(b, eventFields+1)
	b = appendUint(b, uint64(e.Type))
	b = appendStr(b, e.Group)
	b = appendUint(b, uint64(e.NodeID))
	b = appendUint(b, uint64(e.PID))
	b = appendUint(b, uint64(e.Guarantee))
	return appendBinHeader(b, e.Data)
}

func appendEventTail(b []byte, e *Event) []byte {
	b = appendMembers(b, e.Members)
	b = appendMembers(b, e.Joined)
	b = appendMembers(b, e.Left)
	b = appendUint(b, uint64(e.Ring.Rep))
	b = appendUint(b, e.Ring.Seq)
	if e.Nodes == nil {
		b = append(b, mpNil)
	} else {
		b = appendArrayLen(b, len(e.Nodes))
		for _, n := range e.Nodes {
			b = appendUint(b, uint64(n))
		}
	}
	return appendBool(b, e.Transitional)
}

// AppendEventFrame appends the ServerMsg carrying event e as one frame,
// length prefix included, to b (what AppendServerFrame writes for it).
func AppendEventFrame(b []byte, e *Event) []byte {
	b, at := beginFrame(b)
	b = appendEvent(appendEventEnvelope(b), e)
	return endFrame(b, at)
}

// appendEventEnvelope appends what precedes the event in its ServerMsg.
func appendEventEnvelope(b []byte) []byte {
	b = appendMapLen(b, 2)
	b = appendStr(b, "kind")
	b = appendUint(b, uint64(KindEvent))
	return appendStr(b, "event")
}

// AppendEventFrameSplit encodes the frame of AppendEventFrame around
// e.Data without copying it: the frame is head, then e.Data, then tail
// (for one writev). head is b with the frame's beginning appended; tail
// follows it in the same array.
func AppendEventFrameSplit(b []byte, e *Event) (head, tail []byte) {
	b, at := beginFrame(b)
	b = appendEventHead(appendEventEnvelope(b), e)
	split := len(b)
	b = appendEventTail(b, e)
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)+len(e.Data)-at-HeaderSize))
	return b[:split:split], b[split:]
}

// AppendReplyFrame appends the ServerMsg carrying reply r as one frame,
// length prefix included, to b (what AppendServerFrame writes for it).
func AppendReplyFrame(b []byte, r *Reply) ([]byte, error) {
	if !simpleReply(r) {
		return AppendFrame(b, &ServerMsg{Kind: KindReply, Reply: r})
	}
	b, at := beginFrame(b)
	b = appendMapLen(b, 2)
	b = appendStr(b, "kind")
	b = appendUint(b, uint64(KindReply))
	b = appendStr(b, "reply")
	b = appendReply(b, r)
	return endFrame(b, at), nil
}

// AppendServerFrame appends m as one frame, length prefix included, to b:
// the same msgpack as Encode(m). Replies with lists or a status, Welcome
// and messages of several kinds go through the library.
func AppendServerFrame(b []byte, m *ServerMsg) ([]byte, error) {
	fast := m.Welcome == nil && m.Bye == "" &&
		((m.Kind == KindReply && m.Reply != nil && m.Event == nil && simpleReply(m.Reply)) ||
			(m.Kind == KindEvent && m.Event != nil && m.Reply == nil))
	if !fast {
		return AppendFrame(b, m)
	}
	b, at := beginFrame(b)
	b = appendMapLen(b, 2)
	b = appendStr(b, "kind")
	b = appendUint(b, uint64(m.Kind))
	if m.Reply != nil {
		b = appendStr(b, "reply")
		b = appendReply(b, m.Reply)
	} else {
		b = appendStr(b, "event")
		b = appendEvent(b, m.Event)
	}
	return endFrame(b, at), nil
}

// StringCache returns the last string it made again when the same bytes
// come back, so that a stream of messages to one group does not allocate
// the group's name for each. The zero value is ready; it is not safe for
// concurrent use.
type StringCache struct{ last string }

func (c *StringCache) get(b []byte) string {
	if c == nil {
		return string(b)
	}
	if string(b) != c.last {
		c.last = string(b)
	}
	return c.last
}

// cursor reads msgpack from a byte slice; every method reports false on
// anything it does not expect, and the caller falls back to the library.
type cursor struct {
	p []byte
	i int
}

func (c *cursor) byte() (byte, bool) {
	if c.i >= len(c.p) {
		return 0, false
	}
	b := c.p[c.i]
	c.i++
	return b, true
}

func (c *cursor) take(n int) ([]byte, bool) {
	if n < 0 || n > len(c.p)-c.i {
		return nil, false
	}
	b := c.p[c.i : c.i+n : c.i+n]
	c.i += n
	return b, true
}

func (c *cursor) be(n int) (uint64, bool) {
	b, ok := c.take(n)
	if !ok {
		return 0, false
	}
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v, true
}

// uint reads a non-negative integer of any width.
func (c *cursor) uint() (uint64, bool) {
	b, ok := c.byte()
	switch {
	case !ok:
		return 0, false
	case b <= 0x7f:
		return uint64(b), true
	case b == mpUint8:
		return c.be(1)
	case b == mpUint16:
		return c.be(2)
	case b == mpUint32:
		return c.be(4)
	case b == mpUint64:
		return c.be(8)
	case b == mpInt8, b == mpInt16, b == mpInt32, b == mpInt64:
		n := 1 << (b - mpInt8)
		v, ok := c.be(n)
		// Negative values go to the library.
		if !ok || v>>(8*n-1) != 0 {
			return 0, false
		}
		return v, true
	}
	return 0, false
}

// uintN reads an integer that must fit in bits bits (the library
// truncates wider ones; the fast path leaves them to it).
func (c *cursor) uintN(bits int) (uint64, bool) {
	v, ok := c.uint()
	if !ok || (bits < 64 && v>>bits != 0) {
		return 0, false
	}
	return v, true
}

func (c *cursor) length(fixBase, fixMask byte, c16, c32 byte) (int, bool) {
	b, ok := c.byte()
	if !ok {
		return 0, false
	}
	var v uint64
	switch {
	case b&^fixMask == fixBase:
		return int(b & fixMask), true
	case b == c16:
		v, ok = c.be(2)
	case b == c32:
		v, ok = c.be(4)
	default:
		return 0, false
	}
	// No length can exceed what is left of the frame.
	if !ok || v > uint64(len(c.p)-c.i) {
		return 0, false
	}
	return int(v), true
}

func (c *cursor) arrayLen() (int, bool) { return c.length(0x90, 0x0f, mpArray16, mpArray32) }
func (c *cursor) mapLen() (int, bool)   { return c.length(0x80, 0x0f, mpMap16, mpMap32) }

// str reads a string's bytes (str format only).
func (c *cursor) str() ([]byte, bool) {
	b, ok := c.byte()
	if !ok {
		return nil, false
	}
	var n uint64
	switch {
	case b&0xe0 == 0xa0:
		n = uint64(b & 0x1f)
	case b == mpStr8:
		n, ok = c.be(1)
	case b == mpStr16:
		n, ok = c.be(2)
	case b == mpStr32:
		n, ok = c.be(4)
	default:
		return nil, false
	}
	if !ok {
		return nil, false
	}
	return c.take(int(n))
}

// bin reads bytes (bin format, or nil for nil), aliasing the frame.
func (c *cursor) bin() ([]byte, bool) {
	b, ok := c.byte()
	if !ok {
		return nil, false
	}
	var n uint64
	switch b {
	case mpNil:
		return nil, true
	case mpBin8:
		n, ok = c.be(1)
	case mpBin16:
		n, ok = c.be(2)
	case mpBin32:
		n, ok = c.be(4)
	default:
		return nil, false
	}
	if !ok {
		return nil, false
	}
	return c.take(int(n))
}

func (c *cursor) nil() bool {
	if c.i < len(c.p) && c.p[c.i] == mpNil {
		c.i++
		return true
	}
	return false
}

func (c *cursor) bool() (bool, bool) {
	b, ok := c.byte()
	switch {
	case !ok:
		return false, false
	case b == mpTrue:
		return true, true
	case b == mpFalse:
		return false, true
	}
	return false, false
}

func (c *cursor) members() ([]Member, bool) {
	n, ok := c.arrayLen()
	if !ok || n > 1<<16 {
		return nil, false
	}
	if n == 0 {
		return nil, true
	}
	out := make([]Member, n)
	for i := range out {
		if k, ok := c.arrayLen(); !ok || k != 3 {
			return nil, false
		}
		node, ok1 := c.uintN(32)
		pid, ok2 := c.uintN(32)
		r, ok3 := c.uintN(8)
		if !ok1 || !ok2 || !ok3 {
			return nil, false
		}
		out[i] = Member{NodeID: uint32(node), PID: uint32(pid), Reason: Reason(r)}
	}
	return out, true
}

// DecodeRequest decodes a request frame payload into r. Data aliases p
// (the caller must not reuse p while r is in use); the group's name comes
// from names when not nil.
func DecodeRequest(p []byte, r *Request, names *StringCache) error {
	if decodeRequestFast(p, r, names) {
		return nil
	}
	// A separate value, so that r does not escape on the fast path.
	var slow Request
	err := Decode(p, &slow)
	*r = slow
	return err
}

func decodeRequestFast(p []byte, r *Request, names *StringCache) bool {
	c := cursor{p: p}
	n, ok := c.arrayLen()
	if !ok || n != requestFields {
		return false
	}
	id, ok1 := c.uint()
	op, ok2 := c.uintN(8)
	group, ok3 := c.str()
	g, ok4 := c.uintN(8)
	data, ok5 := c.bin()
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return false
	}
	link, ok := c.uint()
	if !ok || link > math.MaxInt32 || !c.nil() {
		return false // negative links and faults: the library
	}
	keyFile, ok := c.str()
	if !ok || !c.nil() || c.i != len(p) {
		return false
	}
	*r = Request{ID: id, Op: Op(op), Group: names.get(group), Guarantee: uint8(g), Data: data, Link: int(link)}
	if len(keyFile) > 0 {
		r.KeyFile = string(keyFile)
	}
	return true
}

// DecodeServerMsg decodes a frame payload from the daemon into m. An
// event's Data aliases p; group names come from names when not nil. A
// Reply or Event that m points to on entry is reused for the frame's reply
// or event (overwritten), so that a reader can decode without allocating
// them.
func DecodeServerMsg(p []byte, m *ServerMsg, names *StringCache) error {
	if decodeServerFast(p, m, names) {
		return nil
	}
	var slow ServerMsg
	err := Decode(p, &slow)
	*m = slow
	return err
}

func decodeServerFast(p []byte, m *ServerMsg, names *StringCache) bool {
	c := cursor{p: p}
	n, ok := c.mapLen()
	if !ok {
		return false
	}
	reply, event := m.Reply, m.Event
	*m = ServerMsg{}
	for range n {
		key, ok := c.str()
		if !ok {
			return false
		}
		switch string(key) {
		case "kind":
			k, ok := c.uintN(8)
			if !ok {
				return false
			}
			m.Kind = Kind(k)
		case "reply":
			if c.nil() {
				continue
			}
			if reply == nil {
				reply = new(Reply)
			}
			*reply = Reply{}
			m.Reply = reply
			if !c.reply(m.Reply) {
				return false
			}
		case "event":
			if c.nil() {
				continue
			}
			if event == nil {
				event = new(Event)
			}
			m.Event = event
			if !c.event(m.Event, names) {
				return false
			}
		case "bye":
			s, ok := c.str()
			if !ok {
				return false
			}
			m.Bye = string(s)
		default:
			return false
		}
	}
	return c.i == len(p)
}

func (c *cursor) reply(r *Reply) bool {
	n, ok := c.mapLen()
	if !ok {
		return false
	}
	for range n {
		key, ok := c.str()
		if !ok {
			return false
		}
		switch string(key) {
		case "id":
			r.ID, ok = c.uint()
		case "code":
			var v uint64
			v, ok = c.uintN(8)
			r.Code = Code(v)
		case "error":
			var s []byte
			s, ok = c.str()
			r.Error = string(s)
		default:
			return false
		}
		if !ok {
			return false
		}
	}
	return true
}

func (c *cursor) event(e *Event, names *StringCache) bool {
	n, ok := c.arrayLen()
	if !ok || (n != eventFields && n != eventFields+1) {
		return false
	}
	t, ok1 := c.uintN(8)
	group, ok2 := c.str()
	node, ok3 := c.uintN(32)
	pid, ok4 := c.uintN(32)
	g, ok5 := c.uintN(8)
	data, ok6 := c.bin()
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
		return false
	}
	*e = Event{Type: EventType(t), Group: names.get(group), NodeID: uint32(node), PID: uint32(pid), Guarantee: uint8(g), Data: data}
	if e.Members, ok = c.members(); !ok {
		return false
	}
	if e.Joined, ok = c.members(); !ok {
		return false
	}
	if e.Left, ok = c.members(); !ok {
		return false
	}
	rep, ok1 := c.uintN(32)
	seq, ok2 := c.uint()
	if !ok1 || !ok2 {
		return false
	}
	e.Ring = Ring{Rep: uint32(rep), Seq: seq}
	if !c.nil() {
		k, ok := c.arrayLen()
		if !ok {
			return false
		}
		e.Nodes = make([]uint32, k)
		for i := range e.Nodes {
			v, ok := c.uintN(32)
			if !ok {
				return false
			}
			e.Nodes[i] = uint32(v)
		}
	}
	if n > eventFields {
		if e.Transitional, ok = c.bool(); !ok {
			return false
		}
	}
	return true
}
