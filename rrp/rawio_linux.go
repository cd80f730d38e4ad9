//go:build linux

package rrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// rawSender sends a link's datagrams with sendmmsg on a socket of its own,
// bound to the link's address with a port of the kernel's choice, that
// the Go runtime's network poller does not watch.
//
// Two costs of sending on the receiving socket go away with it, both
// measured on a 3-node cluster on 2 CPUs:
//   - The poller registers every socket for writability too, so every
//     datagram the kernel frees after sending it woke a thread waiting in
//     epoll (3,200 wakeups a second at 14,500 msgs/s, each a context
//     switch that finds nothing to do).
//   - A system call entered through the runtime's syscall path that lasts
//     longer than a scheduler tick (a send round to a local bridge does:
//     the kernel delivers to the peers' sockets in the sender's time) gets
//     its processor handed to another thread. sendmmsg here is
//     non-blocking and entered directly; when the socket buffer is full it
//     waits in poll(2) through the runtime's path.
//
// Receivers identify the sender by the node ID in the header, not by the
// source address, so the source port does not matter to the protocol;
// firewalls must let the cluster port in from any source port of the
// nodes, as for Corosync's udpu.
type rawSender struct {
	fd int
	v6 bool

	mu     sync.Mutex
	hdrs   []mmsghdr
	iovs   []unix.Iovec
	names  []unix.RawSockaddrInet6 // big enough for either family
	zones  map[string]uint32
	closed bool
}

// mmsghdr is struct mmsghdr of sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// newSender opens the link's own sending socket (see rawSender).
func newSender(bind netip.Addr, sockBuf int, ifi *net.Interface, ttl int) (sender, error) {
	return newRawSender(bind, sockBuf, ifi, ttl)
}

// newRawSender opens the sending socket of a link bound to bind (port
// ignored), with socket buffers of sockBuf bytes. For a multicast link,
// ifi is the interface that sends to the group and ttl its hop limit.
func newRawSender(bind netip.Addr, sockBuf int, ifi *net.Interface, ttl int) (*rawSender, error) {
	v6 := !bind.Unmap().Is4()
	family := unix.AF_INET
	var sa unix.Sockaddr
	if !v6 {
		sa = &unix.SockaddrInet4{Addr: bind.Unmap().As4()}
	} else {
		family = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{Addr: bind.As16()}
		if z := bind.Zone(); z != "" {
			zi, err := net.InterfaceByName(z)
			if err != nil {
				return nil, err
			}
			sa6.ZoneId = uint32(zi.Index)
		}
		sa = sa6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	fail := func(op string, err error) (*rawSender, error) {
		unix.Close(fd)
		return nil, os.NewSyscallError(op, err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sockBuf) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sockBuf)
	}
	// It only sends: keep what might arrive on its port small.
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
	if ifi != nil {
		if v6 {
			err = firstErr(unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index),
				unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, ttl),
				unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 1))
		} else {
			err = firstErr(unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifi.Index)}),
				unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, ttl),
				unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 1))
		}
		if err != nil {
			return fail("setsockopt", err)
		}
	}
	return &rawSender{fd: fd, v6: v6, zones: map[string]uint32{}}, nil
}

// gsoCapable reports whether the kernel does UDP segmentation offload on
// the socket (Linux 4.18 and later).
func (s *rawSender) gsoCapable() bool {
	_, err := unix.GetsockoptInt(s.fd, unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	return err == nil
}

// WriteBatch sends ms (buffers, destination, control data each) like
// ipv4.PacketConn's: it returns how many went, and an error for the
// first that did not.
func (s *rawSender) WriteBatch(ms []ipv4.Message, _ int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, net.ErrClosed
	}
	if len(ms) > 1024 {
		ms = ms[:1024] // UIO_MAXIOV: the caller goes on with the rest
	}
	if err := s.prepare(ms); err != nil {
		return 0, err
	}
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(s.fd),
			uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(len(ms)), unix.MSG_DONTWAIT, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno == unix.EAGAIN {
			// The socket buffer is full: wait (through the runtime's
			// syscall path, since it may block) for room.
			fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLOUT}}
			if _, err := unix.Poll(fds, 1000); err != nil && !errors.Is(err, unix.EINTR) {
				s.release()
				return 0, os.NewSyscallError("poll", err)
			}
			if fds[0].Revents&unix.POLLOUT == 0 {
				s.release()
				return 0, os.NewSyscallError("sendmmsg", unix.EAGAIN)
			}
			continue
		}
		runtime.KeepAlive(ms)
		s.release()
		if errno != 0 {
			return 0, os.NewSyscallError("sendmmsg", errno)
		}
		return int(n), nil
	}
}

// prepare fills the scratch headers for ms.
func (s *rawSender) prepare(ms []ipv4.Message) error {
	niov := 0
	for i := range ms {
		niov += len(ms[i].Buffers)
	}
	if cap(s.hdrs) < len(ms) {
		s.hdrs = make([]mmsghdr, len(ms))
		s.names = make([]unix.RawSockaddrInet6, len(ms))
	}
	if cap(s.iovs) < niov {
		s.iovs = make([]unix.Iovec, niov)
	}
	s.hdrs, s.names, s.iovs = s.hdrs[:len(ms)], s.names[:len(ms)], s.iovs[:niov]
	iov := 0
	for i := range ms {
		m := &ms[i]
		h := &s.hdrs[i]
		*h = mmsghdr{}
		nameLen, err := s.putName(&s.names[i], m.Addr)
		if err != nil {
			return err
		}
		h.hdr.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		h.hdr.Namelen = nameLen
		first := iov
		for _, b := range m.Buffers {
			v := &s.iovs[iov]
			*v = unix.Iovec{}
			if len(b) > 0 {
				v.Base = &b[0]
				v.SetLen(len(b))
			}
			iov++
		}
		if iov > first {
			h.hdr.Iov = &s.iovs[first]
			h.hdr.SetIovlen(iov - first)
		}
		if len(m.OOB) > 0 {
			h.hdr.Control = &m.OOB[0]
			h.hdr.SetControllen(len(m.OOB))
		}
	}
	return nil
}

// release drops the scratch's references to the caller's memory.
func (s *rawSender) release() {
	clear(s.hdrs)
	clear(s.iovs)
}

// putName writes a as a socket address into sa and returns its length.
func (s *rawSender) putName(sa *unix.RawSockaddrInet6, a net.Addr) (uint32, error) {
	ua, ok := a.(*net.UDPAddr)
	if !ok || ua == nil {
		return 0, fmt.Errorf("rrp: cannot send to %v (%T)", a, a)
	}
	if ip4 := ua.IP.To4(); ip4 != nil && !s.v6 {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET}
		putPort(&sa4.Port, ua.Port)
		copy(sa4.Addr[:], ip4)
		return unix.SizeofSockaddrInet4, nil
	}
	ip16 := ua.IP.To16()
	if ip16 == nil || !s.v6 {
		return 0, fmt.Errorf("rrp: cannot send to %v from an IPv%d socket", a, map[bool]int{false: 4, true: 6}[s.v6])
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6}
	putPort(&sa.Port, ua.Port)
	copy(sa.Addr[:], ip16)
	if ua.Zone != "" {
		idx, ok := s.zones[ua.Zone]
		if !ok {
			zi, err := net.InterfaceByName(ua.Zone)
			if err != nil {
				return 0, err
			}
			idx = uint32(zi.Index)
			s.zones[ua.Zone] = idx
		}
		sa.Scope_id = idx
	}
	return unix.SizeofSockaddrInet6, nil
}

// putPort stores port in network byte order.
func putPort(p *uint16, port int) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// Close closes the socket.
func (s *rawSender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return unix.Close(s.fd)
}

// rawReader reads a socket's datagrams with recvmmsg entered directly
// (the socket stays with the Go poller, which waits for it to become
// readable). Entering through the runtime's syscall path woke the
// runtime's monitor thread on most reads of an otherwise idle daemon
// (1,700 futex wakeups a second at 17,000 msgs/s).
type rawReader struct {
	rc    syscall.RawConn
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
}

// newBatchReader returns the reader of c's datagrams.
func newBatchReader(c *net.UDPConn, _ batchConn) (batchReader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &rawReader{rc: rc}, nil
}

// ReadBatch reads datagrams into ms (one buffer each, with room for
// control data in OOB) like ipv4.PacketConn's: it sets N, NN, Flags and
// Addr of the first n and returns n, waiting until at least one arrives.
func (r *rawReader) ReadBatch(ms []ipv4.Message, _ int) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	if cap(r.hdrs) < len(ms) {
		r.hdrs = make([]mmsghdr, len(ms))
		r.iovs = make([]unix.Iovec, len(ms))
		r.names = make([]unix.RawSockaddrInet6, len(ms))
	}
	hdrs, iovs, names := r.hdrs[:len(ms)], r.iovs[:len(ms)], r.names[:len(ms)]
	for i := range ms {
		m := &ms[i]
		if len(m.Buffers) != 1 || len(m.Buffers[0]) == 0 {
			return 0, errors.New("rrp: rawReader needs one non-empty buffer per message")
		}
		iovs[i] = unix.Iovec{Base: &m.Buffers[0][0]}
		iovs[i].SetLen(len(m.Buffers[0]))
		hdrs[i] = mmsghdr{}
		h := &hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&names[i]))
		h.Namelen = unix.SizeofSockaddrInet6
		h.Iov = &iovs[i]
		h.SetIovlen(1)
		if len(m.OOB) > 0 {
			h.Control = &m.OOB[0]
			h.SetControllen(len(m.OOB))
		}
	}
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			r1, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(ms)), 0, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // wait until readable
			}
			n, errno = int(r1), e
			return true
		}
	})
	runtime.KeepAlive(ms)
	if err == nil && errno != 0 {
		err = os.NewSyscallError("recvmmsg", errno)
	}
	if err != nil {
		clear(hdrs)
		clear(iovs)
		return 0, err
	}
	for i := 0; i < n; i++ {
		h := &hdrs[i]
		ms[i].N = int(h.len)
		ms[i].NN = int(h.hdr.Controllen)
		ms[i].Flags = int(h.hdr.Flags)
		ms[i].Addr = udpAddrOf(&names[i])
	}
	clear(hdrs)
	clear(iovs)
	return n, nil
}

// udpAddrOf converts a received socket address.
func udpAddrOf(sa *unix.RawSockaddrInet6) *net.UDPAddr {
	port := func(p uint16) int {
		b := (*[2]byte)(unsafe.Pointer(&p))
		return int(b[0])<<8 | int(b[1])
	}
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return &net.UDPAddr{IP: net.IPv4(sa4.Addr[0], sa4.Addr[1], sa4.Addr[2], sa4.Addr[3]), Port: port(sa4.Port)}
	case unix.AF_INET6:
		a := &net.UDPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: port(sa.Port)}
		if sa.Scope_id != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.Scope_id)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a
	}
	return nil
}
