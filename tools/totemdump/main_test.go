package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/totem-gcs/totem/membership"
	"github.com/totem-gcs/totem/rrp"
	"github.com/totem-gcs/totem/totem"
)

// frameOnWire wraps an rrp datagram in Ethernet/IPv4/UDP.
func frameOnWire(t *testing.T, dgram []byte, sport, dport int) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(198, 18, 0, 1), DstIP: net.IPv4(198, 18, 0, 2), Id: 99}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(dgram)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fragment splits an Ethernet/IPv4 packet into two IPv4 fragments.
func fragment(t *testing.T, wire []byte) [][]byte {
	t.Helper()
	pkt := gopacket.NewPacket(wire, layers.LinkTypeEthernet, gopacket.Default)
	eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	payload := ip.Payload // UDP header + data
	cut := 1480
	var out [][]byte
	for i, part := range [][]byte{payload[:cut], payload[cut:]} {
		fip := *ip
		fip.FragOffset = uint16(i * cut / 8)
		fip.Flags = 0
		if i == 0 {
			fip.Flags = layers.IPv4MoreFragments
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, &fip, gopacket.Payload(part)); err != nil {
			t.Fatal(err)
		}
		out = append(out, buf.Bytes())
	}
	return out
}

func TestDumpCaptureFile(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "authkey")
	if err := rrp.GenerateKey(keyFile); err != nil {
		t.Fatal(err)
	}
	key, err := rrp.ReadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ring := totem.RingID{Rep: 1, Seq: 4}
	frames := []totem.Packet{
		&totem.Token{Ring: ring, TokenSeq: 10, Seq: 20, Aru: 19, AruSetter: 2, FCC: 3, Backlog: 1, Rtr: []uint64{18}},
		&totem.Mcast{Ring: ring, Seq: 20, Sender: 1, Entries: []totem.Entry{{Guarantee: totem.Agreed, Total: 5, Data: []byte("hello")}}},
		&totem.Join{Sender: 3, RingSeq: 4, Proc: membership.NewNodeSet(1, 2, 3), Fail: membership.NewNodeSet(4)},
	}
	var wires [][]byte
	for i, p := range frames {
		dg, err := rrp.AppendPacket(nil, rrp.Header{Type: rrp.TypeFrame, From: 1, To: 0, Incarnation: 5, Seq: uint64(i + 1)}, totem.Encode(p), key)
		if err != nil {
			t.Fatal(err)
		}
		wires = append(wires, frameOnWire(t, dg, rrp.DefaultPort, rrp.DefaultPort))
	}
	hb, _ := rrp.AppendPacket(nil, rrp.Header{Type: rrp.TypeHeartbeat, From: 2, To: 1, Incarnation: 6, Seq: 1},
		rrp.AppendHeartbeat(nil, []rrp.HeartbeatEntry{{Node: 1, PeerIncarnation: 5, Hears: true, Epoch: 3}}), key)
	wires = append(wires, frameOnWire(t, hb, rrp.DefaultPort, rrp.DefaultPort))
	wrong, _ := rrp.AppendPacket(nil, rrp.Header{Type: rrp.TypeFrame, From: 9, Incarnation: 1, Seq: 1}, []byte("x"), make([]byte, rrp.KeySize))
	wires = append(wires, frameOnWire(t, wrong, rrp.DefaultPort, rrp.DefaultPort))
	wires = append(wires, frameOnWire(t, []byte("garbage!"), 1234, rrp.DefaultPort))
	wires = append(wires, frameOnWire(t, []byte("other traffic"), 53, 53))
	big := &totem.Mcast{Ring: ring, Seq: 21, Sender: 2, Entries: []totem.Entry{{Guarantee: totem.Safe, Total: 2500, Data: bytes.Repeat([]byte{1}, 2500)}}}
	bigDG, _ := rrp.AppendPacket(nil, rrp.Header{Type: rrp.TypeFrame, From: 2, Incarnation: 6, Seq: 2}, totem.Encode(big), key)
	wires = append(wires, fragment(t, frameOnWire(t, bigDG, rrp.DefaultPort, rrp.DefaultPort))...)

	pcapFile := filepath.Join(dir, "cap.pcap")
	f, _ := os.Create(pcapFile)
	w := pcapgo.NewWriter(f)
	w.WriteFileHeader(65536, layers.LinkTypeEthernet)
	for i, b := range wires {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, int64(i)*1000), CaptureLength: len(b), Length: len(b)}, b)
	}
	f.Close()

	var out, errb bytes.Buffer
	if rc := run([]string{"-r", pcapFile, "-k", keyFile}, &out, &errb); rc != 0 {
		t.Fatalf("exit %d: %s", rc, errb.String())
	}
	got := out.String()
	for _, want := range []string{
		"198.18.0.1:5405 > 198.18.0.2:5405 rrp frame link=0 from=1 to=0 inc=5 seq=1",
		"token ring=1.4 token_seq=10 seq=20 aru=19 aru_setter=2 fcc=3 backlog=1 rtr=[18]",
		"mcast ring=1.4 seq=20 sender=1 entries=1 [agreed 5B]",
		"join sender=3 ring_seq=4 proc=",
		"heartbeat {node=1 hears=true epoch=3(up) peer_inc=5}",
		"authentication failed",
		"198.18.0.1:1234 > 198.18.0.2:5405 udp len=8: rrp: truncated packet",
		"mcast ring=1.4 seq=21 sender=2 entries=1 [safe 2500B]",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(got, ":53 ") {
		t.Error("non-Totem traffic printed")
	}
	if t.Failed() {
		t.Logf("output:\n%s", got)
	}

	// Without a key: headers only.
	out.Reset()
	run([]string{"-r", pcapFile, "--no-heartbeats", "-c", "2"}, &out, &errb)
	if !strings.Contains(out.String(), "encrypted, ") || strings.Count(out.String(), "\n") != 2 || strings.Contains(out.String(), "heartbeat") {
		t.Errorf("keyless output wrong:\n%s", out.String())
	}

	// Bad usage.
	if rc := run(nil, &out, &errb); rc != 2 {
		t.Errorf("no source: exit %d, want 2", rc)
	}
	if rc := run([]string{"-r", filepath.Join(dir, "missing")}, &out, &errb); rc != 1 {
		t.Errorf("missing file: exit %d, want 1", rc)
	}
}

func TestDumpPcapng(t *testing.T) {
	dir := t.TempDir()
	dg, _ := rrp.AppendPacket(nil, rrp.Header{Type: rrp.TypeFrame, From: 2, To: 1, Incarnation: 1, Seq: 1},
		totem.Encode(&totem.Leave{Sender: 2, Ring: totem.RingID{Rep: 1, Seq: 9}}), nil)
	wire := frameOnWire(t, dg, rrp.DefaultPort, rrp.DefaultPort)
	p := filepath.Join(dir, "cap.pcapng")
	f, _ := os.Create(p)
	w, err := pcapgo.NewNgWriter(f, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, 0), CaptureLength: len(wire), Length: len(wire)}, wire)
	w.Flush()
	f.Close()
	var out, errb bytes.Buffer
	if rc := run([]string{"-r", p}, &out, &errb); rc != 0 {
		t.Fatalf("exit %d: %s", rc, errb.String())
	}
	if !strings.Contains(out.String(), "clear len=") || !strings.Contains(out.String(), "leave sender=2 ring=1.9") {
		t.Fatalf("pcapng output:\n%s", out.String())
	}
}

// A packet captured on the sending host before segmentation offload holds
// several rrp datagrams back to back: each is decrypted and printed.
func TestDumpOffloadedPacket(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "authkey")
	if err := rrp.GenerateKey(keyFile); err != nil {
		t.Fatal(err)
	}
	key, _ := rrp.ReadKey(keyFile)
	ring := totem.RingID{Rep: 1, Seq: 4}
	var udp []byte
	for i, p := range []totem.Packet{
		&totem.Mcast{Ring: ring, Seq: 20, Sender: 1, Entries: []totem.Entry{{Guarantee: totem.Agreed, Total: 5, Data: []byte("one..")}}},
		&totem.Mcast{Ring: ring, Seq: 21, Sender: 1, Entries: []totem.Entry{{Guarantee: totem.Agreed, Total: 5, Data: []byte("two..")}}},
		&totem.Token{Ring: ring, TokenSeq: 10, Seq: 21, Aru: 21, AruSetter: 1},
	} {
		dg, err := rrp.AppendPacket(nil, rrp.Header{Type: rrp.TypeFrame, From: 1, To: 2, Incarnation: 5, Seq: uint64(i + 1)}, totem.Encode(p), key)
		if err != nil {
			t.Fatal(err)
		}
		udp = append(udp, dg...)
	}
	wire := frameOnWire(t, udp, rrp.DefaultPort, rrp.DefaultPort)
	p := filepath.Join(dir, "gso.pcap")
	f, _ := os.Create(p)
	w := pcapgo.NewWriter(f)
	w.WriteFileHeader(65536, layers.LinkTypeEthernet)
	w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, 0), CaptureLength: len(wire), Length: len(wire)}, wire)
	f.Close()
	var out, errb bytes.Buffer
	if rc := run([]string{"-r", p, "-k", keyFile}, &out, &errb); rc != 0 {
		t.Fatalf("exit %d: %s", rc, errb.String())
	}
	for _, want := range []string{"[1/3]", "seq=20", "[2/3]", "seq=21", "[3/3]", "token ring=1.4"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("no %q in:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "authentication") {
		t.Fatalf("a datagram failed to open:\n%s", out.String())
	}
}
