package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/totem-gcs/totem/client"
	"github.com/totem-gcs/totem/rrp"
)

// inProcess is a cluster of daemons running in the test process.
type inProcess struct {
	sockets []string
	stops   []context.CancelFunc
	dones   []chan error
}

// startInProcess starts n daemons on 127.0.0.1 in this process; tune may
// change each node's config.
func startInProcess(t *testing.T, n int, tune func(*Config)) *inProcess {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "authkey")
	if err := rrp.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	ports := freeUDPPorts(t, n)
	c := &inProcess{}
	for id := 1; id <= n; id++ {
		cfg := DefaultConfig()
		cfg.NodeID = uint32(id)
		cfg.KeyFile = key
		cfg.StateDir = filepath.Join(dir, fmt.Sprint(id))
		cfg.IPC.Socket = filepath.Join(dir, fmt.Sprint(id), "sock")
		for j, p := range ports {
			cfg.Nodes = append(cfg.Nodes, NodeOption{NodeID: uint32(j + 1), Addrs: []string{fmt.Sprintf("127.0.0.1:%d", p)}})
		}
		if tune != nil {
			tune(&cfg)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		if testing.Verbose() {
			log = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
		d, err := Start(cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		c.sockets = append(c.sockets, cfg.IPC.Socket)
		c.stops = append(c.stops, stop)
		c.dones = append(c.dones, done)
	}
	t.Cleanup(func() {
		for i := range c.stops {
			c.stop(t, i+1)
		}
	})
	return c
}

// stop stops node id as SIGTERM does, and waits for it.
func (c *inProcess) stop(t *testing.T, id int) {
	if c.stops[id-1] == nil {
		return
	}
	c.stops[id-1]()
	c.stops[id-1] = nil
	select {
	case err := <-c.dones[id-1]:
		if err != nil {
			t.Errorf("node %d stopped with %v", id, err)
		}
	case <-time.After(clusterTimeout):
		t.Errorf("node %d did not stop", id)
	}
}

func (c *inProcess) connect(t *testing.T, ctx context.Context, id int) *client.Handle {
	t.Helper()
	h, err := client.Connect(ctx, client.Options{Socket: c.sockets[id-1]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func waitMembers(t *testing.T, ctx context.Context, h *client.Handle, members ...uint32) {
	t.Helper()
	for {
		st, err := h.Status(ctx)
		if err == nil && st.State == "operational" && slices.Equal(st.Members, members) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("node %d did not reach ring %v: %+v %v", h.NodeID(), members, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestInProcess runs two daemons in the test process (Start and Run, as
// totemd does) and passes a message between their clients.
func TestInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	c := startInProcess(t, 2, func(cfg *Config) { cfg.Totem.Profile = "fast" })
	sendAcross(t, ctx, c, "across", client.Safe)
}

// sendAcross joins a member of group g on nodes 1 and 2, waits until node
// 2's member sees both, sends data from node 1 and waits for it at node 2.
func sendAcross(t *testing.T, ctx context.Context, c *inProcess, data string, g client.Guarantee) {
	t.Helper()
	var hs []*client.Handle
	for id := 1; id <= 2; id++ {
		h := c.connect(t, ctx, id)
		if err := h.Join(ctx, "g"); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	e := collect(hs[1])
	e.waitFor(t, ctx, "a view of 2", 0, viewIs("g", 2))
	if err := hs[0].Send(ctx, "g", []byte(data), g); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, ctx, "the message from node 1", 0, func(ev client.Event) bool {
		m, ok := ev.(*client.Message)
		return ok && string(m.Data) == data && m.NodeID == 1 && m.Guarantee == g
	})
}

// TestGracefulLeave checks that a daemon stopped as by SIGTERM leaves the
// ring: the others form a new ring without a token loss. The token timeout
// is long (2 s) so that no token is lost by accident on a busy box.
func TestGracefulLeave(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	c := startInProcess(t, 3, func(cfg *Config) { cfg.Totem.Token = Duration(2 * time.Second) })
	h1, h2 := c.connect(t, ctx, 1), c.connect(t, ctx, 2)
	rings, err := client.Connect(ctx, client.Options{Socket: c.sockets[0], RingChanges: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rings.Close()
	ringEvents := collect(rings)
	waitMembers(t, ctx, h1, 1, 2, 3)
	waitMembers(t, ctx, h2, 1, 2, 3)
	lost := func(h *client.Handle) uint64 {
		st, err := h.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st["srp.operational_token_lost"]
	}
	before1, before2 := lost(h1), lost(h2)
	c.stop(t, 3)
	waitMembers(t, ctx, h1, 1, 2)
	waitMembers(t, ctx, h2, 1, 2)
	if a, b := lost(h1), lost(h2); a != before1 || b != before2 {
		t.Fatalf("the survivors lost the token (node 1: %d -> %d, node 2: %d -> %d): the leave was not seen", before1, a, before2, b)
	}
	// A handle that asked for ring changes saw the new ring.
	ringEvents.waitFor(t, ctx, "a ring change to {1 2}", 0, func(ev client.Event) bool {
		rc, ok := ev.(*client.RingChange)
		return ok && slices.Equal(rc.Members, []client.NodeID{1, 2}) && rc.Ring.Seq > 0
	})
}

// TestCryptoOff runs two daemons with crypto off (no key file at all) and
// checks that they form a ring and carry a message.
func TestCryptoOff(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	c := startInProcess(t, 2, func(cfg *Config) {
		cfg.Totem.Profile = "fast"
		cfg.Crypto = "off"
		cfg.KeyFile = "/nonexistent/authkey"
	})
	sendAcross(t, ctx, c, "clear", client.Agreed)
}

func TestCheckCrypto(t *testing.T) {
	for _, c := range []struct {
		crypto, keyfile string
		problem         string
	}{
		{"on", "", "keyfile"},
		{"off", "", ""},
		{"maybe", "/k", "crypto"},
	} {
		cfg := DefaultConfig()
		cfg.NodeID = 1
		cfg.Nodes = []NodeOption{{NodeID: 1, Addrs: []string{"127.0.0.1:5405"}}}
		cfg.Crypto, cfg.KeyFile = c.crypto, c.keyfile
		var keys []string
		for _, p := range CheckConfig(&cfg, nil, nil) {
			keys = append(keys, p.Key)
		}
		if (c.problem == "") != (len(keys) == 0) || (c.problem != "" && !slices.Contains(keys, c.problem)) {
			t.Errorf("crypto %q keyfile %q: problems %v, want %q", c.crypto, c.keyfile, keys, c.problem)
		}
	}
}

func TestCheckOffload(t *testing.T) {
	for _, c := range []struct {
		offload string
		bad     bool
	}{{"on", false}, {"off", false}, {"yes", true}} {
		cfg := DefaultConfig()
		cfg.NodeID = 1
		cfg.KeyFile = "/k"
		cfg.Nodes = []NodeOption{{NodeID: 1, Addrs: []string{"127.0.0.1:5405"}}}
		cfg.Offload = c.offload
		bad := slices.ContainsFunc(CheckConfig(&cfg, nil, nil), func(p Problem) bool { return p.Key == "offload" })
		if bad != c.bad {
			t.Errorf("offload %q: reported %v, want %v", c.offload, bad, c.bad)
		}
	}
}
