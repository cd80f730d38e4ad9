package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/totem-gcs/totem/internal/testbin"
)

func TestMain(m *testing.M) {
	// The slow-client scenario runs this binary again as its slow client.
	if isSlowChild() {
		os.Exit(slowChildMain())
	}
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

func TestParseHeapOfThisProcess(t *testing.T) {
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	h, err := parseHeap(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if h.HeapAlloc == 0 || h.HeapInuse == 0 || h.HeapInuse > h.HeapSys {
		t.Fatalf("implausible heap figures %+v", h)
	}
	if _, err := parseHeap([]byte("heap profile: 0: 0 [0: 0] @ heap/1048576\n")); err == nil {
		t.Fatal("a profile without MemStats parsed")
	}
}

func TestReadProcMemOfThisProcess(t *testing.T) {
	m, err := readProcMem(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS == 0 || m.HWM < m.RSS {
		t.Fatalf("implausible VmHWM %d, VmRSS %d", m.HWM, m.RSS)
	}
}

func TestFindDisconnect(t *testing.T) {
	log := filepath.Join(t.TempDir(), "totemd.log")
	os.WriteFile(log, []byte(`{"time":"2026-11-23T16:00:00.5Z","level":"INFO","msg":"ipc: client disconnected","conn":4,"pid":9,"reason":"other"}
not json
{"time":"2026-11-23T16:00:01.25Z","level":"INFO","msg":"ipc: client disconnected","conn":7,"pid":9,"reason":"client stopped reading: 3 messages"}
`), 0o644)
	reason, at, ok := findDisconnect(log, 7)
	if !ok || reason != "client stopped reading: 3 messages" || at.Format(time.RFC3339Nano) != "2026-11-23T16:00:01.25Z" {
		t.Fatalf("got %q %v %v", reason, at, ok)
	}
	if _, _, ok := findDisconnect(log, 5); ok {
		t.Fatal("found a connection that is not in the log")
	}
}

// Limits the test gives the daemons, small so that the short run reaches
// them: a client may have testIPCQueue bytes waiting before it is
// disconnected, and each node may queue testRingQueue bytes for the ring.
// testIPCQueue holds several largest messages: with room for only one, a
// client that reads at full speed is disconnected as soon as the next
// message arrives before it has read the last (seen with 2 MiB).
const (
	testIPCQueue  = 8 << 20
	testRingQueue = 2 << 20
	testMaxMsg    = 1 << 20 // the daemon's default largest message
	testNodes     = 3
	// testConns is the most clients on one node during a load: in big
	// and slow-client one sender per node plus, on node 1, the slow
	// client (the status and stats handles come before and after).
	testConns = 2
)

// loadBound is the most that load may add to a daemon's peak resident set
// above its idle peak under the test's limits. The live data a load can
// pin in a daemon is at most:
//
//   - its own send queue for the ring: max_queue_bytes;
//   - the messages in flight on the ring, which it holds until they are
//     delivered and stable: at most what every node had queued,
//     nodes x max_queue_bytes;
//   - per client, the frames waiting for it: ipc queue_bytes in the queue
//     plus up to as much again in the batch its writer is writing
//     (ipcserver.go takes the whole queue into one writev);
//   - per client, the request being read and one waiting for the event
//     loop: 2 x the largest message (memload's clients have one request in
//     flight at a time; a client that pipelines could have more waiting in
//     the loop's input channel, see RESULTS.md).
//
// The Go collector (GOGC=100) lets the heap grow to twice the live data
// before it collects, and the runtime, goroutine stacks and fragmentation
// take some more: we allow 24 MiB for that.
func loadBound() uint64 {
	live := testRingQueue + testNodes*testRingQueue + testConns*(2*testIPCQueue+2*testMaxMsg)
	return uint64(2*live + 24<<20)
}

// leakSlack is how much more live heap a daemon may hold after a
// scenario's clients have gone than when it was idle: a few buffers and
// maps that grew, not the scenario's messages (the big scenario alone
// sends far more than this).
const leakSlack = 6 << 20

func TestMemoryStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node totemd cluster and loads it: skipped in -short mode")
	}
	dir, err := testbin.Build("daemon/totemd")
	if err != nil {
		t.Fatal(err)
	}
	o := options{
		totemd: filepath.Join(dir, "totemd"), profile: "default",
		ipcQueueBytes: testIPCQueue, maxQueueBytes: testRingQueue,
		scenarios:    allScenarios,
		baselineTime: 500 * time.Millisecond,
		groups:       1000, groupHandles: 2, groupMembers: 3, groupMsgs: 1, groupSize: 256,
		bigSize: testMaxMsg, bigTime: 3 * time.Second, bigCount: 30,
		slowSize: 256 << 10, slowTime: 15 * time.Second, slowClients: 1, slowAfter: 300 * time.Millisecond,
		drain: 30 * time.Second, settle: 300 * time.Millisecond, sample: 200 * time.Millisecond,
		startTimeout: 60 * time.Second, dir: t.TempDir(), repeat: 1,
	}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log bytes.Buffer
	results, err := run(ctx, o, &log)
	var table bytes.Buffer
	writeTable(&table, results)
	t.Logf("progress:\n%s\nresults:\n%s", log.String(), table.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(allScenarios) {
		t.Fatalf("%d results for %d scenarios", len(results), len(allScenarios))
	}
	base := results[0]
	bound := loadBound()
	t.Logf("load bound: %.1f MiB above the idle peak", float64(bound)/(1<<20))
	for _, r := range results {
		// A message the cluster reports undelivered (after a configuration
		// change, not expected here) may miss each of the three readers.
		if r.Delivered < r.Expected-3*r.Undelivered {
			t.Errorf("%s: %d of %d messages delivered (%d undelivered)", r.Scenario, r.Delivered, r.Expected, r.Undelivered)
		}
		for i, n := range r.Nodes {
			idle := base.Nodes[i]
			if n.PeakRSS > idle.PeakRSS+bound {
				t.Errorf("%s: node %d peak RSS %.1f MiB exceeds its idle peak %.1f MiB + bound %.1f MiB",
					r.Scenario, n.Node, mib1(n.PeakRSS), mib1(idle.PeakRSS), mib1(bound))
			}
			if n.EndHeapLive == 0 {
				t.Errorf("%s: node %d: no live heap figure (pprof unreachable?)", r.Scenario, n.Node)
			} else if n.EndHeapLive > idle.EndHeapLive+leakSlack {
				t.Errorf("%s: node %d holds %.1f MiB of live heap after its clients left, %.1f MiB when idle: a leak?",
					r.Scenario, n.Node, mib1(n.EndHeapLive), mib1(idle.EndHeapLive))
			}
		}
	}
	big := results[2]
	if big.SentBytes < 2*testRingQueue {
		t.Errorf("big: only %d bytes sent, too few to test the bound", big.SentBytes)
	}
	slow := results[3]
	if len(slow.Slow) != 1 || !slow.Slow[0].Disconnected {
		t.Fatalf("slow-client: the client that never read was not disconnected (%d bytes sent to its group): %+v",
			slow.SentBytes, slow.Slow)
	}
	if !strings.Contains(slow.Slow[0].Reason, "stopped reading") {
		t.Errorf("slow-client: disconnected without the reason: %q", slow.Slow[0].Reason)
	}
	if slow.SlowDrops != 1 {
		t.Errorf("slow-client: ipc.disconnected_slow rose by %d, want 1", slow.SlowDrops)
	}
}

func mib1(b uint64) float64 { return float64(b) / (1 << 20) }
