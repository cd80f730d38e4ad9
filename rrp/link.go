package rrp

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchWriter writes datagrams in batches (sendmmsg on Linux).
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchReader reads datagrams in batches (recvmmsg on Linux).
type batchReader interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchConn reads and writes datagrams in batches (recvmmsg/sendmmsg on
// Linux). ipv4.PacketConn and ipv6.PacketConn both implement it.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// sender writes a link's datagrams: rawSender on Linux.
type sender interface {
	batchWriter
	gsoCapable() bool
	Close() error
}

// link is one network: its sockets, resolved peers, state and counters.
type link struct {
	idx  int
	spec linkSpec

	conn *net.UDPConn // bound to spec.bind; receives UDPU
	pc   batchConn
	// out sends everything: pc, or a sending socket of its own where the
	// system has one (see rawSender).
	out    batchWriter
	sender sender
	// UDP links: the socket bound to the group address.
	mconn *net.UDPConn
	mpc   batchConn

	group     *net.UDPAddr
	peerAddrs map[NodeID]*net.UDPAddr
	hbSeq     atomic.Uint64
	fault     atomic.Pointer[Fault]
	// gso: sends may carry several datagrams with UDP segmentation
	// offload (turned off for good if the kernel refuses one).
	gso atomic.Bool
	// gro: the receiving socket may hand over coalesced datagrams.
	gro      bool
	counters linkCounters
}

func (l *link) multicast() bool { return l.spec.transport == UDP }

func wrapBatch(c *net.UDPConn, v6 bool) batchConn {
	if v6 {
		return ipv6.NewPacketConn(c)
	}
	return ipv4.NewPacketConn(c)
}

// open creates the link's sockets. It must run in the network namespace
// the link belongs to; nothing after it depends on the namespace.
func (l *link) open(sockBuf int, offload bool) error {
	s := &l.spec
	network := "udp4"
	if s.v6() {
		network = "udp6"
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(s.bind))
	if err != nil {
		return fmt.Errorf("rrp: link %d: bind %v: %w", l.idx, s.bind, err)
	}
	l.conn = conn
	setBuffers(conn, sockBuf)
	l.pc = wrapBatch(conn, s.v6())
	l.peerAddrs = map[NodeID]*net.UDPAddr{}
	for id, a := range s.peers {
		l.peerAddrs[id] = net.UDPAddrFromAddrPort(a)
	}
	if !l.multicast() {
		l.openSender(sockBuf, nil)
		if offload {
			l.gso.Store(l.gsoCapable())
			l.gro = enableGRO(conn)
		}
		return nil
	}
	ifi, err := interfaceWithAddr(s.bind.Addr())
	if err != nil {
		conn.Close()
		return fmt.Errorf("rrp: link %d: %w", l.idx, err)
	}
	l.group = net.UDPAddrFromAddrPort(s.group)
	mc, err := listenGroup(s.group, s.v6())
	if err != nil {
		conn.Close()
		return fmt.Errorf("rrp: link %d: bind multicast group %v: %w", l.idx, s.group, err)
	}
	l.mconn = mc
	setBuffers(l.mconn, sockBuf)
	gaddr := &net.UDPAddr{IP: s.group.Addr().AsSlice()}
	if s.v6() {
		p := ipv6.NewPacketConn(l.mconn)
		err = p.JoinGroup(ifi, gaddr)
		l.mpc = p
		if err == nil {
			sp := ipv6.NewPacketConn(conn)
			err = firstErr(sp.SetMulticastInterface(ifi), sp.SetMulticastHopLimit(s.ttl), sp.SetMulticastLoopback(true))
		}
	} else {
		p := ipv4.NewPacketConn(l.mconn)
		err = p.JoinGroup(ifi, gaddr)
		l.mpc = p
		if err == nil {
			sp := ipv4.NewPacketConn(conn)
			err = firstErr(sp.SetMulticastInterface(ifi), sp.SetMulticastTTL(s.ttl), sp.SetMulticastLoopback(true))
		}
	}
	if err != nil {
		conn.Close()
		l.mconn.Close()
		return fmt.Errorf("rrp: link %d: multicast setup on %s: %w", l.idx, ifi.Name, err)
	}
	l.openSender(sockBuf, ifi)
	if offload {
		l.gso.Store(l.gsoCapable())
		l.gro = enableGRO(l.mconn)
	}
	return nil
}

// openSender sets up l.out: a sending socket of its own where the system
// has one (ifi: the multicast interface), else the receiving socket.
func (l *link) openSender(sockBuf int, ifi *net.Interface) {
	l.out = l.pc
	if s, err := newSender(l.spec.bind.Addr(), sockBuf, ifi, l.spec.ttl); err == nil {
		l.sender, l.out = s, s
	}
}

// gsoCapable reports whether sends on l may use segmentation offload.
func (l *link) gsoCapable() bool {
	if l.sender != nil {
		return l.sender.gsoCapable()
	}
	return probeGSO(l.conn)
}

func (l *link) close() {
	if l.conn != nil {
		l.conn.Close()
	}
	if l.mconn != nil {
		l.mconn.Close()
	}
	if l.sender != nil {
		l.sender.Close()
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// interfaceWithAddr finds the interface that has address a.
func interfaceWithAddr(a netip.Addr) (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range ifs {
		addrs, err := ifs[i].Addrs()
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			if ipn, ok := ad.(*net.IPNet); ok {
				if x, ok := netip.AddrFromSlice(ipn.IP); ok && x.Unmap() == a {
					return &ifs[i], nil
				}
			}
		}
	}
	return nil, fmt.Errorf("no interface has address %v (a multicast link needs a specific bind address)", a)
}
