package rrplayer

import (
	"bytes"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/totem-gcs/totem/rrp"
)

// udpPacket wraps payload in Ethernet/IPv4/UDP headers.
func udpPacket(t *testing.T, sport, dport int, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(198, 18, 0, 1), DstIP: net.IPv4(198, 18, 0, 2)}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var nextPort = 47000

func TestLayerDecodesAndOpens(t *testing.T) {
	key := bytes.Repeat([]byte{3}, rrp.KeySize)
	h := rrp.Header{Type: rrp.TypeFrame, From: 1, To: 2, Incarnation: 77, Seq: 5, Link: 1}
	dgram, err := rrp.AppendPacket(nil, h, []byte("engine frame"), key)
	if err != nil {
		t.Fatal(err)
	}
	pkt := gopacket.NewPacket(udpPacket(t, 40000, rrp.DefaultPort, dgram), layers.LinkTypeEthernet, gopacket.Default)
	l, ok := pkt.Layer(LayerTypeRRP).(*RRP)
	if !ok {
		t.Fatalf("no rrp layer in %v", pkt)
	}
	if l.From != 1 || l.To != 2 || l.Seq != 5 || l.Link != 1 || !l.Encrypted() || len(l.Nonce) != rrp.NonceSize {
		t.Fatalf("decoded %+v", l.Header)
	}
	if len(l.LayerContents()) != rrp.HeaderSize+rrp.NonceSize || len(l.LayerPayload()) != len("engine frame")+rrp.TagSize {
		t.Fatal("contents/payload split wrong")
	}
	body, err := l.Open(key)
	if err != nil || string(body) != "engine frame" {
		t.Fatalf("Open = %q, %v", body, err)
	}
	if _, err := l.Open(bytes.Repeat([]byte{4}, rrp.KeySize)); err == nil {
		t.Fatal("wrong key opened the datagram")
	}

	// Another port decodes only once registered. (Registration is global:
	// use a fresh port on every run of the test.)
	nextPort++
	port := nextPort
	pkt = gopacket.NewPacket(udpPacket(t, 7000, port, dgram), layers.LinkTypeEthernet, gopacket.Default)
	if pkt.Layer(LayerTypeRRP) != nil {
		t.Fatal("unregistered port decoded as rrp")
	}
	RegisterPort(port)
	pkt = gopacket.NewPacket(udpPacket(t, 7000, port, dgram), layers.LinkTypeEthernet, gopacket.Default)
	if pkt.Layer(LayerTypeRRP) == nil {
		t.Fatal("registered port not decoded as rrp")
	}

	// Garbage on the port is an error layer, not an rrp layer.
	pkt = gopacket.NewPacket(udpPacket(t, 1, rrp.DefaultPort, []byte("garbage")), layers.LinkTypeEthernet, gopacket.Default)
	if pkt.Layer(LayerTypeRRP) != nil || pkt.ErrorLayer() == nil {
		t.Fatal("garbage decoded as rrp")
	}
}

// FuzzDecodeFromBytes: the layer never panics and splits what it accepts
// into contents and payload that cover the datagram.
func FuzzDecodeFromBytes(f *testing.F) {
	key := bytes.Repeat([]byte{3}, rrp.KeySize)
	sealed, _ := rrp.AppendPacket(nil, rrp.Header{Type: rrp.TypeFrame, From: 1, Seq: 1}, []byte("x"), key)
	clear, _ := rrp.AppendPacket(nil, rrp.Header{Type: rrp.TypeFrame, From: 1, Seq: 1}, []byte("x"), nil)
	f.Add(sealed)
	f.Add(clear)
	f.Add([]byte("TR\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var l RRP
		if err := l.DecodeFromBytes(data, gopacket.NilDecodeFeedback); err != nil {
			return
		}
		if len(l.LayerContents())+len(l.LayerPayload()) != len(l.Datagram) {
			t.Fatal("contents and payload do not cover the datagram")
		}
		if l.Datagrams != nil {
			n := 0
			for _, d := range l.Datagrams {
				n += len(d)
			}
			if n != len(data) || &l.Datagrams[0][0] != &l.Datagram[0] {
				t.Fatalf("datagrams cover %d of %d bytes", n, len(data))
			}
		} else if len(l.Datagram) != len(data) {
			t.Fatal("one datagram, not the whole payload")
		}
		_ = l.String()
		l.Open(key)
	})
}

// TestCoalescedPacket: a packet captured before segmentation offload cut
// it (several datagrams of one size back to back, the last shorter)
// decodes as its datagrams, each of which opens.
func TestCoalescedPacket(t *testing.T) {
	key := bytes.Repeat([]byte{3}, rrp.KeySize)
	for _, k := range []struct {
		name string
		key  []byte
	}{{"sealed", key}, {"clear", nil}} {
		t.Run(k.name, func(t *testing.T) {
			var payload []byte
			var bodies []string
			for i := 0; i < 5; i++ {
				body := bytes.Repeat([]byte{byte('a' + i)}, 700)
				if i == 4 {
					body = body[:123]
				}
				// The bodies hold the header's first bytes: Split must
				// not cut there.
				copy(body[100:], "TR\x01\x01")
				h := rrp.Header{Type: rrp.TypeFrame, From: 3, To: 0, Incarnation: 99, Seq: uint64(10 + i)}
				d, err := rrp.AppendPacket(nil, h, body, k.key)
				if err != nil {
					t.Fatal(err)
				}
				payload = append(payload, d...)
				bodies = append(bodies, string(body))
			}
			pkt := gopacket.NewPacket(udpPacket(t, rrp.DefaultPort, rrp.DefaultPort, payload), layers.LinkTypeEthernet, gopacket.Default)
			l, ok := pkt.Layer(LayerTypeRRP).(*RRP)
			if !ok {
				t.Fatalf("no rrp layer in %v", pkt)
			}
			if len(l.Datagrams) != 5 || l.Seq != 10 {
				t.Fatalf("%d datagrams, first seq %d", len(l.Datagrams), l.Seq)
			}
			for i, d := range l.Datagrams {
				_, body, err := rrp.OpenPacket(d, key)
				if err != nil || string(body) != bodies[i] {
					t.Fatalf("datagram %d: %v", i, err)
				}
			}
			if body, err := l.Open(key); err != nil || string(body) != bodies[0] {
				t.Fatalf("Open of the first datagram: %v", err)
			}
			// One datagram stays one.
			if got := Split(l.Datagrams[4]); len(got) != 1 {
				t.Fatalf("a single datagram split in %d", len(got))
			}
		})
	}
}
