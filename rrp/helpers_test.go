package rrp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// testKey is a fixed cluster key for tests.
var testKey = bytes.Repeat([]byte{0x42}, KeySize)

// logBuf collects log output for assertions.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// freePorts returns n distinct UDP ports free on host right now.
func freePorts(t testing.TB, host string, n int) []int {
	t.Helper()
	var conns []*net.UDPConn
	var ports []int
	for i := 0; i < n; i++ {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(host)})
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		conns = append(conns, c)
		ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
	}
	for _, c := range conns {
		c.Close()
	}
	return ports
}

// loopbackConfigs returns configs for n nodes with the given number of
// udpu links on host (127.0.0.1 or ::1), each node and link on its own
// port.
func loopbackConfigs(t testing.TB, host string, n, links int) []Config {
	t.Helper()
	ports := freePorts(t, host, n*links)
	var nodes []Node
	for i := 0; i < n; i++ {
		nd := Node{ID: NodeID(i + 1)}
		for l := 0; l < links; l++ {
			nd.Addrs = append(nd.Addrs, net.JoinHostPort(host, fmt.Sprint(ports[i*links+l])))
		}
		nodes = append(nodes, nd)
	}
	var cfgs []Config
	for i := 0; i < n; i++ {
		c := Config{
			NodeID:            NodeID(i + 1),
			Nodes:             nodes,
			Mode:              Passive,
			Key:               testKey,
			HeartbeatInterval: 25 * time.Millisecond,
			LinkTimeout:       500 * time.Millisecond,
			Logger:            slog.New(slog.DiscardHandler),
		}
		for l := 0; l < links; l++ {
			c.Links = append(c.Links, LinkConfig{Transport: UDPU})
		}
		cfgs = append(cfgs, c)
	}
	return cfgs
}

// startAll starts a transport per config and closes them at cleanup.
func startAll(t testing.TB, cfgs []Config) []*Transport {
	t.Helper()
	var ts []*Transport
	for _, c := range cfgs {
		tr, err := New(c)
		if err != nil {
			for _, o := range ts {
				o.Close()
			}
			t.Fatalf("New(node %d): %v", c.NodeID, err)
		}
		ts = append(ts, tr)
	}
	t.Cleanup(func() {
		for _, tr := range ts {
			tr.Close()
		}
	})
	return ts
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// linkUp reports whether tr sees link li up towards node.
func linkUp(tr *Transport, li int, node NodeID) bool {
	for _, p := range tr.Links()[li].Peers {
		if p.Node == node {
			return p.Up
		}
	}
	return false
}

// allUp reports whether every link of every transport is up to every peer.
func allUp(ts []*Transport) bool {
	for _, tr := range ts {
		for _, ls := range tr.Links() {
			if !ls.Up {
				return false
			}
		}
	}
	return true
}

// collect reads frames from tr until want frames arrived or ctx ends.
func collect(ctx context.Context, tr *Transport, want int) []Received {
	var got []Received
	for len(got) < want {
		select {
		case b, ok := <-tr.Recv():
			if !ok {
				return got
			}
			got = append(got, b...)
		case <-ctx.Done():
			return got
		}
	}
	return got
}

// drain discards frames from tr until stop is closed.
func drain(tr *Transport, stop <-chan struct{}) {
	for {
		select {
		case _, ok := <-tr.Recv():
			if !ok {
				return
			}
		case <-stop:
			return
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

var discardLogger = slog.New(slog.DiscardHandler)

// peerStatus returns tr's status of link li towards node.
func peerStatus(tr *Transport, li int, node NodeID) PeerLinkStatus {
	for _, p := range tr.Links()[li].Peers {
		if p.Node == node {
			return p
		}
	}
	return PeerLinkStatus{}
}
