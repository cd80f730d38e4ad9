package integration

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/totem-gcs/totem/rrp"
)

// TestHostilePackets sends truncated, oversized, malformed and forged
// datagrams at node 1's link 0 from a fourth namespace on the same bridge
// (an intruder without the key, or with only its fingerprint). Every kind
// is dropped and counted under its own net.dropped.* counter, and the
// ring of the three nodes is undisturbed and keeps delivering.
func TestHostilePackets(t *testing.T) {
	c := newCluster(t, clusterOpts{linkMode: "passive", profile: "default"})
	all := []int{1, 2, 3}
	before := c.waitStableRing(all, []uint32{1, 2, 3})

	conn := c.intruder(t, 0, 250)
	defer conn.Close()
	target := &net.UDPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 5405}

	key, err := rrp.ReadKey(c.keyFile())
	if err != nil {
		t.Fatal(err)
	}
	// A header as node 2 would send it on link 0, with the real key's
	// fingerprint and the newest possible incarnation: if the daemon took
	// the incarnation before authenticating, node 2's real packets would
	// look stale from then on and the ring would break.
	forgedHeader := func(from uint32, keyID uint8, typ rrp.PacketType) []byte {
		h := rrp.Header{Type: typ, Flags: rrp.FlagEncrypted, KeyID: keyID, Link: 0,
			From: rrp.NodeID(from), To: 0, Incarnation: math.MaxUint64, Seq: 1}
		return rrp.AppendHeader(nil, &h)
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	const each = 25
	kinds := []struct {
		name    string
		counter string // net.dropped.* counter that must rise by each
		packet  func(i int) []byte
	}{
		{"truncated: shorter than the header", "truncated", func(i int) []byte { return []byte("TR\x01\x01")[:1+i%4] }},
		{"truncated: header announcing an encrypted body, no body", "truncated",
			func(i int) []byte { return forgedHeader(2, rrp.KeyID(key), rrp.TypeFrame) }},
		{"oversized: larger than the link's MTU", "oversized",
			func(i int) []byte { return cat(forgedHeader(2, rrp.KeyID(key), rrp.TypeFrame), random(4000)) }},
		{"malformed: not a totem packet", "malformed", func(i int) []byte { return random(200) }},
		{"forged: claims an unknown node", "unknown_node",
			func(i int) []byte { return cat(forgedHeader(99, rrp.KeyID(key), rrp.TypeFrame), random(200)) }},
		{"forged: node 2's frame with the real key id, random ciphertext", "auth_failed",
			func(i int) []byte { return cat(forgedHeader(2, rrp.KeyID(key), rrp.TypeFrame), random(200)) }},
		{"forged: node 2's heartbeat with the real key id, random ciphertext", "auth_failed",
			func(i int) []byte { return cat(forgedHeader(2, rrp.KeyID(key), rrp.TypeHeartbeat), random(60)) }},
		{"forged: node 2's frame with an unknown key id", "auth_failed",
			func(i int) []byte { return cat(forgedHeader(2, rrp.KeyID(key)+1, rrp.TypeFrame), random(200)) }},
	}

	for _, k := range kinds {
		counter := "net.dropped." + k.counter
		linkCounter := "net.link0.dropped." + k.counter
		base := c.stats(1)
		for i := range each {
			if _, err := conn.WriteToUDP(k.packet(i), target); err != nil {
				t.Fatalf("%s: send: %v", k.name, err)
			}
			time.Sleep(2 * time.Millisecond) // stay well inside the socket buffer
		}
		var now map[string]uint64
		c.waitFor(k.name+": counted", linkTimeout, func() string {
			now = c.stats(1)
			if d := now[linkCounter] - base[linkCounter]; d < each {
				return fmt.Sprintf("%s rose by %d of %d sent", linkCounter, d, each)
			}
			return ""
		})
		if d := now[counter] - base[counter]; d < each {
			t.Errorf("%s: %s (all links) rose by %d, %s by %d", k.name, counter, d, linkCounter, now[linkCounter]-base[linkCounter])
		}
		if d := now["net.dropped.total"] - base["net.dropped.total"]; d < each {
			t.Errorf("%s: net.dropped.total rose by %d of %d sent", k.name, d, each)
		}
		t.Logf("%-70s %s +%d", k.name, counter, now[counter]-base[counter])
	}

	// The ring did not notice: same ring, no membership change, node 2
	// still heard on both links, and traffic still flows everywhere.
	c.checkSameRing(all, before, "after the hostile packets")
	for l := 0; l < linkCount; l++ {
		if s := c.linkTo(1, l, 2); s != "up" {
			t.Errorf("node 1's link %d to node 2 is %q after forged packets claiming node 2", l, s)
		}
	}
	for _, id := range all {
		c.send(id, "after-hostile")
	}
	c.checkSameRing(all, before, "traffic after the hostile packets")

	log, err := os.ReadFile(c.nodes[0].Log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "198.18.0.250") {
		t.Errorf("node 1's log does not mention the intruder's address 198.18.0.250 (unknown node or failed authentication should be logged)")
	}
}

// keyFile is the cluster key the cluster tool wrote.
func (c *testCluster) keyFile() string { return filepath.Join(c.dir, "authkey") }

// intruder makes a namespace on link l's bridge with address
// 198.18.l.host and returns a UDP socket opened inside it. The namespace is
// removed when the test ends.
func (c *testCluster) intruder(t *testing.T, l, host int) *net.UDPConn {
	t.Helper()
	ns := c.prefix + "x"
	veth, peer := c.prefix+"xl0", c.prefix+"xl0p"
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	ip := func(args ...string) {
		t.Helper()
		if _, err := run(ctx, "ip", args...); err != nil {
			t.Fatalf("ip %s: %v", strings.Join(args, " "), err)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() {
		del := func(args ...string) { run(context.Background(), "ip", args...) }
		del("link", "del", veth)
		del("netns", "del", ns)
	})
	ip("link", "add", veth, "type", "veth", "peer", "name", peer)
	ip("link", "set", peer, "netns", ns)
	ip("-n", ns, "addr", "add", fmt.Sprintf("198.18.%d.%d/24", l, host), "dev", peer)
	ip("-n", ns, "link", "set", peer, "up")
	ip("link", "set", veth, "master", fmt.Sprintf("%sbr%d", c.prefix, l))
	ip("link", "set", veth, "up")

	// Open the socket on a thread that entered the namespace; the thread
	// is never returned to the pool (the goroutine ends locked), so no
	// other goroutine runs in the namespace.
	type result struct {
		conn *net.UDPConn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %v", ns, err)}
			return
		}
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(198, 18, byte(l), byte(host))})
		ch <- result{conn, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("intruder socket in %s: %v", ns, r.err)
	}
	return r.conn
}
