package totem

import (
	"errors"
	"fmt"
)

// WireVersion is the first byte of every frame. A frame of another version
// is refused by Decode.
const WireVersion = 1

// PacketType is the second byte of every frame.
type PacketType uint8

// Packet types of the Totem SRP.
const (
	TypeToken        PacketType = 1 // the ordering token (ORF token)
	TypeMcast        PacketType = 2 // a frame of messages
	TypeJoin         PacketType = 3 // membership join
	TypeCommitToken  PacketType = 4 // membership commit token
	TypeMergeDetect  PacketType = 5 // a representative announcing its ring
	TypeHoldCancel   PacketType = 6 // asks the holder of an idle token to pass it on
	TypeLeave        PacketType = 7 // a node leaving gracefully
	frameHeaderBytes            = 2
)

// String names the packet type.
func (t PacketType) String() string {
	switch t {
	case TypeToken:
		return "token"
	case TypeMcast:
		return "mcast"
	case TypeJoin:
		return "join"
	case TypeCommitToken:
		return "commit-token"
	case TypeMergeDetect:
		return "merge-detect"
	case TypeHoldCancel:
		return "hold-cancel"
	case TypeLeave:
		return "leave"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Packet is one decoded Totem packet: *Token, *Mcast, *Join, *CommitToken,
// *MergeDetect, *HoldCancel or *Leave.
type Packet interface {
	Type() PacketType
	// AppendTo appends the packet's encoding (header included) to b.
	AppendTo(b []byte) []byte
}

// Token is the ordering token that circulates the ring.
type Token struct {
	Ring      RingID
	TokenSeq  uint64 // grows by one at every hop; duplicates are ignored
	Seq       uint64 // highest message sequence number broadcast on the ring
	Aru       uint64 // all-received-up-to
	AruSetter NodeID
	FCC       uint32   // frames sent in the last rotation (flow control)
	Backlog   uint32   // frames waiting to be sent, ring-wide
	Rtr       []uint64 // sequence numbers someone is missing
	// RecoveryPending lists the nodes that still have old-ring messages to
	// rebroadcast while the ring recovers.
	RecoveryPending NodeSet
	// Install is set by the representative once recovery is complete: every
	// node that sees it installs the new ring.
	Install bool
}

// Entry is one message, or one fragment of a message, inside a frame.
type Entry struct {
	Guarantee Guarantee
	Total     uint32 // length of the whole message
	Offset    uint32 // where Data starts in the whole message
	Data      []byte
}

// Mcast is a frame of messages broadcast by one node on one ring.
type Mcast struct {
	Ring   RingID
	Seq    uint64
	Sender NodeID
	// Recovery frames carry one old-ring frame (Inner) rebroadcast while a
	// new ring recovers; they have no Entries.
	Recovery bool
	Inner    []byte
	Entries  []Entry

	one [1]Entry // backs Entries for a decoded frame of one entry
}

// Join is a membership join message, broadcast while gathering.
type Join struct {
	Sender  NodeID
	RingSeq uint64  // highest ring sequence number the sender knows
	Proc    NodeSet // nodes the sender believes are alive
	Fail    NodeSet // nodes the sender believes have failed
}

// CommitEntry is one member's record in the commit token.
type CommitEntry struct {
	Filled  bool
	OldRing RingID // the ring the member comes from
	Aru     uint64 // its aru on that ring
	HighSeq uint64 // highest sequence number it has from that ring
	SafeSeq uint64 // highest sequence number it knew safe on that ring
}

// CommitToken circulates a new ring twice to install it.
type CommitToken struct {
	Ring     RingID // the new ring
	TokenSeq uint64
	Round    uint8 // 1: members fill in their entries; 2: members enter recovery
	Members  NodeSet
	Entries  []CommitEntry // one per member, in Members order
}

// MergeDetect is broadcast by a ring's representative so that rings that
// can hear each other again merge.
type MergeDetect struct {
	Sender NodeID
	Ring   RingID
}

// HoldCancel asks the representative holding an idle token to pass it on.
type HoldCancel struct {
	Sender NodeID
	Ring   RingID
}

// Leave announces that the sender leaves the ring gracefully.
type Leave struct {
	Sender NodeID
	Ring   RingID
}

// Type implements Packet.
func (*Token) Type() PacketType { return TypeToken }

// Type implements Packet.
func (*Mcast) Type() PacketType { return TypeMcast }

// Type implements Packet.
func (*Join) Type() PacketType { return TypeJoin }

// Type implements Packet.
func (*CommitToken) Type() PacketType { return TypeCommitToken }

// Type implements Packet.
func (*MergeDetect) Type() PacketType { return TypeMergeDetect }

// Type implements Packet.
func (*HoldCancel) Type() PacketType { return TypeHoldCancel }

// Type implements Packet.
func (*Leave) Type() PacketType { return TypeLeave }

func header(b []byte, t PacketType) []byte { return append(b, WireVersion, byte(t)) }

// AppendTo implements Packet.
func (t *Token) AppendTo(b []byte) []byte {
	b = header(b, TypeToken)
	b = appendRing(b, t.Ring)
	b = appendUint(b, t.TokenSeq)
	b = appendUint(b, t.Seq)
	b = appendUint(b, t.Aru)
	b = appendUint(b, uint64(t.AruSetter))
	b = appendUint(b, uint64(t.FCC))
	b = appendUint(b, uint64(t.Backlog))
	b = appendArrayLen(b, len(t.Rtr))
	for _, s := range t.Rtr {
		b = appendUint(b, s)
	}
	b = appendNodeSet(b, t.RecoveryPending)
	return appendBool(b, t.Install)
}

// mcastHeaderMax bounds the bytes a frame header and one entry header take,
// so the packer knows how much data fits in a frame.
const (
	mcastHeaderMax = frameHeaderBytes + 2*9 + 9 + 5 + 1 + 1 + 5
	entryHeaderMax = 1 + 1 + 5 + 5 + 5
)

// AppendTo implements Packet.
func (m *Mcast) AppendTo(b []byte) []byte {
	b = header(b, TypeMcast)
	b = appendRing(b, m.Ring)
	b = appendUint(b, m.Seq)
	b = appendUint(b, uint64(m.Sender))
	b = appendBool(b, m.Recovery)
	if m.Recovery {
		return appendBytes(b, m.Inner)
	}
	b = appendArrayLen(b, len(m.Entries))
	for i := range m.Entries {
		e := &m.Entries[i]
		b = appendArrayLen(b, 4)
		b = appendUint(b, uint64(e.Guarantee))
		b = appendUint(b, uint64(e.Total))
		b = appendUint(b, uint64(e.Offset))
		b = appendBytes(b, e.Data)
	}
	return b
}

// AppendTo implements Packet.
func (j *Join) AppendTo(b []byte) []byte {
	b = header(b, TypeJoin)
	b = appendUint(b, uint64(j.Sender))
	b = appendUint(b, j.RingSeq)
	b = appendNodeSet(b, j.Proc)
	return appendNodeSet(b, j.Fail)
}

// AppendTo implements Packet.
func (c *CommitToken) AppendTo(b []byte) []byte {
	b = header(b, TypeCommitToken)
	b = appendRing(b, c.Ring)
	b = appendUint(b, c.TokenSeq)
	b = appendUint(b, uint64(c.Round))
	b = appendNodeSet(b, c.Members)
	b = appendArrayLen(b, len(c.Entries))
	for _, e := range c.Entries {
		b = appendBool(b, e.Filled)
		b = appendRing(b, e.OldRing)
		b = appendUint(b, e.Aru)
		b = appendUint(b, e.HighSeq)
		b = appendUint(b, e.SafeSeq)
	}
	return b
}

func appendSenderRing(b []byte, t PacketType, sender NodeID, ring RingID) []byte {
	return appendRing(appendUint(header(b, t), uint64(sender)), ring)
}

// AppendTo implements Packet.
func (m *MergeDetect) AppendTo(b []byte) []byte {
	return appendSenderRing(b, TypeMergeDetect, m.Sender, m.Ring)
}

// AppendTo implements Packet.
func (h *HoldCancel) AppendTo(b []byte) []byte {
	return appendSenderRing(b, TypeHoldCancel, h.Sender, h.Ring)
}

// AppendTo implements Packet.
func (l *Leave) AppendTo(b []byte) []byte {
	return appendSenderRing(b, TypeLeave, l.Sender, l.Ring)
}

// Encode returns the encoding of p.
func Encode(p Packet) []byte { return p.AppendTo(nil) }

// Decode decodes one frame. Byte strings in the result (message data,
// inner frames) alias frame. Any error wraps ErrMalformed.
func Decode(frame []byte) (Packet, error) {
	if len(frame) < frameHeaderBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(frame))
	}
	if frame[0] != WireVersion {
		return nil, fmt.Errorf("%w: wire version %d, want %d", ErrMalformed, frame[0], WireVersion)
	}
	r := &reader{b: frame[frameHeaderBytes:]}
	var p Packet
	switch t := PacketType(frame[1]); t {
	case TypeToken:
		p = decodeToken(r)
	case TypeMcast:
		p = decodeMcast(r)
	case TypeJoin:
		p = &Join{Sender: r.nodeID(), RingSeq: r.uint(), Proc: r.nodeSet(), Fail: r.nodeSet()}
	case TypeCommitToken:
		p = decodeCommit(r)
	case TypeMergeDetect:
		p = &MergeDetect{Sender: r.nodeID(), Ring: r.ring()}
	case TypeHoldCancel:
		p = &HoldCancel{Sender: r.nodeID(), Ring: r.ring()}
	case TypeLeave:
		p = &Leave{Sender: r.nodeID(), Ring: r.ring()}
	default:
		return nil, fmt.Errorf("%w: unknown packet type %d", ErrMalformed, uint8(t))
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Errorf("%d trailing bytes", len(r.b)))
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: %v: %v", ErrMalformed, PacketType(frame[1]), r.err)
	}
	return p, nil
}

func decodeToken(r *reader) *Token {
	t := &Token{Ring: r.ring(), TokenSeq: r.uint(), Seq: r.uint(), Aru: r.uint()}
	t.AruSetter = NodeID(r.uint32())
	t.FCC = r.uint32()
	t.Backlog = r.uint32()
	if n := r.arrayLen(1); n > 0 {
		t.Rtr = make([]uint64, n)
		for i := range t.Rtr {
			t.Rtr[i] = r.uint()
		}
	}
	t.RecoveryPending = r.nodeSet()
	t.Install = r.bool()
	return t
}

func decodeMcast(r *reader) *Mcast {
	m := &Mcast{Ring: r.ring(), Seq: r.uint(), Sender: r.nodeID(), Recovery: r.bool()}
	if m.Recovery {
		m.Inner = r.bytes()
		return m
	}
	switch n := r.arrayLen(5); n {
	case 0:
	case 1:
		m.Entries = m.one[:]
	default:
		m.Entries = make([]Entry, n)
	}
	for i := range m.Entries {
		if r.arrayLen(1) != 4 && r.err == nil {
			r.fail(errors.New("entry must have 4 fields"))
		}
		e := &m.Entries[i]
		e.Guarantee = Guarantee(r.uint())
		e.Total = r.uint32()
		e.Offset = r.uint32()
		e.Data = r.bytes()
		if r.err == nil && (e.Guarantee != Agreed && e.Guarantee != Safe ||
			uint64(e.Offset)+uint64(len(e.Data)) > uint64(e.Total)) {
			r.fail(errors.New("invalid entry"))
		}
	}
	return m
}

func decodeCommit(r *reader) *CommitToken {
	c := &CommitToken{Ring: r.ring(), TokenSeq: r.uint()}
	round := r.uint()
	c.Members = r.nodeSet()
	n := r.arrayLen(5)
	if r.err == nil && (round < 1 || round > 2 || n != len(c.Members)) {
		r.fail(errors.New("invalid commit token"))
		return c
	}
	c.Round = uint8(round)
	c.Entries = make([]CommitEntry, n)
	for i := range c.Entries {
		c.Entries[i] = CommitEntry{Filled: r.bool(), OldRing: r.ring(), Aru: r.uint(), HighSeq: r.uint(), SafeSeq: r.uint()}
	}
	return c
}
