package daemon

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// BindFlags defines a flag for every config option on fs, writing into cfg.
// Parse config files into cfg before parsing fs, so that flags win; the
// help text then shows the file's values as defaults.
func BindFlags(fs *pflag.FlagSet, cfg *Config) {
	u32 := func(p *uint32, name, usage string) { fs.Uint32Var(p, name, *p, usage) }
	u32(&cfg.NodeID, "nodeid", "this node's ID (0: match this host's addresses against the node list)")
	fs.StringVar(&cfg.ClusterName, "cluster-name", cfg.ClusterName, "cluster name, for status displays")
	fs.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "directory of the ring-sequence state file")
	fs.StringVar(&cfg.KeyFile, "keyfile", cfg.KeyFile, "cluster key file (made by: totemctl keygen)")
	fs.StringVar(&cfg.Crypto, "crypto", cfg.Crypto, `"on" (encrypt and authenticate with the key) or "off" (no key: benchmarks on an isolated network only)`)
	fs.StringVar(&cfg.Offload, "offload", cfg.Offload, `"on" (UDP segmentation offload and receive coalescing where the kernel has them) or "off"`)
	fs.StringVar(&cfg.Transport, "transport", cfg.Transport, `"udpu" (unicast) or "udp" (multicast)`)
	fs.StringVar(&cfg.LinkMode, "link-mode", cfg.LinkMode, `"passive" or "active" redundant links`)
	fs.IntVar(&cfg.Port, "port", cfg.Port, "UDP port of node addresses given without one")
	fs.Var(&cfg.LinkHeartbeat, "link-heartbeat", "link probe interval (0: token/10, within 10ms..100ms)")
	fs.Var(&cfg.LinkTimeout, "link-timeout", "silence after which a link is down (0: token/2, within 100ms..500ms)")
	fs.IntVar(&cfg.GoMaxProcs, "gomaxprocs", cfg.GoMaxProcs, "threads running Go code at once (0: one per CPU; the GOMAXPROCS environment variable wins)")
	fs.BoolVar(&cfg.SchedRR, "sched-rr", cfg.SchedRR, "run under SCHED_RR (real-time, priority 10) with memory locked, as Corosync does by default (needs root)")

	t := &cfg.Totem
	fs.StringVar(&t.Profile, "profile", t.Profile, `engine timeout profile: "default" (Corosync's) or "fast" (quiet LAN)`)
	fs.Var(&t.Token, "token", "token loss timeout (ms or duration; 0: profile)")
	fs.Var(&t.TokenCoefficient, "token-coefficient", "added to token per node above two")
	fs.IntVar(&t.TokenRetransmitsBeforeLossConst, "token-retransmits-before-loss-const", t.TokenRetransmitsBeforeLossConst, "token retransmits before the token counts as lost")
	fs.Var(&t.Hold, "hold", "how long an idle ring holds the token")
	fs.Var(&t.Join, "join", "join message resend interval")
	fs.Var(&t.Consensus, "consensus", "wait for consensus before declaring silent nodes failed")
	fs.Var(&t.Merge, "merge", "merge-detect announcement interval")
	fs.IntVar(&t.FailRecvConst, "fail-recv-const", t.FailRecvConst, "token rotations without a needed message before FAILED TO RECEIVE")
	fs.IntVar(&t.SeqnoUnchangedConst, "seqno-unchanged-const", t.SeqnoUnchangedConst, "idle rotations before the token is held")
	fs.IntVar(&t.WindowSize, "window-size", t.WindowSize, "frames the ring may send per token rotation")
	fs.IntVar(&t.MaxMessages, "max-messages", t.MaxMessages, "frames one node may send per token visit")
	fs.IntVar(&t.NetMTU, "netmtu", t.NetMTU, "largest frame handed to the network, bytes")
	fs.IntVar(&t.MaxMessageSize, "max-message-size", t.MaxMessageSize, "largest message accepted, bytes (0: 1 MiB)")
	fs.IntVar(&t.MaxQueueBytes, "max-queue-bytes", t.MaxQueueBytes, "bytes queued for the ring before senders get try-again")

	fs.StringVar(&cfg.IPC.Socket, "socket", cfg.IPC.Socket, "IPC Unix socket path")
	fs.IntSliceVar(&cfg.IPC.AllowUIDs, "allow-uid", cfg.IPC.AllowUIDs, "uid allowed to connect besides root and the daemon's (repeatable)")
	fs.IntSliceVar(&cfg.IPC.AllowGIDs, "allow-gid", cfg.IPC.AllowGIDs, "gid allowed to connect (repeatable)")
	fs.IntVar(&cfg.IPC.QueueMessages, "ipc-queue-messages", cfg.IPC.QueueMessages, "messages waiting for one client before it is disconnected")
	fs.IntVar(&cfg.IPC.QueueBytes, "ipc-queue-bytes", cfg.IPC.QueueBytes, "bytes waiting for one client before it is disconnected")

	fs.StringVar(&cfg.Logging.Level, "log-level", cfg.Logging.Level, "debug, info, warn or error")
	fs.StringVar(&cfg.Logging.Format, "log-format", cfg.Logging.Format, `"text" or "json"`)

	fs.Var(&linkFlag{cfg: cfg, field: "mcast_addr"}, "mcast-addr", "multicast group of link N as N=ADDR:PORT (repeatable; transport udp)")
	fs.Var(&linkFlag{cfg: cfg, field: "bind"}, "link-bind", "local address of link N as N=ADDR (repeatable)")
	fs.Var(&linkFlag{cfg: cfg, field: "mtu"}, "link-mtu", "IP MTU of link N as N=MTU (repeatable; default 1500)")
	fs.Var(&linkFlag{cfg: cfg, field: "ttl"}, "link-ttl", "multicast TTL of link N as N=TTL (repeatable; default 1)")
	fs.Var(&nodeFlag{cfg: cfg}, "node", "a node as ID=ADDR[,ADDR...] (one address per link; repeatable; replaces the file's node list)")
}

type nodeFlag struct {
	cfg     *Config
	changed bool
}

func (f *nodeFlag) Type() string { return "id=addrs" }

func (f *nodeFlag) String() string {
	if f.cfg == nil {
		return ""
	}
	var s []string
	for _, n := range f.cfg.Nodes {
		s = append(s, fmt.Sprintf("%d=%s", n.NodeID, strings.Join(n.Addrs, ",")))
	}
	return strings.Join(s, " ")
}

func (f *nodeFlag) Set(v string) error {
	id, addrs, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want ID=ADDR[,ADDR...], got %q", v)
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil || n == 0 {
		return fmt.Errorf("bad node ID %q", id)
	}
	if !f.changed {
		f.cfg.Nodes = nil
		f.changed = true
	}
	f.cfg.Nodes = append(f.cfg.Nodes, NodeOption{NodeID: uint32(n), Addrs: strings.Split(addrs, ",")})
	return nil
}

// linkFlag sets one field of a [[link]] entry as N=VALUE.
type linkFlag struct {
	cfg   *Config
	field string // mcast_addr, bind, mtu or ttl
}

func (f *linkFlag) Type() string { return "n=value" }

func (f *linkFlag) get(l LinkOption) string {
	switch f.field {
	case "bind":
		return l.Bind
	case "mtu":
		return strconv.Itoa(l.MTU)
	case "ttl":
		return strconv.Itoa(l.TTL)
	}
	return l.McastAddr
}

func (f *linkFlag) String() string {
	if f.cfg == nil {
		return ""
	}
	var s []string
	for i, l := range f.cfg.Links {
		if v := f.get(l); v != "" && v != "0" {
			s = append(s, fmt.Sprintf("%d=%s", i, v))
		}
	}
	return strings.Join(s, " ")
}

func (f *linkFlag) Set(v string) error {
	i, val, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want N=VALUE, got %q", v)
	}
	n, err := strconv.Atoi(i)
	if err != nil || n < 0 || n > 7 {
		return fmt.Errorf("bad link number %q (0-7)", i)
	}
	for len(f.cfg.Links) <= n {
		f.cfg.Links = append(f.cfg.Links, LinkOption{})
	}
	l := &f.cfg.Links[n]
	switch f.field {
	case "bind":
		l.Bind = val
	case "mtu", "ttl":
		x, err := strconv.Atoi(val)
		if err != nil {
			return fmt.Errorf("link %d: %s %q is not a number", n, f.field, val)
		}
		if f.field == "mtu" {
			l.MTU = x
		} else {
			l.TTL = x
		}
	default:
		l.McastAddr = val
	}
	return nil
}
