//go:build linux

package rrp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netLab is a set of network namespaces created by a test: one "switch"
// namespace holding one bridge per link (no uplink), and one namespace per
// node with one veth per link. Node i (1-based) has 198.18.L.i/24 on link
// L's interface ethL.
type netLab struct {
	t     testing.TB
	id    string
	nodes int
	links int
}

// needRoot skips the test unless it runs as root with the ip tool.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: network namespace tests need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: the ip tool (iproute2) is not installed")
	}
	if testing.Short() {
		t.Skip("skipping network namespace test in -short mode")
	}
}

func (lab *netLab) ns(node int) string {
	if node == 0 {
		return "rrpt-" + lab.id + "-sw"
	}
	return fmt.Sprintf("rrpt-%s-n%d", lab.id, node)
}

func (lab *netLab) ip(args ...string) {
	lab.ipT(lab.t, args...)
}

func (lab *netLab) ipT(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// newNetLab builds the namespaces and removes them at cleanup.
func newNetLab(t testing.TB, nodes, links int) *netLab {
	t.Helper()
	needRoot(t)
	b := make([]byte, 3)
	rand.Read(b)
	lab := &netLab{t: t, id: hex.EncodeToString(b), nodes: nodes, links: links}
	t.Cleanup(lab.destroy)
	sw := lab.ns(0)
	if out, err := exec.Command("ip", "netns", "add", sw).CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot create network namespaces here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	for l := 0; l < links; l++ {
		br := fmt.Sprintf("br%d", l)
		lab.ip("-n", sw, "link", "add", br, "type", "bridge", "mcast_snooping", "0")
		lab.ip("-n", sw, "link", "set", br, "up")
	}
	for i := 1; i <= nodes; i++ {
		ns := lab.ns(i)
		lab.ip("netns", "add", ns)
		lab.ip("-n", ns, "link", "set", "lo", "up")
		for l := 0; l < links; l++ {
			port := fmt.Sprintf("n%dl%d", i, l)
			eth := fmt.Sprintf("eth%d", l)
			lab.ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", eth, "netns", ns)
			lab.ip("-n", sw, "link", "set", port, "master", fmt.Sprintf("br%d", l), "up")
			lab.ip("-n", ns, "addr", "add", lab.addr(i, l)+"/24", "dev", eth)
			lab.ip("-n", ns, "link", "set", eth, "up")
		}
	}
	return lab
}

// timeout is the LinkTimeout of the lab's configs.
func (lab *netLab) timeout() time.Duration { return 750 * time.Millisecond }

func (lab *netLab) addr(node, link int) string { return fmt.Sprintf("198.18.%d.%d", link, node) }

func (lab *netLab) destroy() {
	for i := lab.nodes; i >= 0; i-- {
		exec.Command("ip", "netns", "del", lab.ns(i)).Run()
	}
}

// setLink brings node's interface for link up or down.
func (lab *netLab) setLink(t testing.TB, node, link int, up bool) {
	t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	lab.ipT(t, "-n", lab.ns(node), "link", "set", fmt.Sprintf("eth%d", link), state)
}

// in runs fn with the calling goroutine's thread in node's namespace.
// Sockets created by fn stay in that namespace.
func (lab *netLab) in(t testing.TB, node int, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open own netns: %v", err)
	}
	defer unix.Close(orig)
	target, err := unix.Open("/var/run/netns/"+lab.ns(node), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open netns %s: %v", lab.ns(node), err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("setns: %v", err)
	}
	defer func() {
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime discards it when the
			// goroutine ends, so no other goroutine runs in the namespace.
			t.Errorf("restore netns: %v", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

// configs returns configs for every node of the lab on all its links.
func (lab *netLab) configs(transport string, mode Mode) []Config {
	var nodes []Node
	for i := 1; i <= lab.nodes; i++ {
		n := Node{ID: NodeID(i)}
		for l := 0; l < lab.links; l++ {
			n.Addrs = append(n.Addrs, lab.addr(i, l))
		}
		nodes = append(nodes, n)
	}
	var cfgs []Config
	for i := 1; i <= lab.nodes; i++ {
		c := Config{
			NodeID: NodeID(i), Nodes: nodes, Mode: mode, Key: testKey,
			HeartbeatInterval: 50 * time.Millisecond, LinkTimeout: lab.timeout(),
			Logger: discardLogger,
		}
		for l := 0; l < lab.links; l++ {
			c.Links = append(c.Links, LinkConfig{Transport: transport, McastAddr: fmt.Sprintf("239.192.77.%d", 100+l)})
		}
		cfgs = append(cfgs, c)
	}
	return cfgs
}

// start starts one transport per config, node i in its namespace.
func (lab *netLab) start(t testing.TB, cfgs []Config) []*Transport {
	t.Helper()
	ts := make([]*Transport, len(cfgs))
	for i, c := range cfgs {
		var err error
		lab.in(t, int(c.NodeID), func() { ts[i], err = New(c) })
		if err != nil {
			out, _ := exec.Command("ip", "netns", "exec", lab.ns(int(c.NodeID)), "ss", "-uanp").CombinedOutput()
			t.Fatalf("node %d: %v\n%s", c.NodeID, err, out)
		}
		t.Cleanup(func() { ts[i].Close() })
	}
	return ts
}

// exchange makes every node send n frames to every node (broadcast) and
// checks every node receives all the others' frames exactly once; it
// returns, per receiving node, how many frames arrived on each link.
func exchange(t *testing.T, ts []*Transport, n int, tag string) [][MaxLinks]int {
	t.Helper()
	for i, tr := range ts {
		var fs []Frame
		for k := 0; k < n; k++ {
			fs = append(fs, Frame{Data: []byte(fmt.Sprintf("%s/%d/%d", tag, i+1, k))})
		}
		if err := tr.SendBatch(fs); err != nil {
			t.Fatal(err)
		}
	}
	perLink := make([][MaxLinks]int, len(ts))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, tr := range ts {
		want := n * (len(ts) - 1)
		seen := map[string]bool{}
		for len(seen) < want {
			var b []Received
			select {
			case b = <-tr.Recv():
			case <-ctx.Done():
				t.Fatalf("%s: node %d got %d of %d frames", tag, i+1, len(seen), want)
			}
			for _, r := range b {
				s := string(r.Frame)
				if !strings.HasPrefix(s, tag+"/") {
					continue // late frame of an earlier round
				}
				if seen[s] {
					t.Fatalf("%s: node %d got %s twice", tag, i+1, s)
				}
				if !strings.HasPrefix(s, fmt.Sprintf("%s/%d/", tag, r.From)) {
					t.Fatalf("%s: frame %s claims sender %d", tag, s, r.From)
				}
				seen[s] = true
				perLink[i][r.Link]++
			}
		}
	}
	return perLink
}

// TestNetnsLinkCut runs three nodes on two bridged networks, in both modes
// and over both transports: frames flow, survive `ip link set ethX down` on
// one node, both ends of the cut link mark it down, and it comes back by
// itself when the interface is brought up again.
func TestNetnsLinkCut(t *testing.T) {
	lab := newNetLab(t, 3, 2)
	for _, transport := range []string{UDPU, UDP} {
		for _, mode := range []Mode{Passive, Active} {
			t.Run(transport+"/"+string(mode), func(t *testing.T) {
				ts := lab.start(t, lab.configs(transport, mode))
				defer func() {
					for _, tr := range ts {
						tr.Close()
					}
				}()
				waitFor(t, 20*time.Second, "all links up", func() bool { return allUp(ts) })
				per := exchange(t, ts, 50, "before")
				if mode == Passive && per[1][1] != 0 {
					t.Fatalf("passive mode used link 1 while link 0 was up: %v", per[1])
				}
				if mode == Active && (per[1][0] == 0 || per[1][1] == 0) {
					t.Logf("active mode: first copies per link at node 2: %v", per[1][:2])
				}

				lab.setLink(t, 1, 0, false)
				defer func() {
					if t.Failed() {
						for i, tr := range ts {
							for _, ls := range tr.Links() {
								t.Logf("node %d link %d: %+v", i+1, ls.Link, ls)
							}
						}
					}
				}()
				waitFor(t, 20*time.Second, "link 0 of node 1 down at both ends", func() bool {
					return !linkUp(ts[0], 0, 2) && !linkUp(ts[0], 0, 3) && !linkUp(ts[1], 0, 1) && !linkUp(ts[2], 0, 1)
				})
				if !linkUp(ts[1], 0, 3) || !linkUp(ts[0], 1, 2) {
					t.Fatal("links not involved in the cut went down")
				}
				per = exchange(t, ts, 50, "cut")
				if per[0][0] != 0 {
					t.Fatalf("node 1 received %d frames on its cut link", per[0][0])
				}
				if mode == Passive && per[1][1] == 0 {
					t.Fatal("passive mode did not fail over to link 1")
				}

				lab.setLink(t, 1, 0, true)
				waitFor(t, 20*time.Second, "link 0 back up", func() bool { return allUp(ts) })
				per = exchange(t, ts, 50, "healed")
				if mode == Passive && per[0][0] == 0 {
					t.Fatal("passive mode did not move back to link 0")
				}
				// Both ends of each pair saw the same history on link 0.
				for _, pair := range [][2]int{{1, 2}, {1, 3}, {2, 3}} {
					a := peerStatus(ts[pair[0]-1], 0, NodeID(pair[1]))
					b := peerStatus(ts[pair[1]-1], 0, NodeID(pair[0]))
					if a.Epoch != b.Epoch || a.Ups != b.Ups || a.Downs != b.Downs {
						t.Fatalf("nodes %d and %d disagree on link 0: %+v vs %+v", pair[0], pair[1], a, b)
					}
					// Bounded slack: the last transition (up, after the
					// heal) happened at both ends within a timeout.
					if d := a.LastChange.Sub(b.LastChange).Abs(); d > lab.timeout() {
						t.Fatalf("nodes %d and %d saw link 0 come back %v apart", pair[0], pair[1], d)
					}
				}
				if d := peerStatus(ts[1], 0, 1).Downs; d != 1 {
					t.Fatalf("link 0 between nodes 1 and 2 went down %d times, want 1", d)
				}
			})
		}
	}
}

// TestNetnsWrongKeyAndHostilePackets: node 3 has another key and is
// refused (and logged) while nodes 1 and 2 keep exchanging; then truncated,
// oversized (IP-fragmented) and forged datagrams sent from node 3's
// namespace are dropped and counted.
func TestNetnsWrongKeyAndHostilePackets(t *testing.T) {
	lab := newNetLab(t, 3, 1)
	cfgs := lab.configs(UDPU, Passive)
	var logs logBuf
	cfgs[0].Logger = logs.logger()
	cfgs[2].Key = make([]byte, KeySize)
	ts := lab.start(t, cfgs)
	waitFor(t, 20*time.Second, "link 1-2 up", func() bool { return linkUp(ts[0], 0, 2) && linkUp(ts[1], 0, 1) })
	stop := make(chan struct{})
	defer close(stop)
	go drain(ts[2], stop)
	exchange(t, ts[:2], 20, "good")
	waitFor(t, 5*time.Second, "wrong key counted", func() bool { return ts[0].Stats().Total.Dropped.AuthFailed > 0 })
	if linkUp(ts[0], 0, 3) {
		t.Fatal("link to the node with the wrong key is up")
	}
	if out := logs.String(); !contains(out, "198.18.0.3:") || !contains(out, "cluster keys probably differ") {
		t.Fatalf("wrong key not logged with the peer address:\n%s", out)
	}
	ts[2].Close()

	var sock *net.UDPConn
	lab.in(t, 3, func() {
		var err error
		sock, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(lab.addr(3, 0))})
		if err != nil {
			t.Fatal(err)
		}
	})
	defer sock.Close()
	dst := &net.UDPAddr{IP: net.ParseIP(lab.addr(1, 0)), Port: DefaultPort}
	before := ts[0].Stats().Total.Dropped
	good := forge(testKey, Header{Type: TypeFrame, From: 3, To: 1, Incarnation: 1, Seq: 1}, []byte("x"))
	forged := append([]byte(nil), good...)
	forged[HeaderSize+NonceSize] ^= 0x40
	for _, p := range [][]byte{good[:20], good[:HeaderSize+10], make([]byte, 4000), forged} {
		if _, err := sock.WriteToUDP(p, dst); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "hostile packets counted", func() bool {
		d := ts[0].Stats().Total.Dropped
		return d.Truncated-before.Truncated == 2 && d.Oversized-before.Oversized == 1 && d.AuthFailed-before.AuthFailed >= 1
	})
	exchange(t, ts[:2], 20, "after")
}

// TestNetnsJumboFrames sets a 9000-byte MTU on the links and sends frames
// of MaxFrame bytes, which travel unfragmented; a node configured for 1500
// bytes counts them as oversized.
func TestNetnsJumboFrames(t *testing.T) {
	lab := newNetLab(t, 3, 1)
	for i := 1; i <= 3; i++ {
		lab.ip("-n", lab.ns(0), "link", "set", fmt.Sprintf("n%dl0", i), "mtu", "9000")
		lab.ip("-n", lab.ns(i), "link", "set", "eth0", "mtu", "9000")
	}
	cfgs := lab.configs(UDPU, Passive)
	for i := range cfgs[:2] {
		cfgs[i].Links[0].MTU = 9000
	}
	ts := lab.start(t, cfgs)
	if want := 9000 - 28 - Overhead; ts[0].MaxFrame() != want {
		t.Fatalf("MaxFrame %d, want %d", ts[0].MaxFrame(), want)
	}
	waitFor(t, 20*time.Second, "link 1-2 up", func() bool { return linkUp(ts[0], 0, 2) && linkUp(ts[1], 0, 1) })
	frame := make([]byte, ts[0].MaxFrame())
	rand.Read(frame)
	for i := 0; i < 10; i++ {
		if err := ts[0].Send(0, frame); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := collect(ctx, ts[1], 10)
	if len(got) != 10 || string(got[0].Frame) != string(frame) {
		t.Fatalf("got %d jumbo frames intact, want 10", len(got))
	}
	waitFor(t, 10*time.Second, "1500-byte node counts jumbo datagrams as oversized", func() bool {
		return ts[2].Stats().Total.Dropped.Oversized >= 10
	})
}
