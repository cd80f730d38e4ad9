// Command totemd is the Totem group communication daemon: one per node. It
// forms a ring with the other nodes of its config, orders messages with
// the Totem single-ring protocol and serves closed process groups to local
// clients on a Unix socket.
//
// Usage:
//
//	totemd [--config FILE] [flags]     run
//	totemd --check-config [...]        report every config problem and exit
//
// Every config file option also has a flag (see totemd --help); flags win
// over the file. SIGTERM or SIGINT leave the ring gracefully.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/totem-gcs/totem/daemon"
	"github.com/totem-gcs/totem/rrp"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// configPath finds --config in args before the full flag parse.
func configPath(args []string) (string, bool) {
	for i, a := range args {
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v, true
		}
		if a == "--config" && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return daemon.DefaultConfigPath, false
}

// gcPercent is the daemon's GOGC unless the environment sets one.
const gcPercent = 400

func run(args []string, stdout, stderr io.Writer) int {
	path, explicit := configPath(args)
	cfg := daemon.DefaultConfig()
	var lines map[string]int
	var probs daemon.Problems
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		cfg, lines, probs = daemon.LoadConfig(data)
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		path = ""
	default:
		fmt.Fprintf(stderr, "totemd: %v\n", err)
		return 1
	}

	fs := pflag.NewFlagSet("totemd", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.String("config", daemon.DefaultConfigPath, "config file (TOML)")
	check := fs.Bool("check-config", false, "check the config and the key file, report every problem with its line and a fix, and exit (0: fine, 1: problems)")
	version := fs.Bool("version", false, "print the version and exit")
	cpuprofile := fs.String("cpuprofile", "", "debug: write a CPU profile to this file until exit")
	memprofile := fs.String("memprofile", "", "debug: write a heap profile to this file at exit")
	pprofAddr := fs.String("pprof", "", "debug: serve net/http/pprof on this address (loopback only, e.g. 127.0.0.1:6060)")
	daemon.BindFlags(fs, &cfg)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: totemd [--config FILE] [flags]\n\nThe Totem group communication daemon. Every option of the config file has a flag;\nflags win over the file. Durations are milliseconds or strings like 250ms.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "totemd: %v\n", err)
		return 1
	}
	if *version {
		fmt.Fprintln(stdout, "totemd", daemon.Version)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "totemd: unexpected arguments %q\n", fs.Args())
		return 1
	}
	// Value problems are meaningful only once the file parsed.
	if !(len(probs) == 1 && strings.HasPrefix(probs[0].Message, "syntax error")) {
		probs = append(probs, daemon.CheckConfig(&cfg, lines, daemon.LocalAddrs())...)
		if _, err := rrp.ReadKey(cfg.KeyFile); err != nil {
			probs = append(probs, daemon.Problem{Key: "keyfile", Message: err.Error(),
				Fix: fmt.Sprintf("create it with `totemctl keygen %s` on one node and copy it to the others", cfg.KeyFile)})
		}
	}
	where := path
	if where == "" {
		where = "(no config file)"
	}
	if *check {
		if len(probs) == 0 {
			id, _ := cfg.ResolveNodeID(daemon.LocalAddrs())
			fmt.Fprintf(stdout, "%s: OK (node %d of %d, transport %s, profile %s, socket %s)\n", where, id, len(cfg.Nodes), cfg.Transport, cfg.Totem.Profile, cfg.IPC.Socket)
			return 0
		}
		sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
		for _, p := range probs {
			fmt.Fprintf(stdout, "%s: %s\n", where, p)
		}
		fmt.Fprintf(stdout, "%d problem(s)\n", len(probs))
		return 1
	}
	if len(probs) > 0 {
		fmt.Fprintf(stderr, "totemd: %s has problems (see totemd --check-config):\n", where)
		for _, p := range probs {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		return 1
	}

	log := daemon.NewLogger(cfg.Logging, stderr)
	if os.Getenv("GOMAXPROCS") == "" && cfg.GoMaxProcs > 0 {
		runtime.GOMAXPROCS(cfg.GoMaxProcs)
	}
	if os.Getenv("GOGC") == "" {
		// The live heap is small (1 MiB) and large messages pass through
		// fast: at Go's default the collector ran every 7-10 ms on the
		// loop's one thread. 400 moved 64 KiB messages 1.4x faster (16
		// KiB 1.15x) for a peak of 26-44 MiB instead of 15-25.
		debug.SetGCPercent(gcPercent)
	}
	if cfg.SchedRR {
		if err := daemon.SetRealtime(); err != nil {
			log.Warn("sched_rr: real-time scheduling is not (fully) in force, so a busy machine may delay the token (it needs root)", "err", err)
		} else {
			log.Info("sched_rr: running under SCHED_RR with memory locked", "priority", daemon.RealtimePriority)
		}
	}
	stopProfiles, err := startProfiles(*cpuprofile, *memprofile, *pprofAddr, log)
	if err != nil {
		log.Error("profiling", "err", err)
		return 1
	}
	defer stopProfiles()
	d, err := daemon.Start(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := d.Run(ctx); err != nil {
		log.Error("stopped", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
