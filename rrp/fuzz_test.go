package rrp

import (
	"bytes"
	"net"
	"testing"
	"time"
)

func FuzzDecodeHeader(f *testing.F) {
	f.Add(AppendHeader(nil, &Header{Type: TypeFrame, From: 1, Seq: 1}))
	f.Add(forge(testKey, Header{Type: TypeHeartbeat, From: 2, To: 1, Incarnation: 5, Seq: 9}, []byte("x")))
	f.Add([]byte("TR"))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		var h Header
		if err := DecodeHeader(pkt, &h); err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes.
		if got := AppendHeader(nil, &h); !bytes.Equal(got, pkt[:HeaderSize]) {
			t.Fatalf("re-encoding differs:\n%x\n%x", got, pkt[:HeaderSize])
		}
	})
}

func FuzzDecodeHeartbeat(f *testing.F) {
	f.Add(AppendHeartbeat(nil, []HeartbeatEntry{{Node: 1, PeerIncarnation: 2, Hears: true, Epoch: 3}}))
	f.Add(AppendHeartbeat(nil, nil))
	f.Add([]byte{0, 2, 1})
	f.Fuzz(func(t *testing.T, body []byte) {
		es, err := DecodeHeartbeat(body, nil)
		if err != nil {
			return
		}
		if got := AppendHeartbeat(nil, es); !bytes.Equal(got, body) {
			t.Fatalf("re-encoding differs:\n%x\n%x", got, body)
		}
	})
}

// fuzzTransport is a socketless transport for node 2 of {1,2,3} that can
// run handle on arbitrary datagrams.
func fuzzTransport(key []byte) *Transport {
	c := Config{
		NodeID: 2, Key: key, Insecure: key == nil,
		Nodes: []Node{{ID: 1}, {ID: 2}, {ID: 3}},
		Links: []LinkConfig{{Bind: "127.0.0.1"}},
	}
	c = c.withDefaults()
	c.Logger = discardLogger
	t := &Transport{cfg: c, peers: map[NodeID]*peer{}}
	t.logLimit.interval = time.Hour
	if key != nil {
		kr, _ := newKeyring(key)
		t.keys.Store(kr)
	}
	t.links = []*link{{idx: 0, spec: linkSpec{transport: UDPU, mtu: 1500}}}
	for _, id := range []NodeID{1, 3} {
		p := &peer{id: id}
		t.peers[id] = p
		t.peerList = append(t.peerList, p)
	}
	return t
}

// FuzzHandle runs the whole receive path (header checks, replay checks,
// authentication, heartbeat decoding) on arbitrary datagrams, with and
// without crypto. A datagram is delivered only if it really was sealed
// under the cluster key (or, insecure, is well-formed), and every datagram
// is either delivered, consumed as a heartbeat, or counted as dropped.
func FuzzHandle(f *testing.F) {
	f.Add(forge(testKey, Header{Type: TypeFrame, From: 1, To: 2, Incarnation: 7, Seq: 1}, []byte("frame")), true)
	f.Add(forge(testKey, Header{Type: TypeHeartbeat, From: 3, To: 0, Incarnation: 7, Seq: 1},
		AppendHeartbeat(nil, []HeartbeatEntry{{Node: 2, Hears: true, Epoch: 1}})), true)
	f.Add(forge(nil, Header{Type: TypeFrame, From: 1, To: 0, Incarnation: 7, Seq: 1}, []byte("plain")), false)
	f.Add(forge(nil, Header{Type: TypeHeartbeat, From: 1, To: 2, Incarnation: 7, Seq: 1}, []byte{0, 0}), false)
	f.Add([]byte{}, true)
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	f.Fuzz(func(t *testing.T, pkt []byte, secure bool) {
		key := testKey
		if !secure {
			key = nil
		}
		tr := fuzzTransport(key)
		l := tr.links[0]
		slab := make([]byte, 0, len(pkt))
		for round := 0; round < 2; round++ {
			before := l.counters.snapshot()
			var kr *keyring
			if secure {
				kr = tr.keys.Load()
			}
			_, frame, from, ok := tr.handle(l, pkt, addr, time.Unix(1, 0), kr, slab)
			after := l.counters.snapshot()
			switch {
			case ok:
				if from != 1 && from != 3 {
					t.Fatalf("delivered frame from %d", from)
				}
				if after.FramesReceived != before.FramesReceived+1 {
					t.Fatal("delivery not counted")
				}
				if round == 1 {
					t.Fatal("same datagram delivered twice")
				}
				if secure && len(frame) != len(pkt)-Overhead {
					t.Fatalf("frame of %d bytes from a %d-byte datagram", len(frame), len(pkt))
				}
			case after.HeartbeatsReceived == before.HeartbeatsReceived+1:
				if round == 1 {
					t.Fatal("same heartbeat accepted twice")
				}
			case after.Dropped.Total()+after.Own == before.Dropped.Total()+before.Own+1:
			default:
				t.Fatalf("datagram neither delivered nor counted: %+v -> %+v", before, after)
			}
		}
	})
}

// FuzzOpenPacket: OpenPacket never panics, and returns a body only for
// clear datagrams or ones sealed under the key.
func FuzzOpenPacket(f *testing.F) {
	sealed, _ := AppendPacket(nil, Header{Type: TypeFrame, From: 1, Seq: 1}, []byte("body"), testKey)
	clear, _ := AppendPacket(nil, Header{Type: TypeHeartbeat, From: 1, Seq: 1}, AppendHeartbeat(nil, nil), nil)
	f.Add(sealed)
	f.Add(clear)
	f.Add(sealed[:HeaderSize])
	f.Fuzz(func(t *testing.T, pkt []byte) {
		h, body, err := OpenPacket(pkt, testKey)
		if err != nil {
			return
		}
		want := len(pkt) - HeaderSize
		if h.Encrypted() {
			want -= NonceSize + TagSize
		}
		if len(body) != want {
			t.Fatalf("body of %d bytes from a %d-byte datagram", len(body), len(pkt))
		}
	})
}
