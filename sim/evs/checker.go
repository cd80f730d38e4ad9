package evs

import (
	"fmt"
	"slices"
	"time"

	"github.com/totem-gcs/totem/totem"
)

// DefaultLimit is how many violations a Checker records in detail; the
// rest are only counted.
const DefaultLimit = 50

// Checker accumulates the logs of one run and reports the violations of
// extended virtual synchrony it finds. It is not safe for concurrent use.
// The zero value is not usable; call New.
type Checker struct {
	// Limit is the number of violations recorded in detail (DefaultLimit).
	Limit int

	now       time.Duration
	procs     map[ProcID]*proc
	procOrder []ProcID
	proposals map[MsgID]Message
	rings     map[totem.RingID]*ringInfo
	trans     map[string]*safeSet
	segments  map[string]*segmentRecord
	moves     map[string]*moveRecord
	pending   []senderCheck

	violations []Violation
	count      int
	delivered  int
	configs    int
	finished   bool
}

type proc struct {
	id         ProcID
	crashed    bool
	pos        map[MsgID]int // position in msgs
	msgs       []MsgID
	proposed   []MsgID
	epochs     []*epoch
	lastRing   totem.RingID
	hasRegular bool
}

// epoch is the stretch of one process's log from a regular configuration
// to the next one: the regular part, then maybe a transitional part.
type epoch struct {
	reg       *Config // nil if the process began with a transitional configuration
	regMsgs   []MsgID
	trans     *Config
	transMsgs []MsgID
	closed    bool // a next regular configuration was installed
	crashed   bool // the process crashed during it
}

func (e *epoch) open() bool { return !e.closed && !e.crashed }

type ringInfo struct {
	members    totem.NodeSet
	firstProc  ProcID
	installers map[totem.NodeID]uint32
	safe       safeSet
}

// safeSet lists the safe messages delivered in one configuration part and
// who delivered each first.
type safeSet struct {
	ids []MsgID
	by  []ProcID
	has map[MsgID]bool
}

func (s *safeSet) add(id MsgID, by ProcID) {
	if s.has == nil {
		s.has = make(map[MsgID]bool)
	}
	if s.has[id] {
		return
	}
	s.has[id] = true
	s.ids = append(s.ids, id)
	s.by = append(s.by, by)
}

type segmentRecord struct {
	proc ProcID
	msgs []MsgID
}

type moveRecord struct {
	proc  ProcID
	trans string
	msgs  []MsgID
}

type senderCheck struct {
	at   time.Duration
	by   ProcID
	id   MsgID
	ring totem.RingID
	cfg  string
}

// New returns an empty checker.
func New() *Checker {
	return &Checker{
		Limit:     DefaultLimit,
		procs:     make(map[ProcID]*proc),
		proposals: make(map[MsgID]Message),
		rings:     make(map[totem.RingID]*ringInfo),
		trans:     make(map[string]*safeSet),
		segments:  make(map[string]*segmentRecord),
		moves:     make(map[string]*moveRecord),
	}
}

// SetTime sets the virtual time stamped on the violations found next.
func (c *Checker) SetTime(now time.Duration) { c.now = now }

// Violations returns the violations recorded so far (at most Limit).
func (c *Checker) Violations() []Violation { return c.violations }

// Count returns the number of violations found, recorded or not.
func (c *Checker) Count() int { return c.count }

// Delivered returns the number of messages delivered, over all processes.
func (c *Checker) Delivered() int { return c.delivered }

// Configs returns the number of configurations installed, over all
// processes.
func (c *Checker) Configs() int { return c.configs }

func (c *Checker) report(v Violation) {
	c.count++
	if len(c.violations) < c.Limit {
		v.At = c.now
		c.violations = append(c.violations, v)
	}
}

func (c *Checker) get(p ProcID) *proc {
	pr := c.procs[p]
	if pr == nil {
		pr = &proc{id: p, pos: make(map[MsgID]int)}
		c.procs[p] = pr
		c.procOrder = append(c.procOrder, p)
	}
	return pr
}

func (pr *proc) current() *epoch {
	if len(pr.epochs) == 0 {
		return nil
	}
	e := pr.epochs[len(pr.epochs)-1]
	if !e.open() {
		return nil
	}
	return e
}

// Start records that process p began. Calling it is optional (any event
// of a new process starts it) but makes a process that never delivers
// anything known to the liveness check.
func (c *Checker) Start(p ProcID) { c.get(p) }

// Proposed records that process p's engine accepted message m for sending.
func (c *Checker) Proposed(p ProcID, m Message) {
	pr := c.get(p)
	if _, dup := c.proposals[m.ID]; dup {
		// A harness bug rather than an engine one, but say so.
		c.report(Violation{Property: NoDuplicates, Procs: []ProcID{p}, Msgs: []MsgID{m.ID},
			Detail: "the harness proposed the same message id twice"})
		return
	}
	c.proposals[m.ID] = m
	pr.proposed = append(pr.proposed, m.ID)
}

// Crash records that process p crashed: its log ends here and it is
// excused from every later obligation.
func (c *Checker) Crash(p ProcID) {
	pr := c.get(p)
	pr.crashed = true
	if e := pr.current(); e != nil {
		e.crashed = true
	}
}

// Garbled records that process p delivered a payload the harness could not
// decode into a message id: an invented message.
func (c *Checker) Garbled(p ProcID, sender totem.NodeID, size int, why string) {
	c.delivered++
	c.report(Violation{Property: NoCreation, Procs: []ProcID{p},
		Detail: fmt.Sprintf("delivered a %d-byte payload from node %d that no one proposed: %s", size, sender, why)})
}

// Deliver records that process p delivered message m.
func (c *Checker) Deliver(p ProcID, m Message) {
	pr := c.get(p)
	c.delivered++
	id := m.ID
	e := pr.current()
	if e == nil {
		c.report(Violation{Property: NoConfig, Procs: []ProcID{p}, Msgs: []MsgID{id},
			Detail: fmt.Sprintf("%v delivered %v before installing any configuration", p, id)})
		return
	}
	cfg := e.currentConfig()
	if at, dup := pr.pos[id]; dup {
		c.report(Violation{Property: NoDuplicates, Procs: []ProcID{p}, Msgs: []MsgID{id}, Config: cfg.Key(),
			Detail: fmt.Sprintf("%v delivered %v a second time (first as its delivery #%d)", p, id, at+1)})
		return
	}
	if prop, ok := c.proposals[id]; !ok {
		c.report(Violation{Property: NoCreation, Procs: []ProcID{p}, Msgs: []MsgID{id}, Config: cfg.Key(),
			Detail: fmt.Sprintf("%v delivered %v, which was never accepted by Propose", p, id)})
	} else {
		var diffs []string
		if m.Sender != id.From.Node {
			diffs = append(diffs, fmt.Sprintf("sender node %d instead of %d", m.Sender, id.From.Node))
		}
		if m.Guarantee != prop.Guarantee {
			diffs = append(diffs, fmt.Sprintf("guarantee %v instead of %v", m.Guarantee, prop.Guarantee))
		}
		if m.Size != prop.Size {
			diffs = append(diffs, fmt.Sprintf("%d bytes instead of %d", m.Size, prop.Size))
		} else if m.Digest != prop.Digest {
			diffs = append(diffs, "payload bytes differ")
		}
		if len(diffs) > 0 {
			c.report(Violation{Property: NoCreation, Procs: []ProcID{p}, Msgs: []MsgID{id}, Config: cfg.Key(),
				Detail: fmt.Sprintf("%v delivered %v altered: %v", p, id, diffs)})
		}
	}
	if e.reg == nil {
		c.report(Violation{Property: SenderMember, Procs: []ProcID{p}, Msgs: []MsgID{id}, Config: cfg.Key(),
			Detail: fmt.Sprintf("%v delivered %v in a transitional configuration not preceded by any regular one", p, id)})
	} else if !e.reg.Members.Contains(id.From.Node) {
		c.report(Violation{Property: SenderMember, Procs: []ProcID{p, id.From}, Msgs: []MsgID{id}, Config: cfg.Key(),
			Detail: fmt.Sprintf("%v delivered %v from node %d, not a member of regular configuration %v", p, id, id.From.Node, e.reg.Key())})
	} else {
		c.checkSender(senderCheck{at: c.now, by: p, id: id, ring: e.reg.Ring, cfg: e.reg.Key()}, false)
	}

	pr.pos[id] = len(pr.msgs)
	pr.msgs = append(pr.msgs, id)
	if e.trans != nil {
		e.transMsgs = append(e.transMsgs, id)
		if m.Guarantee == totem.Safe {
			k := e.trans.Key()
			s := c.trans[k]
			if s == nil {
				s = &safeSet{}
				c.trans[k] = s
			}
			s.add(id, p)
		}
	} else {
		e.regMsgs = append(e.regMsgs, id)
		if m.Guarantee == totem.Safe {
			c.rings[e.reg.Ring].safe.add(id, p)
		}
	}
}

// checkSender verifies that the process that sent id is the one of its
// node that installed ring; if no process of that node has installed the
// ring yet, the check waits for Finish (final).
func (c *Checker) checkSender(s senderCheck, final bool) {
	ri := c.rings[s.ring]
	inc, ok := ri.installers[s.id.From.Node]
	switch {
	case ok && inc == s.id.From.Inc:
	case ok:
		c.report(Violation{Property: SenderMember, Procs: []ProcID{s.by, s.id.From}, Msgs: []MsgID{s.id}, Config: s.cfg,
			Detail: fmt.Sprintf("%v delivered %v, sent by %v, but the process of node %d in that configuration is %v",
				s.by, s.id, s.id.From, s.id.From.Node, ProcID{s.id.From.Node, inc})})
	case final:
		c.report(Violation{Property: SenderMember, Procs: []ProcID{s.by, s.id.From}, Msgs: []MsgID{s.id}, Config: s.cfg,
			Detail: fmt.Sprintf("%v delivered %v at %v, but its sender %v never installed the configuration it was delivered in",
				s.by, s.id, s.at, s.id.From)})
	default:
		c.pending = append(c.pending, s)
	}
}

func (e *epoch) currentConfig() *Config {
	if e.trans != nil {
		return e.trans
	}
	return e.reg
}

// Config records that process p installed configuration cfg.
func (c *Checker) Config(p ProcID, cfg Config) {
	pr := c.get(p)
	c.configs++
	cfg.Members = slices.Clone(cfg.Members)
	if !cfg.Members.Contains(p.Node) {
		c.report(Violation{Property: ConfigAgreement, Procs: []ProcID{p}, Config: cfg.Key(),
			Detail: fmt.Sprintf("%v installed a configuration it is not a member of", p)})
	}
	if cfg.Kind == totem.Transitional {
		c.transitional(pr, cfg)
	} else {
		c.regular(pr, cfg)
	}
}

func (c *Checker) transitional(pr *proc, cfg Config) {
	p := pr.id
	e := pr.current()
	if e == nil {
		// A process may begin with a transitional configuration of itself;
		// it must deliver nothing in it.
		pr.epochs = append(pr.epochs, &epoch{trans: &cfg})
		return
	}
	if e.trans != nil {
		c.report(Violation{Property: ConfigAgreement, Procs: []ProcID{p}, Config: cfg.Key(),
			Detail: fmt.Sprintf("%v installed transitional configuration %v right after transitional configuration %v", p, cfg.Key(), e.trans.Key())})
	}
	if e.reg != nil {
		if !cfg.Members.SubsetOf(e.reg.Members) {
			c.report(Violation{Property: ConfigAgreement, Procs: []ProcID{p}, Config: cfg.Key(),
				Detail: fmt.Sprintf("%v installed transitional configuration %v with members %v not in its regular configuration %v",
					p, cfg.Key(), cfg.Members.Minus(e.reg.Members), e.reg.Key())})
		}
		if cfg.Ring.Seq <= e.reg.Ring.Seq {
			c.report(Violation{Property: ConfigAgreement, Procs: []ProcID{p}, Config: cfg.Key(),
				Detail: fmt.Sprintf("%v installed transitional configuration %v naming ring %v, not newer than its ring %v",
					p, cfg.Key(), cfg.Ring, e.reg.Ring)})
		}
		c.segment(p, e.reg.Key(), cfg.Key(), e.regMsgs)
	}
	e.trans = &cfg
}

func (c *Checker) regular(pr *proc, cfg Config) {
	p := pr.id
	ri := c.rings[cfg.Ring]
	if ri == nil {
		ri = &ringInfo{members: cfg.Members, firstProc: p, installers: make(map[totem.NodeID]uint32)}
		c.rings[cfg.Ring] = ri
	} else if !ri.members.Equal(cfg.Members) {
		c.report(Violation{Property: ConfigAgreement, Procs: []ProcID{ri.firstProc, p}, Config: cfg.Key(),
			Detail: fmt.Sprintf("ring %v has members %v at %v but %v at %v", cfg.Ring, ri.members, ri.firstProc, cfg.Members, p)})
	}
	if inc, ok := ri.installers[p.Node]; ok {
		c.report(Violation{Property: ConfigAgreement, Procs: []ProcID{{p.Node, inc}, p}, Config: cfg.Key(),
			Detail: fmt.Sprintf("ring %v installed twice by node %d (by %v, then by %v)", cfg.Ring, p.Node, ProcID{p.Node, inc}, p)})
	} else {
		ri.installers[p.Node] = p.Inc
	}
	if pr.hasRegular && cfg.Ring.Seq <= pr.lastRing.Seq {
		c.report(Violation{Property: ConfigAgreement, Procs: []ProcID{p}, Config: cfg.Key(),
			Detail: fmt.Sprintf("%v installed ring %v after ring %v: ring sequence numbers must grow", p, cfg.Ring, pr.lastRing)})
	}

	var prev *epoch
	if n := len(pr.epochs); n > 0 {
		prev = pr.epochs[n-1]
	}
	if prev != nil && prev.reg != nil && !prev.crashed {
		// Joined and left are relative to the members that moved with this
		// process from its previous configuration: its transitional
		// configuration (a member of the old ring that passed through
		// another ring in between left and joined again).
		stayed := prev.reg.Members.Intersect(cfg.Members)
		if prev.trans != nil {
			stayed = stayed.Intersect(prev.trans.Members)
		}
		wantJoined := cfg.Members.Minus(stayed)
		wantLeft := prev.reg.Members.Minus(stayed)
		if !wantJoined.Equal(cfg.Joined) || !wantLeft.Equal(cfg.Left) {
			c.report(Violation{Property: ConfigAgreement, Procs: []ProcID{p}, Config: cfg.Key(),
				Detail: fmt.Sprintf("%v installed %v after %v with joined=%v left=%v; expected joined=%v left=%v",
					p, cfg.Key(), prev.reg.Key(), cfg.Joined, cfg.Left, wantJoined, wantLeft)})
		}
	}
	if e := pr.current(); e != nil {
		if e.trans != nil {
			if e.trans.Ring != cfg.Ring {
				c.report(Violation{Property: ConfigAgreement, Procs: []ProcID{p}, Config: cfg.Key(),
					Detail: fmt.Sprintf("%v installed transitional configuration %v, then regular ring %v: the rings differ", p, e.trans.Key(), cfg.Ring)})
			}
			if !e.trans.Members.SubsetOf(cfg.Members) {
				c.report(Violation{Property: ConfigAgreement, Procs: []ProcID{p}, Config: cfg.Key(),
					Detail: fmt.Sprintf("%v installed transitional configuration %v with members %v missing from the regular configuration that followed",
						p, e.trans.Key(), e.trans.Members.Minus(cfg.Members))})
			}
			c.segment(p, e.trans.Key(), cfg.Key(), e.transMsgs)
		} else if e.reg != nil {
			c.segment(p, e.reg.Key(), cfg.Key(), e.regMsgs)
		}
		if e.reg != nil {
			c.move(p, e, cfg)
		}
		e.closed = true
	}
	pr.epochs = append(pr.epochs, &epoch{reg: &cfg})
	pr.lastRing = cfg.Ring
	pr.hasRegular = true
}

// segment checks failure atomicity: every process that installed from and
// then directly to delivered the same messages in between.
func (c *Checker) segment(p ProcID, from, to string, msgs []MsgID) {
	key := from + " -> " + to
	rec := c.segments[key]
	if rec == nil {
		c.segments[key] = &segmentRecord{proc: p, msgs: msgs}
		return
	}
	if slices.Equal(rec.msgs, msgs) {
		return
	}
	c.report(diffViolation(FailureAtomicity, from,
		fmt.Sprintf("%v and %v both moved from %v to %v", rec.proc, p, from, to), rec.proc, rec.msgs, p, msgs))
}

// move checks that processes going from one regular configuration to the
// same next one did so through the same transitional configuration and
// delivered the same messages on the way.
func (c *Checker) move(p ProcID, e *epoch, next Config) {
	key := e.reg.Key() + " -> " + next.Key()
	trans := ""
	if e.trans != nil {
		trans = e.trans.Key()
	}
	msgs := make([]MsgID, 0, len(e.regMsgs)+len(e.transMsgs))
	msgs = append(append(msgs, e.regMsgs...), e.transMsgs...)
	rec := c.moves[key]
	if rec == nil {
		c.moves[key] = &moveRecord{proc: p, trans: trans, msgs: msgs}
		return
	}
	if rec.trans != trans {
		c.report(Violation{Property: FailureAtomicity, Procs: []ProcID{rec.proc, p}, Config: e.reg.Key(),
			Detail: fmt.Sprintf("%v and %v both moved from %v to %v but through different transitional configurations: %q and %q",
				rec.proc, p, e.reg.Key(), next.Key(), rec.trans, trans)})
	}
	if !slices.Equal(rec.msgs, msgs) {
		c.report(diffViolation(FailureAtomicity, e.reg.Key(),
			fmt.Sprintf("%v and %v both moved from %v to %v (regular and transitional parts together)", rec.proc, p, e.reg.Key(), next.Key()),
			rec.proc, rec.msgs, p, msgs))
	}
}

// diffViolation describes how two message sequences that should be equal
// differ.
func diffViolation(prop Property, cfg, what string, p ProcID, a []MsgID, q ProcID, b []MsgID) Violation {
	onlyA, onlyB := setMinus(a, b), setMinus(b, a)
	var detail string
	var msgs []MsgID
	switch {
	case len(onlyA) == 0 && len(onlyB) == 0:
		i := 0
		for i < len(a) && a[i] == b[i] {
			i++
		}
		detail = fmt.Sprintf("%s and delivered the same %d messages there, in a different order (first difference at #%d: %v vs %v)",
			what, len(a), i+1, a[i], b[i])
		msgs = []MsgID{a[i], b[i]}
	default:
		detail = fmt.Sprintf("%s but delivered different messages there: %d only at %v %v, %d only at %v %v",
			what, len(onlyA), p, clip(onlyA), len(onlyB), q, clip(onlyB))
		msgs = append(clip(onlyA), clip(onlyB)...)
	}
	return Violation{Property: prop, Procs: []ProcID{p, q}, Msgs: msgs, Config: cfg, Detail: detail}
}

const clipAt = 8

func clip(ids []MsgID) []MsgID {
	if len(ids) > clipAt {
		return ids[:clipAt]
	}
	return ids
}

func setMinus(a, b []MsgID) []MsgID {
	in := make(map[MsgID]bool, len(b))
	for _, id := range b {
		in[id] = true
	}
	var out []MsgID
	for _, id := range a {
		if !in[id] {
			out = append(out, id)
		}
	}
	return out
}

// Report records a violation found by the harness itself (an engine
// error, a run that never settled), stamped with the current time.
func (c *Checker) Report(v Violation) { c.report(v) }
