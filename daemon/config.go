package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/totem-gcs/totem/ipc"
	"github.com/totem-gcs/totem/totem"
)

// DefaultConfigPath is where totemd looks for its config file.
const DefaultConfigPath = "/etc/totemd/totemd.toml"

// Defaults of the daemon's own options.
const (
	DefaultStateDir      = "/var/lib/totemd"
	DefaultKeyFile       = "/etc/totemd/authkey"
	DefaultPort          = 5405
	DefaultQueueMessages = 65536
	DefaultQueueBytes    = 64 << 20
)

// Config is totemd's configuration: the file's contents with flags applied.
type Config struct {
	// NodeID of this node; zero means: find this host's address in Nodes.
	NodeID uint32 `toml:"nodeid"`
	// ClusterName is shown by totemctl status.
	ClusterName string `toml:"cluster_name"`
	// StateDir holds the ring-sequence state file.
	StateDir string `toml:"state_dir"`
	// KeyFile is the cluster's authentication and encryption key.
	KeyFile string `toml:"keyfile"`
	// Crypto is "on" (the default: every packet encrypted and
	// authenticated with the cluster key) or "off" (no key, packets in the
	// clear and unauthenticated: only for benchmarks on an isolated
	// network, like Corosync's crypto_cipher none).
	Crypto string `toml:"crypto"`
	// Offload is "on" (the default: UDP segmentation offload on send and
	// receive coalescing where the kernel has them, falling back by
	// itself) or "off" (one system-call entry per datagram, for a kernel
	// or a network path that mishandles offloaded packets).
	Offload string `toml:"offload"`
	// Transport is "udpu" (unicast to every node) or "udp" (multicast).
	Transport string `toml:"transport"`
	// LinkMode is "passive" (fail over between links) or "active" (send on
	// every link).
	LinkMode string `toml:"link_mode"`
	// Port is the UDP port of node addresses given without one.
	Port int `toml:"port"`
	// LinkHeartbeat is how often each link is probed, and LinkTimeout how
	// long a silent link stays up. Zero derives them from the token
	// timeout (token/10 within 10..100 ms, token/2 within 100..500 ms), so
	// that a passive link fails over before the token is lost.
	LinkHeartbeat Duration `toml:"link_heartbeat"`
	LinkTimeout   Duration `toml:"link_timeout"`
	// SchedRR runs totemd under the real-time round-robin scheduler with
	// its memory locked (see SetRealtime), as Corosync does by default: a
	// CPU hog on the node can then no longer delay the token. Off by
	// default, unlike Corosync, for what it cost on a 2-CPU machine: a
	// lone message's round trip took p50 255-424 µs against 235-380
	// without (docs/PERFORMANCE.md), and bench/memload's test failed once
	// with it, a daemon dropping a client that had fallen 8 MiB behind
	// reading 1 MiB messages (normal clients get the CPU after real-time
	// daemons). The pauses that re-formed rings at the fast profile there
	// came from the host stopping the VM, which no scheduling policy
	// prevents. Real-time daemons do not starve each other, as each runs
	// its Go code on one thread (gomaxprocs 1). It needs root
	// (CAP_SYS_NICE).
	SchedRR bool `toml:"sched_rr"`
	// GoMaxProcs is how many threads may run the daemon's Go code at once
	// (the Go runtime's GOMAXPROCS). The default, 1, suits an event loop
	// like totemd's, as Corosync is single-threaded: with more, the
	// runtime hands goroutines between threads, and on a busy machine
	// each hand-off is a context switch (a 1-sender 1 KiB run on 2 CPUs
	// used 10-25% less CPU per message with 1). 0 lets the runtime
	// choose (one per CPU). The GOMAXPROCS environment variable, when
	// set, wins over this option.
	GoMaxProcs int `toml:"gomaxprocs"`

	Totem   TotemOptions `toml:"totem"`
	IPC     IPCOptions   `toml:"ipc"`
	Logging LogOptions   `toml:"logging"`
	Links   []LinkOption `toml:"link"`
	Nodes   []NodeOption `toml:"node"`
}

// TotemOptions are the engine's timeouts and limits, named like Corosync's
// totem section. Zero takes the profile's value. Durations are integers in
// milliseconds or strings such as "250ms".
type TotemOptions struct {
	// Profile is "default" (Corosync's timeouts, totem.DefaultConfig) or
	// "fast" (a quiet LAN, totem.FastConfig).
	Profile                         string   `toml:"profile"`
	Token                           Duration `toml:"token"`
	TokenCoefficient                Duration `toml:"token_coefficient"`
	TokenRetransmitsBeforeLossConst int      `toml:"token_retransmits_before_loss_const"`
	Hold                            Duration `toml:"hold"`
	Join                            Duration `toml:"join"`
	Consensus                       Duration `toml:"consensus"`
	Merge                           Duration `toml:"merge"`
	FailRecvConst                   int      `toml:"fail_recv_const"`
	SeqnoUnchangedConst             int      `toml:"seqno_unchanged_const"`
	WindowSize                      int      `toml:"window_size"`
	MaxMessages                     int      `toml:"max_messages"`
	NetMTU                          int      `toml:"netmtu"`
	MaxMessageSize                  int      `toml:"max_message_size"`
	MaxQueueBytes                   int      `toml:"max_queue_bytes"`
}

// IPCOptions configure the local socket.
type IPCOptions struct {
	// Socket is the Unix socket path.
	Socket string `toml:"socket"`
	// AllowUIDs and AllowGIDs may connect besides the socket's owner (the
	// daemon's uid) and root.
	AllowUIDs []int `toml:"allow_uids"`
	AllowGIDs []int `toml:"allow_gids"`
	// QueueMessages and QueueBytes bound what waits to be written to one
	// client; a client that lets them fill is disconnected.
	QueueMessages int `toml:"queue_messages"`
	QueueBytes    int `toml:"queue_bytes"`
}

// LogOptions configure logging.
type LogOptions struct {
	// Level is debug, info, warn or error.
	Level string `toml:"level"`
	// Format is "text" or "json".
	Format string `toml:"format"`
}

// LinkOption configures one link (one network); links are numbered in
// order from 0.
type LinkOption struct {
	// McastAddr is the multicast group "addr:port" of transport "udp".
	McastAddr string `toml:"mcast_addr"`
	// Bind is the local address to bind (default: this node's address on
	// the link).
	Bind string `toml:"bind"`
	// MTU is the link's IP MTU (default 1500; 9000 for jumbo frames).
	MTU int `toml:"mtu"`
	// TTL is the multicast hop limit (default 1).
	TTL int `toml:"ttl"`
}

// NodeOption is one node of the cluster.
type NodeOption struct {
	NodeID uint32 `toml:"nodeid"`
	// Name is a label for logs and tools.
	Name string `toml:"name"`
	// Addrs are the node's addresses, one per link: "host" or "host:port".
	Addrs []string `toml:"addrs"`
}

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	return Config{
		StateDir:   DefaultStateDir,
		KeyFile:    DefaultKeyFile,
		Crypto:     "on",
		Offload:    "on",
		Transport:  "udpu",
		GoMaxProcs: 1,
		LinkMode:   "passive",
		Port:       DefaultPort,
		Totem:      TotemOptions{Profile: "default"},
		IPC: IPCOptions{
			Socket:        ipc.DefaultSocket,
			QueueMessages: DefaultQueueMessages,
			QueueBytes:    DefaultQueueBytes,
		},
		Logging: LogOptions{Level: "info", Format: "text"},
	}
}

// Duration is a time.Duration read from an integer of milliseconds (like
// Corosync's options) or a Go duration string.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalTOML implements toml.Unmarshaler.
func (d *Duration) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		*d = Duration(time.Duration(v) * time.Millisecond)
		return nil
	case string:
		return d.Set(v)
	}
	return fmt.Errorf("want milliseconds (an integer) or a duration string like \"250ms\", not %T", v)
}

// Set implements pflag.Value.
func (d *Duration) Set(s string) error {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		*d = Duration(time.Duration(ms) * time.Millisecond)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is neither milliseconds nor a duration like \"250ms\"", s)
	}
	*d = Duration(v)
	return nil
}

// String implements pflag.Value.
func (d *Duration) String() string {
	if *d == 0 {
		return "0"
	}
	return time.Duration(*d).String()
}

// Type implements pflag.Value.
func (d *Duration) Type() string { return "duration" }

// EngineConfig returns the totem.Config for node id: the profile's values
// with every non-zero option applied.
func (c *Config) EngineConfig(id uint32) (totem.Config, error) {
	var e totem.Config
	var perr error
	switch c.Totem.Profile {
	case "", "default":
		e = totem.Config{NodeID: totem.NodeID(id)}
	case "fast":
		e = totem.FastConfig(totem.NodeID(id))
	default:
		perr = fmt.Errorf("unknown profile %q", c.Totem.Profile)
		e = totem.Config{NodeID: totem.NodeID(id)}
	}
	o := c.Totem
	setD := func(dst *time.Duration, v Duration) {
		if v != 0 {
			*dst = v.D()
		}
	}
	setI := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	setD(&e.Token, o.Token)
	setD(&e.TokenCoefficient, o.TokenCoefficient)
	setI(&e.TokenRetransmitsBeforeLoss, o.TokenRetransmitsBeforeLossConst)
	setD(&e.Hold, o.Hold)
	setD(&e.Join, o.Join)
	setD(&e.Consensus, o.Consensus)
	setD(&e.Merge, o.Merge)
	setI(&e.FailToReceive, o.FailRecvConst)
	setI(&e.SeqnoUnchanged, o.SeqnoUnchangedConst)
	setI(&e.WindowSize, o.WindowSize)
	setI(&e.MaxMessages, o.MaxMessages)
	setI(&e.NetMTU, o.NetMTU)
	setI(&e.MaxMessageSize, o.MaxMessageSize)
	setI(&e.MaxQueueBytes, o.MaxQueueBytes)
	e.Nodes = len(c.Nodes)
	if c.Totem.Profile == "fast" {
		// FastConfig derived Consensus and Hold from its own token; let
		// explicit timeouts re-derive them when they were not given.
		if o.Token != 0 && o.Consensus == 0 {
			e.Consensus = 0
		}
		if (o.Token != 0 || o.TokenRetransmitsBeforeLossConst != 0) && o.Hold == 0 {
			e.Hold = 0
		}
	}
	e = e.WithDefaults()
	return e, errors.Join(perr, e.Validate())
}

// LinkTimers returns the link heartbeat interval and timeout for an
// engine whose token timeout is token.
func (c *Config) LinkTimers(token time.Duration) (heartbeat, timeout time.Duration) {
	heartbeat, timeout = c.LinkHeartbeat.D(), c.LinkTimeout.D()
	// Derived timers follow the token but never go below what a busy host's
	// scheduler can keep to: a link that flaps because this process was not
	// scheduled helps nobody.
	if heartbeat == 0 {
		heartbeat = min(max(token/10, 10*time.Millisecond), 100*time.Millisecond)
	}
	if timeout == 0 {
		timeout = max(min(max(token/2, 100*time.Millisecond), 500*time.Millisecond), 2*heartbeat)
	}
	return heartbeat, timeout
}

// NodeAddr is a resolved node address on one link.
type NodeAddr struct {
	NodeID uint32
	Link   int
	Addr   netip.AddrPort
}

// ParseNodeAddr parses "host[:port]" with an IP address as host.
func ParseNodeAddr(s string, defPort int) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return netip.AddrPortFrom(a, uint16(defPort)), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP address or address:port", s)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: host must be an IP address, not a name", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: bad port", s)
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// Node returns the configured node with id.
func (c *Config) Node(id uint32) (NodeOption, bool) {
	for _, n := range c.Nodes {
		if n.NodeID == id {
			return n, true
		}
	}
	return NodeOption{}, false
}

// ResolveNodeID returns the configured node ID, or the ID of the one node
// whose address belongs to this host (localAddrs).
func (c *Config) ResolveNodeID(localAddrs []netip.Addr) (uint32, error) {
	if c.NodeID != 0 {
		if _, ok := c.Node(c.NodeID); !ok {
			return 0, fmt.Errorf("nodeid %d is not in the node list", c.NodeID)
		}
		return c.NodeID, nil
	}
	var found []uint32
	for _, n := range c.Nodes {
		for _, s := range n.Addrs {
			ap, err := ParseNodeAddr(s, c.Port)
			if err != nil {
				continue
			}
			if containsAddr(localAddrs, ap.Addr()) {
				found = append(found, n.NodeID)
				break
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return 0, fmt.Errorf("no node in the node list has an address of this host")
	}
	return 0, fmt.Errorf("nodes %v all have addresses of this host", found)
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, l := range list {
		if l.Unmap() == a.Unmap() {
			return true
		}
	}
	return false
}

// LocalAddrs returns the IP addresses of this host's interfaces.
func LocalAddrs() []netip.Addr {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range ifaddrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}
