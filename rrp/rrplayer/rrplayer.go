// Package rrplayer is a gopacket layer for the datagrams of package rrp
// (Totem's network transport), so that capture tools can decode them.
//
// Importing the package registers LayerTypeRRP; RegisterPort makes the UDP
// decoder hand datagrams on a port (DefaultPort is registered at init) to
// it:
//
//	pkt := gopacket.NewPacket(data, layers.LinkTypeEthernet, gopacket.Default)
//	if l, ok := pkt.Layer(rrplayer.LayerTypeRRP).(*rrplayer.RRP); ok {
//		body, err := l.Open(key) // l.Header is the clear header
//	}
//
// The layer decodes the clear header only; Open authenticates and decrypts
// the body with the cluster key.
//
// A capture on the sending host (or on a veth pair) sees the datagrams of
// a UDP segmentation offload send before they are cut: one UDP packet
// whose payload is several rrp datagrams back to back (rrp sends
// consecutive same-size datagrams to one address that way). The layer
// then decodes the first datagram and lists them all in Datagrams; the
// capture must keep whole packets (a snap length of 64 KiB), or the
// datagrams cut off are missing.
package rrplayer

import (
	"bytes"
	"fmt"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/totem-gcs/totem/rrp"
)

// LayerTypeNumber is the gopacket layer type number of LayerTypeRRP.
const LayerTypeNumber = 4705

// LayerTypeRRP is the gopacket layer type of an rrp datagram.
var LayerTypeRRP = gopacket.RegisterLayerType(LayerTypeNumber, gopacket.LayerTypeMetadata{
	Name:    "TotemRRP",
	Decoder: gopacket.DecodeFunc(decodeRRP),
})

func init() { RegisterPort(rrp.DefaultPort) }

// RegisterPort makes UDP datagrams to or from port decode as rrp.
func RegisterPort(port int) {
	layers.RegisterUDPPortLayerType(layers.UDPPort(port), LayerTypeRRP)
}

// RRP is a decoded rrp datagram. Contents holds the clear header (and the
// nonce when encrypted), Payload the ciphertext and tag, or the clear
// body.
type RRP struct {
	layers.BaseLayer
	rrp.Header
	// Nonce is the XChaCha20 nonce of an encrypted datagram.
	Nonce []byte
	// Datagram is the whole datagram (header included), as needed to
	// authenticate it.
	Datagram []byte
	// Datagrams holds every datagram of a coalesced packet (see the
	// package comment), Datagram first; nil for a packet that carries
	// one datagram.
	Datagrams [][]byte
}

// LayerType implements gopacket.Layer.
func (r *RRP) LayerType() gopacket.LayerType { return LayerTypeRRP }

// CanDecode implements gopacket.DecodingLayer.
func (r *RRP) CanDecode() gopacket.LayerClass { return LayerTypeRRP }

// NextLayerType implements gopacket.DecodingLayer: the body is opaque
// (encrypted, or an engine frame) and is not decoded further here.
func (r *RRP) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }

// DecodeFromBytes implements gopacket.DecodingLayer.
func (r *RRP) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if err := rrp.DecodeHeader(data, &r.Header); err != nil {
		df.SetTruncated()
		return err
	}
	n := rrp.HeaderSize
	r.Nonce = nil
	if r.Encrypted() {
		r.Nonce = data[rrp.HeaderSize : rrp.HeaderSize+rrp.NonceSize]
		n += rrp.NonceSize
	}
	r.Datagrams = Split(data)
	if len(r.Datagrams) > 1 {
		data = r.Datagrams[0]
	} else {
		r.Datagrams = nil
	}
	r.BaseLayer = layers.BaseLayer{Contents: data[:n], Payload: data[n:]}
	r.Datagram = data
	return nil
}

// Split cuts a UDP payload that starts with an rrp datagram into the
// datagrams it carries: one, or several of one size (the last may be
// shorter) when a segmentation offload send was captured before it was
// cut. The segment size is found as the first offset where a header of
// the same sender and incarnation starts and repeats at every multiple;
// a payload where none does is one datagram.
func Split(data []byte) [][]byte {
	var h rrp.Header
	if rrp.DecodeHeader(data, &h) != nil {
		return [][]byte{data}
	}
	same := func(p []byte) bool {
		return len(p) >= rrp.HeaderSize && bytes.Equal(p[:3], data[:3]) &&
			bytes.Equal(p[8:12], data[8:12]) && bytes.Equal(p[16:24], data[16:24]) &&
			rrp.DecodeHeader(p, new(rrp.Header)) == nil
	}
	for seg := rrp.HeaderSize; seg+rrp.HeaderSize <= len(data); seg++ {
		i := bytes.Index(data[seg:], data[:3])
		if i < 0 {
			break
		}
		seg += i
		ok := true
		for off := seg; off < len(data); off += seg {
			if !same(data[off:]) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		var out [][]byte
		for off := 0; off < len(data); off += seg {
			end := min(off+seg, len(data))
			out = append(out, data[off:end:end])
		}
		return out
	}
	return [][]byte{data}
}

// Open authenticates and decrypts the datagram with whichever of keys
// works (no key is needed for a clear datagram) and returns the body.
func (r *RRP) Open(keys ...[]byte) ([]byte, error) {
	_, body, err := rrp.OpenPacket(r.Datagram, keys...)
	return body, err
}

// String summarises the header.
func (r *RRP) String() string {
	enc := "clear"
	if r.Encrypted() {
		enc = fmt.Sprintf("key=%02x", r.KeyID)
	}
	return fmt.Sprintf("rrp %s link=%d from=%d to=%d inc=%d seq=%d %s len=%d",
		r.Type, r.Link, r.From, r.To, r.Incarnation, r.Seq, enc, len(r.Datagram))
}

func decodeRRP(data []byte, p gopacket.PacketBuilder) error {
	r := &RRP{}
	if err := r.DecodeFromBytes(data, p); err != nil {
		return err
	}
	p.AddLayer(r)
	return nil
}
