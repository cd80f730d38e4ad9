package daemon

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/totem-gcs/totem/ipc"
	"github.com/totem-gcs/totem/totem"
)

// LoadConfig reads a config file's text over the defaults, applies nothing
// else, and returns the config with every problem found (syntax, types,
// unknown options and values). lines maps keys to lines for CheckConfig.
func LoadConfig(data []byte) (Config, map[string]int, Problems) {
	cfg := DefaultConfig()
	probs := ParseConfig(data, &cfg)
	return cfg, keyLines(string(data)), probs
}

// CheckConfig checks the values of cfg and returns every problem, placed on
// the lines given by lines (from LoadConfig; nil when there is no file).
// localAddrs are this host's addresses, used to find the node ID when the
// config does not set one.
func CheckConfig(cfg *Config, lines map[string]int, localAddrs []netip.Addr) Problems {
	var ps Problems
	add := func(key, msg, fix string) {
		ps = append(ps, Problem{Line: lineOf(lines, key), Key: key, Message: msg, Fix: fix})
	}
	switch cfg.Transport {
	case "udpu", "udp":
	default:
		add("transport", fmt.Sprintf("unknown transport %q", cfg.Transport), `use "udpu" (unicast) or "udp" (multicast)`)
	}
	switch cfg.LinkMode {
	case "passive", "active":
	default:
		add("link_mode", fmt.Sprintf("unknown link mode %q", cfg.LinkMode), `use "passive" or "active"`)
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		add("port", fmt.Sprintf("port %d is out of range", cfg.Port), "use a UDP port between 1 and 65535 (default 5405)")
	}
	if cfg.LinkHeartbeat < 0 || cfg.LinkTimeout < 0 {
		add("link_timeout", "link timers must not be negative", "leave link_heartbeat and link_timeout unset to derive them from the token")
	} else if hb, lt := cfg.LinkTimers(100 * time.Millisecond); cfg.LinkHeartbeat != 0 && cfg.LinkTimeout != 0 && lt < 2*hb {
		add("link_timeout", fmt.Sprintf("link_timeout %v is below two link heartbeats (%v)", lt, 2*hb), "make link_timeout at least twice link_heartbeat")
	}
	if cfg.StateDir == "" {
		add("state_dir", "is empty", "set it to a directory totemd may write, like "+DefaultStateDir)
	}
	switch cfg.Crypto {
	case "on":
		if cfg.KeyFile == "" {
			add("keyfile", "is empty", "set it to the key made by `totemctl keygen`, like "+DefaultKeyFile)
		}
	case "off":
	default:
		add("crypto", fmt.Sprintf("unknown value %q", cfg.Crypto), `use "on" (the default) or "off"`)
	}
	if cfg.Offload != "" && cfg.Offload != "on" && cfg.Offload != "off" {
		add("offload", fmt.Sprintf("unknown value %q", cfg.Offload), `use "on" (the default) or "off"`)
	}
	if cfg.GoMaxProcs < 0 {
		add("gomaxprocs", fmt.Sprintf("%d is negative", cfg.GoMaxProcs), "use 1 (the default), a thread count, or 0 for one per CPU")
	}
	if cfg.IPC.Socket == "" {
		add("ipc.socket", "is empty", "set it to a socket path, like "+ipc.DefaultSocket)
	}
	for i, u := range cfg.IPC.AllowUIDs {
		if u < 0 {
			add("ipc.allow_uids", fmt.Sprintf("uid %d (entry %d) is negative", u, i), "list numeric user IDs")
		}
	}
	for i, g := range cfg.IPC.AllowGIDs {
		if g < 0 {
			add("ipc.allow_gids", fmt.Sprintf("gid %d (entry %d) is negative", g, i), "list numeric group IDs")
		}
	}
	if cfg.IPC.QueueMessages < 16 {
		add("ipc.queue_messages", fmt.Sprintf("%d is too small", cfg.IPC.QueueMessages), fmt.Sprintf("use at least 16 (default %d)", DefaultQueueMessages))
	}
	maxMsg := cfg.Totem.MaxMessageSize
	if maxMsg <= 0 {
		maxMsg = totem.DefaultMaxMessageSize
	}
	if cfg.IPC.QueueBytes < 2*maxMsg {
		add("ipc.queue_bytes", fmt.Sprintf("%d is less than two messages of max_message_size (%d): a client would be disconnected for one large message", cfg.IPC.QueueBytes, maxMsg),
			fmt.Sprintf("use at least %d (default %d)", 2*maxMsg, DefaultQueueBytes))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Logging.Level)); err != nil {
		add("logging.level", fmt.Sprintf("unknown level %q", cfg.Logging.Level), "use debug, info, warn or error")
	}
	switch cfg.Logging.Format {
	case "text", "json":
	default:
		add("logging.format", fmt.Sprintf("unknown format %q", cfg.Logging.Format), `use "text" or "json"`)
	}

	// Links and nodes.
	nlinks := len(cfg.Links)
	if nlinks == 0 {
		nlinks = 1
	}
	if cfg.Transport == "udp" {
		if len(cfg.Links) == 0 {
			add("link", "transport udp needs a multicast address per link", `add [[link]] with mcast_addr = "239.192.0.1:5405"`)
		}
		for i, l := range cfg.Links {
			key := fmt.Sprintf("link[%d].mcast_addr", i)
			ap, err := ParseNodeAddr(l.McastAddr, cfg.Port)
			if err != nil || !ap.Addr().IsMulticast() {
				add(key, fmt.Sprintf("%q is not a multicast address", l.McastAddr), `use a group like "239.192.0.1:5405"`)
			}
		}
	}
	for i, l := range cfg.Links {
		if l.MTU != 0 && (l.MTU < 576 || l.MTU > 65535) {
			add(fmt.Sprintf("link[%d].mtu", i), fmt.Sprintf("MTU %d is out of range", l.MTU), "use 576 to 65535 (1500 for Ethernet, 9000 for jumbo frames)")
		}
		if l.TTL < 0 || l.TTL > 255 {
			add(fmt.Sprintf("link[%d].ttl", i), fmt.Sprintf("TTL %d is out of range", l.TTL), "use 1 to 255 (default 1)")
		}
		if l.Bind != "" {
			if _, err := ParseNodeAddr(l.Bind, cfg.Port); err != nil {
				add(fmt.Sprintf("link[%d].bind", i), err.Error(), `use an IP address of this host, like "10.0.0.1"`)
			}
		}
	}
	if len(cfg.Nodes) == 0 {
		add("node", "the node list is empty", "add one [[node]] section per node, with nodeid and addrs")
	}
	seen := map[uint32]int{}
	seenAddr := map[netip.AddrPort]uint32{}
	for i, n := range cfg.Nodes {
		key := fmt.Sprintf("node[%d]", i)
		if n.NodeID == 0 {
			add(key+".nodeid", "node ID missing or zero", "give every node a distinct non-zero nodeid")
		} else if j, dup := seen[n.NodeID]; dup {
			add(key+".nodeid", fmt.Sprintf("node ID %d is also used by node entry %d", n.NodeID, j), "give every node a distinct nodeid")
		} else {
			seen[n.NodeID] = i
		}
		if len(n.Addrs) != nlinks {
			add(key+".addrs", fmt.Sprintf("has %d addresses for %d links", len(n.Addrs), nlinks), "give one address per link, in link order")
		}
		for _, a := range n.Addrs {
			ap, err := ParseNodeAddr(a, cfg.Port)
			if err != nil {
				add(key+".addrs", err.Error(), `write addresses as "10.0.0.1" or "10.0.0.1:5405"`)
				continue
			}
			if other, dup := seenAddr[ap]; dup && other != n.NodeID {
				add(key+".addrs", fmt.Sprintf("%s is also an address of node %d", ap, other), "give every node its own address or port")
			}
			seenAddr[ap] = n.NodeID
		}
	}
	if len(cfg.Nodes) > 0 {
		if _, err := cfg.ResolveNodeID(localAddrs); err != nil {
			fix := "set nodeid to this node's ID from the node list"
			if cfg.NodeID != 0 {
				fix = "add this node to the node list, or correct nodeid"
			}
			add("nodeid", err.Error(), fix)
		}
	}

	// Engine options.
	if _, err := cfg.EngineConfig(max(cfg.NodeID, 1)); err != nil {
		for _, msg := range strings.Split(err.Error(), "\n") {
			key, fix := engineProblemKey(msg)
			add(key, msg, fix)
		}
	}
	return ps
}

// engineProblemKey maps a totem.Config.Validate message to the option to
// change.
func engineProblemKey(msg string) (key, fix string) {
	switch {
	case strings.Contains(msg, "profile"):
		return "totem.profile", `use "default" or "fast"`
	case strings.Contains(msg, "netmtu"):
		return "totem.netmtu", "raise netmtu to at least 576 (default 1500)"
	case strings.Contains(msg, "consensus"):
		return "totem.consensus", "make consensus at least join (default 1.2 × token)"
	case strings.Contains(msg, "hold"):
		return "totem.hold", "lower hold below token / (token_retransmits_before_loss_const + 0.2), or leave it unset"
	case strings.Contains(msg, "max_messages"):
		return "totem.max_messages", "keep 1 <= max_messages <= window_size"
	case strings.Contains(msg, "max queue"):
		return "totem.max_queue_bytes", "make max_queue_bytes at least max_message_size"
	case strings.Contains(msg, "positive"):
		return "totem.token", "use positive timeouts"
	}
	return "totem", "see the totem options in totemd --help"
}
