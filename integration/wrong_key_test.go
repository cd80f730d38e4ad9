package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/totem-gcs/totem/rrp"
)

// TestWrongKey starts nodes 1 and 2 with the cluster key and node 3 with
// another key: 1 and 2 form a ring of their own that stays stable while
// node 3 runs, node 3 stays alone, the others count its packets as failed
// authentication and say in their logs, in plain words, that the keys
// probably differ.
func TestWrongKey(t *testing.T) {
	c := newCluster(t, clusterOpts{linkMode: "passive", profile: "default", noStart: true})

	// Give node 3 a key of its own. The cluster tool writes one shared key
	// into every config; node 3's config is edited to name another one.
	otherKey := filepath.Join(c.dir, "other.key")
	if err := rrp.GenerateKey(otherKey); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(filepath.Dir(c.nodes[2].Socket), "totemd.toml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatalf("node 3's config (the cluster tool's layout changed?): %v", err)
	}
	keyLine := regexp.MustCompile(`(?m)^keyfile = .*$`)
	if !keyLine.Match(b) {
		t.Fatalf("node 3's config %s has no keyfile line:\n%s", cfg, b)
	}
	b = keyLine.ReplaceAll(b, []byte("keyfile = "+strconv.Quote(otherKey)))
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c.cluster("start")

	pair := c.waitStableRing([]int{1, 2}, []uint32{1, 2})
	alone := c.waitStableRing([]int{3}, []uint32{3})
	// Node 3 keeps knocking; the pair's ring must not notice.
	time.Sleep(5 * time.Second)
	c.checkSameRing([]int{1, 2}, pair, "5 s more with node 3 running its other key")
	c.checkSameRing([]int{3}, alone, "node 3 after 5 s more")

	for _, id := range []int{1, 2} {
		if n := c.stats(id)["net.dropped.auth_failed"]; n == 0 {
			t.Errorf("node %d counts no packet that failed authentication (net.dropped.auth_failed = 0) while node 3 sends with another key", id)
		}
	}
	if n := c.stats(3)["net.dropped.auth_failed"]; n == 0 {
		t.Errorf("node 3 counts no packet that failed authentication while the others send with another key")
	}

	// The log says what is wrong, in words an operator understands.
	node3Addr := regexp.MustCompile(`198\.18\.[01]\.3\b`)
	var said []string
	for _, id := range []int{1, 2} {
		log, err := os.ReadFile(c.nodes[id-1].Log)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, "fail authentication") && strings.Contains(line, "keys probably differ") &&
				node3Addr.MatchString(line) {
				said = append(said, line)
			}
		}
	}
	if len(said) == 0 {
		t.Errorf("neither node 1's nor node 2's log says that a peer's packets fail authentication and the keys probably differ")
	} else {
		t.Logf("the log says: %s", said[0])
	}
}
