//go:build linux

package main

import (
	"fmt"

	"github.com/google/gopacket/pcapgo"
)

// openLive opens a live capture of Ethernet frames on iface (AF_PACKET,
// no libpcap).
func openLive(iface string) (packetSource, func(), error) {
	h, err := pcapgo.NewEthernetHandle(iface)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (live capture needs root)", err)
	}
	return h, h.Close, nil
}
