package totem

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func samplePackets() []Packet {
	return []Packet{
		&Token{Ring: RingID{1, 8}, TokenSeq: 99, Seq: 1 << 40, Aru: 77, AruSetter: 3, FCC: 12, Backlog: 300, Rtr: []uint64{78, 80}, RecoveryPending: NodeSet{2, 3}, Install: true},
		&Token{Ring: RingID{2, 4}},
		&Mcast{Ring: RingID{1, 8}, Seq: 5, Sender: 2, Entries: []Entry{
			{Guarantee: Agreed, Total: 3, Data: []byte("abc")},
			{Guarantee: Safe, Total: 100000, Offset: 70000, Data: bytes.Repeat([]byte{7}, 300)},
		}},
		&Mcast{Ring: RingID{1, 12}, Seq: 1, Sender: 1, Recovery: true, Inner: []byte{1, 2, 3}},
		&Join{Sender: 4, RingSeq: 12, Proc: NodeSet{1, 2, 4}, Fail: NodeSet{3}},
		&CommitToken{Ring: RingID{1, 16}, TokenSeq: 3, Round: 2, Members: NodeSet{1, 4},
			Entries: []CommitEntry{{Filled: true, OldRing: RingID{1, 12}, Aru: 5, HighSeq: 9, SafeSeq: 4}, {}}},
		&MergeDetect{Sender: 1, Ring: RingID{1, 8}},
		&HoldCancel{Sender: 2, Ring: RingID{1, 8}},
		&Leave{Sender: 3, Ring: RingID{1, 8}},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, p := range samplePackets() {
		raw := Encode(p)
		got, err := Decode(raw)
		if err != nil {
			t.Fatalf("%v: %v", p.Type(), err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("%v: round trip\n got %#v\nwant %#v", p.Type(), got, p)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := Encode(samplePackets()[2])
	cases := map[string][]byte{
		"empty":         nil,
		"one byte":      {WireVersion},
		"wrong version": append([]byte{9}, good[1:]...),
		"unknown type":  {WireVersion, 200},
		"truncated":     good[:len(good)-5],
		"trailing":      append(append([]byte{}, good...), 0),
		"node zero":     Encode(&Join{Sender: 0}),
		"unsorted set":  {WireVersion, byte(TypeJoin), 1, 1, 0x92, 3, 2, 0x90},
	}
	for name, b := range cases {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, p := range samplePackets() {
		f.Add(Encode(p))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		again, err := Decode(Encode(p))
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("re-decode: %v\n%#v\n%#v", err, p, again)
		}
	})
}

// FuzzStep feeds arbitrary frames to a running node: it must never panic.
func FuzzStep(f *testing.F) {
	for _, p := range samplePackets() {
		f.Add(Encode(p))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := newTestCluster(t, 2, fastTest)
		c.run(200e6)
		c.nodes[1].Step(b)
		c.run(200e6)
	})
}
