package rrp

import (
	"encoding/binary"
	"errors"

	"github.com/totem-gcs/totem/membership"
)

// NodeID identifies a node; zero means "every node" as a destination and is
// never a valid sender.
type NodeID = membership.NodeID

// Wire constants.
const (
	// HeaderSize is the size of the clear header that starts every datagram.
	HeaderSize = 32
	// NonceSize is the size of the XChaCha20 nonce that follows the header
	// when crypto is on.
	NonceSize = 24
	// TagSize is the size of the Poly1305 tag at the end of an encrypted
	// datagram.
	TagSize = 16
	// Overhead is what the transport adds to a frame when crypto is on:
	// the engine's NetMTU is at most the link's MTU minus the IP and UDP
	// headers (28 bytes for IPv4, 48 for IPv6) minus Overhead.
	Overhead = HeaderSize + NonceSize + TagSize
	// Version is the wire format version this package speaks.
	Version = 1
	// MaxLinks is the largest number of links per node.
	MaxLinks = 8
)

// Magic are the first two bytes of every datagram ("TR").
var Magic = [2]byte{'T', 'R'}

// PacketType tells what a datagram carries.
type PacketType uint8

// Packet types.
const (
	// TypeFrame carries one engine frame.
	TypeFrame PacketType = 1
	// TypeHeartbeat carries link-monitoring entries (see Heartbeat).
	TypeHeartbeat PacketType = 2
)

// String names the packet type.
func (p PacketType) String() string {
	switch p {
	case TypeFrame:
		return "frame"
	case TypeHeartbeat:
		return "heartbeat"
	}
	return "type(" + itoa(uint64(p)) + ")"
}

// Header flags.
const (
	// FlagEncrypted marks a datagram whose body is encrypted (nonce,
	// ciphertext, tag follow the header).
	FlagEncrypted = 1 << 0
)

// Header is the clear header of every datagram, big-endian on the wire:
//
//	0  magic "TR"          2  version      3  type
//	4  flags               5  key id       6  link   7  reserved (0)
//	8  from (node id)     12  to (node id, 0 = every node)
//	16 incarnation (u64)  24 sequence (u64)
//
// The sequence numbers frames (TypeFrame) from one counter per sender, so
// the same frame sent on several links carries the same number; heartbeats
// are numbered per link.
type Header struct {
	Type        PacketType
	Flags       uint8
	KeyID       uint8
	Link        uint8
	From, To    NodeID
	Incarnation uint64
	Seq         uint64
}

// Decoding errors.
var (
	ErrTruncated  = errors.New("rrp: truncated packet")
	ErrBadMagic   = errors.New("rrp: not a totem rrp packet")
	ErrBadVersion = errors.New("rrp: unsupported wire version")
	ErrBadType    = errors.New("rrp: unknown packet type")
	ErrBadHeader  = errors.New("rrp: malformed header")
	ErrBadBody    = errors.New("rrp: malformed heartbeat")
)

// Encrypted reports whether the datagram's body is encrypted.
func (h *Header) Encrypted() bool { return h.Flags&FlagEncrypted != 0 }

// AppendHeader appends the encoding of h to b.
func AppendHeader(b []byte, h *Header) []byte {
	b = append(b, Magic[0], Magic[1], Version, byte(h.Type), h.Flags, h.KeyID, h.Link, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(h.From))
	b = binary.BigEndian.AppendUint32(b, uint32(h.To))
	b = binary.BigEndian.AppendUint64(b, h.Incarnation)
	return binary.BigEndian.AppendUint64(b, h.Seq)
}

// DecodeHeader decodes the clear header at the start of pkt. It checks the
// magic, version, type, flags and reserved byte, and that the datagram is
// long enough for what the header announces; it does not authenticate.
func DecodeHeader(pkt []byte, h *Header) error {
	if len(pkt) < HeaderSize {
		return ErrTruncated
	}
	if pkt[0] != Magic[0] || pkt[1] != Magic[1] {
		return ErrBadMagic
	}
	if pkt[2] != Version {
		return ErrBadVersion
	}
	h.Type = PacketType(pkt[3])
	if h.Type != TypeFrame && h.Type != TypeHeartbeat {
		return ErrBadType
	}
	h.Flags = pkt[4]
	h.KeyID = pkt[5]
	h.Link = pkt[6]
	if h.Flags&^FlagEncrypted != 0 || pkt[7] != 0 || h.Link >= MaxLinks {
		return ErrBadHeader
	}
	h.From = NodeID(binary.BigEndian.Uint32(pkt[8:]))
	h.To = NodeID(binary.BigEndian.Uint32(pkt[12:]))
	h.Incarnation = binary.BigEndian.Uint64(pkt[16:])
	h.Seq = binary.BigEndian.Uint64(pkt[24:])
	if h.From == 0 {
		return ErrBadHeader
	}
	if h.Encrypted() && len(pkt) < HeaderSize+NonceSize+TagSize {
		return ErrTruncated
	}
	return nil
}

// HeartbeatEntry is what a node tells one peer about one link.
type HeartbeatEntry struct {
	// Node is the peer the entry is for.
	Node NodeID
	// PeerIncarnation echoes the peer's incarnation as the sender knows
	// it, so that a restarted peer ignores entries about its previous
	// life.
	PeerIncarnation uint64
	// Hears is true when the sender received something from the peer on
	// this link within the link timeout.
	Hears bool
	// Epoch is the sender's history counter for this link to the peer:
	// odd while up, even while down.
	Epoch uint32
}

// heartbeatEntrySize is the encoded size of one HeartbeatEntry.
const heartbeatEntrySize = 4 + 8 + 1 + 4

// AppendHeartbeat appends the encoding of entries to b: a u16 count, then
// for each entry node (u32), peer incarnation (u64), hears (u8: 0 or 1),
// epoch (u32).
func AppendHeartbeat(b []byte, entries []HeartbeatEntry) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(entries)))
	for _, e := range entries {
		b = binary.BigEndian.AppendUint32(b, uint32(e.Node))
		b = binary.BigEndian.AppendUint64(b, e.PeerIncarnation)
		h := byte(0)
		if e.Hears {
			h = 1
		}
		b = append(b, h)
		b = binary.BigEndian.AppendUint32(b, e.Epoch)
	}
	return b
}

// DecodeHeartbeat decodes a heartbeat body, appending its entries to dst.
// The body must be exactly as long as its count says.
func DecodeHeartbeat(body []byte, dst []HeartbeatEntry) ([]HeartbeatEntry, error) {
	if len(body) < 2 {
		return dst, ErrBadBody
	}
	n := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	if len(body) != n*heartbeatEntrySize {
		return dst, ErrBadBody
	}
	for i := 0; i < n; i++ {
		e := body[i*heartbeatEntrySize:]
		if e[12] > 1 {
			return dst, ErrBadBody
		}
		node := NodeID(binary.BigEndian.Uint32(e))
		if node == 0 {
			return dst, ErrBadBody
		}
		dst = append(dst, HeartbeatEntry{
			Node:            node,
			PeerIncarnation: binary.BigEndian.Uint64(e[4:]),
			Hears:           e[12] == 1,
			Epoch:           binary.BigEndian.Uint32(e[13:]),
		})
	}
	return dst, nil
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}
