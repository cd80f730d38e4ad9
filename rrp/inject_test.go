package rrp

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"
)

// forge builds a datagram as node from would, under key (nil = insecure).
func forge(key []byte, h Header, body []byte) []byte {
	if key == nil {
		return append(AppendHeader(nil, &h), body...)
	}
	kr, err := newKeyring(key)
	if err != nil {
		panic(err)
	}
	h.Flags |= FlagEncrypted
	h.KeyID = kr.sendID
	var ns nonceSource
	return kr.seal(AppendHeader(nil, &h), ns.next(), body)
}

// TestHostilePacketsDroppedAndCounted sends garbage, truncated, oversized,
// forged, replayed and stale datagrams to a node from a plain UDP socket
// and checks that none is delivered and each is counted by reason, while a
// genuine frame still gets through.
func TestHostilePacketsDroppedAndCounted(t *testing.T) {
	cfgs := loopbackConfigs(t, "127.0.0.1", 3, 1)
	var logs logBuf
	cfgs[1].Logger = logs.logger()
	ts := startAll(t, cfgs[:2]) // node 3 is played by the test
	target, _ := net.ResolveUDPAddr("udp", cfgs[0].Nodes[1].Addrs[0])
	sock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	send := func(b []byte) {
		if _, err := sock.WriteToUDP(b, target); err != nil {
			t.Fatal(err)
		}
	}
	inc := uint64(time.Now().UnixNano())
	valid := func(seq uint64, body string) []byte {
		return forge(testKey, Header{Type: TypeFrame, From: 3, To: 2, Incarnation: inc, Seq: seq}, []byte(body))
	}

	// A genuine frame from "node 3" first: it is delivered.
	genuine := valid(1, "genuine")
	send(genuine)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	got := collect(ctx, ts[1], 1)
	if len(got) != 1 || string(got[0].Frame) != "genuine" || got[0].From != 3 {
		t.Fatalf("genuine forged-by-test frame not delivered: %v", got)
	}

	flipped := valid(2, "tampered")
	flipped[len(flipped)-20] ^= 1
	hdrTampered := valid(3, "x")
	hdrTampered[12+3] = 0 // To: 2 -> 0 changes the authenticated header
	otherKey := forge(bytes.Repeat([]byte{1}, KeySize), Header{Type: TypeFrame, From: 3, To: 2, Incarnation: inc, Seq: 4}, []byte("k"))
	badHB := forge(testKey, Header{Type: TypeHeartbeat, From: 3, To: 2, Incarnation: inc, Seq: 1}, []byte{0, 5, 1})

	sends := []struct {
		name string
		pkt  []byte
	}{
		{"empty", nil},
		{"truncated header", genuine[:10]},
		{"truncated crypto", genuine[:HeaderSize+NonceSize+TagSize-1]},
		{"garbage", bytes.Repeat([]byte{0xff}, 100)},
		{"oversized", make([]byte, 2000)},
		{"bit flip", flipped},
		{"header tamper", hdrTampered},
		{"wrong key", otherKey},
		{"unknown node", forge(testKey, Header{Type: TypeFrame, From: 77, To: 2, Incarnation: inc, Seq: 5}, []byte("u"))},
		{"plaintext", forge(nil, Header{Type: TypeFrame, From: 3, To: 2, Incarnation: inc, Seq: 6}, []byte("p"))},
		{"replay", genuine},
		{"stale incarnation", forge(testKey, Header{Type: TypeFrame, From: 3, To: 2, Incarnation: inc - 1, Seq: 99}, []byte("s"))},
		{"bad heartbeat", badHB},
		{"wrong link", forge(testKey, Header{Type: TypeFrame, Link: 1, From: 3, To: 2, Incarnation: inc, Seq: 7}, []byte("l"))},
		{"for another node", forge(testKey, Header{Type: TypeFrame, From: 3, To: 1, Incarnation: inc, Seq: 8}, []byte("o"))},
	}
	for _, s := range sends {
		send(s.pkt)
	}
	want := DropCounters{
		Truncated: 3, Oversized: 1, Malformed: 3 /* garbage, bad heartbeat, wrong link */, UnknownNode: 1,
		AuthFailed: 3, CryptoMismatch: 1, Duplicate: 1, Stale: 1, NotForUs: 1,
	}
	waitFor(t, 3*time.Second, "all hostile packets counted", func() bool {
		return ts[1].Stats().Total.Dropped.Total() >= want.Total()
	})
	time.Sleep(50 * time.Millisecond)
	d := ts[1].Stats().Total.Dropped
	d.Fault = 0
	if d != want {
		t.Fatalf("drop counters\n got  %+v\n want %+v", d, want)
	}
	// Nothing hostile was delivered; a later genuine frame still is.
	send(valid(10, "still-works"))
	got = collect(ctx, ts[1], 1)
	if len(got) != 1 || string(got[0].Frame) != "still-works" {
		t.Fatalf("after hostile traffic got %v, want only the genuine frame", got)
	}
	out := logs.String()
	for _, w := range []string{"fail authentication", "not in the node list", "older incarnation", "crypto is on here and off there"} {
		if !contains(out, w) {
			t.Errorf("log lacks %q:\n%s", w, out)
		}
	}
	// A restart (higher incarnation) is accepted and resets the window.
	send(forge(testKey, Header{Type: TypeFrame, From: 3, To: 2, Incarnation: inc + 1, Seq: 1}, []byte("reborn")))
	got = collect(ctx, ts[1], 1)
	if len(got) != 1 || string(got[0].Frame) != "reborn" {
		t.Fatalf("restarted node's frame not delivered: %v", got)
	}
	if !contains(logs.String(), "node 3 restarted") {
		t.Error("restart not logged")
	}
}
