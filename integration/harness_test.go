package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/totem-gcs/totem/internal/testbin"
)

// Generous bounds: the test box has two shared, often busy cores.
const (
	cmdTimeout    = 60 * time.Second // one cluster or totemctl command
	ringTimeout   = 60 * time.Second // a ring of the expected members forms
	linkTimeout   = 20 * time.Second // a link state change is seen on both ends
	stableFor     = 3 * time.Second  // no membership change for this long = settled
	sendCount     = 200              // messages per cpg send batch
	sendCtlTimout = "30s"            // totemctl --timeout for sends (waits for progress)
)

// needNetns skips the test unless it can make network namespaces.
func needNetns(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping: integration tests with network namespaces do not run in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: network namespace tests need root (run go test as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: the ip tool (iproute2) is not installed: apt-get install iproute2")
	}
}

// binaries returns the directory with totemd, totemctl and cluster, built
// from this module once per test binary.
func binaries(t *testing.T) string {
	t.Helper()
	dir, err := testbin.Build("daemon/totemd", "tools/totemctl", "tools/cluster")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// clusterOpts are the options of a test cluster.
type clusterOpts struct {
	linkMode string // "passive" or "active"
	profile  string // "default" or "fast"
	noStart  bool   // make it but start no daemon
}

// node is what the test knows of one node of the cluster.
type node struct {
	ID        int    `json:"node"`
	Namespace string `json:"namespace"`
	Socket    string `json:"socket"`
	Log       string `json:"log"`
}

// testCluster is a 3-node, 2-link cluster made by the cluster tool, in
// namespaces and bridges whose names start with a prefix unique to it.
type testCluster struct {
	t      *testing.T
	bin    string
	dir    string
	prefix string
	nodes  []node // index 0 is node 1
}

const nodeCount, linkCount = 3, 2

// newCluster makes the cluster (and starts it unless opts.noStart). It is
// torn down when the test ends, also on failure; on failure the end of
// every node's log is logged first.
func newCluster(t *testing.T, opts clusterOpts) *testCluster {
	t.Helper()
	needNetns(t)
	bin := binaries(t)
	// A short state directory: Unix socket paths are limited to ~100 bytes.
	dir, err := os.MkdirTemp("", "itg")
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, bin: bin, dir: dir, prefix: randomPrefix()}
	t.Cleanup(func() { c.teardown() })
	args := []string{"up", fmt.Sprint(nodeCount), "--links", fmt.Sprint(linkCount), "--prefix", c.prefix,
		"--link-mode", opts.linkMode, "--profile", opts.profile}
	if opts.noStart {
		args = append(args, "--no-start")
	}
	start := time.Now()
	c.cluster(args...)
	t.Logf("cluster up (prefix %s, %s links, profile %s) in %v", c.prefix, opts.linkMode, opts.profile, time.Since(start).Round(time.Millisecond))
	out, _ := c.clusterCode("status", "--json") // exit 2 while a node is not operational
	var ns []node
	if err := json.Unmarshal([]byte(out), &ns); err != nil || len(ns) != nodeCount {
		t.Fatalf("cluster status --json: %v (%d nodes)\n%s", err, len(ns), out)
	}
	c.nodes = ns
	return c
}

// randomPrefix is a name prefix for namespaces, bridges and veths that no
// other run uses: "itg" and three random letters or digits.
func randomPrefix() string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := []byte("itg")
	for range 3 {
		b = append(b, chars[rand.IntN(len(chars))])
	}
	return string(b)
}

// teardown logs the nodes' logs when the test failed, then removes
// everything with `cluster down`; if that fails it kills and deletes what
// carries the prefix by hand.
func (c *testCluster) teardown() {
	t := c.t
	if t.Failed() {
		for _, n := range c.nodes {
			t.Logf("--- end of node %d's log (%s) ---\n%s", n.ID, n.Log, tail(n.Log, 40))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "cluster"), "--dir", c.dir, "down")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("cluster down: %v\n%s", err, out)
		c.forceCleanup()
	}
	os.RemoveAll(c.dir)
}

// forceCleanup kills every recorded daemon and deletes the namespaces and
// bridges of this cluster's prefix.
func (c *testCluster) forceCleanup() {
	for i := 1; i <= nodeCount; i++ {
		b, err := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("n%d", i), "totemd.pid"))
		if err != nil {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	time.Sleep(200 * time.Millisecond)
	for i := 1; i <= nodeCount; i++ {
		exec.Command("ip", "netns", "del", fmt.Sprintf("%s%d", c.prefix, i)).Run()
	}
	for l := 0; l < linkCount; l++ {
		exec.Command("ip", "link", "del", fmt.Sprintf("%sbr%d", c.prefix, l)).Run()
	}
}

// cluster runs the cluster tool on this cluster and fails the test unless
// it succeeds.
func (c *testCluster) cluster(args ...string) string {
	c.t.Helper()
	out, err := c.clusterCode(args...)
	if err != nil {
		c.t.Fatalf("cluster %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// clusterCode runs the cluster tool and returns its standard output and
// error (with standard error in it).
func (c *testCluster) clusterCode(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	return run(ctx, filepath.Join(c.bin, "cluster"), append([]string{"--dir", c.dir}, args...)...)
}

// run runs a command and returns its standard output; a failure's error
// includes standard error.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: gave up after %v", filepath.Base(name), strings.Join(args, " "), cmdTimeout)
	}
	if err != nil {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(se.String()))
	}
	return so.String(), err
}

// ctl runs totemctl against node id's daemon and returns its output.
func (c *testCluster) ctl(id int, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	return run(ctx, filepath.Join(c.bin, "totemctl"), append([]string{"--socket", c.nodes[id-1].Socket, "--timeout", "20s"}, args...)...)
}

// status is `totemctl status --json`.
type status struct {
	NodeID  uint32   `json:"nodeid"`
	State   string   `json:"state"`
	RingID  string   `json:"ring_id"`
	Members []uint32 `json:"members"`
}

// linkState is one entry of `totemctl links --json`.
type linkState struct {
	NodeID   uint32            `json:"nodeid"`
	Link     int               `json:"link"`
	State    string            `json:"state"`
	Counters map[string]uint64 `json:"counters"`
}

// status returns node id's status (also when it is not operational).
func (c *testCluster) status(id int) (status, error) {
	out, err := c.ctl(id, "status", "--json")
	var st status
	if jerr := json.Unmarshal([]byte(out), &st); jerr != nil {
		if err == nil {
			err = jerr
		}
		return st, fmt.Errorf("node %d: totemctl status: %v", id, err)
	}
	return st, nil
}

// stats returns node id's counters; it fails the test on error.
func (c *testCluster) stats(id int) map[string]uint64 {
	c.t.Helper()
	out, err := c.ctl(id, "stats", "--json")
	if err != nil {
		c.t.Fatalf("node %d: totemctl stats: %v", id, err)
	}
	var m map[string]uint64
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		c.t.Fatalf("node %d: totemctl stats --json: %v\n%s", id, err, out)
	}
	return m
}

// links returns node id's view of every link; it fails the test on error.
func (c *testCluster) links(id int) []linkState {
	c.t.Helper()
	out, err := c.ctl(id, "links", "--json")
	if err != nil {
		c.t.Fatalf("node %d: totemctl links: %v", id, err)
	}
	var ls []linkState
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		c.t.Fatalf("node %d: totemctl links --json: %v\n%s", id, err, out)
	}
	return ls
}

// linkTo returns the state of node from's link l towards node to.
func (c *testCluster) linkTo(from, l, to int) string {
	c.t.Helper()
	for _, ls := range c.links(from) {
		if ls.Link == l && int(ls.NodeID) == to {
			return ls.State
		}
	}
	c.t.Fatalf("node %d: totemctl links shows no link %d to node %d", from, l, to)
	return ""
}

// ringView is what every node of a group says about its ring.
type ringView struct {
	ringID  string
	members []uint32
	changes map[int]uint64 // srp.membership_changes per node
}

func (v ringView) String() string {
	return fmt.Sprintf("ring %s members %v membership_changes %v", v.ringID, v.members, v.changes)
}

// viewOf returns the common ring of nodes ids, or an error saying how
// they disagree or that one is not operational.
func (c *testCluster) viewOf(ids []int) (ringView, error) {
	v := ringView{changes: map[int]uint64{}}
	var states []string
	agree := true
	for i, id := range ids {
		st, err := c.status(id)
		if err != nil {
			return v, err
		}
		states = append(states, fmt.Sprintf("node %d: %s ring %s members %v", id, st.State, st.RingID, st.Members))
		if st.State != "operational" {
			agree = false
		}
		if i == 0 {
			v.ringID, v.members = st.RingID, st.Members
		} else if st.RingID != v.ringID || !slices.Equal(st.Members, v.members) {
			agree = false
		}
	}
	if !agree {
		return v, fmt.Errorf("nodes disagree or are not operational: %s", strings.Join(states, "; "))
	}
	for _, id := range ids {
		v.changes[id] = c.stats(id)["srp.membership_changes"]
	}
	return v, nil
}

// waitStableRing waits until nodes ids all sit in one operational ring of
// exactly members, unchanged (same ring id, same membership change
// counters) for stableFor; it returns that ring.
func (c *testCluster) waitStableRing(ids []int, members []uint32) ringView {
	c.t.Helper()
	deadline := time.Now().Add(ringTimeout)
	start := time.Now()
	var last ringView
	var lastErr error
	var since time.Time
	for time.Now().Before(deadline) {
		v, err := c.viewOf(ids)
		switch {
		case err != nil:
			lastErr, since = err, time.Time{}
		case !slices.Equal(v.members, members):
			lastErr, since = fmt.Errorf("members %v, want %v", v.members, members), time.Time{}
		case since.IsZero() || v.ringID != last.ringID || !mapsEqual(v.changes, last.changes):
			since, lastErr = time.Now(), nil
		case time.Since(since) >= stableFor:
			c.t.Logf("nodes %v: stable %v after %v", ids, v, time.Since(start).Round(time.Millisecond))
			return v
		}
		last = v
		time.Sleep(250 * time.Millisecond)
	}
	c.t.Fatalf("nodes %v: no stable ring of %v within %v; last: %v (%v)", ids, members, ringTimeout, last, lastErr)
	return last
}

func mapsEqual(a, b map[int]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// checkSameRing fails the test if nodes ids left ring want or counted a
// membership change since.
func (c *testCluster) checkSameRing(ids []int, want ringView, when string) {
	c.t.Helper()
	got, err := c.viewOf(ids)
	if err != nil {
		c.t.Fatalf("%s: %v (before: %v)", when, err, want)
	}
	if got.ringID != want.ringID || !slices.Equal(got.members, want.members) || !mapsEqual(got.changes, want.changes) {
		c.t.Fatalf("%s: the ring changed:\n  before: %v\n  now:    %v", when, want, got)
	}
}

// send runs `totemctl cpg send GROUP --count sendCount` as if on node id
// (through `cluster exec`), and fails the test unless every message is
// delivered back.
func (c *testCluster) send(id int, group string) time.Duration {
	c.t.Helper()
	start := time.Now()
	out, err := c.clusterCode("exec", fmt.Sprint(id), filepath.Join(c.bin, "totemctl"), "--timeout", sendCtlTimout,
		"cpg", "send", group, "--count", fmt.Sprint(sendCount), "--size", "200")
	if err != nil {
		c.t.Fatalf("node %d: cpg send of %d messages failed: %v\n%s", id, sendCount, err, out)
	}
	if !strings.Contains(out, "all delivered") {
		c.t.Fatalf("node %d: cpg send did not report every message delivered:\n%s", id, out)
	}
	return time.Since(start)
}

// veth is the host-side veth of node id's link l (the cluster tool's
// naming: PREFIX<node>l<link>).
func (c *testCluster) veth(id, l int) string { return fmt.Sprintf("%s%dl%d", c.prefix, id, l) }

// setVeth brings node id's link l down or up at the host end of its veth
// pair: the carrier drops on both ends, so no traffic passes either way.
func (c *testCluster) setVeth(id, l int, up bool) {
	c.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if _, err := run(ctx, "ip", "link", "set", c.veth(id, l), state); err != nil {
		c.t.Fatalf("ip link set %s %s: %v", c.veth(id, l), state, err)
	}
}

// waitFor polls cond until it returns "" (true) or the timeout passes;
// then it fails the test with cond's last explanation.
func (c *testCluster) waitFor(what string, timeout time.Duration, cond func() string) time.Duration {
	c.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		why := cond()
		if why == "" {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not within %v: %s", what, timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tail returns the last lines of a file.
func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
