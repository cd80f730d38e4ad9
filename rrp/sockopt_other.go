//go:build !linux

package rrp

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// setBuffers asks for large socket buffers; failures only cost
// performance.
func setBuffers(c *net.UDPConn, size int) {
	c.SetReadBuffer(size)
	c.SetWriteBuffer(size)
}

// listenGroup opens a UDP socket bound to the multicast group address
// itself, so that it receives only that group's datagrams.
func listenGroup(group netip.AddrPort, v6 bool) (*net.UDPConn, error) {
	family := unix.AF_INET
	var sa unix.Sockaddr
	if v6 {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(group.Port()), Addr: group.Addr().As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: int(group.Port()), Addr: group.Addr().As4()}
	}
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(family, unix.SOCK_DGRAM, unix.IPPROTO_UDP)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	f := os.NewFile(uintptr(fd), "rrp-mcast")
	defer f.Close()
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// Segmentation offload is Linux only.
const (
	gsoCmsgSpace = 0
	groOOBSize   = 0
)

func probeGSO(*net.UDPConn) bool          { return false }
func enableGRO(*net.UDPConn) bool         { return false }
func putGSOCmsg(b []byte, seg int) []byte { return nil }
func groSegment(oob []byte) int           { return 0 }

// newSender reports that this system has no sending socket of its own for
// a link: the link sends on its receiving socket.
func newSender(bind netip.Addr, sockBuf int, ifi *net.Interface, ttl int) (sender, error) {
	return nil, errors.ErrUnsupported
}

// newBatchReader returns the reader of a link's datagrams: pc, c's batch
// view.
func newBatchReader(c *net.UDPConn, pc batchConn) (batchReader, error) {
	return pc, nil
}
