// Command totemdprof is totemd with CPU and heap profiling, for finding
// where the daemon spends its time under cpgbench. It runs the daemon
// package exactly as totemd does (--config FILE plus totemd's flags) and
// writes, when it stops (SIGTERM or SIGINT):
//
//	$TOTEMD_PROFILE_DIR/totemd-<nodeid>-<pid>.cpu.pprof
//	$TOTEMD_PROFILE_DIR/totemd-<nodeid>-<pid>.heap.pprof
//
// With the cluster tool: build it as "totemd" into a directory with
// totemctl, and start the cluster with --bin DIR and TOTEMD_PROFILE_DIR
// set; read the profiles with `go tool pprof -top bin/totemdprof FILE`.
// Without TOTEMD_PROFILE_DIR it profiles nothing.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/totem-gcs/totem/daemon"
)

// ProfileDirEnv names the directory the profiles go to.
const ProfileDirEnv = "TOTEMD_PROFILE_DIR"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	path := daemon.DefaultConfigPath
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			path = args[i+1]
		}
	}
	cfg := daemon.DefaultConfig()
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		var probs daemon.Problems
		var lines map[string]int
		cfg, lines, probs = daemon.LoadConfig(data)
		probs = append(probs, daemon.CheckConfig(&cfg, lines, daemon.LocalAddrs())...)
		if len(probs) > 0 {
			fmt.Fprintf(os.Stderr, "totemdprof: %s has problems:\n", path)
			for _, p := range probs {
				fmt.Fprintf(os.Stderr, "  %s\n", p)
			}
			return 1
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		fmt.Fprintf(os.Stderr, "totemdprof: %v\n", err)
		return 1
	}
	fl := pflag.NewFlagSet("totemdprof", pflag.ContinueOnError)
	fl.String("config", daemon.DefaultConfigPath, "config file (TOML)")
	check := fl.Bool("check-config", false, "check the config and exit")
	daemon.BindFlags(fl, &cfg)
	if err := fl.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "totemdprof: %v\n", err)
		return 1
	}
	if *check {
		fmt.Printf("%s: OK\n", path)
		return 0
	}

	dir := os.Getenv(ProfileDirEnv)
	var cpu *os.File
	base := ""
	if dir != "" {
		base = filepath.Join(dir, fmt.Sprintf("totemd-%d-%d", cfg.NodeID, os.Getpid()))
		cpu, err = os.Create(base + ".cpu.pprof")
		if err != nil {
			fmt.Fprintf(os.Stderr, "totemdprof: %v\n", err)
			return 1
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			fmt.Fprintf(os.Stderr, "totemdprof: %v\n", err)
			return 1
		}
	}

	log := daemon.NewLogger(cfg.Logging, os.Stderr)
	d, err := daemon.Start(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	runErr := d.Run(ctx)

	if cpu != nil {
		pprof.StopCPUProfile()
		cpu.Close()
		if h, err := os.Create(base + ".heap.pprof"); err == nil {
			runtime.GC()
			pprof.WriteHeapProfile(h)
			h.Close()
		}
		log.Info("profiles written", "base", base)
	}
	if runErr != nil {
		log.Error("stopped", "err", runErr)
		return 1
	}
	return 0
}
