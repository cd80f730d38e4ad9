package main

import (
	"encoding/binary"
	"errors"
)

// HeaderSize is the size of the benchmark header that opens every message.
// Message sizes include it, as in Corosync's cpgperf, so that the figures
// compare: a 64-byte message is 32 bytes of header and 32 of filler.
const HeaderSize = 32

// headerMagic opens every benchmark message ("CPGB").
const headerMagic = 0x42475043

// Message kinds.
const (
	kindThroughput = 1
	kindLatency    = 2
)

// header is the benchmark header of a message.
//
// Layout (little endian): magic u32, kind u8, 3 bytes zero, phase u32,
// worker u32, seq u64, run u64.
type header struct {
	Kind   uint8
	Phase  uint32 // index of the size in --sizes
	Worker uint32 // sending goroutine; its messages come back in seq order
	Seq    uint64 // per run, unique
	Run    uint64 // random per cpgbench process: tells our messages from a stale run's
}

// put writes h into the first HeaderSize bytes of b.
func (h header) put(b []byte) {
	_ = b[HeaderSize-1]
	binary.LittleEndian.PutUint32(b[0:], headerMagic)
	b[4], b[5], b[6], b[7] = h.Kind, 0, 0, 0
	binary.LittleEndian.PutUint32(b[8:], h.Phase)
	binary.LittleEndian.PutUint32(b[12:], h.Worker)
	binary.LittleEndian.PutUint64(b[16:], h.Seq)
	binary.LittleEndian.PutUint64(b[24:], h.Run)
}

var errNotBench = errors.New("not a cpgbench message")

// parseHeader reads the header at the start of b.
func parseHeader(b []byte) (header, error) {
	if len(b) < HeaderSize || binary.LittleEndian.Uint32(b) != headerMagic {
		return header{}, errNotBench
	}
	h := header{
		Kind:   b[4],
		Phase:  binary.LittleEndian.Uint32(b[8:]),
		Worker: binary.LittleEndian.Uint32(b[12:]),
		Seq:    binary.LittleEndian.Uint64(b[16:]),
		Run:    binary.LittleEndian.Uint64(b[24:]),
	}
	if h.Kind != kindThroughput && h.Kind != kindLatency {
		return header{}, errNotBench
	}
	return h, nil
}

// fill makes a message buffer of size bytes with a recognisable filler
// after the header.
func fill(size int) []byte {
	b := make([]byte, size)
	for i := HeaderSize; i < size; i++ {
		b[i] = byte(i * 7)
	}
	return b
}
