package main

import (
	"fmt"
	"strings"
)

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// nodeConfig renders node n's totemd configuration.
func nodeConfig(s *State, n *NodeInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# totemd config of node %d, written by `cluster up` (%s mode).\n", n.ID, s.Mode)
	fmt.Fprintf(&b, "# Check it with: totemd --check-config --config %s\n", n.Config)
	fmt.Fprintf(&b, "nodeid = %d\n", n.ID)
	fmt.Fprintf(&b, "cluster_name = %s\n", tomlString(s.Prefix+"-cluster"))
	fmt.Fprintf(&b, "state_dir = %s\n", tomlString(n.Dir+"/state"))
	fmt.Fprintf(&b, "keyfile = %s\n", tomlString(s.Key))
	fmt.Fprintf(&b, "transport = \"udpu\"\n")
	fmt.Fprintf(&b, "link_mode = %s\n", tomlString(s.LinkMode))
	// Loopback addresses carry their ports (see loopbackPort); in
	// namespaces every node uses totemd's default port.
	fmt.Fprintf(&b, "\n[totem]\nprofile = %s\n", tomlString(s.Profile))
	if s.TokenMS > 0 {
		fmt.Fprintf(&b, "token = %d\n", s.TokenMS)
	}
	fmt.Fprintf(&b, "\n[ipc]\nsocket = %s\n", tomlString(n.Socket))
	fmt.Fprintf(&b, "\n[logging]\nlevel = \"info\"\nformat = \"text\"\n")
	for l := 0; l < s.Links; l++ {
		fmt.Fprintf(&b, "\n[[link]] # link %d\n", l)
	}
	for i := range s.NodeInfo {
		o := &s.NodeInfo[i]
		fmt.Fprintf(&b, "\n[[node]]\nnodeid = %d\nname = %s\naddrs = [", o.ID, tomlString(fmt.Sprintf("n%d", o.ID)))
		for j, a := range o.Addrs {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(tomlString(a))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// loopbackPort is node's UDP port on link in loopback mode.
func loopbackPort(base, link, node int) int { return base + 100*link + node }
