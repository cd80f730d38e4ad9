package rrp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Transport kinds for LinkConfig.Transport.
const (
	// UDPU sends one unicast datagram per destination node. It works on
	// any network, including loopback and clouds.
	UDPU = "udpu"
	// UDP multicasts to a group; the LAN default.
	UDP = "udp"
)

// Mode says how frames use redundant links.
type Mode string

// Redundancy modes.
const (
	// Passive sends each frame on one link (the lowest-numbered one that is
	// up towards the destination) and fails over.
	Passive Mode = "passive"
	// Active sends each frame on every link that is up; receivers keep the
	// first copy.
	Active Mode = "active"
)

// Defaults.
const (
	DefaultPort              = 5405
	DefaultMTU               = 1500
	DefaultHeartbeatInterval = 100 * time.Millisecond
	DefaultLinkTimeout       = 500 * time.Millisecond
	DefaultRecvBatch         = 64
	DefaultRecvQueue         = 256
	DefaultSocketBuffer      = 4 << 20
	DefaultAuthLogInterval   = 10 * time.Second
)

// Config configures a Transport.
type Config struct {
	// NodeID is this node's ID; it must appear in Nodes.
	NodeID NodeID
	// Nodes lists every node of the cluster, this one included. Packets
	// claiming a node not listed are dropped.
	Nodes []Node
	// Links configures 1 to MaxLinks links; every node must configure the
	// same links in the same order.
	Links []LinkConfig
	// Mode is Passive (the default) or Active.
	Mode Mode
	// Key is the cluster key (KeySize bytes, see ReadKey). It is required
	// unless Insecure is set.
	Key []byte
	// Insecure, set explicitly, turns crypto off: packets are neither
	// encrypted nor authenticated. Key must then be nil.
	Insecure bool
	// Incarnation identifies this run of the node; it must grow with every
	// restart. Zero means the wall clock in nanoseconds at New.
	Incarnation uint64
	// HeartbeatInterval is how often link heartbeats are sent.
	HeartbeatInterval time.Duration
	// LinkTimeout is how long a link may stay silent before it is marked
	// down. It should be a few heartbeat intervals.
	LinkTimeout time.Duration
	// RecvBatch is the number of datagrams read per recvmmsg call (with
	// receive coalescing, the number of buffers, at most 16, each of
	// which may hold dozens of datagrams).
	RecvBatch int
	// RecvQueue is the number of received batches buffered for the
	// reader of Recv before the socket readers block.
	RecvQueue int
	// SocketBuffer is the requested kernel send and receive buffer size.
	SocketBuffer int
	// NoOffload turns off UDP segmentation offload on send (GSO) and
	// receive coalescing (GRO), which are used where the kernel offers
	// them (Linux). The datagrams on the wire are the same either way.
	NoOffload bool

	// wrapConn, for tests, wraps each link's sending socket.
	wrapConn func(batchWriter) batchWriter
	// AuthLogInterval bounds how often authentication failures from one
	// peer address are logged.
	AuthLogInterval time.Duration
	// Logger receives link transitions and security warnings; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Node is one member of the cluster as configured.
type Node struct {
	ID NodeID
	// Addrs holds one address per link ("host" or "host:port"; the port
	// defaults to the link's Port). Required for UDPU links; for UDP links
	// this node's own address gives the default Bind.
	Addrs []string
}

// LinkConfig configures one link.
type LinkConfig struct {
	// Transport is UDPU or UDP; empty means UDPU.
	Transport string
	// Bind is the local address to bind; empty means this node's address
	// for the link in Nodes.
	Bind string
	// Port is the UDP port of addresses (Bind, Nodes' Addrs) that do not
	// give one; 0 means DefaultPort. A port inside an address wins, so
	// several nodes can share one host on distinct ports.
	Port int
	// McastAddr is the multicast group of a UDP link (default 239.192.77.1
	// plus the link number for IPv4, ff15::7707:N for IPv6).
	McastAddr string
	// MTU is the link's IP MTU (default 1500; 9000 for jumbo frames).
	MTU int
	// TTL is the multicast hop limit (default 1).
	TTL int
}

// resolved link configuration.
type linkSpec struct {
	transport string
	bind      netip.AddrPort
	group     netip.AddrPort // UDP only
	mtu       int
	ttl       int
	peers     map[NodeID]netip.AddrPort // UDPU: peers' addresses
}

func (s *linkSpec) v6() bool { return !s.bind.Addr().Unmap().Is4() }

// maxPayload is the largest UDP payload on the link.
func (s *linkSpec) maxPayload() int {
	if s.v6() {
		return s.mtu - 48
	}
	return s.mtu - 28
}

func (c *Config) withDefaults() Config {
	d := *c
	if d.Mode == "" {
		d.Mode = Passive
	}
	if d.HeartbeatInterval <= 0 {
		d.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if d.LinkTimeout <= 0 {
		d.LinkTimeout = DefaultLinkTimeout
	}
	if d.RecvBatch <= 0 {
		d.RecvBatch = DefaultRecvBatch
	}
	if d.RecvQueue <= 0 {
		d.RecvQueue = DefaultRecvQueue
	}
	if d.SocketBuffer <= 0 {
		d.SocketBuffer = DefaultSocketBuffer
	}
	if d.AuthLogInterval <= 0 {
		d.AuthLogInterval = DefaultAuthLogInterval
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Incarnation == 0 {
		d.Incarnation = uint64(time.Now().UnixNano())
	}
	return d
}

// parseAddr parses "host" or "host:port" (IPv6 hosts in brackets when a
// port is given), with port def when none is given. Host names are
// resolved.
func parseAddr(s string, def int) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, errors.New("empty address")
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	host, port := s, def
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return netip.AddrPort{}, fmt.Errorf("bad port in %q", s)
		}
		host, port = h, n
	}
	if port <= 0 || port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("bad port %d", port)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		ips, lerr := net.LookupIP(host)
		if lerr != nil || len(ips) == 0 {
			return netip.AddrPort{}, fmt.Errorf("cannot resolve %q", host)
		}
		a, _ = netip.AddrFromSlice(ips[0])
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}

// resolve validates c (already with defaults) and resolves addresses.
func (c *Config) resolve() ([]linkSpec, error) {
	if c.NodeID == 0 {
		return nil, errors.New("rrp: NodeID must not be 0")
	}
	if len(c.Links) == 0 || len(c.Links) > MaxLinks {
		return nil, fmt.Errorf("rrp: %d links configured, want 1 to %d", len(c.Links), MaxLinks)
	}
	if c.Mode != Passive && c.Mode != Active {
		return nil, fmt.Errorf("rrp: mode %q, want %q or %q", c.Mode, Passive, Active)
	}
	if c.Insecure {
		if c.Key != nil {
			return nil, errors.New("rrp: Insecure is set but a key is given; choose one")
		}
	} else if len(c.Key) != KeySize {
		if c.Key == nil {
			return nil, errors.New("rrp: no cluster key (set Key, or Insecure to turn crypto off explicitly)")
		}
		return nil, fmt.Errorf("rrp: cluster key is %d bytes, want %d", len(c.Key), KeySize)
	}
	if c.LinkTimeout < 2*c.HeartbeatInterval {
		return nil, fmt.Errorf("rrp: LinkTimeout %v must be at least two heartbeat intervals (%v)", c.LinkTimeout, c.HeartbeatInterval)
	}
	var self *Node
	seen := map[NodeID]bool{}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if n.ID == 0 {
			return nil, errors.New("rrp: node ID 0 in Nodes")
		}
		if seen[n.ID] {
			return nil, fmt.Errorf("rrp: node %d listed twice", n.ID)
		}
		seen[n.ID] = true
		if n.ID == c.NodeID {
			self = n
		}
	}
	if self == nil {
		return nil, fmt.Errorf("rrp: this node (%d) is not in Nodes", c.NodeID)
	}
	specs := make([]linkSpec, len(c.Links))
	for i, lc := range c.Links {
		s := &specs[i]
		s.transport = lc.Transport
		if s.transport == "" {
			s.transport = UDPU
		}
		if s.transport != UDPU && s.transport != UDP {
			return nil, fmt.Errorf("rrp: link %d: transport %q, want %q or %q", i, lc.Transport, UDPU, UDP)
		}
		port := lc.Port
		if port == 0 {
			port = DefaultPort
		}
		bind := lc.Bind
		if bind == "" {
			if i >= len(self.Addrs) {
				return nil, fmt.Errorf("rrp: link %d: no Bind address and no address for this node", i)
			}
			bind = self.Addrs[i]
		}
		var err error
		s.bind, err = parseAddr(bind, port)
		if err != nil {
			return nil, fmt.Errorf("rrp: link %d: bind: %v", i, err)
		}
		s.mtu = lc.MTU
		if s.mtu == 0 {
			s.mtu = DefaultMTU
		}
		if s.mtu < 576 || s.mtu > 65535 {
			return nil, fmt.Errorf("rrp: link %d: MTU %d out of range 576..65535", i, s.mtu)
		}
		s.ttl = lc.TTL
		if s.ttl == 0 {
			s.ttl = 1
		}
		switch s.transport {
		case UDPU:
			s.peers = map[NodeID]netip.AddrPort{}
			for _, n := range c.Nodes {
				if n.ID == c.NodeID {
					continue
				}
				if i >= len(n.Addrs) {
					return nil, fmt.Errorf("rrp: link %d: node %d has no address for this link", i, n.ID)
				}
				a, err := parseAddr(n.Addrs[i], int(s.bind.Port()))
				if err != nil {
					return nil, fmt.Errorf("rrp: link %d: node %d: %v", i, n.ID, err)
				}
				if a.Addr().Is4() != s.bind.Addr().Is4() {
					return nil, fmt.Errorf("rrp: link %d: node %d address %v is not in the bind address's family", i, n.ID, a)
				}
				s.peers[n.ID] = a
			}
		case UDP:
			g := lc.McastAddr
			if g == "" {
				if s.v6() {
					g = fmt.Sprintf("ff15::7707:%d", i+1)
				} else {
					g = fmt.Sprintf("239.192.77.%d", i+1)
				}
			}
			s.group, err = parseAddr(g, int(s.bind.Port()))
			if err != nil {
				return nil, fmt.Errorf("rrp: link %d: multicast address: %v", i, err)
			}
			if !s.group.Addr().IsMulticast() {
				return nil, fmt.Errorf("rrp: link %d: %v is not a multicast address", i, s.group.Addr())
			}
			if s.group.Addr().Is4() != s.bind.Addr().Is4() {
				return nil, fmt.Errorf("rrp: link %d: multicast group and bind address differ in family", i)
			}
		}
		if s.maxPayload()-c.overhead() < 64 {
			return nil, fmt.Errorf("rrp: link %d: MTU %d leaves no room for frames", i, s.mtu)
		}
	}
	return specs, nil
}

func (c *Config) overhead() int {
	if c.Insecure {
		return HeaderSize
	}
	return Overhead
}
