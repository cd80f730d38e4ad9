// Command cluster runs a local totemd cluster on one machine, the way a
// user tries one: N nodes, each in its own network namespace with L links
// over bridges that have no uplink (root), or all on 127.0.0.1 with their
// own ports (--loopback, no root).
//
// Usage:
//
//	cluster up N [--links L] [--profile fast|default] [--loopback]   make the cluster and start it
//	cluster start [I] | stop [I] | kill I | restart I                  manage node daemons
//	cluster link I L down|up                                           cut or restore node I's link L
//	cluster exec I CMD [ARGS...]                                       run CMD as if on node I
//	cluster status [--json]                                            every node: running?, pid, totemctl status
//	cluster env I                                                      shell exports for node I
//	cluster down                                                       stop everything, remove all it made
//
// The state lives in one directory ($CLUSTER_DIR or --dir, default
// /tmp/totem-cluster), so commands can be run one at a time from a shell.
// Namespace mode addresses: node I on link L is 198.18.L.I/24 (inside
// 198.18.0.0/15); names start with --prefix (default "tc"): namespaces
// tc1.., bridges tcbr0.., veths tc1l0... `down` removes exactly what `up`
// recorded.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/totem-gcs/totem/rrp"
)

// DefaultDir is the state directory unless CLUSTER_DIR or --dir says
// otherwise.
const DefaultDir = "/tmp/totem-cluster"

// DirEnv names the environment variable with the state directory.
const DirEnv = "CLUSTER_DIR"

// SocketEnv is the variable clients read totemd's socket from.
const SocketEnv = "TOTEMD_SOCKET"

// flags are the command-line options.
type flags struct {
	dir      string
	loopback bool
	links    int
	profile  string
	token    time.Duration
	linkMode string
	prefix   string
	bin      string
	basePort int
	noStart  bool
	grace    time.Duration
	wait     time.Duration
	json     bool
}

func bindFlags(fs *pflag.FlagSet, f *flags) {
	dir := os.Getenv(DirEnv)
	if dir == "" {
		dir = DefaultDir
	}
	fs.StringVar(&f.dir, "dir", dir, "state directory ($"+DirEnv+")")
	fs.BoolVar(&f.loopback, "loopback", false, "up: every node on 127.0.0.1 with its own ports and socket (no root, no namespaces)")
	fs.IntVar(&f.links, "links", 1, "up: links (networks) per node")
	fs.StringVar(&f.profile, "profile", "default", `up: totemd timeout profile, "default" (Corosync's, token 3 s) or "fast" (token 100 ms, a quiet LAN)`)
	fs.DurationVar(&f.token, "token", 0, "up: token timeout written to the configs (0: the profile's)")
	fs.StringVar(&f.linkMode, "link-mode", "passive", `up: redundant link mode, "passive" or "active"`)
	fs.StringVar(&f.prefix, "prefix", "tc", "up: prefix of namespace, bridge and veth names (lowercase letters and digits, at most 6)")
	fs.StringVar(&f.bin, "bin", "", "up: directory with totemd and totemctl (default: next to this program, else $PATH)")
	fs.IntVar(&f.basePort, "base-port", 15400, "up --loopback: node I uses UDP port BASE+100*L+I on link L")
	fs.BoolVar(&f.noStart, "no-start", false, "up: make the cluster but do not start the daemons")
	fs.DurationVar(&f.grace, "grace", 10*time.Second, "stop/restart/down: wait this long after SIGTERM before SIGKILL")
	fs.DurationVar(&f.wait, "wait", 10*time.Second, "start: wait this long for each daemon's socket")
	fs.BoolVar(&f.json, "json", false, "status: JSON output")
}

const usage = `Usage: cluster [flags] COMMAND [ARGS]

A local totemd cluster on this machine: one network namespace per node with
bridged links (root and iproute2 needed), or --loopback (127.0.0.1, no root).

Commands:
  up N                   make an N-node cluster (configs, key, network) and start it
  start [I]              start node I's totemd (default: every stopped node)
  stop [I]               stop node I's totemd gracefully, SIGTERM (default: every node)
  kill I                 SIGKILL node I's totemd
  restart I              stop node I gracefully, then start it
  link I L down|up       cut or restore node I's link L (namespaces only)
  exec I CMD [ARGS...]   run CMD in node I's namespace with TOTEMD_SOCKET set to its socket
  status [--json]        per node: running?, pid, and totemctl status
  env I                  print shell exports for node I (eval "$(cluster env 1)")
  down                   stop every daemon and remove every namespace, bridge, veth and file made

Flags:
%s
The state directory is $CLUSTER_DIR or --dir (default /tmp/totem-cluster).
Namespace addresses: node I on link L is 198.18.L.I/24.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var f flags
	// Flags before the command; for exec, everything after "exec I" is
	// the command to run and is not parsed.
	pre := pflag.NewFlagSet("cluster", pflag.ContinueOnError)
	pre.SetOutput(io.Discard)
	pre.SetInterspersed(false)
	bindFlags(pre, &f)
	printUsage := func(w io.Writer) { fmt.Fprintf(w, usage, pre.FlagUsages()) }
	if err := pre.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			printUsage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "cluster: %v\n", err)
		return 1
	}
	rest := pre.Args()
	if len(rest) == 0 {
		printUsage(stderr)
		return 1
	}
	cmd, rest := rest[0], rest[1:]
	if cmd == "help" {
		printUsage(stdout)
		return 0
	}
	var pos []string
	if cmd == "exec" {
		if len(rest) < 2 {
			fmt.Fprintln(stderr, "cluster: usage: cluster exec I CMD [ARGS...]")
			return 1
		}
		pos = rest[:1]
		cmdArgs := rest[1:]
		if cmdArgs[0] == "--" {
			cmdArgs = cmdArgs[1:]
		}
		if len(cmdArgs) == 0 {
			fmt.Fprintln(stderr, "cluster: usage: cluster exec I CMD [ARGS...]")
			return 1
		}
		return withState(f, stderr, loadOnly, func(s *State) (int, error) { return cmdExec(s, pos[0], cmdArgs) })
	}
	// Flags may also follow the command. Binding them again resets the
	// shared variables to their defaults: restore what was given before.
	given := map[string]string{}
	pre.Visit(func(fl *pflag.Flag) { given[fl.Name] = fl.Value.String() })
	post := pflag.NewFlagSet("cluster", pflag.ContinueOnError)
	post.SetOutput(io.Discard)
	bindFlags(post, &f)
	for name, v := range given {
		post.Set(name, v)
	}
	if err := post.Parse(rest); err != nil {
		fmt.Fprintf(stderr, "cluster: %v\n", err)
		return 1
	}
	pos = post.Args()

	need := func(n int, what string) bool {
		if len(pos) != n {
			fmt.Fprintf(stderr, "cluster: usage: cluster %s\n", what)
			return false
		}
		return true
	}
	switch cmd {
	case "up":
		if !need(1, "up N [--links L] [--loopback]") {
			return 1
		}
		return report(stderr, cmdUp(f, pos[0], stdout))
	case "down":
		if !need(0, "down") {
			return 1
		}
		return report(stderr, cmdDown(f, stdout))
	case "start", "stop":
		if len(pos) > 1 {
			fmt.Fprintf(stderr, "cluster: usage: cluster %s [I]\n", cmd)
			return 1
		}
		return withState(f, stderr, exclusive, func(s *State) (int, error) {
			ids, err := nodeArgs(s, pos)
			if err != nil {
				return 1, err
			}
			if cmd == "start" {
				return 0, cmdStart(s, f, ids, len(pos) == 1, stdout)
			}
			return 0, cmdStop(s, f, ids, syscall.SIGTERM, len(pos) == 1, stdout)
		})
	case "kill":
		if !need(1, "kill I") {
			return 1
		}
		return withState(f, stderr, exclusive, func(s *State) (int, error) {
			ids, err := nodeArgs(s, pos)
			if err != nil {
				return 1, err
			}
			return 0, cmdStop(s, f, ids, syscall.SIGKILL, true, stdout)
		})
	case "restart":
		if !need(1, "restart I") {
			return 1
		}
		return withState(f, stderr, exclusive, func(s *State) (int, error) {
			ids, err := nodeArgs(s, pos)
			if err != nil {
				return 1, err
			}
			if err := cmdStop(s, f, ids, syscall.SIGTERM, false, stdout); err != nil {
				return 1, err
			}
			return 0, cmdStart(s, f, ids, true, stdout)
		})
	case "link":
		if !need(3, "link I L down|up") {
			return 1
		}
		return withState(f, stderr, exclusive, func(s *State) (int, error) { return 0, cmdLink(s, pos, stdout) })
	case "status":
		if !need(0, "status [--json]") {
			return 1
		}
		return withState(f, stderr, shared, func(s *State) (int, error) { return cmdStatus(s, f.json, stdout) })
	case "env":
		if !need(1, "env I") {
			return 1
		}
		return withState(f, stderr, shared, func(s *State) (int, error) {
			ids, err := nodeArgs(s, pos)
			if err != nil {
				return 1, err
			}
			n, _ := s.node(ids[0])
			fmt.Fprintf(stdout, "export %s=%s\n", SocketEnv, shellQuote(n.Socket))
			if n.Namespace != "" {
				fmt.Fprintf(stdout, "# run commands in the node's namespace with: ip netns exec %s CMD\n", n.Namespace)
			}
			return 0, nil
		})
	}
	fmt.Fprintf(stderr, "cluster: unknown command %q\n", cmd)
	printUsage(stderr)
	return 1
}

func report(stderr io.Writer, err error) int {
	if err != nil {
		fmt.Fprintf(stderr, "cluster: %v\n", err)
		return 1
	}
	return 0
}

// lock modes of withState.
const (
	exclusive = iota // the command changes the cluster
	shared           // the command only reads the state (status, env)
	loadOnly         // the state is read under a shared lock, released before fn (exec)
)

// withState runs fn with the directory locked and its state loaded.
func withState(f flags, stderr io.Writer, mode int, fn func(*State) (int, error)) int {
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return report(stderr, err)
	}
	if _, err := os.Stat(statePath(dir)); err != nil {
		_, err := loadState(dir)
		return report(stderr, err)
	}
	lock := lockDir
	if mode != exclusive {
		lock = rlockDir
	}
	unlock, err := lock(dir)
	if err != nil {
		return report(stderr, err)
	}
	s, err := loadState(dir)
	if mode == loadOnly {
		// exec runs for as long as its command: it must not keep other
		// commands (another exec, start, stop) waiting meanwhile.
		unlock()
	} else {
		defer unlock()
	}
	if err != nil {
		return report(stderr, err)
	}
	code, err := fn(s)
	if err != nil {
		fmt.Fprintf(stderr, "cluster: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// nodeArgs returns the node named by pos, or every node when pos is empty.
func nodeArgs(s *State, pos []string) ([]int, error) {
	if len(pos) == 0 {
		ids := make([]int, len(s.NodeInfo))
		for i := range ids {
			ids[i] = i + 1
		}
		return ids, nil
	}
	id, err := strconv.Atoi(pos[0])
	if err != nil {
		return nil, fmt.Errorf("node %q: want a number 1..%d", pos[0], len(s.NodeInfo))
	}
	if _, err := s.node(id); err != nil {
		return nil, err
	}
	return []int{id}, nil
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,5}$`)

// findBinary locates a program: in dir if given, else next to this
// executable, else on $PATH.
func findBinary(dir, name string) (string, error) {
	if dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s not found in --bin %s", name, dir)
		}
		return filepath.Abs(p)
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found next to this program nor on $PATH; build it (go build -o bin/ ./...) or pass --bin DIR", name)
	}
	return filepath.Abs(p)
}

// cmdUp makes the cluster: state, key, configs, network; then starts it.
func cmdUp(f flags, nArg string, stdout io.Writer) (err error) {
	n, err := strconv.Atoi(nArg)
	mode := modeNetns
	maxNodes := 253
	if f.loopback {
		mode, maxNodes = modeLoopback, 99
	}
	if err != nil || n < 1 || n > maxNodes {
		return fmt.Errorf("up %q: want a node count 1..%d", nArg, maxNodes)
	}
	if f.links < 1 || f.links > 8 {
		return fmt.Errorf("--links %d: want 1..8", f.links)
	}
	if f.profile != "fast" && f.profile != "default" {
		return fmt.Errorf("--profile %q: want fast or default", f.profile)
	}
	if f.token < 0 {
		return fmt.Errorf("--token %v must not be negative", f.token)
	}
	if f.linkMode != "passive" && f.linkMode != "active" {
		return fmt.Errorf("--link-mode %q: want passive or active", f.linkMode)
	}
	if !prefixRE.MatchString(f.prefix) {
		return fmt.Errorf("--prefix %q: want a lowercase letter then up to 5 lowercase letters or digits", f.prefix)
	}
	if f.loopback {
		if f.basePort < 1024 || loopbackPort(f.basePort, f.links-1, n) > 65535 {
			return fmt.Errorf("--base-port %d: ports %d..%d must lie within 1024..65535", f.basePort, f.basePort+1, loopbackPort(f.basePort, f.links-1, n))
		}
	} else {
		if err := checkNetnsPossible(); err != nil {
			return err
		}
		if err := checkNamesFree(f.prefix, n, f.links); err != nil {
			return err
		}
	}
	totemd, err := findBinary(f.bin, "totemd")
	if err != nil {
		return err
	}
	totemctl, err := findBinary(f.bin, "totemctl")
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(statePath(dir)); err == nil {
		return fmt.Errorf("a cluster already exists in %s; `cluster down` it first (or use another --dir)", dir)
	}
	madeDir := false
	if _, err := os.Stat(dir); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		madeDir = true
	}
	if l := len(filepath.Join(dir, fmt.Sprintf("n%d", n), "totemd.sock")); l > 100 {
		if madeDir {
			os.Remove(dir)
		}
		return fmt.Errorf("state directory %s is too long for Unix socket paths (%d bytes, limit ~100); use a shorter --dir", dir, l)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	if f.loopback {
		if err := checkPortsFree(f.basePort, n, f.links); err != nil {
			if madeDir {
				os.Remove(filepath.Join(dir, ".lock"))
				os.Remove(dir)
			}
			return err
		}
	}

	s := &State{Version: stateVersion, Mode: mode, Nodes: n, Links: f.links, Prefix: f.prefix, Profile: f.profile,
		LinkMode: f.linkMode, TokenMS: f.token.Milliseconds(), Totemd: totemd, Totemctl: totemctl, MadeDir: madeDir, dir: dir,
		Key: filepath.Join(dir, "authkey")}
	if f.loopback {
		s.BasePort = f.basePort
	}
	for i := 1; i <= n; i++ {
		nd := filepath.Join(dir, fmt.Sprintf("n%d", i))
		ni := NodeInfo{ID: i, Dir: nd, Config: filepath.Join(nd, "totemd.toml"), Socket: filepath.Join(nd, "totemd.sock"),
			Log: filepath.Join(nd, "totemd.log"), PIDFile: filepath.Join(nd, "totemd.pid")}
		for l := 0; l < f.links; l++ {
			if f.loopback {
				ni.Addrs = append(ni.Addrs, fmt.Sprintf("127.0.0.1:%d", loopbackPort(f.basePort, l, i)))
			} else {
				ni.Addrs = append(ni.Addrs, netnsAddr(l, i))
			}
		}
		s.NodeInfo = append(s.NodeInfo, ni)
	}
	if err := s.save(); err != nil {
		return err
	}
	// From here on a failure undoes everything recorded so far.
	defer func() {
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster: up failed; removing what it made")
			if derr := teardown(s, f.grace, io.Discard); derr != nil {
				fmt.Fprintf(os.Stderr, "cluster: cleanup: %v\n", derr)
			}
		}
	}()
	if err = rrp.GenerateKey(s.Key); err != nil {
		return err
	}
	s.Resources.Files = append(s.Resources.Files, s.Key)
	for i := range s.NodeInfo {
		ni := &s.NodeInfo[i]
		for _, d := range []string{ni.Dir, filepath.Join(ni.Dir, "state")} {
			if err = os.Mkdir(d, 0o755); err != nil {
				return err
			}
			s.Resources.Files = append(s.Resources.Files, d)
		}
		if err = s.save(); err != nil {
			return err
		}
		if err = os.WriteFile(ni.Config, []byte(nodeConfig(s, ni)), 0o644); err != nil {
			return err
		}
	}
	if mode == modeNetns {
		if err = makeNetwork(s); err != nil {
			return err
		}
	}
	if err = s.save(); err != nil {
		return err
	}
	// Let totemd judge its configs before anything runs.
	for i := range s.NodeInfo {
		if err = checkConfig(s, &s.NodeInfo[i]); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "cluster: %d nodes, %d link(s), %s mode, profile %s, state in %s\n", n, f.links, mode, f.profile, dir)
	for _, ni := range s.NodeInfo {
		where := "127.0.0.1"
		if ni.Namespace != "" {
			where = "namespace " + ni.Namespace
		}
		fmt.Fprintf(stdout, "  node %d: %s, addrs %s, socket %s\n", ni.ID, where, strings.Join(ni.Addrs, " "), ni.Socket)
	}
	if f.noStart {
		return nil
	}
	ids, _ := nodeArgs(s, nil)
	return cmdStart(s, f, ids, false, stdout)
}

// checkPortsFree fails if a loopback port the cluster would use is taken.
func checkPortsFree(base, nodes, links int) error {
	for l := 0; l < links; l++ {
		for i := 1; i <= nodes; i++ {
			p := loopbackPort(base, l, i)
			c, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				return fmt.Errorf("UDP port %d on 127.0.0.1 is in use (another cluster?); choose another --base-port", p)
			}
			c.Close()
		}
	}
	return nil
}

// checkConfig runs totemd --check-config on node n's config (inside its
// namespace, where its addresses are local).
func checkConfig(s *State, n *NodeInfo) error {
	args := []string{s.Totemd, "--check-config", "--config", n.Config}
	if s.Mode == modeNetns {
		args = append([]string{"ip", "netns", "exec", n.Namespace}, args...)
	}
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("totemd rejects node %d's config:\n%s", n.ID, strings.TrimSpace(string(out)))
	}
	return nil
}

// cmdStart starts the given nodes; with strict, a node already running is
// an error, otherwise it is skipped.
func cmdStart(s *State, f flags, ids []int, strict bool, stdout io.Writer) error {
	var errs []error
	for _, id := range ids {
		n, _ := s.node(id)
		if pid := runningPID(n); pid != 0 {
			if strict {
				errs = append(errs, fmt.Errorf("node %d already runs (pid %d)", id, pid))
			}
			continue
		}
		pid, err := startNode(s, n, f.wait)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(stdout, "node %d: started, pid %d\n", id, pid)
	}
	return errors.Join(errs...)
}

// cmdStop signals the given nodes; with strict, a node not running is an
// error.
func cmdStop(s *State, f flags, ids []int, sig syscall.Signal, strict bool, stdout io.Writer) error {
	var errs []error
	for _, id := range ids {
		n, _ := s.node(id)
		pid := runningPID(n)
		err := stopNode(n, sig, f.grace)
		switch {
		case errors.Is(err, errNotRunning):
			if strict {
				errs = append(errs, fmt.Errorf("node %d is not running", id))
			}
		case err != nil:
			errs = append(errs, err)
		case sig == syscall.SIGKILL:
			fmt.Fprintf(stdout, "node %d: killed (pid %d)\n", id, pid)
		default:
			fmt.Fprintf(stdout, "node %d: stopped (pid %d)\n", id, pid)
		}
	}
	return errors.Join(errs...)
}

// cmdLink cuts or restores a node's link.
func cmdLink(s *State, pos []string, stdout io.Writer) error {
	ids, err := nodeArgs(s, pos[:1])
	if err != nil {
		return err
	}
	l, err := strconv.Atoi(pos[1])
	if err != nil {
		return fmt.Errorf("link %q: want a number 0..%d", pos[1], s.Links-1)
	}
	var up bool
	switch pos[2] {
	case "up":
		up = true
	case "down":
	default:
		return fmt.Errorf("link state %q: want down or up", pos[2])
	}
	if s.Mode == modeLoopback {
		return errors.New("link: not supported with --loopback: totemd offers no runtime link fault injection yet; use namespaces (run `cluster up` as root)")
	}
	n, _ := s.node(ids[0])
	if err := setLink(s, n, l, up); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "node %d link %d (%s): %s\n", n.ID, l, n.Veths[l], pos[2])
	return nil
}

// cmdExec runs a command as if on node I: in its namespace, with
// TOTEMD_SOCKET set. Its exit status becomes ours.
func cmdExec(s *State, nodeArg string, argv []string) (int, error) {
	ids, err := nodeArgs(s, []string{nodeArg})
	if err != nil {
		return 1, err
	}
	n, _ := s.node(ids[0])
	if s.Mode == modeNetns {
		argv = append([]string{"ip", "netns", "exec", n.Namespace}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), SocketEnv+"="+n.Socket, "CLUSTER_NODE="+strconv.Itoa(n.ID))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return 127, err
	}
	// Pass signals on, so that stopping `cluster exec` stops CMD.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		for sig := range sigs {
			cmd.Process.Signal(sig)
		}
	}()
	err = cmd.Wait()
	signal.Stop(sigs)
	close(sigs)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.ExitCode() >= 0 {
			return ee.ExitCode(), nil
		}
		return 128 + int(ee.Sys().(syscall.WaitStatus).Signal()), nil
	}
	if err != nil {
		return 127, err
	}
	return 0, nil
}

// nodeStatus is one node in `status --json`.
type nodeStatus struct {
	Node      int             `json:"node"`
	Running   bool            `json:"running"`
	PID       int             `json:"pid,omitempty"`
	Namespace string          `json:"namespace,omitempty"`
	Addrs     []string        `json:"addrs"`
	Socket    string          `json:"socket"`
	Log       string          `json:"log"`
	Status    json.RawMessage `json:"status,omitempty"` // totemctl status --json
	Error     string          `json:"error,omitempty"`  // why there is no status
}

// cmdStatus shows every node. Exit status 0 when every node runs and
// answers, 2 otherwise.
func cmdStatus(s *State, asJSON bool, stdout io.Writer) (int, error) {
	var out []nodeStatus
	code := 0
	for i := range s.NodeInfo {
		n := &s.NodeInfo[i]
		ns := nodeStatus{Node: n.ID, Namespace: n.Namespace, Addrs: n.Addrs, Socket: n.Socket, Log: n.Log}
		ns.PID = runningPID(n)
		ns.Running = ns.PID != 0
		var text string
		if ns.Running {
			args := []string{"--socket", n.Socket, "--timeout", "3s", "status"}
			if asJSON {
				args = append(args, "--json")
			}
			cmd := exec.Command(s.Totemctl, args...)
			var so, se bytes.Buffer
			cmd.Stdout, cmd.Stderr = &so, &se
			err := cmd.Run()
			text = strings.TrimRight(so.String(), "\n")
			if err != nil {
				ns.Error = strings.TrimSpace(se.String())
				if ns.Error == "" {
					ns.Error = err.Error()
				}
				code = 2
			}
			if asJSON && json.Valid(so.Bytes()) && so.Len() > 0 {
				ns.Status = json.RawMessage(bytes.TrimSpace(so.Bytes()))
			}
		} else {
			ns.Error = "not running"
			code = 2
		}
		out = append(out, ns)
		if !asJSON {
			where := ""
			if n.Namespace != "" {
				where = ", namespace " + n.Namespace
			}
			if ns.Running {
				fmt.Fprintf(stdout, "node %d: running, pid %d%s, %s\n", n.ID, ns.PID, where, strings.Join(n.Addrs, " "))
			} else {
				fmt.Fprintf(stdout, "node %d: stopped%s, %s (log %s)\n", n.ID, where, strings.Join(n.Addrs, " "), n.Log)
			}
			if text != "" {
				fmt.Fprintf(stdout, "  %s\n", strings.ReplaceAll(text, "\n", "\n  "))
			}
			if ns.Running && ns.Error != "" {
				fmt.Fprintf(stdout, "  totemctl status: %s\n", ns.Error)
			}
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return 1, err
		}
	}
	return code, nil
}

// cmdDown stops every daemon and removes everything `up` made.
func cmdDown(f flags, stdout io.Writer) error {
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(statePath(dir)); err != nil {
		fmt.Fprintf(stdout, "cluster: no cluster in %s; nothing to do\n", dir)
		return nil
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	s, err := loadState(dir)
	if err != nil {
		return err
	}
	return teardown(s, f.grace, stdout)
}

// teardown stops the daemons, removes the network and the files, and
// finally the state (kept when something could not be removed, so that
// `down` can be retried).
func teardown(s *State, grace time.Duration, stdout io.Writer) error {
	var errs []error
	for i := range s.NodeInfo {
		n := &s.NodeInfo[i]
		pid := runningPID(n)
		if err := stopNode(n, syscall.SIGTERM, grace); err != nil && !errors.Is(err, errNotRunning) {
			errs = append(errs, err)
		} else if err == nil {
			fmt.Fprintf(stdout, "node %d: stopped (pid %d)\n", n.ID, pid)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...) // never pull the network from under a live daemon
	}
	if s.Mode == modeNetns {
		if err := removeNetwork(s); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed namespaces %v, bridges %v, veths %v\n", s.Resources.Namespaces, s.Resources.Bridges, s.Resources.Veths)
	}
	// Node files the daemons and `cluster` made inside recorded directories.
	for i := range s.NodeInfo {
		n := &s.NodeInfo[i]
		for _, p := range []string{n.Config, n.Log, n.PIDFile, n.Socket} {
			os.Remove(p)
		}
		os.RemoveAll(filepath.Join(n.Dir, "state"))
	}
	for i := len(s.Resources.Files) - 1; i >= 0; i-- {
		p := s.Resources.Files[i]
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	os.Remove(statePath(s.dir))
	os.Remove(filepath.Join(s.dir, ".lock"))
	if s.MadeDir {
		if err := os.Remove(s.dir); err != nil {
			// Files someone else put there: theirs to remove.
			fmt.Fprintf(stdout, "cluster: down; kept %s, which holds files cluster did not make (%v)\n", s.dir, err)
			return nil
		}
	}
	fmt.Fprintf(stdout, "cluster: down, %s cleaned\n", s.dir)
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if regexp.MustCompile(`^[A-Za-z0-9_./:=+-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
