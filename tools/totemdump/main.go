// Command totemdump decodes captured Totem traffic: the datagrams that
// totemd's transport (package rrp) sends over UDP. Given the cluster key
// it authenticates and decrypts them and prints the engine's packets inside
// (tokens, messages, membership packets) with their fields, and the link
// heartbeats.
//
// It reads a pcap or pcapng file (tcpdump -w) or captures live from an
// interface (Linux, as root), in pure Go (no libpcap):
//
//	totemdump -r capture.pcap -k /etc/totem/authkey
//	totemdump -i eth0 -k /etc/totem/authkey -c 100
//	totemdump -r capture.pcap -p 5405 -p 5407 --hex
//
// Datagrams are recognised by UDP port (--port, default 5405). IPv4
// fragments are reassembled. A live capture on lo sees every datagram
// twice (once sent, once received). Each line shows the capture time, the
// addresses, the rrp header (type, link, sender, destination, incarnation,
// sequence number, key fingerprint) and the decoded contents; packets that
// fail to decode or authenticate are shown with the reason.
package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/google/gopacket"
	"github.com/google/gopacket/ip4defrag"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/spf13/pflag"

	"github.com/totem-gcs/totem/rrp"
	"github.com/totem-gcs/totem/rrp/rrplayer"
	"github.com/totem-gcs/totem/totem"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// packetSource yields captured packets.
type packetSource interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("totemdump", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	read := fs.StringP("read", "r", "", "read packets from this pcap or pcapng file (- for stdin)")
	iface := fs.StringP("interface", "i", "", "capture live from this interface (needs root)")
	keyFiles := fs.StringArrayP("key", "k", nil, "cluster key file to decrypt with (repeat during a key rotation)")
	ports := fs.IntSliceP("port", "p", []int{rrp.DefaultPort}, "UDP ports that carry Totem traffic")
	count := fs.IntP("count", "c", 0, "stop after this many Totem datagrams (0: no limit)")
	hexDump := fs.BoolP("hex", "x", false, "hex-dump each decrypted frame")
	noHB := fs.Bool("no-heartbeats", false, "do not print link heartbeats")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: totemdump (-r FILE | -i IFACE) [-k KEYFILE] [flags]\n\nDecodes Totem (rrp) traffic from a capture file or a live interface.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if (*read == "") == (*iface == "") {
		fmt.Fprintln(stderr, "totemdump: give exactly one of --read FILE or --interface IFACE")
		fs.Usage()
		return 2
	}
	var keys [][]byte
	for _, f := range *keyFiles {
		k, err := rrp.ReadKey(f)
		if err != nil {
			fmt.Fprintln(stderr, "totemdump:", err)
			return 1
		}
		keys = append(keys, k)
	}
	for _, p := range *ports {
		if p <= 0 || p > 65535 {
			fmt.Fprintf(stderr, "totemdump: bad port %d\n", p)
			return 2
		}
		rrplayer.RegisterPort(p)
	}

	var src packetSource
	var linkType layers.LinkType
	if *read != "" {
		var r io.Reader = os.Stdin
		if *read != "-" {
			f, err := os.Open(*read)
			if err != nil {
				fmt.Fprintln(stderr, "totemdump:", err)
				return 1
			}
			defer f.Close()
			r = f
		}
		s, lt, err := openCapture(r)
		if err != nil {
			fmt.Fprintf(stderr, "totemdump: %s: %v\n", *read, err)
			return 1
		}
		src, linkType = s, lt
	} else {
		h, closeFn, err := openLive(*iface)
		if err != nil {
			fmt.Fprintf(stderr, "totemdump: capture on %s: %v\n", *iface, err)
			return 1
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		go func() { <-sig; closeFn() }()
		defer closeFn()
		src, linkType = h, layers.LinkTypeEthernet
	}

	d := &dumper{out: bufio.NewWriter(stdout), keys: keys, hex: *hexDump, heartbeats: !*noHB,
		defrag: ip4defrag.NewIPv4Defragmenter(), live: *iface != ""}
	defer d.out.Flush()
	for *count == 0 || d.seen < *count {
		data, ci, err := src.ReadPacketData()
		if err != nil {
			if err == io.EOF || d.live {
				break
			}
			fmt.Fprintln(stderr, "totemdump: read:", err)
			d.out.Flush()
			return 1
		}
		d.packet(gopacket.NewPacket(data, linkType, gopacket.DecodeOptions{Lazy: true, NoCopy: true}), ci)
	}
	return 0
}

// openCapture reads a pcap or pcapng header from r.
func openCapture(r io.Reader) (packetSource, layers.LinkType, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, 0, fmt.Errorf("not a capture file: %w", err)
	}
	if string(magic) == "\x0a\x0d\x0d\x0a" {
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, 0, err
		}
		return ng, ng.LinkType(), nil
	}
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		return nil, 0, err
	}
	return pr, pr.LinkType(), nil
}

// dumper prints Totem datagrams.
type dumper struct {
	out        *bufio.Writer
	keys       [][]byte
	hex        bool
	heartbeats bool
	live       bool
	defrag     *ip4defrag.IPv4Defragmenter
	seen       int
}

func (d *dumper) packet(pkt gopacket.Packet, ci gopacket.CaptureInfo) {
	// Reassemble IPv4 fragments, then decode the whole datagram again.
	if ip4, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok && (ip4.Flags&layers.IPv4MoreFragments != 0 || ip4.FragOffset != 0) {
		whole, err := d.defrag.DefragIPv4(ip4)
		if err != nil || whole == nil {
			return
		}
		b := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(b, gopacket.SerializeOptions{FixLengths: true}, whole, gopacket.Payload(whole.Payload)); err != nil {
			return
		}
		pkt = gopacket.NewPacket(b.Bytes(), layers.LayerTypeIPv4, gopacket.Default)
	}
	udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if !ok || !isRRPPort(udp) {
		return
	}
	d.seen++
	var from, to string
	if nl := pkt.NetworkLayer(); nl != nil {
		from = hostPort(nl.NetworkFlow().Src().String(), int(udp.SrcPort))
		to = hostPort(nl.NetworkFlow().Dst().String(), int(udp.DstPort))
	}
	prefix := fmt.Sprintf("%s %s > %s", ci.Timestamp.UTC().Format("15:04:05.000000"), from, to)
	l, ok := pkt.Layer(rrplayer.LayerTypeRRP).(*rrplayer.RRP)
	if !ok {
		reason := "not an rrp datagram"
		if el := pkt.ErrorLayer(); el != nil {
			reason = el.Error().Error()
		}
		fmt.Fprintf(d.out, "%s udp len=%d: %s\n", prefix, len(udp.Payload), reason)
		return
	}
	if len(l.Datagrams) > 1 {
		// Captured on the sending host before segmentation: several
		// datagrams back to back, each printed on its own.
		for i, dg := range l.Datagrams {
			one := gopacket.NewPacket(dg, rrplayer.LayerTypeRRP, gopacket.Default)
			if r, ok := one.Layer(rrplayer.LayerTypeRRP).(*rrplayer.RRP); ok {
				d.datagram(fmt.Sprintf("%s [%d/%d]", prefix, i+1, len(l.Datagrams)), r)
			}
		}
		return
	}
	d.datagram(prefix, l)
}

// datagram prints one rrp datagram, decrypted and decoded if it can.
func (d *dumper) datagram(prefix string, l *rrplayer.RRP) {
	if l.Type == rrp.TypeHeartbeat && !d.heartbeats {
		return
	}
	fmt.Fprintf(d.out, "%s %s", prefix, l.String())
	body, err := l.Open(d.keys...)
	switch {
	case errors.Is(err, rrp.ErrEncrypted):
		fmt.Fprintf(d.out, ": encrypted, %d bytes (give --key to decrypt)\n", len(l.LayerPayload())-rrp.TagSize)
		return
	case err != nil:
		fmt.Fprintf(d.out, ": %v\n", err)
		return
	}
	if l.Type == rrp.TypeHeartbeat {
		es, err := rrp.DecodeHeartbeat(body, nil)
		if err != nil {
			fmt.Fprintf(d.out, ": %v\n", err)
			return
		}
		var parts []string
		for _, e := range es {
			state := "down"
			if e.Epoch%2 == 1 {
				state = "up"
			}
			parts = append(parts, fmt.Sprintf("{node=%d hears=%v epoch=%d(%s) peer_inc=%d}", e.Node, e.Hears, e.Epoch, state, e.PeerIncarnation))
		}
		fmt.Fprintf(d.out, ": heartbeat %s\n", strings.Join(parts, " "))
		return
	}
	fmt.Fprintf(d.out, ": %s\n", totem.Describe(body))
	if d.hex {
		fmt.Fprint(d.out, indent(hex.Dump(body)))
	}
}

func isRRPPort(u *layers.UDP) bool {
	// The UDP layer picked the next layer by port; rrp was registered for
	// every --port.
	return u.NextLayerType() == rrplayer.LayerTypeRRP
}

func hostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}

func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "    " + l
		}
	}
	return strings.Join(lines, "")
}
