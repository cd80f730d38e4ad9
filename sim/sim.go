// Package sim is the deterministic simulator of the Totem engine: N
// totem.Node engines on a simulated network (package netsim) with a
// virtual clock and an event queue (package sched), a fault schedule
// (loss, duplication, reordering, delay, asymmetric loss, partitions and
// heals, pauses, crashes and restarts, graceful leaves), an application
// load of agreed and safe messages of many sizes, and the extended virtual
// synchrony checker (package evs) over every node's log.
//
// Everything random is drawn from one PCG generator seeded from the seed,
// and events at the same virtual time run in the order they were
// scheduled, so one seed is one reproducible schedule. Nodes with even IDs
// are driven as totemd drives its engine (a frame or proposal is handed
// over before the tick, so the engine sees it with the time of its
// previous tick), the others are ticked first (Options.TickFirst ticks
// every node first):
//
//	res := sim.Run(sim.Options{Seed: 42})
//	if res.Failed() {
//		fmt.Println(res.Violations[0], "replay:", res.ReplayCommand())
//	}
//
// A run has three phases: chaos (faults and load), calm (faults stop, the
// network heals, some crashed nodes restart, load continues briefly) and
// settle (no new load; the run ends once every live node is in one ring of
// all live nodes with everything delivered; failing to get there within
// the SettleLimit and HardLimit bounds is a liveness violation).
//
// Reading a failure: each violation names the property (see package evs),
// the processes ("n3" is node 3, "n3.i1" its first restart), the messages
// ("m[n3#17]" is the 18th message proposed by n3) and the configuration
// ("regular 1.12{1 2 3}" is ring 1.12 with members 1, 2 and 3; "trans
// 1.12{1 2}" the transitional configuration of members 1 and 2 before it).
// Replaying the seed with a trace (totemsim --seed S --trace) prints every
// event with its virtual time and process: starts, crashes, partitions and
// other faults, frames sent and received (decoded), proposals,
// configurations installed, deliveries, and each violation where it was
// found; grep the trace for the message or ring named in the violation.
package sim

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/totem-gcs/totem/sim/evs"
	"github.com/totem-gcs/totem/totem"
)

// Engine is what the simulator drives: a *totem.Node, or a stand-in.
type Engine interface {
	Tick(now time.Duration)
	Step(frame []byte) error
	Propose(payload []byte, g totem.Guarantee) error
	Leave()
	Ready() totem.Ready
	Status() totem.Status
}

// EngineFactory builds one node's engine from its configuration.
type EngineFactory func(cfg totem.Config) (Engine, error)

// TotemEngine builds a real totem.Node.
func TotemEngine(cfg totem.Config) (Engine, error) {
	n, err := totem.NewNode(cfg)
	if err != nil {
		return nil, err
	}
	return n, nil
}

// Properties the simulator reports itself, beside the checker's.
const (
	// EngineError: the engine panicked, returned an unexpected error, or
	// stopped the virtual clock (asked to be ticked at the same instant
	// forever).
	EngineError evs.Property = "engine-error"
	// NotSettled: after the faults stopped, the live nodes did not reach
	// one ring of all of them with every accepted message delivered within
	// the bounds of Options.SettleLimit and Options.HardLimit.
	NotSettled evs.Property = "not-settled"
)

// Options choose one run. Only Seed is required.
type Options struct {
	// Seed selects the schedule.
	Seed uint64
	// Nodes is the number of nodes; zero draws 3..9 from the seed.
	Nodes int
	// Break is passed to every engine as totem.Config.Break: a rule the
	// engine deliberately breaks, so the checker can be seen to fail.
	Break string
	// Trace, if set, receives a readable event trace.
	Trace io.Writer
	// DescribeFrame, if set, names a frame in the trace (for example its
	// packet type, decoded); by default frames are shown by size.
	DescribeFrame func(frame []byte) string
	// Engine builds the engines (default TotemEngine).
	Engine EngineFactory
	// NoFaults runs the load on a network that only delays packets.
	NoFaults bool
	// TickFirst ticks every engine before handing it a frame or a
	// proposal. By default nodes with even IDs get the frame or proposal
	// first and the tick after, as totemd does (see stepFirst).
	TickFirst bool
	// AnyFrameSize accepts frames over the engine's NetMTU (for stand-in
	// engines that do not fragment); otherwise they are EngineErrors.
	AnyFrameSize bool
	// Chaos is the length of the fault phase (default drawn 1-2 s).
	Chaos time.Duration
	// SettleLimit bounds how long, after the load stops, the nodes may go
	// without delivering a message or ordering a frame before they have
	// settled into one ring of all live nodes with everything delivered
	// (default 3 s); HardLimit bounds the whole settle phase (default
	// 120 s: a slow ring with a small window can take half a minute to
	// drain its backlog). Missing either is a NotSettled violation.
	SettleLimit, HardLimit time.Duration
	// Command is the program name used in ReplayCommand (default
	// "totemsim").
	Command string
}

// Result is the outcome of one run.
type Result struct {
	Seed  uint64
	Nodes int
	// Violations found (at most evs.DefaultLimit recorded); Count is the
	// total.
	Violations []evs.Violation
	Count      int
	// Delivered and Configs count messages delivered and configurations
	// installed, summed over processes; Proposed counts messages accepted
	// by Propose.
	Delivered, Configs, Proposed int
	// Crashes and Restarts count node crashes and restarts.
	Crashes, Restarts int
	// End is the virtual time at which the run ended; Events the number of
	// events processed.
	End    time.Duration
	Events int

	opts Options
}

// Failed reports whether any violation was found.
func (r Result) Failed() bool { return r.Count > 0 }

// ReplayCommand returns the command line that replays this run with a
// trace.
func (r Result) ReplayCommand() string {
	cmd := r.opts.Command
	if cmd == "" {
		cmd = "totemsim"
	}
	parts := []string{cmd, fmt.Sprintf("--seed %d", r.Seed)}
	if r.opts.Nodes != 0 {
		parts = append(parts, fmt.Sprintf("--nodes %d", r.opts.Nodes))
	}
	if r.opts.Break != "" {
		parts = append(parts, "--break "+r.opts.Break)
	}
	if r.opts.NoFaults {
		parts = append(parts, "--no-faults")
	}
	if r.opts.Chaos != 0 {
		parts = append(parts, "--chaos "+r.opts.Chaos.String())
	}
	parts = append(parts, "--trace")
	return strings.Join(parts, " ")
}

// Run executes one seed and returns its result. It never panics on engine
// failures: a panicking engine is reported as an EngineError violation.
func Run(opts Options) Result {
	s := newSim(opts)
	s.run()
	return s.result()
}
