//go:build linux

package rrp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"
)

// TestNetnsMulticastLoopback runs three nodes over UDP multicast on the
// loopback interface of a namespace created for the test (multicast turned
// on for lo); nodes share the group port and differ by unicast port.
// IPv4 only: Linux does not deliver IPv6 multicast looped on lo, and the
// tests may use no IPv6 addresses but ::1, so IPv6 multicast is not
// exercised here (IPv6 unicast is, in TestLoopbackFramesFlow).
func TestNetnsMulticastLoopback(t *testing.T) {
	needRoot(t)
	b := make([]byte, 3)
	rand.Read(b)
	lab := &netLab{t: t, id: "m" + hex.EncodeToString(b), nodes: 1}
	ns := lab.ns(1)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot create network namespaces here (%v: %s)", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	lab.ip("-n", ns, "link", "set", "lo", "multicast", "on")
	lab.ip("-n", ns, "link", "set", "lo", "up")
	lab.ip("-n", ns, "route", "add", "239.192.0.0/16", "dev", "lo")
	for _, fam := range []struct{ host, group string }{{"127.0.0.1", "239.192.77.7:5500"}} {
		t.Run(fam.host, func(t *testing.T) {
			var cfgs []Config
			var nodes []Node
			for i := 1; i <= 3; i++ {
				nodes = append(nodes, Node{ID: NodeID(i), Addrs: []string{net.JoinHostPort(fam.host, fmt.Sprint(6000+i))}})
			}
			for i := 1; i <= 3; i++ {
				cfgs = append(cfgs, Config{
					NodeID: NodeID(i), Nodes: nodes, Key: testKey, Logger: discardLogger,
					HeartbeatInterval: 50 * time.Millisecond, LinkTimeout: 750 * time.Millisecond,
					Links: []LinkConfig{{Transport: UDP, McastAddr: fam.group}},
				})
			}
			var ts []*Transport
			var err error
			lab.in(t, 1, func() {
				for _, c := range cfgs {
					var tr *Transport
					tr, err = New(c)
					if err != nil {
						return
					}
					ts = append(ts, tr)
				}
			})
			defer func() {
				for _, tr := range ts {
					tr.Close()
				}
			}()
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if t.Failed() {
					for _, tr := range ts {
						t.Logf("%+v", tr.Stats().Total)
					}
				}
			}()
			waitFor(t, 20*time.Second, "multicast links up", func() bool { return allUp(ts) })
			exchange(t, ts, 30, "mcast")
			ts[0].Send(3, []byte("only for 3"))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if got := collect(ctx, ts[2], 1); len(got) != 1 || string(got[0].Frame) != "only for 3" {
				t.Fatalf("directed frame over multicast: %v", got)
			}
			waitFor(t, 5*time.Second, "node 2 drops the frame addressed to node 3", func() bool {
				return ts[1].Stats().Total.Dropped.NotForUs > 0
			})
			if own := ts[0].Stats().Total.Own; own == 0 {
				t.Fatal("own multicast datagrams not looped back and ignored")
			}
		})
	}
}
