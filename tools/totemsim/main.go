// Command totemsim runs the deterministic Totem simulator over many seeds
// and checks extended virtual synchrony on each run.
//
//	totemsim --seeds 300                 # seeds 1..300 on all cores
//	totemsim --seeds 1000 --start 5000   # seeds 5000..5999
//	totemsim --seed 42 --trace           # replay one seed with a trace
//	totemsim --seeds 50 --break safe-early   # the checker must fail
//
// It ends with one line on stdout, "seeds=N violations=V delivered=D
// configs=C", and exits 1 if any seed broke a rule, after printing for
// each failing seed its violations and the command that replays it.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/totem-gcs/totem/sim"
	"github.com/totem-gcs/totem/totem"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// A seed's heap is small and short-lived: collecting less often
		// runs about 30% more seeds per second (40 seeds: 7.5 s at the
		// default of 100, 5.2 s at 400).
		debug.SetGCPercent(400)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type flags struct {
	seeds, nodes, workers, show int
	start, seed                 uint64
	trace, noFaults             bool
	breakRule                   string
	chaos                       time.Duration
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("totemsim", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var f flags
	fs.IntVar(&f.seeds, "seeds", 0, "number of seeds to run (seeds start..start+seeds-1)")
	fs.Uint64Var(&f.start, "start", 1, "first seed")
	fs.Uint64Var(&f.seed, "seed", 0, "run this one seed (with --trace: print its event trace)")
	fs.IntVar(&f.nodes, "nodes", 0, "number of nodes (default: drawn from each seed in 3..9)")
	fs.BoolVar(&f.trace, "trace", false, "print a readable event trace on stdout (single seed)")
	fs.StringVar(&f.breakRule, "break", "", "make the engine break a rule on purpose: safe-early or skip-recovery")
	fs.IntVar(&f.workers, "workers", runtime.GOMAXPROCS(0), "seeds run in parallel")
	fs.DurationVar(&f.chaos, "chaos", 0, "length of the fault phase (default: drawn from each seed, 1-2s)")
	fs.BoolVar(&f.noFaults, "no-faults", false, "run the load without faults (only delays)")
	fs.IntVar(&f.show, "show", 3, "violations printed per failing seed")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: totemsim --seeds N [--start S] [--nodes K] | --seed S [--trace]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		fmt.Fprintf(stderr, "totemsim: %v\n", err)
		return 2
	}
	single := fs.Changed("seed")
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "totemsim: unexpected arguments %q\n", fs.Args())
		return 2
	case single && fs.Changed("seeds"):
		fmt.Fprintln(stderr, "totemsim: give --seed or --seeds, not both")
		return 2
	case !single && f.seeds <= 0:
		fmt.Fprintln(stderr, "totemsim: give --seeds N (N > 0) or --seed S")
		fs.Usage()
		return 2
	case f.trace && !single && f.seeds != 1:
		fmt.Fprintln(stderr, "totemsim: --trace needs a single seed (--seed S)")
		return 2
	case f.nodes < 0 || f.nodes > 16:
		fmt.Fprintln(stderr, "totemsim: --nodes must be within 1..16")
		return 2
	case f.breakRule != "" && f.breakRule != "safe-early" && f.breakRule != "skip-recovery":
		fmt.Fprintf(stderr, "totemsim: unknown --break rule %q (want safe-early or skip-recovery)\n", f.breakRule)
		return 2
	case f.workers < 1:
		f.workers = 1
	}
	first, count := f.start, f.seeds
	if single {
		first, count = f.seed, 1
	}
	opts := func(seed uint64) sim.Options {
		o := sim.Options{Seed: seed, Nodes: f.nodes, Break: f.breakRule, Chaos: f.chaos, NoFaults: f.noFaults,
			DescribeFrame: totem.Describe}
		if f.trace {
			o.Trace = stdout
		}
		return o
	}
	results := runSeeds(first, count, f.workers, opts, newProgress(stderr, count))

	var violations, delivered, configs int
	var failed []sim.Result
	for _, r := range results {
		violations += r.Count
		delivered += r.Delivered
		configs += r.Configs
		if r.Failed() {
			failed = append(failed, r)
		}
	}
	for _, r := range failed {
		fmt.Fprintf(stdout, "FAIL seed %d (%d nodes): %d violations\n", r.Seed, r.Nodes, r.Count)
		for i, v := range r.Violations {
			if i == f.show {
				fmt.Fprintf(stdout, "  ...\n")
				break
			}
			fmt.Fprintf(stdout, "  %v\n", v)
		}
		fmt.Fprintf(stdout, "  replay: %s\n", r.ReplayCommand())
	}
	if len(failed) > 0 {
		fmt.Fprintf(stdout, "%d of %d seeds failed (from the source tree: go run ./tools/totemsim ...)\n", len(failed), count)
	}
	fmt.Fprintf(stdout, "seeds=%d violations=%d delivered=%d configs=%d\n", count, violations, delivered, configs)
	if violations > 0 {
		return 1
	}
	return 0
}

// runSeeds runs seeds first..first+count-1 on workers goroutines (each
// seed single-threaded) and returns the results in seed order.
func runSeeds(first uint64, count, workers int, opts func(uint64) sim.Options, p *progress) []sim.Result {
	seeds := make(chan uint64)
	out := make(chan sim.Result)
	var wg sync.WaitGroup
	for range min(workers, count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range seeds {
				out <- sim.Run(opts(s))
			}
		}()
	}
	go func() {
		for i := range count {
			seeds <- first + uint64(i)
		}
		close(seeds)
		wg.Wait()
		close(out)
	}()
	results := make([]sim.Result, 0, count)
	for r := range out {
		results = append(results, r)
		p.update(r)
	}
	p.done()
	slices.SortFunc(results, func(a, b sim.Result) int {
		if a.Seed < b.Seed {
			return -1
		}
		return 1
	})
	return results
}
