package rrp

import (
	"errors"
	"reflect"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	h := Header{Type: TypeHeartbeat, Flags: FlagEncrypted, KeyID: 0xab, Link: 7, From: 0xdeadbeef, To: 3, Incarnation: 1<<63 + 5, Seq: 42}
	b := AppendHeader(nil, &h)
	if len(b) != HeaderSize {
		t.Fatalf("header is %d bytes, want %d", len(b), HeaderSize)
	}
	b = append(b, make([]byte, NonceSize+TagSize)...)
	var g Header
	if err := DecodeHeader(b, &g); err != nil {
		t.Fatal(err)
	}
	if g != h {
		t.Fatalf("round trip: got %+v, want %+v", g, h)
	}
}

func TestDecodeHeaderRejects(t *testing.T) {
	good := AppendHeader(nil, &Header{Type: TypeFrame, From: 1, Seq: 1})
	mut := func(i int, v byte) []byte {
		b := append([]byte(nil), good...)
		b[i] = v
		return b
	}
	enc := AppendHeader(nil, &Header{Type: TypeFrame, Flags: FlagEncrypted, From: 1, Seq: 1})
	cases := []struct {
		name string
		pkt  []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short", good[:HeaderSize-1], ErrTruncated},
		{"magic", mut(0, 'X'), ErrBadMagic},
		{"version", mut(2, 9), ErrBadVersion},
		{"type", mut(3, 0), ErrBadType},
		{"flags", mut(4, 0x80), ErrBadHeader},
		{"reserved", mut(7, 1), ErrBadHeader},
		{"link", mut(6, MaxLinks), ErrBadHeader},
		{"from zero", mut(11, 0), ErrBadHeader},
		{"encrypted without nonce and tag", enc, ErrTruncated},
	}
	for _, tc := range cases {
		var h Header
		if err := DecodeHeader(tc.pkt, &h); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestHeartbeatRoundTrip(t *testing.T) {
	in := []HeartbeatEntry{
		{Node: 1, PeerIncarnation: 99, Hears: true, Epoch: 3},
		{Node: 384, PeerIncarnation: 0, Hears: false, Epoch: 0},
	}
	b := AppendHeartbeat(nil, in)
	if len(b) != 2+2*heartbeatEntrySize {
		t.Fatalf("encoded %d bytes", len(b))
	}
	out, err := DecodeHeartbeat(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("got %+v, want %+v", out, in)
	}
	for _, bad := range [][]byte{nil, {0}, b[:len(b)-1], append(b, 0), {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, err := DecodeHeartbeat(bad, nil); err == nil {
			t.Errorf("DecodeHeartbeat(%x) succeeded", bad)
		}
	}
	hearsTwo := AppendHeartbeat(nil, in[:1])
	hearsTwo[2+12] = 2
	if _, err := DecodeHeartbeat(hearsTwo, nil); err == nil {
		t.Error("hears byte 2 accepted")
	}
}

func TestReplayWindow(t *testing.T) {
	var w replayWindow
	if w.accept(0) {
		t.Fatal("sequence 0 accepted")
	}
	for _, s := range []uint64{1, 3, 2, 10} {
		if !w.accept(s) {
			t.Fatalf("fresh %d refused", s)
		}
	}
	for _, s := range []uint64{1, 2, 3, 10} {
		if w.accept(s) {
			t.Fatalf("duplicate %d accepted", s)
		}
	}
	for s := uint64(4); s < 10; s++ {
		if !w.check(s) {
			t.Fatalf("gap %d refused", s)
		}
	}
	if !w.accept(10 + windowSize) {
		t.Fatal("far jump refused")
	}
	if w.check(10) || w.check(10+windowSize) {
		t.Fatal("old or duplicate accepted after jump")
	}
	if !w.check(11) {
		t.Fatal("number just inside the window refused")
	}
	// After a huge jump the window is empty.
	w.accept(1 << 40)
	if !w.check(1<<40 - 1) {
		t.Fatal("unseen number inside window refused after huge jump")
	}
	w.reset()
	if !w.accept(1) {
		t.Fatal("reset did not forget")
	}
}

// TestReplayWindowModel checks the window against a map on a pseudo-random
// walk of sequence numbers.
func TestReplayWindowModel(t *testing.T) {
	var w replayWindow
	seen := map[uint64]bool{}
	var top uint64
	x := uint64(12345)
	for i := 0; i < 200000; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		var s uint64
		switch x % 4 {
		case 0:
			s = top + 1 + x%8
		case 1:
			s = top + x%(2*windowSize)
		default:
			if top > 0 {
				s = top - x%(windowSize+64)
			}
		}
		want := s != 0 && !seen[s] && (s > top || top-s < windowSize)
		if got := w.accept(s); got != want {
			t.Fatalf("step %d: accept(%d) with top %d = %v, want %v", i, s, top, got, want)
		}
		if want {
			seen[s] = true
			top = max(top, s)
		}
	}
}

func TestAppendAndOpenPacket(t *testing.T) {
	h := Header{Type: TypeFrame, From: 4, To: 0, Incarnation: 9, Seq: 3, Link: 1}
	prefix := []byte("prefix")
	pkt, err := AppendPacket(append([]byte(nil), prefix...), h, []byte("body"), testKey)
	if err != nil {
		t.Fatal(err)
	}
	if string(pkt[:len(prefix)]) != "prefix" || len(pkt) != len(prefix)+Overhead+4 {
		t.Fatalf("bad packet layout: %d bytes", len(pkt))
	}
	pkt = pkt[len(prefix):]
	other := make([]byte, KeySize)
	g, body, err := OpenPacket(pkt, other, testKey)
	if err != nil || string(body) != "body" || g.From != 4 || g.Seq != 3 || !g.Encrypted() || g.KeyID != KeyID(testKey) {
		t.Fatalf("OpenPacket = %+v %q %v", g, body, err)
	}
	if _, _, err := OpenPacket(pkt); !errors.Is(err, ErrEncrypted) {
		t.Fatalf("no key: %v", err)
	}
	if _, _, err := OpenPacket(pkt, other); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong key: %v", err)
	}
	clear, _ := AppendPacket(nil, h, []byte("plain"), nil)
	if _, body, err := OpenPacket(clear); err != nil || string(body) != "plain" {
		t.Fatalf("clear packet: %q %v", body, err)
	}
}
