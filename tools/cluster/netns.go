package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Address plan: node I on link L has 198.18.L.I/24 (198.18.0.0/15 is set
// aside for benchmarking, RFC 2544; the bridges have no uplink).
func netnsAddr(link, node int) string { return fmt.Sprintf("198.18.%d.%d", link, node) }

// Names, all starting with the prefix so that they never collide with
// anything else on the host (interface names: at most 15 bytes).
func nsName(prefix string, node int) string     { return fmt.Sprintf("%s%d", prefix, node) }
func bridgeName(prefix string, link int) string { return fmt.Sprintf("%sbr%d", prefix, link) }
func vethName(prefix string, node, link int) string {
	return fmt.Sprintf("%s%dl%d", prefix, node, link)
}
func vethPeerName(prefix string, node, link int) string { return vethName(prefix, node, link) + "p" }

// inNSName is the link's interface name inside a node's namespace.
func inNSName(link int) string { return fmt.Sprintf("eth%d", link) }

// ip runs the ip command and returns its error with its output.
func ip(args ...string) error {
	cmd := exec.Command("ip", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// checkNetnsPossible says why namespaces cannot be made here, or nil.
func checkNetnsPossible() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root; run as root, or use --loopback (all nodes on 127.0.0.1, no root needed)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("the ip command (iproute2) is missing: apt-get install iproute2, or use --loopback")
	}
	return nil
}

// nsExists reports whether the named network namespace exists.
func nsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

// linkExists reports whether the host has an interface of that name.
func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// checkNamesFree fails if any name the cluster would use is taken.
func checkNamesFree(prefix string, nodes, links int) error {
	var taken []string
	for i := 1; i <= nodes; i++ {
		if nsExists(nsName(prefix, i)) {
			taken = append(taken, "namespace "+nsName(prefix, i))
		}
		for l := 0; l < links; l++ {
			for _, n := range []string{vethName(prefix, i, l), vethPeerName(prefix, i, l)} {
				if linkExists(n) {
					taken = append(taken, "interface "+n)
				}
			}
		}
	}
	for l := 0; l < links; l++ {
		if linkExists(bridgeName(prefix, l)) {
			taken = append(taken, "bridge "+bridgeName(prefix, l))
		}
	}
	if len(taken) > 0 {
		return fmt.Errorf("already in use: %s (another cluster with prefix %q is up? `cluster down` it, or choose another --prefix)", strings.Join(taken, ", "), prefix)
	}
	return nil
}

// makeNetwork creates the bridges, namespaces and veths, recording each in
// s as soon as it exists.
func makeNetwork(s *State) error {
	for l := 0; l < s.Links; l++ {
		br := bridgeName(s.Prefix, l)
		if err := ip("link", "add", br, "type", "bridge"); err != nil {
			return err
		}
		s.Resources.Bridges = append(s.Resources.Bridges, br)
		if err := s.save(); err != nil {
			return err
		}
		// Multicast snooping would drop multicast the bridge thinks
		// nobody asked for (transport udp); this bridge has no querier.
		snoop := filepath.Join("/sys/class/net", br, "bridge", "multicast_snooping")
		if err := os.WriteFile(snoop, []byte("0"), 0o644); err != nil {
			return fmt.Errorf("turn off multicast snooping on %s: %v", br, err)
		}
		if err := ip("link", "set", br, "up"); err != nil {
			return err
		}
	}
	for i := range s.NodeInfo {
		n := &s.NodeInfo[i]
		ns := nsName(s.Prefix, n.ID)
		if err := ip("netns", "add", ns); err != nil {
			return err
		}
		s.Resources.Namespaces = append(s.Resources.Namespaces, ns)
		n.Namespace = ns
		if err := s.save(); err != nil {
			return err
		}
		if err := ip("-n", ns, "link", "set", "lo", "up"); err != nil {
			return err
		}
		for l := 0; l < s.Links; l++ {
			host, peer := vethName(s.Prefix, n.ID, l), vethPeerName(s.Prefix, n.ID, l)
			if err := ip("link", "add", host, "type", "veth", "peer", "name", peer); err != nil {
				return err
			}
			s.Resources.Veths = append(s.Resources.Veths, host)
			n.Veths = append(n.Veths, host)
			if err := s.save(); err != nil {
				return err
			}
			in := inNSName(l)
			steps := [][]string{
				{"link", "set", peer, "netns", ns},
				{"-n", ns, "link", "set", peer, "name", in},
				{"-n", ns, "addr", "add", netnsAddr(l, n.ID) + "/24", "dev", in},
				{"-n", ns, "link", "set", in, "up"},
				{"link", "set", host, "master", bridgeName(s.Prefix, l)},
				{"link", "set", host, "up"},
			}
			for _, st := range steps {
				if err := ip(st...); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// removeNetwork deletes every recorded veth, namespace and bridge that
// still exists; it goes on after errors and returns them all.
func removeNetwork(s *State) error {
	var errs []error
	for _, v := range s.Resources.Veths {
		if linkExists(v) {
			if err := ip("link", "del", v); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, ns := range s.Resources.Namespaces {
		if nsExists(ns) {
			if err := ip("netns", "del", ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, br := range s.Resources.Bridges {
		if linkExists(br) {
			if err := ip("link", "del", br); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// setLink brings node's link l up or down by its host-side veth: the
// carrier drops on both ends, the addresses stay.
func setLink(s *State, n *NodeInfo, l int, up bool) error {
	if l < 0 || l >= s.Links {
		return fmt.Errorf("no link %d: the cluster has links 0..%d", l, s.Links-1)
	}
	state := "down"
	if up {
		state = "up"
	}
	return ip("link", "set", n.Veths[l], state)
}
