//go:build linux

package rrp

import (
	"net"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// gsoCmsgSpace is the room one UDP_SEGMENT control message takes.
var gsoCmsgSpace = unix.CmsgSpace(2)

// groOOBSize is the room for the UDP_GRO control message of a received
// buffer.
var groOOBSize = unix.CmsgSpace(4)

// probeGSO reports whether the kernel does UDP segmentation offload on c
// (Linux 4.18 and later): it knows the UDP_SEGMENT option.
func probeGSO(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	rc.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		ok = err == nil
	})
	return ok
}

// enableGRO asks the kernel to coalesce received datagrams of one flow
// (Linux 5.0 and later) and reports whether it agreed.
func enableGRO(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	rc.Control(func(fd uintptr) {
		ok = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
	})
	return ok
}

// putGSOCmsg writes a UDP_SEGMENT control message for segment size seg
// into b (gsoCmsgSpace bytes, 8-byte aligned) and returns it.
func putGSOCmsg(b []byte, seg int) []byte {
	b = b[:gsoCmsgSpace]
	clear(b)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.IPPROTO_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = uint16(seg)
	return b
}

// groSegment returns the segment size a UDP_GRO control message in oob
// gives, or 0 when there is none.
func groSegment(oob []byte) int {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			return 0
		}
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && l >= unix.CmsgLen(4) {
			return int(*(*int32)(unsafe.Pointer(&oob[hdr])))
		}
		sp := unix.CmsgSpace(l - hdr)
		if sp > len(oob) {
			return 0
		}
		oob = oob[sp:]
	}
	return 0
}

// setBuffers asks for large socket buffers, beyond rmem_max/wmem_max when
// privileged; failures only cost performance.
func setBuffers(c *net.UDPConn, size int) {
	rc, err := c.SyscallConn()
	if err == nil {
		rc.Control(func(fd uintptr) {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) != nil {
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, size)
			}
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size) != nil {
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, size)
			}
		})
	}
}

// listenGroup opens a UDP socket bound to the multicast group address
// itself, so that it receives only that group's datagrams. (net.ListenUDP
// would bind the wildcard address instead, clashing with the link's
// unicast socket and receiving every datagram sent to the port.)
func listenGroup(group netip.AddrPort, v6 bool) (*net.UDPConn, error) {
	family := unix.AF_INET
	var sa unix.Sockaddr
	if v6 {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(group.Port()), Addr: group.Addr().As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: int(group.Port()), Addr: group.Addr().As4()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("setsockopt", err)
	}
	if !v6 {
		// Only the groups joined on this socket, not every group joined
		// on the host.
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
	}
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
