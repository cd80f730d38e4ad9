package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"

	"github.com/totem-gcs/totem/sim/evs"
	"github.com/totem-gcs/totem/totem"
)

// Payload layout: magic "TS", node (4 bytes), incarnation (4), counter
// (8), total length (4), then filler bytes derived from the id, so that a
// payload proves its own identity and any change to it is seen.
const (
	payloadMagic = "TS"
	// PayloadHeader is the smallest payload size.
	PayloadHeader = 2 + 4 + 4 + 8 + 4
)

// MakePayload returns a payload of size bytes (at least PayloadHeader)
// that encodes id.
func MakePayload(id evs.MsgID, size int) []byte {
	size = max(size, PayloadHeader)
	b := make([]byte, size)
	copy(b, payloadMagic)
	binary.BigEndian.PutUint32(b[2:], uint32(id.From.Node))
	binary.BigEndian.PutUint32(b[6:], id.From.Inc)
	binary.BigEndian.PutUint64(b[10:], id.Seq)
	binary.BigEndian.PutUint32(b[18:], uint32(size))
	x := uint64(id.From.Node)<<48 ^ uint64(id.From.Inc)<<32 ^ id.Seq
	i := PayloadHeader
	for ; i+8 <= size; i += 8 {
		x = splitmix(x)
		binary.LittleEndian.PutUint64(b[i:], x)
	}
	for x = splitmix(x); i < size; i++ {
		b[i] = byte(x)
		x >>= 8
	}
	return b
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	z := x
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// ParsePayload decodes the message id of a payload made by MakePayload.
func ParsePayload(b []byte) (evs.MsgID, error) {
	if len(b) < PayloadHeader || string(b[:2]) != payloadMagic {
		return evs.MsgID{}, errors.New("no simulator payload header")
	}
	if n := binary.BigEndian.Uint32(b[18:]); int(n) != len(b) {
		return evs.MsgID{}, fmt.Errorf("header says %d bytes, payload has %d", n, len(b))
	}
	return evs.MsgID{
		From: evs.ProcID{Node: totem.NodeID(binary.BigEndian.Uint32(b[2:])), Inc: binary.BigEndian.Uint32(b[6:])},
		Seq:  binary.BigEndian.Uint64(b[10:]),
	}, nil
}

var digestSeed = maphash.MakeSeed()

// Digest hashes a payload so that the checker can compare deliveries with
// proposals without keeping the bytes. (The seed differs per process; a
// digest is only compared within one run.)
func Digest(b []byte) uint64 { return maphash.Bytes(digestSeed, b) }
