package cpg

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/totem-gcs/totem/totem"
)

// memberKey names one local membership.
type memberKey struct {
	group string
	pid   uint32
}

// record is one membership of a local process, from Join until its leave
// or procdown is delivered.
type record struct {
	conn    ConnID
	applied bool // its join has been delivered
	leaving bool // a leave or procdown is queued or in flight
	gone    bool // the connection is gone: no more events for it
}

// connState is what the service knows of one local connection.
type connState struct {
	pid    uint32
	groups map[string]struct{}
}

// announcement collects one node's sync parts for the current sync.
type announcement struct {
	next    uint32
	done    bool
	entries []syncEntry
}

// heldMsg is a message delivered while syncing, applied when the sync ends.
type heldMsg struct {
	sender    totem.NodeID
	guarantee totem.Guarantee
	m         message
}

// Service is one node's CPG state machine. It is not safe for concurrent
// use: the daemon's event loop owns it.
type Service struct {
	cfg   Config
	local totem.NodeID
	p     Proposer
	enc   *encoder
	dec   *decoder

	ring     RingInfo
	haveRing bool
	// cfgRing is the ring of the last configuration, transitional or
	// regular: views installed now belong to it.
	cfgRing totem.RingID
	// transShown holds the groups whose local members were shown a
	// transitional view in the current configuration.
	transShown map[string]bool

	// groups is the agreed view: group name -> members sorted by node, pid.
	groups map[string][]Member

	records map[memberKey]*record
	conns   map[ConnID]*connState

	// ctrl waits for Totem to accept it; ctrlClient counts its join and
	// leave operations (bounded by MaxPendingControl). syncOut holds sync
	// parts still to propose; they go first.
	ctrl       []ctrlOp
	ctrlClient int
	syncOut    [][]byte

	// trans is the last transitional configuration, if one came since
	// the last regular one.
	trans     totem.NodeSet
	haveTrans bool
	// carried holds the messages of syncs cut short while their whole
	// ring moved on together, to apply when a sync completes.
	carried []segment

	syncing   bool
	syncRing  totem.RingID
	syncNodes totem.NodeSet
	// syncJoined are the nodes new to us in this ring: members of theirs
	// we knew and they no longer announce went with a restart or a
	// partition (NODEDOWN), not a process death.
	syncJoined totem.NodeSet
	// orderedIn is, while transitional views are in force, the view the
	// old ring's last messages were ordered in: their senders may be
	// members that left in the transitional view.
	orderedIn map[string][]Member
	ann       map[totem.NodeID]*announcement
	held      []heldMsg

	events []Event
	stats  Stats
}

// New returns the service of node local with default limits, proposing
// through p (normally the node's *totem.Node). It panics if local is zero
// or p is nil, which are programming errors; NewWithConfig returns them.
func New(local totem.NodeID, p Proposer) *Service {
	s, err := NewWithConfig(local, p, Config{})
	if err != nil {
		panic(err) // defaults are valid; only a zero node id or nil p fails
	}
	return s
}

// NewWithConfig returns the service of node local with the limits of cfg
// (zero fields take their defaults).
func NewWithConfig(local totem.NodeID, p Proposer, cfg Config) (*Service, error) {
	if local == 0 {
		return nil, errors.New("cpg: node id must be non-zero")
	}
	if p == nil {
		return nil, errors.New("cpg: nil proposer")
	}
	return &Service{
		cfg:     cfg.withDefaults(),
		local:   local,
		p:       p,
		enc:     newEncoder(),
		dec:     newDecoder(),
		groups:  make(map[string][]Member),
		records: make(map[memberKey]*record),
		conns:   make(map[ConnID]*connState),
	}, nil
}

// Local returns this node's id.
func (s *Service) Local() totem.NodeID { return s.local }

// MaxMessageSize returns the largest data Send accepts.
func (s *Service) MaxMessageSize() int { return s.cfg.MaxMessageSize }

// Join asks for process pid on connection conn to join group. The process
// becomes a member when the join is delivered: it then receives a ConfChg
// listing itself as joined. Errors: ErrBadGroupName, ErrBadPid, ErrExist,
// ErrNoSpace, ErrTryAgain.
func (s *Service) Join(conn ConnID, pid uint32, group string) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	c := s.conns[conn]
	if c != nil && c.pid != pid {
		return ErrBadPid
	}
	if r := s.records[memberKey{group, pid}]; r != nil {
		if r.leaving {
			return ErrTryAgain // its previous membership is still being removed
		}
		return ErrExist
	}
	if len(s.records) >= s.cfg.MaxLocalMembers {
		return ErrNoSpace
	}
	if s.ctrlClient >= s.cfg.MaxPendingControl {
		return ErrTryAgain
	}
	if c == nil {
		c = &connState{pid: pid, groups: make(map[string]struct{})}
		s.conns[conn] = c
	}
	c.groups[group] = struct{}{}
	s.records[memberKey{group, pid}] = &record{conn: conn}
	s.enqueue(ctrlOp{Op: opJoin, Group: group, Pid: pid}, true)
	s.Flush()
	return nil
}

// Leave asks for process pid on conn to leave group. It stays a member
// (and receives messages) until the leave is delivered; it then receives a
// ConfChg listing itself as left. Errors: ErrBadGroupName, ErrNotMember,
// ErrTryAgain.
func (s *Service) Leave(conn ConnID, pid uint32, group string) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	r := s.records[memberKey{group, pid}]
	if r == nil || r.conn != conn || r.leaving {
		return ErrNotMember
	}
	if s.ctrlClient >= s.cfg.MaxPendingControl {
		return ErrTryAgain
	}
	r.leaving = true
	s.enqueue(ctrlOp{Op: opLeave, Group: group, Pid: pid}, true)
	s.Flush()
	return nil
}

// Send multicasts data to group from process pid on conn, with guarantee g.
// Every member, the sender included, receives it in the same order. Send
// is allowed once Join has returned (the join reaches the ring first).
// Errors: ErrBadGroupName, ErrBadGuarantee, *TooBigError (ErrTooBig),
// ErrNotMember, ErrTryAgain (Totem's queue is full, control operations are
// waiting, no ring yet, or a sync is in progress).
func (s *Service) Send(conn ConnID, pid uint32, group string, data []byte, g totem.Guarantee) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	if g != totem.Agreed && g != totem.Safe {
		return ErrBadGuarantee
	}
	if len(data) > s.cfg.MaxMessageSize {
		return &TooBigError{Size: len(data), Limit: s.cfg.MaxMessageSize}
	}
	r := s.records[memberKey{group, pid}]
	if r == nil || r.conn != conn || r.leaving {
		return ErrNotMember
	}
	if s.holdingSends() {
		return ErrTryAgain
	}
	if !s.queueBelow(1, 1) {
		s.stats.ProposalsRefused++
		return ErrTryAgain
	}
	err := s.p.Propose(s.enc.data(group, pid, data), g)
	switch {
	case err == nil:
		s.stats.Sent++
		return nil
	case errors.Is(err, totem.ErrBackpressure):
		s.stats.ProposalsRefused++
		return ErrTryAgain
	case errors.Is(err, totem.ErrTooBig):
		return &TooBigError{Size: len(data), Limit: s.cfg.MaxMessageSize}
	default:
		return fmt.Errorf("cpg: send: %w", err)
	}
}

// SendReady reports whether the service has room for data sends again
// after refusing some with ErrTryAgain: a ring, no sync under way, and
// Totem's queue below three quarters of the bounds (so that the senders
// it wakes find room for more than one message each).
func (s *Service) SendReady() bool { return !s.holdingSends() && s.queueBelow(3, 4) }

// holdingSends reports whether data sends wait for the service itself: no
// ring yet, or a sync or control operations under way.
func (s *Service) holdingSends() bool {
	return !s.haveRing || s.syncing || len(s.ctrl) > 0 || len(s.syncOut) > 0
}

// queueBelow reports whether Totem's queue holds less than num/den of
// both bounds (always, when the proposer does not report its queue).
func (s *Service) queueBelow(num, den int) bool {
	q, ok := s.p.(queueReporter)
	if !ok {
		return true
	}
	st := q.Status()
	return !(s.cfg.MaxQueued > 0 && st.QueuedMessages*den >= s.cfg.MaxQueued*num) &&
		!(s.cfg.MaxQueuedBytes > 0 && st.QueuedBytes*den >= s.cfg.MaxQueuedBytes*num)
}

// ConnGone tells the service that connection conn is closed (the client
// exited or died). Every membership of its process ends with reason
// PROCDOWN, seen by the other members; conn receives no more events. It
// never fails: the procdown operations are always queued.
func (s *Service) ConnGone(conn ConnID) {
	c := s.conns[conn]
	if c == nil {
		return
	}
	delete(s.conns, conn)
	for _, g := range sortedKeys(c.groups) {
		r := s.records[memberKey{g, c.pid}]
		if r == nil || r.conn != conn {
			continue
		}
		r.gone = true
		if !r.leaving {
			r.leaving = true
			s.enqueue(ctrlOp{Op: opProcDown, Group: g, Pid: c.pid}, false)
		}
	}
	s.Flush()
}

func (s *Service) enqueue(op ctrlOp, client bool) {
	s.ctrl = append(s.ctrl, op)
	if client {
		s.ctrlClient++
	}
}

// maxCtrlBatch is the most control operations sent in one message.
const maxCtrlBatch = 256

// Flush proposes the waiting control operations and sync parts, as many as
// Totem accepts. The daemon calls it once per loop iteration; Deliver and
// the client methods call it too.
func (s *Service) Flush() {
	for len(s.syncOut) > 0 {
		if !s.propose(s.syncOut[0]) {
			return
		}
		s.syncOut[0] = nil
		s.syncOut = s.syncOut[1:]
	}
	for len(s.ctrl) > 0 {
		n := min(len(s.ctrl), maxCtrlBatch)
		if !s.propose(s.enc.control(s.ctrl[:n])) {
			return
		}
		for _, op := range s.ctrl[:n] {
			if op.Op != opProcDown {
				s.ctrlClient--
			}
		}
		s.ctrl = s.ctrl[n:]
	}
	if len(s.ctrl) == 0 {
		s.ctrl = nil
	}
}

// propose hands a control payload (control operations, sync parts) to
// Totem as a safe message and reports whether it was accepted: one that any
// node delivers in the regular configuration has reached every node of it,
// so no node can complete a sync (and release the messages it held) or
// change a view that another node of the ring never will.
func (s *Service) propose(payload []byte) bool {
	if err := s.p.Propose(payload, totem.Safe); err != nil {
		s.stats.ProposalsRefused++
		return false
	}
	s.stats.ControlProposed++
	return true
}

// PendingControl returns the number of control operations and sync parts
// waiting for Totem to accept them.
func (s *Service) PendingControl() int { return len(s.ctrl) + len(s.syncOut) }

// Syncing reports whether a sync is in progress (local sends get
// ErrTryAgain meanwhile).
func (s *Service) Syncing() bool { return s.syncing }

// Events returns and clears the events accumulated since the last call, in
// the order the clients must see them.
func (s *Service) Events() []Event {
	ev := s.events
	s.events = nil
	return ev
}

// HasEvents reports whether Events has anything to hand out.
func (s *Service) HasEvents() bool { return len(s.events) > 0 }

// Stats returns the service's counters.
func (s *Service) Stats() Stats { return s.stats }

// Ring returns the ring last installed (zero before the first).
func (s *Service) Ring() RingInfo {
	return RingInfo{ID: s.ring.ID, Members: slices.Clone(s.ring.Members)}
}

// Groups returns the names of every group with at least one member in the
// agreed view, sorted.
func (s *Service) Groups() []string { return sortedKeys(s.groups) }

// Members returns the members of group in the agreed view, sorted by node
// and pid (nil for an unknown group).
func (s *Service) Members(group string) []Member { return slices.Clone(s.groups[group]) }

// LocalMembers returns the groups process pid on conn has joined or is
// joining, sorted.
func (s *Service) LocalMembers(conn ConnID) []string {
	c := s.conns[conn]
	if c == nil {
		return nil
	}
	return sortedKeys(c.groups)
}

// Deliver hands the service one Totem delivery, in delivery order.
func (s *Service) Deliver(d totem.Delivery) {
	if d.Config != nil {
		s.config(d.Config)
	} else {
		s.message(d)
	}
	s.Flush()
}

func (s *Service) message(d totem.Delivery) {
	m, err := s.dec.decode(d.Payload)
	if err != nil {
		s.stats.DecodeErrors++
		return
	}
	if m.Type == msgSync {
		s.syncPart(d.Sender, m)
		return
	}
	if s.syncing {
		s.stats.HeldBack++
		s.held = append(s.held, heldMsg{sender: d.Sender, guarantee: d.Guarantee, m: m})
		return
	}
	s.apply(d.Sender, d.Guarantee, m)
}

// apply acts on a data or control message at its place in the order.
func (s *Service) apply(sender totem.NodeID, g totem.Guarantee, m message) {
	switch m.Type {
	case msgData:
		members := s.groups[m.Group]
		who := Member{Node: sender, Pid: m.Pid}
		// In a transitional view, members of nodes that did not come along
		// have left, but the old ring's last messages from them are still
		// delivered if they were ordered in their view.
		departed := s.orderedIn != nil && !s.trans.Contains(sender) && containsMember(s.orderedIn[m.Group], who)
		if !containsMember(members, who) && !departed {
			s.stats.NotMember++
			if sender == s.local {
				s.undelivered(m)
			}
			return
		}
		for _, r := range s.localRecipients(m.Group, members) {
			s.stats.Delivered++
			s.events = append(s.events, Deliver{
				Conn: r.conn, Group: m.Group, Sender: sender, Pid: m.Pid,
				Guarantee: g, Data: m.Data,
			})
		}
	case msgControl:
		for _, op := range m.Ops {
			s.applyOp(sender, op)
		}
	}
}

func (s *Service) applyOp(sender totem.NodeID, op ctrlOp) {
	if s.orderedIn != nil && !s.trans.Contains(sender) {
		// In a transitional view, the members of nodes that did not come
		// along are gone already; the next sync settles theirs.
		s.stats.Ignored++
		return
	}
	who := Member{Node: sender, Pid: op.Pid}
	old := s.groups[op.Group]
	var r *record
	if sender == s.local {
		r = s.records[memberKey{op.Group, op.Pid}]
	}
	if op.Op == opJoin {
		if r != nil {
			r.applied = true
		} else if sender == s.local {
			// A join of ours whose process already left (a leave overtook
			// a join resent after a sync was cut short): every node adds
			// the member, so take it out again the same way.
			s.records[memberKey{op.Group, op.Pid}] = &record{conn: 0, applied: true, leaving: true, gone: true}
			s.enqueue(ctrlOp{Op: opProcDown, Group: op.Group, Pid: op.Pid}, false)
		}
		if containsMember(old, who) {
			s.stats.Ignored++
			return
		}
		members := insertMember(old, who)
		s.groups[op.Group] = members
		who.Reason = ReasonJoin
		s.confchg(op.Group, members, s.localRecipients(op.Group, members), []Member{who}, nil, s.orderedIn != nil)
		return
	}
	// Leave or procdown. The leaver is told too, unless its connection is
	// gone, so the recipients are taken before its record goes.
	recipients := s.localRecipients(op.Group, old)
	if r != nil {
		s.dropRecord(op.Group, op.Pid)
	}
	if !containsMember(old, who) {
		s.stats.Ignored++
		return
	}
	members := removeMember(old, who)
	if len(members) == 0 {
		delete(s.groups, op.Group)
	} else {
		s.groups[op.Group] = members
	}
	who.Reason = op.Op.reason()
	s.confchg(op.Group, members, recipients, nil, []Member{who}, s.orderedIn != nil)
}

// dropRecord forgets a local membership whose leave or procdown has been
// delivered.
func (s *Service) dropRecord(group string, pid uint32) {
	k := memberKey{group, pid}
	r := s.records[k]
	if r == nil {
		return
	}
	delete(s.records, k)
	if r.gone {
		return // its connection is forgotten already
	}
	if c := s.conns[r.conn]; c != nil && c.pid == pid {
		delete(c.groups, group)
	}
}

// confchg emits a ConfChg for group to each of recipients.
func (s *Service) confchg(group string, members []Member, recipients []*record, joined, left []Member, transitional bool) {
	for _, r := range recipients {
		s.events = append(s.events, ConfChg{
			Conn:         r.conn,
			Group:        group,
			Members:      slices.Clone(members),
			Joined:       slices.Clone(joined),
			Left:         slices.Clone(left),
			Transitional: transitional,
			Ring:         s.cfgRing,
		})
	}
}

// localRecipients returns the records of the local members in view whose
// connection is alive, in pid order.
func (s *Service) localRecipients(group string, view []Member) []*record {
	var out []*record
	for _, m := range view {
		if m.Node != s.local {
			continue
		}
		if r := s.records[memberKey{group, m.Pid}]; r != nil && !r.gone {
			out = append(out, r)
		}
	}
	return out
}

func (s *Service) inView(group string, m Member) bool {
	return containsMember(s.groups[group], m)
}

func containsMember(ms []Member, m Member) bool {
	_, ok := findMember(ms, m)
	return ok
}

func findMember(ms []Member, m Member) (int, bool) {
	return sort.Find(len(ms), func(i int) int {
		switch {
		case m.less(ms[i]):
			return -1
		case ms[i].less(m):
			return 1
		}
		return 0
	})
}

func insertMember(ms []Member, m Member) []Member {
	i, _ := findMember(ms, m)
	out := make([]Member, 0, len(ms)+1)
	out = append(out, ms[:i]...)
	out = append(out, m.key())
	return append(out, ms[i:]...)
}

func removeMember(ms []Member, m Member) []Member {
	i, ok := findMember(ms, m)
	if !ok {
		return ms
	}
	out := make([]Member, 0, len(ms)-1)
	out = append(out, ms[:i]...)
	return append(out, ms[i+1:]...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// undelivered tells the local sender of m, if its connection is alive,
// that m was not delivered.
func (s *Service) undelivered(m message) {
	if r := s.records[memberKey{m.Group, m.Pid}]; r != nil && !r.gone {
		s.events = append(s.events, Undelivered{Conn: r.conn, Group: m.Group, Pid: m.Pid, Data: m.Data})
	}
}
