package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/totem-gcs/totem/membership"
	"github.com/totem-gcs/totem/sim/evs"
	"github.com/totem-gcs/totem/sim/netsim"
	"github.com/totem-gcs/totem/sim/sched"
	"github.com/totem-gcs/totem/totem"
)

type evKind uint8

const (
	evStart evKind = iota + 1
	evTick
	evFrame
	evPropose
	evFault
	evRestart
	evRestoreLoss
	evCalm
	evStopLoad
	evSettleCheck
)

type event struct {
	kind evKind
	node totem.NodeID
	inc  uint32
	gen  uint64
	from totem.NodeID
	data []byte
}

// node is the simulator's side of one node: its engine (nil while down),
// its "disk" (the persisted ring sequence number) and its load.
type node struct {
	id      totem.NodeID
	inc     uint32
	started bool
	eng     Engine
	disk    uint64

	tickSet bool
	tickAt  time.Duration
	tickGen uint64

	pausedUntil time.Duration

	nextSeq   uint64
	pending   []byte
	pendingID evs.MsgID
	pendingG  totem.Guarantee
	proposed  int
	selfDeliv int
	ringDeliv int // messages delivered since the last regular configuration
	// Counts for the current incarnation, compared with the engine's Stats.
	delivered, regulars, refused int
	loadActive                   bool
}

func (n *node) proc() evs.ProcID { return evs.ProcID{Node: n.id, Inc: n.inc} }
func (n *node) up() bool         { return n.eng != nil }

type simulator struct {
	opts  Options
	rng   *rand.Rand
	net   *netsim.Network
	q     sched.Queue[event]
	chk   *evs.Checker
	nodes []*node // in id order
	byID  map[totem.NodeID]*node
	ids   []totem.NodeID
	now   time.Duration

	// Per-seed draws.
	baseNet      netsim.Params
	meanInterval time.Duration
	maxBurst     int
	queueBytes   int
	netMTU       int
	window       int
	maxMessages  int
	chaosEnd     time.Duration
	loadEnd      time.Duration
	lastProgress time.Duration // last delivery or ordered frame anywhere
	progressMark uint64        // sum of the live nodes' aru and high seq at the last check

	loadStopped bool
	calm        bool
	settledAt   time.Duration
	finished    bool
	settled     bool

	proposed, crashes, restarts int
	events                      int
	sameTime                    int
	reported                    int
	tr                          tracer
}

const (
	maxEvents   = 20_000_000
	maxSameTime = 200_000
)

func newSim(opts Options) *simulator {
	if opts.Engine == nil {
		opts.Engine = TotemEngine
	}
	if opts.SettleLimit == 0 {
		opts.SettleLimit = 3 * time.Second
	}
	if opts.HardLimit == 0 {
		opts.HardLimit = 120 * time.Second
	}
	s := &simulator{opts: opts, chk: evs.New(), tr: tracer{w: opts.Trace, describe: opts.DescribeFrame}}
	s.rng = rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed_70e3_5100_0001))
	return s
}

func (s *simulator) uniform(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
}

func (s *simulator) exp(mean time.Duration) time.Duration {
	return time.Duration(s.rng.ExpFloat64() * float64(mean))
}

// setup draws the seed's parameters and schedules the first events.
func (s *simulator) setup() error {
	n := s.opts.Nodes
	drawn := 3 + s.rng.IntN(7)
	if n == 0 {
		n = drawn
	}
	if n < 1 || n > 64 {
		return fmt.Errorf("sim: %d nodes; want 1..64", n)
	}
	// Node ids are 1..n, or for a third of the seeds n scattered ids.
	s.byID = make(map[totem.NodeID]*node, n)
	scattered := !s.opts.NoFaults && s.rng.IntN(3) == 0
	for i := 1; len(s.ids) < n; i++ {
		id := totem.NodeID(i)
		if scattered {
			id = totem.NodeID(1 + s.rng.IntN(999))
		}
		if s.byID[id] == nil {
			s.byID[id] = &node{id: id}
			s.ids = append(s.ids, id)
		}
	}
	slices.Sort(s.ids)
	for _, id := range s.ids {
		s.nodes = append(s.nodes, s.byID[id])
	}
	// Delays of 0.1-2 ms against a 50 ms token; one seed in eight has a
	// slow network (1-12 ms) that comes close to the token timeouts.
	s.baseNet = netsim.Params{MinDelay: 100 * time.Microsecond, MaxDelay: s.uniform(200*time.Microsecond, 2*time.Millisecond)}
	if !s.opts.NoFaults && s.rng.IntN(8) == 0 {
		s.baseNet = netsim.Params{MinDelay: time.Millisecond, MaxDelay: s.uniform(4*time.Millisecond, 12*time.Millisecond)}
	}
	if !s.opts.NoFaults {
		s.baseNet.Loss = []float64{0, 0, 0.001, 0.01, 0.03}[s.rng.IntN(5)]
		s.baseNet.Dup = []float64{0, 0.001, 0.01, 0.03}[s.rng.IntN(4)]
		s.baseNet.Reorder = []float64{0, 0.01, 0.05, 0.2}[s.rng.IntN(4)]
		s.baseNet.ReorderDelay = s.uniform(time.Millisecond, 5*time.Millisecond)
	}
	net, err := netsim.New(s.rng, s.baseNet)
	if err != nil {
		return err
	}
	s.net = net
	// The offered load is about the same whatever the ring size.
	s.meanInterval = s.uniform(2*time.Millisecond, 8*time.Millisecond) * time.Duration(n)
	s.maxBurst = 1 + s.rng.IntN(6)
	s.queueBytes = 4 * MaxPayload
	s.netMTU = totem.DefaultNetMTU
	if !s.opts.NoFaults && s.rng.IntN(4) == 0 {
		s.netMTU = totem.MinNetMTU + s.rng.IntN(9000-totem.MinNetMTU)
	}
	if !s.opts.NoFaults && s.rng.IntN(5) == 0 {
		// A flood: proposals faster than the ring can take them, into a
		// short queue, so that back-pressure is met and retried.
		s.meanInterval = s.uniform(500*time.Microsecond, 2*time.Millisecond) * time.Duration(n)
		s.maxBurst = 10 + s.rng.IntN(20)
		s.queueBytes = MaxPayload
	}
	s.window, s.maxMessages = totem.DefaultWindowSize, totem.DefaultMaxMessages
	if s.rng.IntN(3) == 0 {
		s.window = 8 + s.rng.IntN(40)
		s.maxMessages = 1 + s.rng.IntN(min(s.window, 17))
	}
	chaos := s.opts.Chaos
	if chaos == 0 {
		chaos = s.uniform(time.Second, 2*time.Second)
	}
	s.chaosEnd = chaos
	s.loadEnd = s.chaosEnd + 300*time.Millisecond

	s.tr.printf(0, "", "seed %d: %d nodes %v, delay %v-%v, loss %.3f dup %.3f reorder %.2f(+%v), load every ~%v in bursts of <=%d, queue %dKiB, mtu %d, window %d/%d, token %v, chaos until %v",
		s.opts.Seed, n, totem.NodeSet(s.ids), s.baseNet.MinDelay, s.baseNet.MaxDelay, s.baseNet.Loss, s.baseNet.Dup, s.baseNet.Reorder, s.baseNet.ReorderDelay,
		s.meanInterval, s.maxBurst, s.queueBytes>>10, s.netMTU, s.window, s.maxMessages, s.config(s.nodes[0]).Token, s.chaosEnd)
	for _, nd := range s.nodes {
		at := s.uniform(0, 20*time.Millisecond)
		if !s.opts.NoFaults && s.rng.IntN(6) == 0 {
			at = s.uniform(0, s.chaosEnd) // a late joiner
		}
		s.q.Push(at, event{kind: evStart, node: nd.id})
	}
	if !s.opts.NoFaults {
		s.q.Push(s.uniform(50*time.Millisecond, 200*time.Millisecond), event{kind: evFault})
	}
	s.q.Push(s.chaosEnd, event{kind: evCalm})
	s.q.Push(s.loadEnd, event{kind: evStopLoad})
	return nil
}

func (s *simulator) run() {
	defer func() {
		if r := recover(); r != nil {
			stack := string(debug.Stack())
			if i := strings.Index(stack, "panic("); i >= 0 {
				stack = stack[i:]
			}
			lines := strings.Split(stack, "\n")
			if len(lines) > 14 {
				lines = lines[:14]
			}
			s.engineError(nil, fmt.Sprintf("panic: %v\n%s", r, strings.Join(lines, "\n")))
			s.chk.Finish(false)
		}
	}()
	if err := s.setup(); err != nil {
		s.engineError(nil, err.Error())
		return
	}
	for !s.finished {
		at, ev, ok := s.q.Pop()
		if !ok {
			break
		}
		if at == s.now {
			s.sameTime++
			if s.sameTime > maxSameTime {
				s.engineError(nil, fmt.Sprintf("virtual time stuck at %v after %d events at that instant (a deadline that never moves?)", at, s.sameTime))
				break
			}
		} else {
			s.sameTime = 0
		}
		s.now = at
		s.chk.SetTime(at)
		s.events++
		if s.events > maxEvents {
			s.engineError(nil, fmt.Sprintf("run exceeded %d events", maxEvents))
			break
		}
		s.handle(ev)
		s.flushViolations()
	}
	s.checkStats()
	s.chk.Finish(s.calm && s.settled)
	s.flushViolations()
}

func (s *simulator) result() Result {
	return Result{
		Seed: s.opts.Seed, Nodes: len(s.nodes),
		Violations: s.chk.Violations(), Count: s.chk.Count(),
		Delivered: s.chk.Delivered(), Configs: s.chk.Configs(), Proposed: s.proposed,
		Crashes: s.crashes, Restarts: s.restarts,
		End: s.now, Events: s.events, opts: s.opts,
	}
}

func (s *simulator) engineError(n *node, what string) {
	v := evs.Violation{Property: EngineError, Detail: what}
	if n != nil {
		v.Procs = []evs.ProcID{n.proc()}
	}
	s.chk.Report(v)
}

func (s *simulator) flushViolations() {
	vs := s.chk.Violations()
	for ; s.reported < len(vs); s.reported++ {
		s.tr.printf(s.now, "", "VIOLATION %v", vs[s.reported])
	}
}

func (s *simulator) node(id totem.NodeID) *node { return s.byID[id] }

func (s *simulator) handle(ev event) {
	switch ev.kind {
	case evStart:
		if n := s.node(ev.node); !n.started {
			s.start(n)
		}
	case evRestart:
		if n := s.node(ev.node); !n.up() && n.inc == ev.inc {
			s.start(n)
		}
	case evTick:
		n := s.node(ev.node)
		if !n.up() || n.inc != ev.inc || n.tickGen != ev.gen {
			return
		}
		if s.deferIfPaused(n, ev) {
			return
		}
		n.tickSet = false
		n.eng.Tick(s.now)
		s.drain(n)
	case evFrame:
		n := s.node(ev.node)
		if !n.up() {
			if s.tr.on() {
				s.tr.printf(s.now, procName(n), "drop %s from n%d: node down", s.tr.frame(ev.data), ev.from)
			}
			return
		}
		if s.deferIfPaused(n, ev) {
			return
		}
		if s.tr.on() {
			s.tr.printf(s.now, procName(n), "recv %s from n%d", s.tr.frame(ev.data), ev.from)
		}
		if !s.stepFirst(n) {
			n.eng.Tick(s.now)
		}
		if err := n.eng.Step(ev.data); err != nil {
			if errors.Is(err, totem.ErrMalformed) {
				s.engineError(n, fmt.Sprintf("%v rejected a frame from n%d that its peer's engine produced: %v", n.proc(), ev.from, err))
			} else {
				if s.tr.on() {
					s.tr.printf(s.now, procName(n), "step: %v", err)
				}
			}
		}
		if s.stepFirst(n) {
			n.eng.Tick(s.now)
		}
		s.drain(n)
	case evPropose:
		n := s.node(ev.node)
		if !n.up() || n.inc != ev.inc {
			return
		}
		if s.deferIfPaused(n, ev) {
			return
		}
		s.propose(n)
	case evFault:
		s.fault()
		if next := s.now + s.uniform(10*time.Millisecond, 30*time.Millisecond) + s.exp(150*time.Millisecond); next < s.chaosEnd {
			s.q.Push(next, event{kind: evFault})
		}
	case evRestoreLoss:
		if !s.calm {
			p := s.net.Params()
			p.Loss = s.baseNet.Loss
			s.net.SetParams(p)
			s.tr.printf(s.now, "", "network loss back to %.3f", p.Loss)
		}
	case evCalm:
		s.enterCalm()
	case evStopLoad:
		s.loadStopped = true
		s.tr.printf(s.now, "", "load stops; the live nodes must now settle")
		s.q.Push(s.now+20*time.Millisecond, event{kind: evSettleCheck})
	case evSettleCheck:
		s.settleCheck()
	}
}

// deferIfPaused re-queues an event for a paused node (a process stalled by
// its scheduler: its packets wait in the socket buffer).
func (s *simulator) deferIfPaused(n *node, ev event) bool {
	if s.now >= n.pausedUntil {
		return false
	}
	s.q.Push(n.pausedUntil, ev)
	return true
}

func procName(n *node) string { return n.proc().String() }

// simConfig is the base engine configuration of the simulated nodes: a
// short token that makes membership changes frequent, fixed here (rather
// than taken from a profile) so that a seed replays the same schedule
// whatever the daemon's profiles become.
func simConfig(id totem.NodeID) totem.Config {
	return totem.Config{
		NodeID:                     id,
		Token:                      50 * time.Millisecond,
		TokenCoefficient:           -1, // none
		TokenRetransmitsBeforeLoss: 3,
		Join:                       10 * time.Millisecond,
		Consensus:                  60 * time.Millisecond,
		Merge:                      50 * time.Millisecond,
	}.WithDefaults()
}

// config returns the engine configuration of node n.
func (s *simulator) config(n *node) totem.Config {
	cfg := simConfig(n.id)
	// The timeouts assume a token rotation well under the 50 ms token
	// timeout; on a slow simulated network stretch every timeout
	// so that a rotation (n hops of the worst delay) stays a third of it.
	if f := float64(3*len(s.nodes)) * float64(s.worstDelay()) / float64(cfg.Token); f > 1 {
		stretch := func(d time.Duration) time.Duration { return time.Duration(float64(d) * f) }
		cfg.Token, cfg.Join, cfg.Consensus, cfg.Merge = stretch(cfg.Token), stretch(cfg.Join), stretch(cfg.Consensus), stretch(cfg.Merge)
		cfg.Hold = 0
		cfg = cfg.WithDefaults()
	}
	cfg.RingSeq = n.disk
	cfg.Nodes = len(s.nodes)
	cfg.WindowSize = s.window
	cfg.MaxMessages = s.maxMessages
	cfg.MaxMessageSize = MaxPayload
	cfg.MaxQueueBytes = s.queueBytes
	cfg.NetMTU = s.netMTU
	cfg.Break = s.opts.Break
	return cfg
}

// worstDelay is the longest ordinary one-way delay of the network.
func (s *simulator) worstDelay() time.Duration {
	d := s.baseNet.MaxDelay
	if s.baseNet.Reorder > 0 {
		d += s.baseNet.ReorderDelay
	}
	return d
}

func (s *simulator) start(n *node) {
	if n.started {
		n.inc++
		s.restarts++
	}
	n.started = true
	eng, err := s.opts.Engine(s.config(n))
	if err != nil {
		s.engineError(n, fmt.Sprintf("cannot create engine: %v", err))
		return
	}
	n.eng = eng
	n.tickSet, n.pausedUntil = false, 0
	n.nextSeq, n.pending, n.proposed, n.selfDeliv, n.ringDeliv = 0, nil, 0, 0, 0
	n.delivered, n.regulars, n.refused = 0, 0, 0
	s.chk.Start(n.proc())
	if s.tr.on() {
		s.tr.printf(s.now, procName(n), "start (ring seq on disk %d)", n.disk)
	}
	eng.Tick(s.now)
	s.drain(n)
	if !s.loadStopped {
		n.loadActive = true
		s.q.Push(s.now+s.exp(s.meanInterval), event{kind: evPropose, node: n.id, inc: n.inc})
	}
}

func (s *simulator) crash(n *node, how string) {
	if s.tr.on() {
		s.tr.printf(s.now, procName(n), "%s", how)
	}
	s.chk.Crash(n.proc())
	n.eng = nil
	n.tickSet = false
	n.tickGen++
	n.pending = nil
	s.crashes++
}

// drain takes the engine's output: persists the ring sequence, sends the
// frames, hands the deliveries to the checker, schedules the next tick.
func (s *simulator) drain(n *node) {
	rd := n.eng.Ready()
	if rd.RingSeq != 0 {
		if rd.RingSeq < n.disk {
			s.engineError(n, fmt.Sprintf("%v asked to persist ring seq %d below the %d it persisted before", n.proc(), rd.RingSeq, n.disk))
		}
		n.disk = rd.RingSeq
	}
	var arrivals []time.Duration
	for _, f := range rd.Frames {
		if len(f.Data) > s.netMTU && !s.opts.AnyFrameSize {
			s.engineError(n, fmt.Sprintf("%v produced a %d-byte frame, over its NetMTU of %d: %s",
				n.proc(), len(f.Data), s.netMTU, s.tr.frame(f.Data)))
		}
		data := slices.Clone(f.Data)
		if f.To != 0 {
			arrivals = s.sendTo(n, f.To, data, arrivals[:0], false)
			continue
		}
		if s.tr.on() {
			s.tr.printf(s.now, procName(n), "send %s to all", s.tr.frame(data))
		}
		for _, to := range s.ids {
			if to != n.id {
				arrivals = s.sendTo(n, to, data, arrivals[:0], true)
			}
		}
	}
	for _, d := range rd.Deliveries {
		s.deliver(n, d)
	}
	if rd.Deadline != 0 {
		at := max(rd.Deadline, s.now)
		if !n.tickSet || at != n.tickAt {
			n.tickGen++
			n.tickSet, n.tickAt = true, at
			s.q.Push(at, event{kind: evTick, node: n.id, inc: n.inc, gen: n.tickGen})
		}
	}
}

// sendTo puts one copy of a frame on the network to node to; for a
// multicast copy (multi) the trace shows only losses and duplicates.
func (s *simulator) sendTo(n *node, to totem.NodeID, data []byte, arrivals []time.Duration, multi bool) []time.Duration {
	if s.byID[to] == nil {
		s.engineError(n, fmt.Sprintf("%v sent a frame to unknown node %d", n.proc(), to))
		return arrivals
	}
	arrivals, fate := s.net.Send(s.now, n.id, to, arrivals)
	if fate != netsim.Delivered {
		if multi {
			if s.tr.on() {
				s.tr.printf(s.now, procName(n), "  copy to n%d %v", to, fate)
			}
		} else {
			if s.tr.on() {
				s.tr.printf(s.now, procName(n), "send %s to n%d: %v", s.tr.frame(data), to, fate)
			}
		}
		return arrivals
	}
	for _, at := range arrivals {
		s.q.Push(at, event{kind: evFrame, node: to, from: n.id, data: data})
	}
	switch {
	case !s.tr.on():
	case multi && len(arrivals) > 1:
		s.tr.printf(s.now, procName(n), "  copy to n%d duplicated", to)
	case !multi && len(arrivals) > 1:
		s.tr.printf(s.now, procName(n), "send %s to n%d (duplicated)", s.tr.frame(data), to)
	case !multi:
		s.tr.printf(s.now, procName(n), "send %s to n%d", s.tr.frame(data), to)
	}
	return arrivals
}

func (s *simulator) deliver(n *node, d totem.Delivery) {
	p := n.proc()
	if c := d.Config; c != nil {
		if s.tr.on() {
			s.tr.printf(s.now, p.String(), "install %v %v members %v joined %v left %v", c.Kind, c.Ring, c.Members, c.Joined, c.Left)
		}
		s.chk.Config(p, evs.Config{Kind: c.Kind, Ring: c.Ring, Members: c.Members, Joined: c.Joined, Left: c.Left})
		if c.Kind == totem.Regular {
			n.ringDeliv = 0
			n.regulars++
		}
		return
	}
	id, err := ParsePayload(d.Payload)
	if err != nil {
		if s.tr.on() {
			s.tr.printf(s.now, p.String(), "deliver garbage from n%d (%d bytes): %v", d.Sender, len(d.Payload), err)
		}
		s.chk.Garbled(p, d.Sender, len(d.Payload), err.Error())
		return
	}
	if s.tr.on() {
		s.tr.printf(s.now, p.String(), "deliver %v %v %dB", id, d.Guarantee, len(d.Payload))
	}
	s.chk.Deliver(p, evs.Message{ID: id, Sender: d.Sender, Guarantee: d.Guarantee, Digest: Digest(d.Payload), Size: len(d.Payload)})
	n.ringDeliv++
	n.delivered++
	s.lastProgress = s.now
	if id.From == p {
		n.selfDeliv++
	}
}

// MaxPayload is the largest payload the simulator proposes; engines are
// configured to accept it.
const MaxPayload = 256 << 10

// payloadSize draws a payload size: mostly small, a quarter up to the MTU,
// some fragmented up to 64 KiB and rarely up to MaxPayload.
func (s *simulator) payloadSize() int {
	switch r := s.rng.IntN(1000); {
	case r < 550:
		return s.rng.IntN(200)
	case r < 800:
		return 200 + s.rng.IntN(1300)
	case r < 950:
		return 1500 + s.rng.IntN(14500)
	case r < 995:
		return 16<<10 + s.rng.IntN(48<<10)
	default:
		return 64<<10 + s.rng.IntN(MaxPayload-64<<10)
	}
}

// stepFirst reports whether node n is driven as totemd drives its engine:
// a frame or a proposal is handed over before the engine is ticked, so the
// engine handles it with the time of its previous tick (the first timers
// to fire after a pause fire after the frames that waited). Nodes with odd
// IDs are ticked first instead; the engine must be right either way.
func (s *simulator) stepFirst(n *node) bool { return !s.opts.TickFirst && n.id%2 == 0 }

func (s *simulator) propose(n *node) {
	if !s.stepFirst(n) {
		n.eng.Tick(s.now)
	}
	burst := 1 + s.rng.IntN(s.maxBurst)
	refused := false
	for i := 0; i < burst; i++ {
		if n.pending == nil {
			if s.loadStopped {
				break
			}
			n.pendingID = evs.MsgID{From: n.proc(), Seq: n.nextSeq}
			n.pendingG = totem.Agreed
			if s.rng.IntN(2) == 0 {
				n.pendingG = totem.Safe
			}
			n.pending = MakePayload(n.pendingID, s.payloadSize())
		}
		err := n.eng.Propose(n.pending, n.pendingG)
		switch {
		case err == nil:
			if s.tr.on() {
				s.tr.printf(s.now, procName(n), "propose %v %v %dB", n.pendingID, n.pendingG, len(n.pending))
			}
			s.chk.Proposed(n.proc(), evs.Message{ID: n.pendingID, Sender: n.id, Guarantee: n.pendingG, Digest: Digest(n.pending), Size: len(n.pending)})
			n.nextSeq++
			n.proposed++
			s.proposed++
			n.pending = nil
		case errors.Is(err, totem.ErrBackpressure):
			if s.tr.on() {
				s.tr.printf(s.now, procName(n), "propose %v %dB: back-pressure", n.pendingID, len(n.pending))
			}
			n.refused++
			refused = true
		case errors.Is(err, totem.ErrStopped):
			n.pending = nil
			n.loadActive = false
		default:
			s.engineError(n, fmt.Sprintf("%v: Propose(%d bytes, %v) = %v", n.proc(), len(n.pending), n.pendingG, err))
			n.pending = nil
		}
		if refused || !n.loadActive {
			break
		}
	}
	if s.stepFirst(n) {
		n.eng.Tick(s.now)
	}
	s.drain(n)
	switch {
	case !n.loadActive:
	case n.pending != nil:
		s.q.Push(s.now+s.uniform(time.Millisecond, 5*time.Millisecond), event{kind: evPropose, node: n.id, inc: n.inc})
	case !s.loadStopped:
		s.q.Push(s.now+s.exp(s.meanInterval), event{kind: evPropose, node: n.id, inc: n.inc})
	default:
		n.loadActive = false
	}
}

// settleCheck ends the run once every live node is operational in one
// ring of all live nodes, with nothing queued, everything it proposed
// delivered, and the same deliveries in that ring as the others; then it
// lets a few more token rotations pass so that late safe deliveries show.
// A run that stops delivering for SettleLimit, or takes HardLimit after
// the load stopped, ends unsettled: a violation.
func (s *simulator) settleCheck() {
	// A large message on a slow ring with a small window can take seconds
	// to order; frames being ordered count as progress too.
	var mark uint64
	for _, n := range s.nodes {
		if n.up() {
			st := n.eng.Status()
			mark += st.Aru + st.HighSeq
		}
	}
	if mark != s.progressMark {
		s.progressMark, s.lastProgress = mark, s.now
	}
	switch {
	case s.settledAt != 0 && s.isSettled():
		s.finished, s.settled = true, true
		s.tr.printf(s.now, "", "settled; run ends")
		return
	case s.settledAt != 0:
		// Something moved during the grace period: wait again.
		s.tr.printf(s.now, "", "unsettled again after %v", s.now-s.settledAt)
		s.settledAt = 0
		s.q.Push(s.now+20*time.Millisecond, event{kind: evSettleCheck})
		return
	case s.isSettled():
		s.settledAt = s.now
		s.q.Push(s.now+200*time.Millisecond, event{kind: evSettleCheck})
		return
	case s.now-max(s.lastProgress, s.loadEnd) > s.opts.SettleLimit:
		s.reportUnsettled(fmt.Sprintf("no message was delivered and no frame ordered for %v", s.opts.SettleLimit))
	case s.now-s.loadEnd > s.opts.HardLimit:
		s.reportUnsettled(fmt.Sprintf("still not settled %v after the load stopped", s.opts.HardLimit))
	default:
		s.q.Push(s.now+20*time.Millisecond, event{kind: evSettleCheck})
		return
	}
	// Faults stopped long ago: hold every live node to its obligations.
	s.finished, s.settled = true, true
}

func (s *simulator) isSettled() bool {
	var live []totem.NodeID
	for _, n := range s.nodes {
		if n.up() {
			live = append(live, n.id)
		}
	}
	want := membership.NewNodeSet(live...)
	var ring totem.RingID
	var high uint64
	deliv := -1
	for i, id := range live {
		n := s.node(id)
		if n.pending != nil || n.loadActive || n.selfDeliv != n.proposed {
			return false
		}
		st := n.eng.Status()
		if st.State != totem.Operational || !st.Members.Equal(want) || st.QueuedMessages != 0 || st.Aru != st.HighSeq {
			return false
		}
		if i == 0 {
			ring, high, deliv = st.Ring, st.HighSeq, n.ringDeliv
		} else if st.Ring != ring || st.HighSeq != high || n.ringDeliv != deliv {
			return false
		}
	}
	return true
}

// checkStats compares the counters of engines that have Stats (as
// totem.Node does) with what the simulator saw them do.
func (s *simulator) checkStats() {
	for _, n := range s.nodes {
		e, ok := n.eng.(interface{ Stats() totem.Stats })
		if !ok {
			continue
		}
		st := e.Stats()
		var diffs []string
		for _, c := range []struct {
			name      string
			got, want uint64
		}{
			{"MessagesDelivered", st.MessagesDelivered, uint64(n.delivered)},
			{"MessagesProposed", st.MessagesProposed, uint64(n.proposed)},
			{"MembershipChanges", st.MembershipChanges, uint64(n.regulars)},
			{"ProposalsRefused", st.ProposalsRefused, uint64(n.refused)},
		} {
			if c.got != c.want {
				diffs = append(diffs, fmt.Sprintf("%s %d (saw %d)", c.name, c.got, c.want))
			}
		}
		if len(diffs) > 0 {
			s.engineError(n, fmt.Sprintf("%v's Stats disagree with what it did: %s", n.proc(), strings.Join(diffs, ", ")))
		}
	}
}

func (s *simulator) reportUnsettled(why string) {
	var b strings.Builder
	fmt.Fprintf(&b, "the live nodes did not settle (%s); at the end:", why)
	for _, n := range s.nodes {
		if !n.up() {
			fmt.Fprintf(&b, " n%d down;", n.id)
			continue
		}
		st := n.eng.Status()
		fmt.Fprintf(&b, " %v %v ring %v members %v queued %d aru %d high %d proposed %d self-delivered %d;",
			n.proc(), st.State, st.Ring, st.Members, st.QueuedMessages, st.Aru, st.HighSeq, n.proposed, n.selfDeliv)
	}
	s.chk.Report(evs.Violation{Property: NotSettled, Detail: b.String()})
}
