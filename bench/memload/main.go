// Command memload measures the resident memory of totemd daemons under
// load, to show that it stays bounded. It starts a local cluster of three
// daemons on 127.0.0.1 (udpu, distinct ports and sockets, no root needed)
// and runs these scenarios in turn, each bounded in time:
//
//	baseline     the cluster idle
//	groups       1,000 groups, each joined by client handles on every node,
//	             a few messages sent to each group (Agreed and Safe in turn)
//	big          1 MiB messages sent by clients on every node for a few
//	             seconds (Agreed and Safe in turn), every sender reading
//	slow-client  a client process on node 1 joins a busy group and never
//	             reads its socket while the others send at full rate: the
//	             daemon must disconnect it (with a reason) or keep its queue
//	             bounded; sending stops a second after the disconnection,
//	             or after --slow-time
//
// For each scenario and daemon it reports the peak resident set (VmHWM of
// /proc/PID/status, reset through /proc/PID/clear_refs when a scenario
// starts), the resident set at the scenario's end after its clients closed
// (VmRSS), and the Go heap read from the daemon's --pprof server (largest
// HeapInuse sampled; at the end, HeapAlloc after a forced GC: the live
// heap). The results go to stdout as a
// markdown table, or with --json as one JSON object per scenario per line;
// progress goes to stderr.
//
// Usage:
//
//	memload [--totemd PATH] [--profile default|fast] [--scenarios baseline,groups,big,slow-client]
//	        [--groups 1000] [--big-time 5s] [--slow-time 20s] [--json] ...
//
// Without --totemd it builds totemd from this module with the go command.
// Every daemon is stopped and the work directory removed at the end, on
// error and on SIGINT or SIGTERM too (--keep keeps the directory, with the
// daemons' logs). Exit status: 0 fine, 1 error, 2 bad usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
)

// Scenario names, in the order they run.
const (
	scBaseline = "baseline"
	scGroups   = "groups"
	scBig      = "big"
	scSlow     = "slow-client"
)

var allScenarios = []string{scBaseline, scGroups, scBig, scSlow}

// options are the command-line flags.
type options struct {
	totemd        string
	profile       string
	token         time.Duration
	ipcQueueBytes int
	ipcQueueMsgs  int
	maxQueueBytes int
	scenarios     []string
	baselineTime  time.Duration
	groups        int
	groupHandles  int
	groupMembers  int
	groupMsgs     int
	groupSize     int
	bigSize       int
	bigTime       time.Duration
	bigCount      int
	slowSize      int
	slowTime      time.Duration
	slowClients   int
	slowAfter     time.Duration
	slowRate      int
	drain         time.Duration
	settle        time.Duration
	sample        time.Duration
	startTimeout  time.Duration
	repeat        int
	json          bool
	keep          bool
	dir           string
}

func bindFlags(fs *pflag.FlagSet, o *options) {
	fs.StringVar(&o.totemd, "totemd", "", "totemd binary (default: build it from this module with go build)")
	fs.StringVar(&o.profile, "profile", "default", `daemon timeout profile: "default" (Corosync's) or "fast"`)
	fs.DurationVar(&o.token, "token", 0, "daemon token timeout (0: the profile's)")
	fs.IntVar(&o.ipcQueueBytes, "ipc-queue-bytes", 0, "daemon: bytes waiting for one client before it is disconnected (0: the daemon's default, 64 MiB)")
	fs.IntVar(&o.ipcQueueMsgs, "ipc-queue-messages", 0, "daemon: messages waiting for one client before it is disconnected (0: the daemon's default, 65536)")
	fs.IntVar(&o.maxQueueBytes, "max-queue-bytes", 0, "daemon: bytes queued for the ring before senders get try-again (0: the daemon's default, 8 MiB)")
	fs.StringSliceVar(&o.scenarios, "scenarios", allScenarios, "scenarios to run, comma-separated: "+strings.Join(allScenarios, ","))
	fs.DurationVar(&o.baselineTime, "baseline-time", 3*time.Second, "baseline: how long the cluster idles")
	fs.IntVar(&o.groups, "groups", 1000, "groups: number of groups")
	fs.IntVar(&o.groupHandles, "group-handles", 4, "groups: client handles per node that join the groups")
	fs.IntVar(&o.groupMembers, "group-members", 3, "groups: nodes whose handles join each group (1..3)")
	fs.IntVar(&o.groupMsgs, "group-msgs", 2, "groups: messages sent to each group")
	fs.IntVar(&o.groupSize, "group-size", 1024, "groups: message size, bytes")
	fs.IntVar(&o.bigSize, "big-size", 1<<20, "big: message size, bytes")
	fs.DurationVar(&o.bigTime, "big-time", 5*time.Second, "big: how long to send")
	fs.IntVar(&o.bigCount, "big-count", 200, "big: most messages per sender (0: no limit)")
	fs.IntVar(&o.slowSize, "slow-size", 256<<10, "slow-client: message size, bytes")
	fs.DurationVar(&o.slowTime, "slow-time", 20*time.Second, "slow-client: longest time to send")
	fs.DurationVar(&o.slowAfter, "slow-after", time.Second, "slow-client: how long to go on sending once every slow client was disconnected")
	fs.IntVar(&o.slowRate, "slow-read-rate", 0, "slow-client: bytes per second the slow clients read (0: they never read)")
	fs.IntVar(&o.slowClients, "slow-clients", 1, "slow-client: client processes on node 1 that never read")
	fs.DurationVar(&o.drain, "drain", 30*time.Second, "longest wait for joins, one send, or the deliveries after sending")
	fs.DurationVar(&o.settle, "settle", time.Second, "pause after a scenario's clients close, before the end figures")
	fs.DurationVar(&o.sample, "sample", 250*time.Millisecond, "Go heap sampling interval")
	fs.DurationVar(&o.startTimeout, "start-timeout", 60*time.Second, "longest wait for the cluster to form")
	fs.IntVar(&o.repeat, "repeat", 1, "run the scenarios this many times on the same cluster (a leak shows as live heap growing from one round to the next)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object per scenario instead of a table")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (keys, sockets, daemon logs)")
	fs.StringVar(&o.dir, "dir", "", "make the work directory inside this one (default: $TMPDIR)")
}

func (o *options) check() error {
	for _, s := range o.scenarios {
		if !slices.Contains(allScenarios, s) {
			return fmt.Errorf("unknown scenario %q (want %s)", s, strings.Join(allScenarios, ", "))
		}
	}
	switch {
	case o.groups < 1 || o.groups > 9999:
		return fmt.Errorf("--groups must be within 1..9999")
	case o.groupHandles < 1, o.groupMsgs < 1, o.groupMembers < 1, o.slowClients < 1:
		return fmt.Errorf("--group-handles, --group-members, --group-msgs and --slow-clients must be at least 1")
	case o.groupSize < 1, o.bigSize < 1, o.slowSize < 1:
		return fmt.Errorf("message sizes must be at least 1 byte")
	case o.bigCount < 0, o.slowRate < 0:
		return fmt.Errorf("--big-count and --slow-read-rate must not be negative")
	case o.repeat < 1:
		return fmt.Errorf("--repeat must be at least 1")
	case o.sample <= 0, o.drain <= 0, o.startTimeout <= 0:
		return fmt.Errorf("--sample, --drain and --start-timeout must be positive")
	}
	return nil
}

func main() {
	if isSlowChild() {
		os.Exit(slowChildMain())
	}
	var o options
	fs := pflag.NewFlagSet("memload", pflag.ContinueOnError)
	fs.SortFlags = false
	bindFlags(fs, &o)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: memload [flags]\n\nMeasures totemd's resident memory in a local 3-node cluster under load.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "memload: unexpected arguments %q\n", fs.Args())
		os.Exit(2)
	}
	if err := o.check(); err != nil {
		fmt.Fprintf(os.Stderr, "memload: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	results, err := run(ctx, o, os.Stderr)
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		for _, r := range results {
			enc.Encode(r)
		}
	} else if len(results) > 0 {
		writeTable(os.Stdout, results)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "memload: %v\n", err)
		stop()
		os.Exit(1)
	}
}

// runner runs scenarios on one cluster.
type runner struct {
	o     options
	c     *cluster
	log   io.Writer
	round int
	// rings holds every node's ring when the current scenario began.
	rings []string
}

// run starts the cluster, runs the scenarios and stops the cluster. It
// returns the results of the scenarios that ran, even on error.
func run(ctx context.Context, o options, log io.Writer) ([]Result, error) {
	if o.dir != "" {
		if err := os.MkdirAll(o.dir, 0o755); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(o.dir, "memload-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Fprintf(log, "memload: work directory %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.totemd == "" {
		fmt.Fprintf(log, "memload: building totemd\n")
		bin := filepath.Join(dir, "totemd")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/totem-gcs/totem/daemon/totemd")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build totemd (or give --totemd): %v\n%s", err, out)
		}
		o.totemd = bin
	}
	c, err := startCluster(clusterConfig{totemd: o.totemd, dir: dir, nodes: 3, profile: o.profile, token: o.token,
		ipcQueueBytes: o.ipcQueueBytes, ipcQueueMsgs: o.ipcQueueMsgs, maxQueueBytes: o.maxQueueBytes})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	t0 := time.Now()
	sctx, cancel := context.WithTimeout(ctx, o.startTimeout)
	ring, err := c.waitRing(sctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	fmt.Fprintf(log, "memload: 3 daemons in ring %v after %.1fs (profile %s)\n", ring, time.Since(t0).Seconds(), o.profile)
	r := &runner{o: o, c: c, log: log}
	var results []Result
	for round := 1; round <= o.repeat; round++ {
		r.round = round
		for _, name := range allScenarios {
			if !slices.Contains(o.scenarios, name) {
				continue
			}
			res, err := r.run(ctx, name)
			if o.repeat > 1 {
				res.Round = round
			}
			results = append(results, res)
			if err != nil {
				return results, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return results, nil
}

// run runs one scenario and measures the daemons meanwhile.
func (r *runner) run(ctx context.Context, name string) (Result, error) {
	res := Result{Scenario: name, RingStable: true}
	fmt.Fprintf(r.log, "memload: %s...\n", name)
	before, err := r.currentRings(ctx, r.o.startTimeout)
	if err != nil {
		return res, err
	}
	r.rings = before
	s := startSampler(ctx, r.c, r.o.sample)
	start := time.Now()
	switch name {
	case scBaseline:
		err = r.baseline(ctx, &res)
	case scGroups:
		err = r.groups(ctx, &res)
	case scBig:
		err = r.big(ctx, &res)
	case scSlow:
		err = r.slowClient(ctx, &res)
	}
	res.Seconds = time.Since(start).Seconds()
	if err == nil {
		err = sleepCtx(ctx, r.o.settle)
	}
	nodes, ferr := s.finish(context.WithoutCancel(ctx))
	res.Nodes = nodes
	if xerr := r.c.exited(); xerr != nil {
		return res, xerr
	}
	if err == nil {
		err = ferr
	}
	if after, rerr := r.currentRings(ctx, r.o.startTimeout); rerr == nil {
		for i := range after {
			if after[i] != before[i] {
				res.RingStable = false
				res.Notes = append(res.Notes, fmt.Sprintf("node %d: ring %v -> %v", i+1, before[i], after[i]))
			}
		}
	}
	for _, n := range res.Nodes {
		if !n.HWMReset {
			res.Notes = append(res.Notes, fmt.Sprintf("node %d: peak RSS is since the daemon started (clear_refs refused)", n.Node))
		}
	}
	if res.Undelivered > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d messages undelivered", res.Undelivered))
	}
	fmt.Fprintf(r.log, "memload: %s done in %.1fs: %d sent, %d of %d delivered\n", name, res.Seconds, res.Sent, res.Delivered, res.Expected)
	return res, err
}

// ringChanged reports whether some node's ring differs from the one it
// had when the scenario began, or the cluster is not whole within 2 s.
func (r *runner) ringChanged() bool {
	now, err := r.currentRings(context.Background(), 2*time.Second)
	return err != nil || !slices.Equal(now, r.rings)
}

// currentRings returns every node's ring, waiting up to timeout for the
// cluster to be whole.
func (r *runner) currentRings(ctx context.Context, timeout time.Duration) ([]string, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := r.c.waitRing(wctx); err != nil {
		return nil, err
	}
	out := make([]string, len(r.c.procs))
	for i, p := range r.c.procs {
		h, err := r.c.connect(wctx, p.id, "memload-status")
		if err != nil {
			return nil, err
		}
		st, err := h.Status(wctx)
		h.Close()
		if err != nil {
			return nil, err
		}
		out[i] = st.Ring.String()
	}
	return out, nil
}

// mib formats bytes as MiB with one decimal.
func mib(b uint64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

// perNode joins one figure of every node with slashes.
func perNode(ns []NodeMem, f func(NodeMem) uint64) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		if v := f(n); v > 0 {
			s[i] = mib(v)
		} else {
			s[i] = "-"
		}
	}
	return strings.Join(s, " / ")
}

// writeTable prints the results as a markdown table.
func writeTable(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| scenario | what was done | messages | peak RSS MiB (n1 / n2 / n3) | end RSS MiB | peak Go heap in use MiB | end live Go heap MiB | notes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		msgs := "-"
		if r.Sent > 0 || r.Expected > 0 {
			msgs = fmt.Sprintf("%d sent (%.0f MiB), %d of %d delivered", r.Sent, float64(r.SentBytes)/(1<<20), r.Delivered, r.Expected)
		}
		var notes []string
		if len(r.Slow) > 0 {
			notes = append(notes, slowNote(r))
		}
		if r.RingStable {
			notes = append(notes, "ring stable")
		}
		notes = append(notes, r.Notes...)
		name := r.Scenario
		if r.Round > 0 {
			name += fmt.Sprintf(" (round %d)", r.Round)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", name, r.Done, msgs,
			perNode(r.Nodes, func(n NodeMem) uint64 { return n.PeakRSS }),
			perNode(r.Nodes, func(n NodeMem) uint64 { return n.EndRSS }),
			perNode(r.Nodes, func(n NodeMem) uint64 { return n.PeakHeapInuse }),
			perNode(r.Nodes, func(n NodeMem) uint64 { return n.EndHeapLive }),
			strings.ReplaceAll(strings.Join(notes, "; "), "|", "\\|"))
	}
}

// slowNote summarises the slow clients' fate.
func slowNote(r Result) string {
	var n int
	var after []string
	var first string
	var distinct int
	seen := map[string]bool{}
	for _, s := range r.Slow {
		if !s.Disconnected {
			continue
		}
		n++
		if s.After > 0 {
			after = append(after, fmt.Sprintf("%.1fs", s.After))
		}
		if s.Reason != "" && !seen[s.Reason] {
			if len(seen) == 0 {
				first = fmt.Sprintf("%q (from %s)", s.Reason, s.Source)
			}
			seen[s.Reason] = true
			distinct++
		}
	}
	if n == 0 {
		return fmt.Sprintf("slow client(s) NOT disconnected (%d)", len(r.Slow))
	}
	note := fmt.Sprintf("%d of %d slow client(s) disconnected", n, len(r.Slow))
	if len(after) > 0 {
		note += " " + strings.Join(after, ", ") + " after joining"
	}
	if first != "" {
		note += ": " + first
	}
	if distinct > 1 {
		note += fmt.Sprintf(" and %d similar", distinct-1)
	}
	return note + fmt.Sprintf(" (ipc.disconnected_slow +%d)", r.SlowDrops)
}
