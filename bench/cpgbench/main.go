// Command cpgbench measures the throughput and the self-delivery latency
// of totemd's closed process groups through the Go client library, the
// way Corosync's cpgperf probe measures libcpg, so that the figures of the
// two compare directly.
//
// Usage:
//
//	cpgbench [--sizes 64,256,...] [--duration 5s] [--guarantee agreed|safe] [--json]
//	cpgbench --latency [--count N] [--sizes ...] [--json]
//	cpgbench --recv [--recv-time D]
//
// Throughput: for each size, send as fast as the ring takes messages for
// --duration, then wait until every message sent came back. One goroutine
// keeps --inflight requests unanswered with the client's SendAsync (with
// --sync: --inflight goroutines, each waiting for its TrySend's answer). own msgs/s is
// the own messages delivered back divided by the time from the phase start
// to the last own delivery; MB/s counts 10^6 bytes of payload; sizes
// include a 32-byte header. all msgs/s counts every sender's messages of
// the phase delivered here during the window. Several cpgbench on
// different nodes run their phases together with --start-at.
//
// Receiver: --recv joins the group and counts deliveries until signalled,
// like cpgperf's recv, so that the other nodes' daemons deliver to a
// client too during a benchmark.
//
// Latency: for each size, --count times (after count/10 unrecorded
// warm-up rounds) send one message and wait until it is delivered back;
// p50, p90, p99, max and mean in microseconds.
//
// cpgbench runs its Go code on one thread (--gomaxprocs 1), as cpgperf is
// single-threaded: with a thread per CPU, every event handed from the
// client library's reader goroutine to cpgbench's woke a second thread.
// On the 3-namespace cluster (2 CPUs, receivers on the other nodes doing
// the same), this took the 64 B latency p50 from 336-379 µs to 227-284 µs,
// and the 1 KiB and 4 KiB rates up by 1.1-1.5x in 4 of 5 rounds.
//
// The daemon's socket is $TOTEMD_SOCKET (or --socket). A progress line goes
// to stderr, the results to stdout: a table, or one JSON document with
// --json. Exit status: 0 fine, 1 error, 2 totemd unreachable or lost,
// 3 own messages came back lost, duplicated, out of order or unknown.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/totem-gcs/totem/client"
)

// Exit codes.
const (
	exitOK        = 0
	exitError     = 1
	exitNoDaemon  = 2
	exitIntegrity = 3
)

// options are the parsed flags.
type options struct {
	sizes        []int
	duration     time.Duration
	guarantee    client.Guarantee
	latency      bool
	recv         bool
	recvTime     time.Duration
	count        int
	group        string
	waitMembers  int
	waitTimeout  time.Duration
	startAt      time.Time
	gap          time.Duration
	inflight     int
	syncSends    bool
	ahead        int
	drainTimeout time.Duration
	socket       string
	json         bool
	quiet        bool
	cpuProfile   string
	gomaxprocs   int
}

// bench is one run.
type bench struct {
	opts     options
	h        *client.Handle
	recv     *receiver
	run      uint64
	progress *progress
}

// report is the --json document.
type report struct {
	Mode       string       `json:"mode"` // "throughput" or "latency"
	Guarantee  string       `json:"guarantee"`
	Group      string       `json:"group"`
	NodeID     uint32       `json:"nodeid"`
	PID        uint32       `json:"pid"`
	Members    int          `json:"members"` // group members when the run started
	DurationS  float64      `json:"duration_s,omitempty"`
	Inflight   int          `json:"inflight,omitempty"`
	Sends      string       `json:"sends,omitempty"` // throughput: "pipelined" (SendAsync) or "sync" (TrySend per goroutine)
	Count      int          `json:"count,omitempty"`
	Throughput []tputResult `json:"throughput,omitempty"`
	Latency    []latResult  `json:"latency,omitempty"`
	Recv       *recvResult  `json:"recv,omitempty"`
	Error      string       `json:"error,omitempty"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := pflag.NewFlagSet("cpgbench", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	var o options
	fs.IntSliceVar(&o.sizes, "sizes", []int{64, 256, 1024, 4096, 16384, 65536}, "message sizes in bytes, comma separated (each includes the 32-byte header)")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "throughput: sending time per size")
	g := fs.String("guarantee", "agreed", `delivery guarantee: "agreed" or "safe"`)
	fs.BoolVar(&o.latency, "latency", false, "measure self-delivery latency instead of throughput")
	fs.BoolVar(&o.recv, "recv", false, "only join the group and count deliveries until SIGINT/SIGTERM (or --recv-time): a receiving member for other nodes' runs")
	fs.DurationVar(&o.recvTime, "recv-time", 0, "with --recv: stop after this long (0: until signalled)")
	fs.IntVar(&o.count, "count", 5000, "latency: recorded samples per size (plus count/10 warm-up rounds)")
	fs.StringVar(&o.group, "group", "cpgbench", "process group to use")
	fs.IntVar(&o.waitMembers, "wait-members", 1, "wait until the group has at least this many members before starting")
	fs.DurationVar(&o.waitTimeout, "wait-timeout", 60*time.Second, "how long to wait for --wait-members")
	startAt := fs.String("start-at", "", "throughput: start phase k at UNIXTIME + k*(duration+gap) (seconds, may be fractional, or \"now+5s\"), to run several senders together")
	fs.DurationVar(&o.gap, "gap", 3*time.Second, "throughput with --start-at: pause between phases")
	fs.IntVar(&o.inflight, "inflight", 64, "throughput: sends in flight (requests not yet answered by the daemon)")
	fs.IntVar(&o.ahead, "ahead", 0, "throughput, pipelined: start no new message while this many sent ones have not come back (0: no such window; only --inflight and try-again limit the sender)")
	fs.BoolVar(&o.syncSends, "sync", false, "throughput: one goroutine per send in flight, each waiting for the daemon's answer (TrySend), instead of one goroutine pipelining them (SendAsync)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 60*time.Second, "throughput: how long to wait for own messages to come back after the window")
	fs.StringVar(&o.socket, "socket", "", "totemd socket (default $TOTEMD_SOCKET or /run/totemd/totemd.sock)")
	fs.BoolVar(&o.json, "json", false, "print one JSON document instead of a table")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no progress lines on stderr")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of cpgbench (the client side) to this file")
	fs.IntVar(&o.gomaxprocs, "gomaxprocs", 1, "threads running Go code at once (0: one per CPU; the GOMAXPROCS environment variable wins)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: cpgbench [flags]            throughput per message size
       cpgbench --latency [flags]  self-delivery latency per message size
       cpgbench --recv [flags]     stay in the group as a receiver until signalled

Measures totemd's process groups as Corosync's cpgperf measures libcpg.
Connects to $TOTEMD_SOCKET (or --socket).

Flags:
%s
Exit status: 0 fine, 1 error, 2 totemd unreachable or lost, 3 own messages
came back lost, duplicated, out of order or unknown.
`, fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch *g {
	case "agreed":
		o.guarantee = client.Agreed
	case "safe":
		o.guarantee = client.Safe
	default:
		return o, fmt.Errorf("--guarantee %q: want agreed or safe", *g)
	}
	if o.recv && o.latency {
		return o, errors.New("--recv and --latency exclude each other")
	}
	if o.recvTime < 0 {
		return o, fmt.Errorf("--recv-time %v must not be negative", o.recvTime)
	}
	if len(o.sizes) == 0 {
		return o, errors.New("--sizes is empty")
	}
	for _, s := range o.sizes {
		if s < HeaderSize {
			return o, fmt.Errorf("--sizes: %d is smaller than the %d-byte header", s, HeaderSize)
		}
	}
	if o.duration <= 0 {
		return o, fmt.Errorf("--duration %v must be positive", o.duration)
	}
	if o.count <= 0 {
		return o, fmt.Errorf("--count %d must be positive", o.count)
	}
	if o.inflight < 1 || o.inflight > 4096 {
		return o, fmt.Errorf("--inflight %d must be within 1..4096", o.inflight)
	}
	if o.gomaxprocs < 0 {
		return o, fmt.Errorf("--gomaxprocs %d must not be negative", o.gomaxprocs)
	}
	if o.waitMembers < 1 {
		return o, fmt.Errorf("--wait-members %d must be at least 1", o.waitMembers)
	}
	if o.gap < 0 {
		return o, fmt.Errorf("--gap %v must not be negative", o.gap)
	}
	if *startAt != "" {
		t, err := parseStartAt(*startAt, time.Now())
		if err != nil {
			return o, err
		}
		o.startAt = t
	}
	return o, nil
}

// parseStartAt reads UNIXTIME (seconds, maybe fractional) or "now+DURATION".
func parseStartAt(s string, now time.Time) (time.Time, error) {
	if rest, ok := strings.CutPrefix(s, "now+"); ok {
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return time.Time{}, fmt.Errorf("--start-at %q: want UNIXTIME or now+DURATION", s)
		}
		return now.Add(d), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return time.Time{}, fmt.Errorf("--start-at %q: want UNIXTIME (seconds since 1970, e.g. %d) or now+DURATION", s, now.Unix()+5)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "cpgbench: %v\n", err)
		return exitError
	}
	if os.Getenv("GOMAXPROCS") == "" && o.gomaxprocs > 0 {
		runtime.GOMAXPROCS(o.gomaxprocs)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "cpgbench: --cpuprofile: %v\n", err)
			return exitError
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	errf, _ := stderr.(*os.File)
	if errf == nil {
		errf = os.Stderr
	}
	b := &bench{opts: o, progress: newProgress(errf, o.quiet)}
	var nonce [8]byte
	rand.Read(nonce[:])
	b.run = binary.LittleEndian.Uint64(nonce[:])

	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	h, err := client.Connect(cctx, client.Options{Socket: o.socket, Name: "cpgbench", MaxPendingEvents: 1 << 22, EventBuffer: 4096})
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "cpgbench: %v\n", err)
		return exitNoDaemon
	}
	defer h.Close()
	b.h = h
	b.recv = newReceiver(h, o.group, b.run)
	for _, s := range o.sizes {
		if s > h.MaxMessageSize() {
			fmt.Fprintf(stderr, "cpgbench: --sizes: %d is larger than the daemon's limit of %d bytes\n", s, h.MaxMessageSize())
			return exitError
		}
	}
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	slow := time.AfterFunc(time.Second, func() {
		b.progress.note("cpgbench: joining group %q: the daemon keeps answering try-again; retrying for up to 30s", o.group)
	})
	err = h.Join(jctx, o.group)
	slow.Stop()
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "cpgbench: join %s: %v\n", o.group, err)
		return codeOf(err)
	}
	members, err := b.waitMembers(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "cpgbench: %v\n", err)
		return codeOf(err)
	}
	b.progress.note("cpgbench: node %d pid %d in group %q with %d member(s), %s", h.NodeID(), h.PID(), o.group, members, o.guarantee)

	rep := report{Guarantee: o.guarantee.String(), Group: o.group, NodeID: uint32(h.NodeID()), PID: h.PID(), Members: members}
	var runErr error
	switch {
	case o.recv:
		rep.Mode = "recv"
		var rr recvResult
		rr, runErr = b.runRecv(ctx)
		rep.Recv = &rr
	case o.latency:
		rep.Mode, rep.Count = "latency", o.count
		rep.Latency, runErr = b.runLatency(ctx)
	default:
		rep.Mode, rep.DurationS, rep.Inflight = "throughput", o.duration.Seconds(), o.inflight
		rep.Sends = "pipelined"
		if o.syncSends {
			rep.Sends = "sync"
		}
		rep.Throughput, runErr = b.runThroughput(ctx)
	}
	lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	h.Leave(lctx, o.group)
	cancel()

	if runErr != nil {
		rep.Error = runErr.Error()
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		writeTable(stdout, rep)
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "cpgbench: %v\n", runErr)
		return codeOf(runErr)
	}
	for _, r := range rep.Throughput {
		if r.faulty() {
			fmt.Fprintf(stderr, "cpgbench: size %d B: own messages came back wrong: %d lost, %d duplicated, %d out of order, %d unknown\n",
				r.Size, r.Lost, r.Dups, r.Reordered, r.Unknown)
			return exitIntegrity
		}
	}
	return exitOK
}

// waitMembers waits until the group has opts.waitMembers members and
// returns the count.
func (b *bench) waitMembers(ctx context.Context) (int, error) {
	begin := time.Now()
	deadline := begin.Add(b.opts.waitTimeout)
	noted := false
	for {
		n := b.recv.memberCount()
		if n >= b.opts.waitMembers {
			return n, nil
		}
		if b.h.Err() != nil {
			return 0, b.h.Err()
		}
		if !noted && time.Since(begin) > 500*time.Millisecond {
			b.progress.note("cpgbench: waiting for %d members in group %q (%d now)", b.opts.waitMembers, b.opts.group, n)
			noted = true
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return 0, fmt.Errorf("group %q has %d member(s), not %d, after %v", b.opts.group, n, b.opts.waitMembers, b.opts.waitTimeout)
		}
		select {
		case <-b.recv.changed:
		case <-time.After(min(wait, 200*time.Millisecond)):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// codeOf maps an error to an exit code.
func codeOf(err error) int {
	if errors.Is(err, client.ErrDisconnected) {
		return exitNoDaemon
	}
	return exitError
}

// writeTable prints the results as an aligned table.
func writeTable(w io.Writer, rep report) {
	switch rep.Mode {
	case "throughput":
		fmt.Fprintf(w, "throughput: node %d, %d member(s), %s, %.1fs per size, %d in flight (%s)\n", rep.NodeID, rep.Members, rep.Guarantee, rep.DurationS, rep.Inflight, rep.Sends)
		fmt.Fprintf(w, "%8s %10s %10s %8s %12s %10s %12s %10s %10s %s\n",
			"size B", "sent", "delivered", "secs", "own msgs/s", "own MB/s", "all msgs/s", "all MB/s", "try-again", "faults")
		for _, r := range rep.Throughput {
			faults := "none"
			if r.faulty() {
				faults = fmt.Sprintf("lost %d dup %d reordered %d unknown %d", r.Lost, r.Dups, r.Reordered, r.Unknown)
			}
			fmt.Fprintf(w, "%8d %10d %10d %8.3f %12.0f %10.2f %12.0f %10.2f %10d %s\n",
				r.Size, r.Sent, r.Delivered, r.Secs, r.OwnMsgsS, r.OwnMBs, r.AllMsgsS, r.AllMBs, r.TryAgain, faults)
		}
	case "recv":
		r := rep.Recv
		fmt.Fprintf(w, "recv: node %d received %d messages, %.2f MB in %.1fs\n", rep.NodeID, r.Msgs, float64(r.Bytes)/1e6, r.Secs)
	case "latency":
		fmt.Fprintf(w, "latency: node %d, %d member(s), %s, %d samples per size (µs)\n", rep.NodeID, rep.Members, rep.Guarantee, rep.Count)
		fmt.Fprintf(w, "%8s %8s %10s %10s %10s %10s %10s\n", "size B", "n", "p50", "p90", "p99", "max", "mean")
		for _, r := range rep.Latency {
			fmt.Fprintf(w, "%8d %8d %10.1f %10.1f %10.1f %10.1f %10.1f\n", r.Size, r.N, r.P50, r.P90, r.P99, r.Max, r.Mean)
		}
	}
}
