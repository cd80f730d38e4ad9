//go:build linux

package main

import (
	"fmt"

	"github.com/google/gopacket/pcapgo"
)

// maxCapture is the live capture length: a whole IP packet.
const maxCapture = 65536 + 128

// openLive opens a live capture of Ethernet frames on iface (AF_PACKET,
// no libpcap).
func openLive(iface string) (packetSource, func(), error) {
	h, err := pcapgo.NewEthernetHandle(iface)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (live capture needs root)", err)
	}
	// A sender's segmentation offload shows on the sending host as one
	// packet of up to 64 KiB holding several rrp datagrams.
	if err := h.SetCaptureLength(maxCapture); err != nil {
		h.Close()
		return nil, nil, err
	}
	return h, h.Close, nil
}
