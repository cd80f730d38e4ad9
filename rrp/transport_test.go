package rrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"testing"
	"time"
)

func TestLoopbackFramesFlow(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			cfgs := loopbackConfigs(t, host, 3, 2)
			for i := range cfgs {
				// Lenient timing: the link-0-only check below must not
				// see a load-induced suspect period.
				cfgs[i].HeartbeatInterval = 50 * time.Millisecond
				cfgs[i].LinkTimeout = 1500 * time.Millisecond
			}
			if host == "::1" {
				if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				} else {
					c.Close()
				}
			}
			ts := startAll(t, cfgs)
			waitFor(t, 5*time.Second, "all links up", func() bool { return allUp(ts) })

			// Node 1 broadcasts, node 2 unicasts to node 3.
			var frames []Frame
			for i := 0; i < 100; i++ {
				frames = append(frames, Frame{To: 0, Data: []byte(fmt.Sprintf("bcast-%d", i))})
			}
			if err := ts[0].SendBatch(frames); err != nil {
				t.Fatal(err)
			}
			if err := ts[1].Send(3, []byte("to-three")); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got2 := collect(ctx, ts[1], 100)
			got3 := collect(ctx, ts[2], 101)
			if len(got2) != 100 || len(got3) != 101 {
				t.Fatalf("node 2 got %d frames (want 100), node 3 got %d (want 101)", len(got2), len(got3))
			}
			seen := map[string]NodeID{}
			for _, r := range got3 {
				seen[string(r.Frame)] = r.From
			}
			for i := 0; i < 100; i++ {
				if seen[fmt.Sprintf("bcast-%d", i)] != 1 {
					t.Fatalf("node 3 missing bcast-%d from node 1", i)
				}
			}
			if seen["to-three"] != 2 {
				t.Fatalf("node 3 did not get node 2's unicast")
			}
			// Passive mode: everything travelled on link 0.
			for _, r := range got2 {
				if r.Link != 0 {
					t.Fatalf("passive mode used link %d with both links up", r.Link)
				}
			}
			if s := ts[0].Links()[1].FramesSent; s != 0 {
				t.Fatalf("passive mode sent %d frames on link 1 while link 0 is up", s)
			}
			// Node 1 must not have received node 2's unicast to node 3.
			select {
			case b := <-ts[0].Recv():
				t.Fatalf("node 1 received %d unexpected frames", len(b))
			case <-time.After(50 * time.Millisecond):
			}
		})
	}
}

func TestSendErrors(t *testing.T) {
	cfgs := loopbackConfigs(t, "127.0.0.1", 2, 1)
	ts := startAll(t, cfgs)
	max := ts[0].MaxFrame()
	if want := 1500 - 28 - Overhead; max != want {
		t.Fatalf("MaxFrame = %d, want %d", max, want)
	}
	if err := ts[0].Send(2, make([]byte, max+1)); !errors.Is(err, ErrFrameTooBig) {
		t.Fatalf("oversized frame: err = %v, want ErrFrameTooBig", err)
	}
	if err := ts[0].Send(9, []byte("x")); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("unknown destination: err = %v, want ErrUnknownNode", err)
	}
	// A bad frame in a batch does not stop the good ones.
	err := ts[0].SendBatch([]Frame{{To: 9, Data: []byte("bad")}, {To: 2, Data: make([]byte, max)}})
	if !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("batch err = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	got := collect(ctx, ts[1], 1)
	if len(got) != 1 || len(got[0].Frame) != max {
		t.Fatalf("full-size frame not delivered: %d frames", len(got))
	}
	ts[0].Close()
	if err := ts[0].Send(2, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	if _, ok := <-ts[0].Recv(); ok {
		t.Fatal("Recv channel not closed after Close")
	}
}

func TestJumboFrames(t *testing.T) {
	cfgs := loopbackConfigs(t, "127.0.0.1", 2, 1)
	for i := range cfgs {
		cfgs[i].Links[0].MTU = 9000
	}
	ts := startAll(t, cfgs)
	if want := 9000 - 28 - Overhead; ts[0].MaxFrame() != want {
		t.Fatalf("MaxFrame = %d, want %d", ts[0].MaxFrame(), want)
	}
	frame := bytes.Repeat([]byte{7}, ts[0].MaxFrame())
	if err := ts[0].Send(2, frame); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	got := collect(ctx, ts[1], 1)
	if len(got) != 1 || !bytes.Equal(got[0].Frame, frame) {
		t.Fatal("jumbo frame not delivered intact")
	}
}

func TestPassiveFailoverAndHeal(t *testing.T) {
	cfgs := loopbackConfigs(t, "127.0.0.1", 2, 2)
	ts := startAll(t, cfgs)
	waitFor(t, 5*time.Second, "all links up", func() bool { return allUp(ts) })

	// Cut link 0 at node 1 only: both ends must see it go down.
	if err := ts[0].SetFault(0, Fault{Cut: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "link 0 down at both ends", func() bool {
		return !linkUp(ts[0], 0, 2) && !linkUp(ts[1], 0, 1)
	})
	if !linkUp(ts[0], 1, 2) || !linkUp(ts[1], 1, 1) {
		t.Fatal("link 1 went down with link 0")
	}
	for i := 0; i < 50; i++ {
		if err := ts[0].Send(2, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	got := collect(ctx, ts[1], 50)
	if len(got) != 50 {
		t.Fatalf("got %d of 50 frames after failover", len(got))
	}
	for _, r := range got {
		if r.Link != 1 {
			t.Fatalf("frame arrived on link %d, want the surviving link 1", r.Link)
		}
	}

	// Heal: the link comes back by itself and traffic moves back.
	ts[0].SetFault(0, Fault{})
	waitFor(t, 5*time.Second, "link 0 up again at both ends", func() bool {
		return linkUp(ts[0], 0, 2) && linkUp(ts[1], 0, 1)
	})
	ts[0].Send(2, []byte("back"))
	got = collect(ctx, ts[1], 1)
	if len(got) != 1 || got[0].Link != 0 {
		t.Fatalf("after heal frame not on link 0: %+v", got)
	}
	// Consistent history: both ends saw the same transitions.
	a, b := ts[0].Links()[0].Peers[0], ts[1].Links()[0].Peers[0]
	if a.Epoch != b.Epoch || a.Ups != b.Ups || a.Downs != b.Downs {
		t.Fatalf("histories differ: node 1 sees epoch %d (%d up, %d down), node 2 sees epoch %d (%d up, %d down)",
			a.Epoch, a.Ups, a.Downs, b.Epoch, b.Ups, b.Downs)
	}
	if a.Downs != 1 || a.Ups != 2 {
		t.Fatalf("want 2 ups and 1 down, got %d ups %d downs", a.Ups, a.Downs)
	}
	if ts[0].Links()[0].Dropped.Fault == 0 {
		t.Fatal("cut link counted no fault drops")
	}
}

func TestActiveModeDropsDuplicates(t *testing.T) {
	cfgs := loopbackConfigs(t, "127.0.0.1", 2, 3)
	for i := range cfgs {
		cfgs[i].Mode = Active
	}
	ts := startAll(t, cfgs)
	waitFor(t, 5*time.Second, "all links up", func() bool { return allUp(ts) })
	const n = 200
	var frames []Frame
	for i := 0; i < n; i++ {
		frames = append(frames, Frame{To: 2, Data: []byte(fmt.Sprint(i))})
	}
	ts[0].SendBatch(frames)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	got := collect(ctx, ts[1], n)
	// Wait for stragglers, which must not arrive.
	time.Sleep(100 * time.Millisecond)
	select {
	case b := <-ts[1].Recv():
		got = append(got, b...)
	default:
	}
	if len(got) != n {
		t.Fatalf("got %d frames, want exactly %d", len(got), n)
	}
	seen := map[string]bool{}
	for _, r := range got {
		if seen[string(r.Frame)] {
			t.Fatalf("frame %s delivered twice", r.Frame)
		}
		seen[string(r.Frame)] = true
	}
	st := ts[1].Stats()
	if st.Total.FramesReceived != n || st.Total.Dropped.Duplicate < n {
		t.Fatalf("received %d frames and dropped %d duplicates; want %d and at least %d",
			st.Total.FramesReceived, st.Total.Dropped.Duplicate, n, n)
	}
	for li, c := range ts[0].Stats().Links {
		if c.FramesSent != n {
			t.Fatalf("active mode sent %d frames on link %d, want %d", c.FramesSent, li, n)
		}
	}

	// One link cut: frames still arrive once each.
	ts[1].SetFault(2, Fault{Cut: true})
	waitFor(t, 5*time.Second, "link 2 down", func() bool { return !linkUp(ts[0], 2, 2) })
	ts[0].Send(2, []byte("after-cut"))
	got = collect(ctx, ts[1], 1)
	if len(got) != 1 || string(got[0].Frame) != "after-cut" {
		t.Fatalf("frame lost with one of three links cut: %v", got)
	}
}

func TestWrongKeyRefusedAndLogged(t *testing.T) {
	cfgs := loopbackConfigs(t, "127.0.0.1", 3, 1)
	var logs logBuf
	for i := range cfgs {
		cfgs[i].Logger = logs.logger()
	}
	cfgs[2].Key = bytes.Repeat([]byte{0x99}, KeySize) // node 3 has another key
	ts := startAll(t, cfgs)
	waitFor(t, 5*time.Second, "nodes 1 and 2 link up", func() bool { return linkUp(ts[0], 0, 2) && linkUp(ts[1], 0, 1) })
	ts[2].Send(0, []byte("intruder"))
	ts[0].Send(0, []byte("hello"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	got := collect(ctx, ts[1], 1)
	if len(got) != 1 || string(got[0].Frame) != "hello" {
		t.Fatalf("node 2 got %v, want node 1's hello", got)
	}
	waitFor(t, 3*time.Second, "auth failures counted", func() bool {
		return ts[0].Stats().Total.Dropped.AuthFailed > 0 && ts[2].Stats().Total.Dropped.AuthFailed > 0
	})
	time.Sleep(100 * time.Millisecond)
	if linkUp(ts[0], 0, 3) || linkUp(ts[2], 0, 1) {
		t.Fatal("link to the node with the wrong key came up")
	}
	select {
	case b := <-ts[1].Recv():
		for _, r := range b {
			if r.From == 3 {
				t.Fatal("frame from the node with the wrong key delivered")
			}
		}
	default:
	}
	out := logs.String()
	if !contains(out, "cluster keys probably differ") || !contains(out, "127.0.0.1:") {
		t.Fatalf("log lacks a plain wrong-key warning with the peer address:\n%s", out)
	}
	// Rate-limited: heartbeats arrive every 10 ms, but each address is
	// reported once per AuthLogInterval (10 s).
	if n := bytes.Count([]byte(out), []byte("fail authentication")); n > 4 {
		t.Fatalf("wrong-key warning logged %d times, want it rate-limited", n)
	}
}

func TestKeyRotation(t *testing.T) {
	cfgs := loopbackConfigs(t, "127.0.0.1", 2, 1)
	ts := startAll(t, cfgs)
	waitFor(t, 5*time.Second, "link up", func() bool { return allUp(ts) })
	old, nw := testKey, bytes.Repeat([]byte{0x17}, KeySize)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	exchange := func(step string) {
		t.Helper()
		ts[0].Send(2, []byte(step))
		ts[1].Send(1, []byte(step))
		a, b := collect(ctx, ts[1], 1), collect(ctx, ts[0], 1)
		if len(a) != 1 || len(b) != 1 || string(a[0].Frame) != step || string(b[0].Frame) != step {
			t.Fatalf("%s: frames not exchanged", step)
		}
	}
	// Step 1: accept the new key everywhere (node 2 first, others later).
	ts[1].SetKeys(old, nw)
	exchange("accept-new-on-2")
	ts[0].SetKeys(old, nw)
	// Step 2: send with the new key, one node at a time.
	ts[0].SetKeys(nw, old)
	exchange("mixed")
	ts[1].SetKeys(nw, old)
	exchange("both-new")
	// Step 3: drop the old key.
	ts[0].SetKeys(nw)
	ts[1].SetKeys(nw)
	exchange("old-dropped")
	if af := ts[0].Stats().Total.Dropped.AuthFailed + ts[1].Stats().Total.Dropped.AuthFailed; af != 0 {
		t.Fatalf("%d authentication failures during rotation", af)
	}
	if !linkUp(ts[0], 0, 2) {
		t.Fatal("link went down during rotation")
	}
	if err := ts[0].SetKeys(make([]byte, 5)); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestInsecureAndCryptoMismatch(t *testing.T) {
	cfgs := loopbackConfigs(t, "127.0.0.1", 3, 1)
	for i := range cfgs[:2] {
		cfgs[i].Key, cfgs[i].Insecure = nil, true
	}
	var logs logBuf
	cfgs[2].Logger = logs.logger()
	ts := startAll(t, cfgs)
	if ts[0].MaxFrame() != 1500-28-HeaderSize {
		t.Fatalf("insecure MaxFrame = %d", ts[0].MaxFrame())
	}
	waitFor(t, 5*time.Second, "insecure link up", func() bool { return linkUp(ts[0], 0, 2) })
	ts[0].Send(2, []byte("plain"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if got := collect(ctx, ts[1], 1); len(got) != 1 || string(got[0].Frame) != "plain" {
		t.Fatal("insecure frame not delivered")
	}
	waitFor(t, 3*time.Second, "crypto mismatch counted", func() bool {
		return ts[2].Stats().Total.Dropped.CryptoMismatch > 0 && ts[0].Stats().Total.Dropped.CryptoMismatch > 0
	})
	if !contains(logs.String(), "crypto is on here and off there") {
		t.Fatalf("mismatch not logged plainly:\n%s", logs.String())
	}
}

func TestConfigErrors(t *testing.T) {
	good := loopbackConfigs(t, "127.0.0.1", 2, 1)[0]
	cases := []struct {
		name string
		mut  func(c *Config)
		want string
	}{
		{"no key", func(c *Config) { c.Key = nil }, "no cluster key"},
		{"short key", func(c *Config) { c.Key = []byte("short") }, "want 32"},
		{"key and insecure", func(c *Config) { c.Insecure = true }, "choose one"},
		{"zero id", func(c *Config) { c.NodeID = 0 }, "NodeID"},
		{"self missing", func(c *Config) { c.NodeID = 7 }, "not in Nodes"},
		{"no links", func(c *Config) { c.Links = nil }, "0 links"},
		{"bad mode", func(c *Config) { c.Mode = "both" }, "mode"},
		{"bad transport", func(c *Config) { c.Links = []LinkConfig{{Transport: "tcp"}} }, "transport"},
		{"bad mtu", func(c *Config) { c.Links = []LinkConfig{{MTU: 100}} }, "MTU"},
		{"timeout", func(c *Config) { c.LinkTimeout = c.HeartbeatInterval }, "LinkTimeout"},
		{"dup node", func(c *Config) { c.Nodes = append(c.Nodes, c.Nodes[0]) }, "twice"},
		{"not multicast", func(c *Config) { c.Links = []LinkConfig{{Transport: UDP, McastAddr: "127.0.0.2"}} }, "not a multicast"},
		{"bad addr", func(c *Config) { c.Nodes = []Node{c.Nodes[0], {ID: 2, Addrs: []string{"127.0.0.1:99999"}}} }, "port"},
	}
	for _, tc := range cases {
		c := good
		c.Nodes = append([]Node(nil), good.Nodes...)
		tc.mut(&c)
		tr, err := New(c)
		if err == nil {
			tr.Close()
			t.Errorf("%s: New succeeded", tc.name)
			continue
		}
		if !contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
	}
}

func TestFaultInjection(t *testing.T) {
	cfgs := loopbackConfigs(t, "127.0.0.1", 2, 1)
	cfgs[0].Mode = Active
	ts := startAll(t, cfgs)
	waitFor(t, 5*time.Second, "link up", func() bool { return allUp(ts) })
	if err := ts[0].SetFault(0, Fault{Drop: 2}); err == nil {
		t.Fatal("drop rate 2 accepted")
	}
	if err := ts[0].SetFault(0, Fault{Duplicate: math.NaN()}); err == nil {
		t.Fatal("duplicate rate NaN accepted")
	}
	if err := ts[0].SetFault(5, Fault{}); err == nil {
		t.Fatal("fault on missing link accepted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// Drop half.
	ts[0].SetFault(0, Fault{Drop: 0.5})
	const n = 400
	for i := 0; i < n; i++ {
		ts[0].Send(2, []byte{1})
	}
	time.Sleep(100 * time.Millisecond)
	dropped := ts[0].Links()[0].Dropped.Fault
	if dropped < n/4 || dropped > 3*n/4+50 {
		t.Fatalf("drop rate 0.5 dropped %d of %d (+heartbeats)", dropped, n)
	}

	// Duplicate everything: the receiver delivers once.
	ts[0].SetFault(0, Fault{Duplicate: 1})
	for len(ts[1].Recv()) > 0 {
		<-ts[1].Recv()
	}
	before := ts[1].Stats().Total.Dropped.Duplicate
	ts[0].Send(2, []byte("dup"))
	got := collect(ctx, ts[1], 1)
	waitFor(t, 2*time.Second, "duplicate dropped", func() bool { return ts[1].Stats().Total.Dropped.Duplicate > before })
	if len(got) != 1 {
		t.Fatal("duplicated frame lost")
	}

	// Delay.
	ts[0].SetFault(0, Fault{Delay: 150 * time.Millisecond})
	start := time.Now()
	ts[0].Send(2, []byte("late"))
	for {
		got = collect(ctx, ts[1], 1)
		if len(got) == 0 {
			t.Fatal("delayed frame lost")
		}
		if string(got[len(got)-1].Frame) == "late" {
			break
		}
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("delayed frame arrived after %v", d)
	}
	ts[0].SetFault(0, Fault{})
	if f := ts[0].Links()[0].Fault; f != (Fault{}) {
		t.Fatalf("fault not cleared: %+v", f)
	}
}

func TestPortsInAddressesWin(t *testing.T) {
	cfgs := loopbackConfigs(t, "127.0.0.1", 2, 1)
	for i := range cfgs {
		cfgs[i].Links[0].Port = 1 // default for addresses without a port
	}
	ts := startAll(t, cfgs)
	if got, want := ts[0].Links()[0].Local, cfgs[0].Nodes[0].Addrs[0]; got != want {
		t.Fatalf("bound %s, want the node's own address %s", got, want)
	}
	waitFor(t, 5*time.Second, "link up", func() bool { return allUp(ts) })
}

// TestSlowReaderDoesNotStopLinkMonitoring: a receiver that never drains
// Recv drops (and counts) frames but keeps its links up.
func TestSlowReaderDoesNotStopLinkMonitoring(t *testing.T) {
	cfgs := loopbackConfigs(t, "127.0.0.1", 2, 1)
	cfgs[1].RecvQueue = 1
	ts := startAll(t, cfgs)
	waitFor(t, 5*time.Second, "link up", func() bool { return allUp(ts) })
	for i := 0; i < 20; i++ {
		ts[0].Send(2, []byte{byte(i)})
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, 5*time.Second, "overrun counted", func() bool { return ts[1].Stats().Total.Dropped.Overrun > 0 })
	time.Sleep(2 * cfgs[1].LinkTimeout)
	if !linkUp(ts[1], 0, 1) || !linkUp(ts[0], 0, 2) {
		t.Fatal("link went down because the reader was slow")
	}
	if got := len(<-ts[1].Recv()); got == 0 {
		t.Fatal("queued batch lost")
	}
}

// TestPeerRestart: a node that restarts (new transport, same config) is
// recognised by its higher incarnation and its links come back.
func TestPeerRestart(t *testing.T) {
	cfgs := loopbackConfigs(t, "127.0.0.1", 2, 2)
	var logs logBuf
	cfgs[0].Logger = logs.logger()
	ts := startAll(t, cfgs)
	waitFor(t, 5*time.Second, "links up", func() bool { return allUp(ts) })
	ts[1].Close()
	waitFor(t, 5*time.Second, "links down after the peer stopped", func() bool { return !linkUp(ts[0], 0, 2) && !linkUp(ts[0], 1, 2) })
	again, err := New(cfgs[1])
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	waitFor(t, 5*time.Second, "links up after restart", func() bool { return allUp([]*Transport{ts[0], again}) })
	ts[0].Send(2, []byte("welcome back"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if got := collect(ctx, again, 1); len(got) != 1 || string(got[0].Frame) != "welcome back" {
		t.Fatalf("restarted node got %v", got)
	}
	again.Send(1, []byte("hi"))
	if got := collect(ctx, ts[0], 1); len(got) != 1 || string(got[0].Frame) != "hi" {
		t.Fatalf("frame from restarted node (sequence numbers start again) not delivered: %v", got)
	}
	if !contains(logs.String(), "node 2 restarted") {
		t.Fatalf("restart not logged:\n%s", logs.String())
	}
}

// TestOneWayFailureTakesLinkDownAtBothEnds: node 1's datagrams on link 0
// are all lost while node 2's still arrive. Node 1 hears node 2 but is told
// it is not heard, so both ends mark the link down; traffic both ways uses
// link 1.
func TestOneWayFailureTakesLinkDownAtBothEnds(t *testing.T) {
	cfgs := loopbackConfigs(t, "127.0.0.1", 2, 2)
	ts := startAll(t, cfgs)
	waitFor(t, 5*time.Second, "links up", func() bool { return allUp(ts) })
	ts[0].SetFault(0, Fault{Drop: 1})
	waitFor(t, 5*time.Second, "link 0 down at both ends", func() bool { return !linkUp(ts[0], 0, 2) && !linkUp(ts[1], 0, 1) })
	if heard := peerStatus(ts[0], 0, 2).LastHeard; time.Since(heard) > cfgs[0].LinkTimeout {
		t.Fatalf("node 1 stopped hearing node 2 on link 0 (last %v ago); the fault is one-way", time.Since(heard))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ts[0].Send(2, []byte("a"))
	ts[1].Send(1, []byte("b"))
	if got := collect(ctx, ts[1], 1); len(got) != 1 || got[0].Link != 1 {
		t.Fatalf("node 2 got %v, want a frame on link 1", got)
	}
	if got := collect(ctx, ts[0], 1); len(got) != 1 || got[0].Link != 1 {
		t.Fatalf("node 1 got %v, want a frame on link 1", got)
	}
	ts[0].SetFault(0, Fault{})
	waitFor(t, 5*time.Second, "link 0 back", func() bool { return allUp(ts) })
	a, b := peerStatus(ts[0], 0, 2), peerStatus(ts[1], 0, 1)
	if a.Ups != b.Ups || a.Downs != b.Downs {
		t.Fatalf("histories differ: %+v vs %+v", a, b)
	}
}

// TestPassiveSuspectLinkDoesNotLoseFrames: with a long LinkTimeout, a cut
// link stays "up" for a while, but once it has been quiet for a third of
// the timeout passive mode also sends on the other link, so frames arrive.
func TestPassiveSuspectLinkDoesNotLoseFrames(t *testing.T) {
	cfgs := loopbackConfigs(t, "127.0.0.1", 2, 2)
	for i := range cfgs {
		cfgs[i].HeartbeatInterval = 20 * time.Millisecond
		cfgs[i].LinkTimeout = 1500 * time.Millisecond // suspect after 500 ms
	}
	ts := startAll(t, cfgs)
	waitFor(t, 5*time.Second, "links up", func() bool { return allUp(ts) })
	ts[0].SetFault(0, Fault{Cut: true})
	time.Sleep(650 * time.Millisecond)
	if !linkUp(ts[0], 0, 2) {
		t.Skip("link 0 already down: the box is too slow for this timing test")
	}
	ts[0].Send(2, []byte("a"))
	ts[1].Send(1, []byte("b"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if got := collect(ctx, ts[1], 1); len(got) != 1 || got[0].Link != 1 {
		t.Fatalf("node 2 got %v, want the frame on link 1 while link 0 is suspect", got)
	}
	if got := collect(ctx, ts[0], 1); len(got) != 1 || got[0].Link != 1 {
		t.Fatalf("node 1 got %v, want the frame on link 1 while link 0 is suspect", got)
	}
	if !linkUp(ts[1], 0, 1) {
		t.Log("link 0 went down meanwhile (slow box); frames still arrived on link 1")
	}
}
