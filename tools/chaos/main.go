// Command chaos is the chaos soak of the whole system: a local cluster of
// totemd daemons (tools/cluster: network namespaces with several links
// each, or --loopback), client processes on every node that join several
// groups, listen and send with both guarantees (plus one `totemctl cpg
// listen --json` per node, whose output the checker reads as it is), and a
// seeded schedule of
// faults: daemons killed (SIGKILL) and restarted, daemons restarted
// gracefully, clients killed, single links cut, whole nodes cut off,
// the network partitioned, and bursts of loss. At the end it heals
// everything, lets the cluster settle, stops the clients cleanly and runs
// the checker (package chaos, which shares no code with the engine) over
// every client's log. It prints one summary line and exits 1 on any
// violation, naming the seed.
//
// Usage:
//
//	chaos [--seed S] [--duration D] [--nodes 5] [--links 2] [--groups 3] [--loopback] [--dir DIR] [--keep]
//	chaos --repeat-for 30m [--seed S] ...   seeds S, S+1, ... until the time is up
//	chaos check DIR [--seed S]     run the checker alone over DIR/logs (or DIR)
//	chaos agent ...                one client process (started by the soak through `cluster exec`)
//
// Faults, in namespace mode (root):
//
//   - kill: SIGKILL one node's totemd, start it again 0.5-3 s later (its
//     clients lose the daemon; new ones are started);
//   - restart: stop one totemd gracefully (SIGTERM) and start it again;
//   - client: SIGKILL one client process; a new one starts 0.5-2 s later;
//   - link: cut one link of one node (`cluster link I L down`) for 1-4 s;
//   - node: cut every link of one node for 2-6 s;
//   - partition: split the nodes in two sides for 3-8 s. The links are
//     bridges, so a side cannot be cut off by a link alone: each node gets
//     blackhole routes to every address of the other side, with strict
//     reverse-path filtering, so it neither sends to nor accepts packets
//     (unicast or multicast) from the other side, on every link;
//   - loss: on every link of one node, for 2-6 s, drop 5-30 % of the
//     datagrams it sends, duplicate up to 10 %, delay them up to 20 ms
//     (`totemctl link L fault`, the transport's own fault injection);
//   - flap: flap one link of one node (down 50-250 ms, up 100-400 ms) for
//     3 s: bursts of total loss on that network.
//
// With --loopback (no root) there are no namespaces: kill, restart, client,
// loss and node faults apply (a node is cut with `totemctl link L cut`).
// The seed alone fixes the schedule (which faults, in which order, where,
// how long; see schedule.go) and the clients' send rates; the daemons run
// in real time, so a repeated seed repeats the schedule, not every
// interleaving, and how many faults fit in --duration varies a little.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/totem-gcs/totem/chaos"
)

// options are the soak's flags.
type options struct {
	seed     int64
	duration time.Duration
	settle   time.Duration
	nodes    int
	links    int
	groups   int
	rate     float64
	size     int
	token    time.Duration
	profile  string
	loopback bool
	dir      string
	keep     bool
	prefix   string
	bin      string
	verbose  bool
	repeat   time.Duration
	tolerate []string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "agent" {
		os.Exit(runAgent(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "check" {
		os.Exit(runCheck(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(runSoak(os.Args[1:], os.Stdout, os.Stderr))
}

// runCheck is `chaos check DIR`.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("chaos check", pflag.ContinueOnError)
	seed := fs.Int64("seed", 0, "seed every payload must carry (0: any)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: chaos check DIR [--seed S]")
		return 2
	}
	dir := fs.Arg(0)
	if st, err := os.Stat(filepath.Join(dir, "logs")); err == nil && st.IsDir() {
		dir = filepath.Join(dir, "logs")
	}
	logs, err := chaos.ReadDir(dir)
	if err != nil {
		fmt.Fprintln(stderr, "chaos check:", err)
		return 2
	}
	res := chaos.Check(logs, chaos.Options{Seed: *seed, MaxKept: 10})
	for _, v := range res.Violations {
		fmt.Fprintln(stdout, "  violation", v)
	}
	fmt.Fprintln(stdout, res.Summary(*seed, 0))
	if res.Total() > 0 {
		return 1
	}
	return 0
}

func runSoak(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := pflag.NewFlagSet("chaos", pflag.ContinueOnError)
	fs.Int64Var(&o.seed, "seed", 0, "schedule seed (0: from the clock; printed)")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "how long faults are applied")
	fs.DurationVar(&o.settle, "settle", 10*time.Second, "after healing: wait this long before the clients stop sending, and again before they leave")
	fs.IntVar(&o.nodes, "nodes", 5, "nodes")
	fs.IntVar(&o.links, "links", 2, "links per node (namespace mode)")
	fs.IntVar(&o.groups, "groups", 3, "groups; every node has one client in each")
	fs.Float64Var(&o.rate, "rate", 10, "messages per second of a sending client (a third of the clients only listen)")
	fs.IntVar(&o.size, "size", 120, "message size in bytes")
	fs.DurationVar(&o.token, "token", 300*time.Millisecond, "token timeout of the daemons")
	fs.StringVar(&o.profile, "profile", "fast", `daemon timeout profile: "fast" (no token coefficient: a node is missed after --token) or "default" (Corosync's: the token grows by 650 ms per node beyond two, so short faults go unnoticed)`)
	fs.BoolVar(&o.loopback, "loopback", false, "all nodes on 127.0.0.1 (no root; only daemon and client faults)")
	fs.StringVar(&o.dir, "dir", "", "run directory (default: a new one under $TMPDIR); kept on failure")
	fs.BoolVar(&o.keep, "keep", false, "keep the run directory after a clean run")
	fs.StringVar(&o.prefix, "prefix", "chx", "namespace/interface name prefix for the cluster")
	fs.StringVar(&o.bin, "bin", "", "directory with cluster, totemd, totemctl (default: next to this program)")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "print every fault as it happens")
	fs.StringSliceVar(&o.tolerate, "tolerate", nil, "violation kinds that are printed and counted but do not fail the run (e.g. safe, while a known issue is open)")
	fs.DurationVar(&o.repeat, "repeat-for", 0, "run seed, seed+1, ... (one cluster each) until this much time has passed; exit 1 if any failed")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "chaos:", err)
		return 2
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano() % 1_000_000_000
	}
	if !o.loopback && os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "chaos: not root, so no network namespaces: running with --loopback (daemon and client faults only; link, node, partition and loss faults need root)")
		o.loopback = true
	}
	for _, k := range o.tolerate {
		if !slices.Contains(chaos.Kinds, k) {
			fmt.Fprintf(stderr, "chaos: --tolerate %q: not a violation kind (%s)\n", k, strings.Join(chaos.Kinds, ", "))
			return 2
		}
	}
	if o.nodes < 2 || o.links < 1 || o.groups < 1 {
		fmt.Fprintln(stderr, "chaos: need --nodes >= 2, --links >= 1, --groups >= 1")
		return 2
	}
	if o.loopback {
		o.links = 1
	}
	if o.repeat <= 0 {
		return soakOnce(o, stdout, stderr)
	}
	if o.dir != "" {
		fmt.Fprintln(stderr, "chaos: --dir and --repeat-for do not go together (each seed gets its own directory)")
		return 2
	}
	end := time.Now().Add(o.repeat)
	worst, runs := 0, 0
	var failed []string
	for time.Now().Before(end) {
		code := soakOnce(o, stdout, stderr)
		runs++
		if code != 0 {
			failed = append(failed, strconv.FormatInt(o.seed, 10))
			worst = max(worst, code)
		}
		if code == 2 {
			break // setup problem or interrupt: repeating will not help
		}
		o.seed++
	}
	fmt.Fprintf(stdout, "chaos: %d runs, %d failed", runs, len(failed))
	if len(failed) > 0 {
		fmt.Fprintf(stdout, " (seeds %s)", strings.Join(failed, " "))
	}
	fmt.Fprintln(stdout)
	return worst
}

// soakOnce runs one seed.
func soakOnce(o options, stdout, stderr io.Writer) int {
	s, err := newSoak(o, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 2
	}
	code := s.run()
	if code == 0 && s.removeDir {
		os.RemoveAll(s.dir)
	}
	return code
}

// soak is one run.
type soak struct {
	o          options
	out        io.Writer
	rng        *rand.Rand
	dir        string
	clusterDir string
	logDir     string
	bin        string
	self       string
	dlog       *os.File
	start      time.Time
	faults     map[string]int
	ctx        context.Context

	mu     sync.Mutex
	agents []*agentSlot
	nodes  map[int]nodeInfo
	rawSeq int
	// removeDir: the run passed and its directory is not wanted.
	removeDir bool
}

// nodeInfo is what the soak needs from the cluster tool's state file.
type nodeInfo struct {
	ID        int    `json:"id"`
	Namespace string `json:"namespace"`
	Socket    string `json:"socket"`
	Log       string `json:"log"`
}

// loadNodes reads the cluster tool's state.json.
func (s *soak) loadNodes() error {
	b, err := os.ReadFile(filepath.Join(s.clusterDir, "state.json"))
	if err != nil {
		return err
	}
	var st struct {
		NodeInfo []nodeInfo `json:"node_info"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("cluster state: %v", err)
	}
	s.nodes = map[int]nodeInfo{}
	for _, n := range st.NodeInfo {
		s.nodes[n.ID] = n
	}
	if len(s.nodes) != s.o.nodes {
		return fmt.Errorf("cluster state names %d nodes, want %d", len(s.nodes), s.o.nodes)
	}
	return nil
}

// agentSlot is one client position: a node and a group; its process is
// replaced when it dies.
type agentSlot struct {
	node  int
	group string
	rate  float64
	// totemctl: the slot runs `totemctl cpg listen --json` instead of an
	// agent (a listener only), so the checker reads its output too.
	totemctl bool
	cmd      *exec.Cmd
	done     chan struct{}
}

func newSoak(o options, out io.Writer) (*soak, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	bin := o.bin
	if bin == "" {
		bin = filepath.Dir(self)
	}
	for _, b := range []string{"cluster", "totemd"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: build with `go build -o bin/ ./...` or give --bin", b, bin)
		}
	}
	dir := o.dir
	if dir == "" {
		dir, err = os.MkdirTemp("", fmt.Sprintf("chaos-%d-", o.seed))
		if err != nil {
			return nil, err
		}
	}
	s := &soak{o: o, out: out, rng: rand.New(rand.NewPCG(uint64(o.seed), 0x636861)), dir: dir,
		clusterDir: filepath.Join(dir, "cluster"), logDir: filepath.Join(dir, "logs"), bin: bin, self: self,
		faults: map[string]int{}}
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		return nil, err
	}
	s.dlog, err = os.Create(filepath.Join(dir, "driver.log"))
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *soak) logf(format string, args ...any) {
	now := time.Now()
	line := fmt.Sprintf("%s %8.3fs %s", now.UTC().Format("15:04:05.000"), now.Sub(s.start).Seconds(), fmt.Sprintf(format, args...))
	fmt.Fprintln(s.dlog, line)
	if s.o.verbose {
		fmt.Fprintln(s.out, line)
	}
}

// cluster runs the cluster tool on this run's cluster.
func (s *soak) cluster(args ...string) error {
	full := append([]string{"--dir", s.clusterDir}, args...)
	cmd := exec.Command(filepath.Join(s.bin, "cluster"), full...)
	out, err := cmd.CombinedOutput()
	s.logf("cluster %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("cluster %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// saveDaemonLogs copies every daemon's log into the run directory, since
// `cluster down` removes them.
func (s *soak) saveDaemonLogs() {
	for id, n := range s.nodes {
		if n.Log == "" {
			continue
		}
		if b, err := os.ReadFile(n.Log); err == nil {
			os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("totemd-%d.log", id)), b, 0o644)
		}
	}
}

// totemctl runs totemctl against one node's daemon (its socket is a path,
// reachable from here). A daemon that is down fails it; that is logged.
func (s *soak) totemctl(node int, args ...string) error {
	cmd := exec.Command(filepath.Join(s.bin, "totemctl"), args...)
	cmd.Env = append(os.Environ(), "TOTEMD_SOCKET="+s.nodes[node].Socket)
	out, err := cmd.CombinedOutput()
	s.logf("node %d: totemctl %s: %s", node, strings.Join(args, " "), strings.TrimSpace(string(out)))
	return err
}

func (s *soak) ns(node int) string { return fmt.Sprintf("%s%d", s.o.prefix, node) }

// sh runs a command, logging it; errors are logged and returned.
func (s *soak) sh(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		s.logf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		return err
	}
	return nil
}

// wait sleeps for d, or less if the run is interrupted.
func (s *soak) wait(d time.Duration) {
	select {
	case <-s.ctx.Done():
	case <-time.After(d):
	}
}

func (s *soak) run() int {
	s.start = time.Now()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	s.ctx = ctx
	repeat := fmt.Sprintf("chaos --seed %d --duration %v --nodes %d --links %d --groups %d --profile %s --token %v", s.o.seed, s.o.duration, s.o.nodes, s.o.links, s.o.groups, s.o.profile, s.o.token)
	if s.o.loopback {
		repeat += " --loopback"
	}
	s.logf("seed %d, run directory %s; repeat with: %s", s.o.seed, s.dir, repeat)

	up := []string{"up", strconv.Itoa(s.o.nodes), "--token", s.o.token.String(), "--profile", s.o.profile}
	if s.o.loopback {
		up = append(up, "--loopback", "--base-port", strconv.Itoa(26400+int(s.o.seed%50)*10))
	} else {
		up = append(up, "--links", strconv.Itoa(s.o.links), "--prefix", s.o.prefix)
	}
	// Whatever happens from here, the cluster goes away.
	defer func() {
		s.stopAgents(5 * time.Second)
		s.saveDaemonLogs()
		if err := s.cluster("down"); err != nil {
			fmt.Fprintln(s.out, "chaos: cleaning up:", err)
		}
	}()
	if err := s.cluster(up...); err != nil {
		fmt.Fprintf(s.out, "chaos: seed=%d setup failed: %v\n", s.o.seed, err)
		return 2
	}
	if err := s.loadNodes(); err != nil {
		fmt.Fprintf(s.out, "chaos: seed=%d setup failed: %v\n", s.o.seed, err)
		return 2
	}
	if !s.o.loopback {
		for i := 1; i <= s.o.nodes; i++ {
			s.sh("ip", "netns", "exec", s.ns(i), "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1")
		}
	}
	for i := 1; i <= s.o.nodes; i++ {
		for g := 0; g < s.o.groups; g++ {
			rate := s.o.rate * (0.5 + s.rng.Float64())
			if s.rng.IntN(3) == 0 {
				rate = 0
			}
			slot := &agentSlot{node: i, group: fmt.Sprintf("chaos%d", g), rate: rate}
			s.agents = append(s.agents, slot)
			s.startAgent(slot)
		}
		tc := &agentSlot{node: i, group: "chaos0", totemctl: true}
		s.agents = append(s.agents, tc)
		s.startAgent(tc)
	}
	s.wait(2 * time.Second)

	plan := newPlanner(s.o.seed, s.o.nodes, s.o.links, len(s.agents), s.o.loopback)
	deadline := time.Now().Add(s.o.duration)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		st := plan.next()
		s.fault(st)
		s.ensureAgents()
		s.wait(st.Pause)
	}
	if ctx.Err() != nil {
		fmt.Fprintf(s.out, "chaos: seed=%d interrupted; run directory %s\n", s.o.seed, s.dir)
		return 2
	}
	// Heal: every daemon running, every agent running, then quiet.
	s.logf("healing")
	s.cluster("start")
	s.wait(time.Second)
	s.ensureAgents()
	s.wait(s.o.settle)
	os.WriteFile(filepath.Join(s.dir, "stop-send"), nil, 0o644)
	s.logf("clients stop sending")
	s.wait(s.o.settle)
	s.logf("clients leave")
	s.stopAgents(30 * time.Second)

	logs, err := chaos.ReadDir(s.logDir)
	if err != nil {
		fmt.Fprintf(s.out, "chaos: seed=%d reading logs: %v\n", s.o.seed, err)
		return 2
	}
	res := chaos.Check(logs, chaos.Options{Seed: s.o.seed, MaxKept: 5, ExpectClean: len(s.agents)})
	total := 0
	var kinds []string
	for k, n := range s.faults {
		total += n
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	for _, v := range res.Violations {
		fmt.Fprintln(s.out, "  violation", v)
	}
	fmt.Fprintln(s.out, res.Summary(s.o.seed, total))
	s.logf("faults: %s", strings.Join(kinds, " "))
	failing := res.Total()
	for _, k := range s.o.tolerate {
		failing -= res.Counts[k]
	}
	if failing > 0 {
		fmt.Fprintf(s.out, "chaos: FAILED; repeat with: %s   (logs kept in %s)\n", repeat, s.dir)
		return 1
	}
	if res.Total() > 0 {
		fmt.Fprintf(s.out, "chaos: passed only because --tolerate %s; logs kept in %s\n", strings.Join(s.o.tolerate, ","), s.dir)
		return 0
	}
	// Removed only after the deferred `cluster down`, which needs the
	// cluster's state in it (see soakOnce).
	s.removeDir = !s.o.keep && s.o.dir == ""
	return 0
}

// startAgent starts a new client process in a slot.
func (s *soak) startAgent(a *agentSlot) {
	n, ok := s.nodes[a.node]
	if !ok {
		s.logf("no node %d in the cluster state", a.node)
		return
	}
	args := []string{s.self, "agent",
		"--group", a.group, "--log-dir", s.logDir, "--seed", strconv.FormatInt(s.o.seed, 10),
		"--rate", strconv.FormatFloat(a.rate, 'f', 2, 64), "--size", strconv.Itoa(s.o.size),
		"--stop-send", filepath.Join(s.dir, "stop-send"), "--stop", filepath.Join(s.dir, "stop")}
	var raw *os.File
	if a.totemctl {
		s.rawSeq++
		var err error
		raw, err = os.Create(filepath.Join(s.dir, fmt.Sprintf("raw-%s-%d-%d.out", a.group, a.node, s.rawSeq)))
		if err != nil {
			s.logf("totemctl listener: %v", err)
			return
		}
		args = []string{filepath.Join(s.bin, "totemctl"), "cpg", "listen", a.group, "--json"}
	}
	// Not `cluster exec`: it holds the cluster's lock while the command
	// runs (see /work/notes/requests.md), which would serialise everything.
	if n.Namespace != "" {
		args = append([]string{"ip", "netns", "exec", n.Namespace}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "TOTEMD_SOCKET="+n.Socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	errf, _ := os.OpenFile(filepath.Join(s.dir, "agents.err"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	cmd.Stdout, cmd.Stderr = errf, errf
	if raw != nil {
		cmd.Stdout = raw
	}
	if err := cmd.Start(); err != nil {
		s.logf("starting agent node %d %s: %v", a.node, a.group, err)
		errf.Close()
		return
	}
	done := make(chan struct{})
	s.mu.Lock()
	a.cmd, a.done = cmd, done
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		errf.Close()
		s.logf("agent node %d %s (pgid %d) exited: %v", a.node, a.group, cmd.Process.Pid, err)
		if raw != nil {
			s.wrapListen(raw, a, cmd.Process.Pid, err == nil)
		}
		close(done)
	}()
}

// wrapListen turns the output of one `totemctl cpg listen --json` into a
// process log: a self line (`ip netns exec` execs, so the pid we started is
// the pid totemd sees; the cluster tool gives node I node ID I), the
// output, and a clean end record if it exited 0 after SIGTERM.
func (s *soak) wrapListen(raw *os.File, a *agentSlot, pid int, clean bool) {
	defer raw.Close()
	defer os.Remove(raw.Name())
	body, err := os.ReadFile(raw.Name())
	if err != nil {
		s.logf("totemctl listener output: %v", err)
		return
	}
	self, _ := json.Marshal(chaos.Record{Type: chaos.TypeSelf, Group: a.group, NodeID: uint32(a.node), PID: uint32(pid)})
	out := append(append(self, '\n'), body...)
	if clean {
		if len(body) > 0 && body[len(body)-1] != '\n' {
			out = append(out, '\n')
		}
		end, _ := json.Marshal(chaos.Record{Type: chaos.TypeEnd, Reason: chaos.EndStop})
		out = append(append(out, end...), '\n')
	}
	name := filepath.Join(s.logDir, fmt.Sprintf("%s-%d-%d-totemctl.jsonl", a.group, a.node, pid))
	if err := os.WriteFile(name, out, 0o644); err != nil {
		s.logf("totemctl listener log: %v", err)
	}
}

func running(a *agentSlot) bool {
	if a.done == nil {
		return false
	}
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// ensureAgents restarts every dead client whose node's daemon runs.
func (s *soak) ensureAgents() {
	for _, a := range s.agents {
		if !running(a) {
			s.startAgent(a)
		}
	}
}

// stopAgents waits for every client to exit, then kills what is left.
func (s *soak) stopAgents(wait time.Duration) {
	end := time.After(wait)
	// totemctl listeners first, one at a time: on SIGTERM totemctl stops
	// printing before its leave completes, so a view change in between
	// (another listener leaving) would be missing from its output.
	for _, a := range s.agents {
		if a.totemctl && running(a) {
			a.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-a.done:
			case <-time.After(wait):
			}
			// Let the others print this one's leave before the next stops.
			time.Sleep(time.Second)
		}
	}
	os.WriteFile(filepath.Join(s.dir, "stop"), nil, 0o644)
	for _, a := range s.agents {
		if a.done == nil {
			continue
		}
		select {
		case <-a.done:
		case <-end:
			syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
			<-a.done
		}
	}
}

// fault applies one fault of the schedule and heals it.
func (s *soak) fault(st step) {
	s.faults[st.Kind]++
	s.logf("fault: %v", st)
	node, link := strconv.Itoa(st.Node), strconv.Itoa(st.Link)
	switch st.Kind {
	case "kill":
		s.cluster("kill", node)
		s.wait(st.Hold)
		s.cluster("start", node)
	case "restart":
		s.cluster("restart", node)
	case "client":
		a := s.agents[st.Slot%len(s.agents)]
		if running(a) {
			s.logf("killing client node %d %s (pgid %d)", a.node, a.group, a.cmd.Process.Pid)
			syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
			<-a.done
		}
		s.wait(st.Hold)
	case "link":
		s.cluster("link", node, link, "down")
		s.wait(st.Hold)
		s.cluster("link", node, link, "up")
	case "node":
		for l := 0; l < s.o.links; l++ {
			if s.o.loopback {
				s.totemctl(st.Node, "link", strconv.Itoa(l), "cut")
			} else {
				s.cluster("link", node, strconv.Itoa(l), "down")
			}
		}
		s.wait(st.Hold)
		for l := 0; l < s.o.links; l++ {
			if s.o.loopback {
				s.totemctl(st.Node, "link", strconv.Itoa(l), "restore")
			} else {
				s.cluster("link", node, strconv.Itoa(l), "up")
			}
		}
	case "loss":
		for l := 0; l < s.o.links; l++ {
			s.totemctl(st.Node, "link", strconv.Itoa(l), "fault", "--drop", fmt.Sprintf("%.3f", st.Drop),
				"--duplicate", fmt.Sprintf("%.3f", st.Dup), "--delay", st.Delay.String())
		}
		s.wait(st.Hold)
		for l := 0; l < s.o.links; l++ {
			s.totemctl(st.Node, "link", strconv.Itoa(l), "restore")
		}
	case "partition":
		side := map[int]bool{}
		for _, n := range st.Side {
			side[n] = true
		}
		s.partition(side, "add")
		s.wait(st.Hold)
		s.partition(side, "del")
	case "flap":
		for i := 0; i+1 < len(st.Flaps) && s.ctx.Err() == nil; i += 2 {
			s.cluster("link", node, link, "down")
			s.wait(st.Flaps[i])
			s.cluster("link", node, link, "up")
			s.wait(st.Flaps[i+1])
		}
	}
}

// partition adds or removes blackhole routes between the two sides, on
// every link, in both directions. Node I on link L is 198.18.L.I.
func (s *soak) partition(side map[int]bool, op string) {
	for i := 1; i <= s.o.nodes; i++ {
		for j := 1; j <= s.o.nodes; j++ {
			if side[i] == side[j] {
				continue
			}
			for l := 0; l < s.o.links; l++ {
				s.sh("ip", "-n", s.ns(i), "route", op, "blackhole", fmt.Sprintf("198.18.%d.%d/32", l, j))
			}
		}
	}
}
