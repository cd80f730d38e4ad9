//go:build !linux

package main

import "errors"

// openLive is only available on Linux.
func openLive(string) (packetSource, func(), error) {
	return nil, nil, errors.New("live capture is only supported on Linux; capture with tcpdump -w and use --read")
}
