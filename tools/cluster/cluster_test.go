package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/totem-gcs/totem/daemon"
	"github.com/totem-gcs/totem/internal/testbin"
)

// The end-to-end tests drive the `cluster` binary as a user would, with
// totemd, totemctl and cpgbench built from this tree. They are bounded by
// generous timeouts (the box may be busy) and skipped when the daemon
// does not build.

const e2eTimeout = 60 * time.Second

// buildAll builds cluster, totemd, totemctl and cpgbench into one
// directory (cluster finds the others next to itself).
func buildAll(t *testing.T) string {
	t.Helper()
	dir, err := testbin.Build("daemon/totemd", "tools/totemctl", "bench/cpgbench", "tools/cluster")
	if err != nil {
		if strings.Contains(err.Error(), "daemon/totemd") {
			t.Skipf("skipped: the daemon does not build: %v", err)
		}
		t.Fatal(err)
	}
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// harness runs cluster commands against one state directory.
type harness struct {
	t   *testing.T
	bin string
	dir string
}

func newHarness(t *testing.T) *harness {
	if testing.Short() {
		t.Skip("skipped in -short mode: runs a real cluster")
	}
	bin := buildAll(t)
	// A short path: Unix socket paths are limited.
	dir, err := os.MkdirTemp("", "tc-")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, bin: bin, dir: filepath.Join(dir, "c")}
	t.Cleanup(func() {
		if t.Failed() {
			for i := 1; i <= 3; i++ {
				b, _ := os.ReadFile(filepath.Join(h.dir, fmt.Sprintf("n%d", i), "totemd.log"))
				if len(b) > 8000 {
					b = b[len(b)-8000:]
				}
				t.Logf("--- node %d log (tail) ---\n%s", i, b)
			}
		}
		h.run("down") // idempotent: the test normally did it already
		os.RemoveAll(dir)
	})
	return h
}

// run runs `cluster --dir DIR args...` and returns its output and error.
func (h *harness) run(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(h.bin, "cluster"), append([]string{"--dir", h.dir}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (h *harness) must(args ...string) string {
	h.t.Helper()
	out, err := h.run(args...)
	if err != nil {
		h.t.Fatalf("cluster %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// statusJSON is the part of `cluster status --json` the tests read.
type statusJSON []struct {
	Node    int  `json:"node"`
	Running bool `json:"running"`
	PID     int  `json:"pid"`
	Status  *struct {
		State   string   `json:"state"`
		Members []uint32 `json:"members"`
	} `json:"status"`
}

func (h *harness) status() statusJSON {
	h.t.Helper()
	cmd := exec.Command(filepath.Join(h.bin, "cluster"), "--dir", h.dir, "status", "--json")
	out, _ := cmd.Output() // exit 2 while a node is down or not operational
	var st statusJSON
	if err := json.Unmarshal(out, &st); err != nil {
		h.t.Fatalf("cluster status --json: %v\n%s", err, out)
	}
	return st
}

// waitMembers waits until every running node in nodes is operational with
// exactly members.
func (h *harness) waitMembers(nodes []int, members ...uint32) {
	h.t.Helper()
	deadline := time.Now().Add(e2eTimeout)
	var last statusJSON
	for {
		last = h.status()
		ok := true
		for _, id := range nodes {
			n := last[id-1]
			if !n.Running || n.Status == nil || n.Status.State != "operational" || !slices.Equal(n.Status.Members, members) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(last)
			h.t.Fatalf("nodes %v did not reach ring %v within %v; last status: %s", nodes, members, e2eTimeout, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freeBasePort(t *testing.T) int {
	// Find 10 consecutive free ports above a random-ish base.
	for base := 20000 + os.Getpid()%20000; base < 60000; base += 113 {
		ok := true
		for i := 1; i <= 3; i++ {
			c, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			c.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free UDP ports")
	return 0
}

// TestLoopbackCluster: up 3 → 3 members; kill one → 2; restart → 3;
// cpgbench runs through `exec`; down leaves nothing behind.
func TestLoopbackCluster(t *testing.T) {
	h := newHarness(t)
	h.must("--loopback", "up", "3", "--token", "500ms", "--base-port", fmt.Sprint(freeBasePort(t)))
	h.waitMembers([]int{1, 2, 3}, 1, 2, 3)
	st := h.status()
	pids := []int{st[0].PID, st[1].PID, st[2].PID}

	// A long-running exec (a listener, a receiver) must not hold up other
	// commands.
	long := exec.Command(filepath.Join(h.bin, "cluster"), "--dir", h.dir, "exec", "1", "sleep", "5")
	if err := long.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	t0 := time.Now()
	h.must("exec", "2", "true")
	h.status()
	if d := time.Since(t0); d > 4*time.Second {
		t.Errorf("exec 2 and status waited %v for a running exec 1", d)
	}
	long.Wait()

	out := h.must("kill", "3")
	if !strings.Contains(out, "node 3: killed") {
		t.Fatalf("kill 3 said: %s", out)
	}
	if st := h.status(); st[2].Running {
		t.Fatalf("node 3 still running after kill: %+v", st[2])
	}
	h.waitMembers([]int{1, 2}, 1, 2)

	h.must("restart", "3")
	h.waitMembers([]int{1, 2, 3}, 1, 2, 3)

	// The benchmark, run as a user would on node 1: every message it
	// sends must come back.
	var bench struct {
		Mode       string `json:"mode"`
		Throughput []struct {
			Size      int     `json:"size"`
			Sent      uint64  `json:"sent"`
			Delivered uint64  `json:"delivered"`
			OwnMsgsS  float64 `json:"own_msgs_s"`
			Lost      uint64  `json:"lost"`
		} `json:"throughput"`
	}
	cmd := exec.Command(filepath.Join(h.bin, "cluster"), "--dir", h.dir, "exec", "1",
		filepath.Join(h.bin, "cpgbench"), "--sizes", "64,4096", "--duration", "1s", "--json", "-q")
	bout, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpgbench via cluster exec: %v\n%s", err, bout)
	}
	if err := json.Unmarshal(bout, &bench); err != nil {
		t.Fatalf("cpgbench --json: %v\n%s", err, bout)
	}
	if bench.Mode != "throughput" || len(bench.Throughput) != 2 {
		t.Fatalf("cpgbench result: %s", bout)
	}
	for _, r := range bench.Throughput {
		if r.Sent == 0 || r.Delivered != r.Sent || r.Lost != 0 || r.OwnMsgsS <= 0 {
			t.Errorf("cpgbench size %d: sent %d delivered %d lost %d rate %.0f", r.Size, r.Sent, r.Delivered, r.Lost, r.OwnMsgsS)
		}
	}

	st = h.status()
	for _, n := range st {
		pids = append(pids, n.PID)
	}
	h.must("down")
	if _, err := os.Stat(h.dir); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(h.dir)
		t.Errorf("down left %s behind: %v", h.dir, entries)
	}
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if bytes.Contains(b, []byte(h.dir)) {
				t.Errorf("totemd pid %d still runs after down", pid)
			}
		}
	}
	if out, _ := h.run("status"); !strings.Contains(out, "no cluster") {
		t.Errorf("status after down: %s", out)
	}
}

// TestNamespaceCluster: two links per node in namespaces; cutting one link
// of a node keeps the ring whole; down removes every namespace, bridge and
// veth it made. Needs root and iproute2.
func TestNamespaceCluster(t *testing.T) {
	if err := checkNetnsPossible(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	h := newHarness(t)
	const prefix = "tct"
	if err := checkNamesFree(prefix, 3, 2); err != nil {
		t.Skipf("skipped: %v", err)
	}
	h.must("up", "3", "--links", "2", "--prefix", prefix, "--token", "500ms")
	h.waitMembers([]int{1, 2, 3}, 1, 2, 3)
	for i := 1; i <= 3; i++ {
		if !nsExists(nsName(prefix, i)) {
			t.Errorf("namespace %s missing", nsName(prefix, i))
		}
	}
	b, err := os.ReadFile("/sys/class/net/" + bridgeName(prefix, 0) + "/bridge/multicast_snooping")
	if err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Errorf("multicast snooping on %s: %q %v", bridgeName(prefix, 0), b, err)
	}
	// The nodes reach each other over both links.
	out := h.must("exec", "2", "ip", "-o", "-4", "addr", "show")
	for _, a := range []string{"198.18.0.2/24", "198.18.1.2/24"} {
		if !strings.Contains(out, a) {
			t.Errorf("node 2 lacks address %s:\n%s", a, out)
		}
	}

	h.must("link", "1", "0", "down")
	// With link 1 still up, the ring must stay whole; give the token
	// timeout several rounds to prove it.
	time.Sleep(3 * time.Second)
	h.waitMembers([]int{1, 2, 3}, 1, 2, 3)
	h.must("link", "1", "0", "up")

	h.must("down")
	for i := 1; i <= 3; i++ {
		if nsExists(nsName(prefix, i)) {
			t.Errorf("namespace %s left behind", nsName(prefix, i))
		}
		for l := 0; l < 2; l++ {
			if linkExists(vethName(prefix, i, l)) {
				t.Errorf("veth %s left behind", vethName(prefix, i, l))
			}
		}
	}
	for l := 0; l < 2; l++ {
		if linkExists(bridgeName(prefix, l)) {
			t.Errorf("bridge %s left behind", bridgeName(prefix, l))
		}
	}
}

// TestNodeConfigLoads: the configs `up` writes are accepted by totemd's
// config loader as written, in both modes.
func TestNodeConfigLoads(t *testing.T) {
	for _, mode := range []string{modeNetns, modeLoopback} {
		s := &State{Mode: mode, Nodes: 3, Links: 2, Prefix: "tc", Profile: "fast", LinkMode: "active", TokenMS: 300,
			BasePort: 15400, Key: "/tmp/x/authkey"}
		for i := 1; i <= 3; i++ {
			n := NodeInfo{ID: i, Dir: fmt.Sprintf("/tmp/x \"q\"/n%d", i), Socket: fmt.Sprintf("/tmp/x/n%d/totemd.sock", i)}
			for l := 0; l < 2; l++ {
				if mode == modeLoopback {
					n.Addrs = append(n.Addrs, fmt.Sprintf("127.0.0.1:%d", loopbackPort(15400, l, i)))
				} else {
					n.Addrs = append(n.Addrs, netnsAddr(l, i))
				}
			}
			s.NodeInfo = append(s.NodeInfo, n)
		}
		text := nodeConfig(s, &s.NodeInfo[1])
		cfg, _, probs := daemon.LoadConfig([]byte(text))
		if len(probs) > 0 {
			t.Fatalf("%s: problems %v in\n%s", mode, probs, text)
		}
		if cfg.NodeID != 2 || len(cfg.Nodes) != 3 || cfg.Totem.Profile != "fast" || cfg.LinkMode != "active" ||
			cfg.IPC.Socket != "/tmp/x/n2/totemd.sock" || cfg.StateDir != "/tmp/x \"q\"/n2/state" || cfg.Totem.Token.D() != 300*time.Millisecond {
			t.Fatalf("%s: config read back wrong: %+v", mode, cfg)
		}
		if len(cfg.Links) != 2 {
			t.Fatalf("%s: %d links, want 2", mode, len(cfg.Links))
		}
		if got := cfg.Nodes[2].Addrs; !slices.Equal(got, s.NodeInfo[2].Addrs) {
			t.Fatalf("%s: node 3 addrs %v, want %v", mode, got, s.NodeInfo[2].Addrs)
		}
	}
}

// TestNames: every interface name fits Linux's 15 bytes at the limits,
// and addresses stay inside 198.18.0.0/15.
func TestNames(t *testing.T) {
	for _, n := range []string{vethPeerName("abcdef", 253, 7), bridgeName("abcdef", 7), nsName("abcdef", 253)} {
		if len(n) > 15 {
			t.Errorf("%q is longer than 15 bytes", n)
		}
	}
	_, bench, _ := net.ParseCIDR("198.18.0.0/15")
	for _, a := range []string{netnsAddr(0, 1), netnsAddr(7, 253)} {
		if !bench.Contains(net.ParseIP(a)) {
			t.Errorf("%s is outside 198.18.0.0/15", a)
		}
	}
	if prefixRE.MatchString("Tc") || prefixRE.MatchString("abcdefg") || !prefixRE.MatchString("tc") {
		t.Error("prefix check accepts or rejects the wrong names")
	}
}

// TestUsageErrors: bad input is refused with a message, and nothing is made.
func TestUsageErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	for _, args := range [][]string{
		{"up"},
		{"up", "0", "--loopback"},
		{"up", "3", "--loopback", "--links", "9"},
		{"up", "3", "--loopback", "--profile", "slow"},
		{"up", "3", "--loopback", "--prefix", "Bad!"},
		{"frobnicate"},
		{"status"},
		{"exec", "1"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"--dir", dir}, args...), &out, &errb)
		if code == 0 || errb.Len() == 0 {
			t.Errorf("cluster %v: exit %d, stderr %q", args, code, errb.String())
		}
		if _, err := os.Stat(dir); err == nil {
			t.Fatalf("cluster %v made %s", args, dir)
		}
	}
}
