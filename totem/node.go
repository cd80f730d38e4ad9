package totem

import (
	"errors"
	"time"
)

// Node is one node's Totem engine. It is not safe for concurrent use: one
// goroutine (the daemon's event loop, or the simulator) owns it.
type Node struct {
	cfg     Config
	id      NodeID
	now     time.Duration
	started bool
	state   State

	cur  *ringState // the installed ring (a fresh node's own pseudo-ring before the first)
	next *ringState // the ring being recovered, in the Recovery state

	ringSeqMax uint64 // highest ring sequence number known
	persist    uint64 // ring sequence number to hand out in Ready

	// Token handling on the ring in use (cur, or next while recovering).
	lastTokenSeq   uint64 // highest token sequence number processed
	lastTokenRing  RingID
	lastSent       []byte // the last token (or commit token) forwarded
	lastSentTo     NodeID
	lastSentSeq    uint64 // the token's Seq when forwarded
	tokenRetransAt time.Duration
	tokenLossAt    time.Duration
	myLastFCC      uint32 // frames this node counted into the token last visit
	myLastBacklog  uint32
	lastVisitSeq   uint64 // the token's Seq at this node's previous visit
	idleVisits     int    // consecutive visits with nothing new (hold)
	readyVisits    int    // consecutive recovery-complete visits (representative)
	stuckVisits    int    // consecutive visits with the aru stuck at this node
	held           *Token
	holdUntil      time.Duration
	cancelSent     bool // a hold cancel was sent since the last token
	mergeAt        time.Duration

	// Send queue.
	queue      []pending
	queueBytes int

	// Reassembly of fragmented messages, per sender.
	partial map[NodeID]*partialMsg

	// Gather.
	proc, fail  NodeSet
	agreed      NodeSet           // nodes whose join matches proc and fail
	joinRingSeq uint64            // highest ring sequence number in joins this gather
	seenSeq     map[NodeID]uint64 // highest ring sequence number seen from each node
	joinAt      time.Duration
	consensusAt time.Duration

	// Timers armed outside Tick (while stepping frames or proposing), which
	// count from the next Tick; see after.
	ticking bool
	rebase  timerSet

	// Commit and recovery.
	commit     *CommitToken // the new ring's commit token (all entries, once in recovery)
	recovery   [][]byte     // old-ring frames still to rebroadcast
	tokenStart bool         // the representative has originated the new ring's token

	loop  [][]byte // frames this node sent to itself (a ring of one)
	out   Ready
	stats Stats
}

type pending struct {
	payload []byte
	g       Guarantee
	sent    int // bytes already put in frames on the current ring
}

type partialMsg struct {
	buf   []byte
	total uint32
	g     Guarantee
	own   bool // buf is the sender's own payload, grown in place
}

// NewNode returns an engine for cfg (zero fields take their defaults). The
// node starts by gathering: it forms a ring with whichever nodes answer, or
// alone after the consensus timeout. The first Tick sets the clock.
func NewNode(cfg Config) (*Node, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:        cfg,
		id:         cfg.NodeID,
		state:      Gather,
		cur:        newRingState(RingID{Rep: cfg.NodeID}, nil),
		ringSeqMax: cfg.RingSeq,
		partial:    make(map[NodeID]*partialMsg),
		seenSeq:    make(map[NodeID]uint64),
	}
	return n, nil
}

// Tick tells the node the time is now (monotonic; never goes backwards).
func (n *Node) Tick(now time.Duration) {
	n.ticking = true
	defer func() { n.ticking = false }()
	if n.started {
		n.rebaseTimers(max(now-n.now, 0))
	}
	if n.started && now-n.now > n.cfg.RuntimeToken()/2 {
		n.pauseDetected(now)
	}
	if now > n.now || !n.started {
		n.now = now
	}
	if !n.started {
		n.started = true
		n.enterGather(NodeSet{n.id}, nil)
	}
	n.fireTimers()
	n.drainLoop()
}

// timerSet names some of the node's timers.
type timerSet uint8

const (
	timerTokenLoss timerSet = 1 << iota
	timerTokenRetrans
	timerHold
	timerMerge
	timerJoin
	timerConsensus
)

// after returns the deadline d from now for timer t. The node's clock only
// moves in Tick, so a frame or a proposal is handled with the time of the
// previous Tick, which may be long past: the caller may have waited for
// input, or spent a while on earlier frames (a busy daemon handles a batch
// of frames, then ticks). A timer armed then counts from the next Tick
// instead, as if armed once the input had been handled: a token that
// arrives after a quiet spell, or at the end of a long burst, gets its
// full timeout (Corosync restarts its token timer after processing the
// token too). The next deadline is then due at once (see deadline), so a
// caller that ticks before each input, as the simulator does, sees no
// shift at all.
func (n *Node) after(d time.Duration, t timerSet) time.Duration {
	if !n.ticking {
		n.rebase |= t
	}
	return n.now + d
}

// rebaseTimers moves the timers armed since the last Tick by shift, the
// time that passed since then.
func (n *Node) rebaseTimers(shift time.Duration) {
	if n.rebase == 0 {
		return
	}
	for _, tm := range []struct {
		t  timerSet
		at *time.Duration
	}{
		{timerTokenLoss, &n.tokenLossAt},
		{timerTokenRetrans, &n.tokenRetransAt},
		{timerHold, &n.holdUntil},
		{timerMerge, &n.mergeAt},
		{timerJoin, &n.joinAt},
		{timerConsensus, &n.consensusAt},
	} {
		if n.rebase&tm.t != 0 && *tm.at != 0 {
			*tm.at += shift
		}
	}
	n.rebase = 0
}

// pauseDetected handles a gap between ticks far longer than the node asks
// for (see deadline): this process was not scheduled, so the silence it saw
// is its own. The frames that waited meanwhile get a grace period before
// any timeout concludes that others failed.
func (n *Node) pauseDetected(now time.Duration) {
	n.stats.PausesDetected++
	switch n.state {
	case Operational, Commit, Recovery:
		n.tokenLossAt = max(n.tokenLossAt, now+n.cfg.TokenRetransmit())
	case Gather:
		n.consensusAt = max(n.consensusAt, now+n.cfg.Join)
	}
}

func (n *Node) fireTimers() {
	now := n.now
	switch n.state {
	case Operational, Commit, Recovery:
		if now >= n.tokenLossAt {
			n.tokenLost()
			return
		}
		if n.held != nil && now >= n.holdUntil {
			n.releaseHold(false)
		}
		if n.tokenRetransAt > 0 && now >= n.tokenRetransAt {
			n.emit(n.lastSentTo, n.lastSent)
			n.tokenRetransAt = now + n.cfg.TokenRetransmit()
		}
		if n.state == Operational && n.cur.id.Rep == n.id && now >= n.mergeAt {
			n.broadcast((&MergeDetect{Sender: n.id, Ring: n.cur.id}).AppendTo(nil))
			n.stats.MembMergeDetectTx++
			n.mergeAt = now + n.cfg.Merge
		}
	case Gather:
		if now >= n.consensusAt {
			n.consensusTimeout()
		} else if now >= n.joinAt {
			n.sendJoin()
		}
	}
}

// Step hands the node one authenticated frame from the network. A frame
// that does not decode returns an error wrapping ErrMalformed and changes
// nothing. The node keeps frame (it may be retransmitted or delivered
// later): the caller must not reuse its memory.
func (n *Node) Step(frame []byte) error {
	p, err := Decode(frame)
	if err != nil {
		n.stats.RxMsgDropped++
		return err
	}
	if n.state == Left {
		return nil
	}
	if !n.started {
		n.Tick(n.now)
	}
	n.step(p, frame)
	n.drainLoop()
	return nil
}

func (n *Node) step(p Packet, raw []byte) {
	switch p := p.(type) {
	case *Token:
		n.onToken(p)
	case *Mcast:
		n.onMcast(p, raw)
	case *Join:
		n.onJoin(p)
	case *CommitToken:
		n.onCommitToken(p)
	case *MergeDetect:
		n.onMergeDetect(p)
	case *HoldCancel:
		n.stats.TokenHoldCancelRx++
		if n.held != nil && p.Ring == n.held.Ring {
			n.releaseHold(true)
		} else if p.Ring == n.cur.id {
			n.idleVisits = 0 // the token is on its way: do not hold it
		}
	case *Leave:
		n.onLeave(p)
	}
}

// drainLoop processes frames the node addressed to itself: the token and
// commit token of a ring of one. The bound only guards against a bug
// turning into a hang.
func (n *Node) drainLoop() {
	for i := 0; len(n.loop) > 0 && i < 10000; i++ {
		raw := n.loop[0]
		n.loop = n.loop[1:]
		if p, err := Decode(raw); err == nil && n.state != Left {
			n.step(p, raw)
		}
	}
	n.loop = n.loop[:0]
}

// Propose queues payload for broadcast with guarantee g. It never blocks: a
// full queue returns ErrBackpressure, a payload over MaxMessageSize ErrTooBig.
// The node keeps payload: the caller must not modify it afterwards.
func (n *Node) Propose(payload []byte, g Guarantee) error {
	switch {
	case n.state == Left:
		return ErrStopped
	case g != Agreed && g != Safe:
		return errors.New("totem: unknown guarantee")
	case len(payload) > n.cfg.MaxMessageSize:
		return ErrTooBig
	case n.queueBytes+len(payload) > n.cfg.MaxQueueBytes:
		n.stats.ProposalsRefused++
		return ErrBackpressure
	}
	n.queue = append(n.queue, pending{payload: payload, g: g})
	n.queueBytes += len(payload)
	n.stats.MessagesProposed++
	if n.state == Operational {
		switch {
		case n.held != nil:
			n.releaseHold(true)
			n.drainLoop()
		case !n.cancelSent && n.idleVisits >= n.cfg.SeqnoUnchanged-1 && len(n.cur.members) > 1:
			n.broadcast((&HoldCancel{Sender: n.id, Ring: n.cur.id}).AppendTo(nil))
			n.stats.TokenHoldCancelTx++
			n.cancelSent = true
		}
	}
	return nil
}

// Leave makes the node leave the ring gracefully: it tells the others, who
// form a new ring at once instead of waiting for a token timeout. The node
// delivers nothing more afterwards.
func (n *Node) Leave() {
	if n.state == Left {
		return
	}
	n.broadcast((&Leave{Sender: n.id, Ring: n.cur.id}).AppendTo(nil))
	n.state = Left
	n.held = nil
}

// HasReady reports whether Ready has anything to hand out.
func (n *Node) HasReady() bool {
	return n.persist != 0 || len(n.out.Frames) > 0 || len(n.out.Deliveries) > 0
}

// Ready returns and clears the output accumulated since the last call.
func (n *Node) Ready() Ready {
	rd := n.out
	rd.RingSeq = n.persist
	rd.Deadline = n.deadline()
	n.out = Ready{}
	n.persist = 0
	return rd
}

func (n *Node) deadline() time.Duration {
	if n.rebase != 0 {
		return n.now // timers armed since the last Tick count from the next
	}
	// Ticks at least every quarter token timeout let Tick tell a pause of
	// this process from silence on the network.
	d := n.now + min(time.Second, n.cfg.RuntimeToken()/4)
	at := func(t time.Duration) {
		if t > 0 && t < d {
			d = t
		}
	}
	switch n.state {
	case Operational, Commit, Recovery:
		at(n.tokenLossAt)
		at(n.tokenRetransAt)
		if n.held != nil {
			at(n.holdUntil)
		}
		if n.state == Operational && n.cur.id.Rep == n.id {
			at(n.mergeAt)
		}
	case Gather:
		at(n.joinAt)
		at(n.consensusAt)
	}
	return d
}

// Status returns a snapshot of the node's view of the ring.
func (n *Node) Status() Status {
	s := Status{
		NodeID:         n.id,
		State:          n.state,
		QueuedMessages: len(n.queue),
		QueuedBytes:    n.queueBytes,
		Aru:            n.cur.aru,
		HighSeq:        n.cur.high,
	}
	if n.cur.id.Seq != 0 {
		s.Ring = n.cur.id
		s.Members = n.cur.members
	}
	return s
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats { return n.stats }

// emit queues a frame for to (0: everyone else); a frame to itself is
// processed locally.
func (n *Node) emit(to NodeID, data []byte) {
	if to == n.id {
		n.loop = append(n.loop, data)
		return
	}
	n.out.Frames = append(n.out.Frames, Frame{To: to, Data: data})
}

func (n *Node) broadcast(data []byte) { n.out.Frames = append(n.out.Frames, Frame{Data: data}) }

// deliverFrame hands the messages of one frame to the application,
// reassembling fragments per sender.
func (n *Node) deliverFrame(m *Mcast) {
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Offset == 0 && uint32(len(e.Data)) == e.Total {
			delete(n.partial, m.Sender)
			n.deliverMsg(m.Sender, e.Guarantee, e.Data)
			continue
		}
		p := n.partial[m.Sender]
		if e.Offset == 0 {
			p = &partialMsg{total: e.Total, g: e.Guarantee}
			if m.Sender == n.id && uint32(cap(e.Data)) >= e.Total {
				// Our own message: its fragments are slices of the payload
				// we proposed, so it needs no copy.
				p.buf, p.own = e.Data[:0], true
			} else {
				p.buf = make([]byte, 0, e.Total)
			}
			n.partial[m.Sender] = p
		} else if p == nil || p.total != e.Total || uint32(len(p.buf)) != e.Offset {
			delete(n.partial, m.Sender) // a fragment is missing: the message is lost
			continue
		}
		if p.own {
			p.buf = p.buf[:len(p.buf)+len(e.Data)]
		} else {
			p.buf = append(p.buf, e.Data...)
		}
		if uint32(len(p.buf)) == p.total {
			delete(n.partial, m.Sender)
			n.deliverMsg(m.Sender, p.g, p.buf)
		}
	}
}

func (n *Node) deliverMsg(from NodeID, g Guarantee, data []byte) {
	n.stats.MessagesDelivered++
	n.out.Deliveries = append(n.out.Deliveries, Delivery{Sender: from, Guarantee: g, Payload: data})
}

// deliverReady delivers the installed ring's frames that are now in order
// and, for safe messages, received by every member.
func (n *Node) deliverReady() {
	r := n.cur
	for {
		st, ok := r.get(r.deliv + 1)
		if !ok {
			break
		}
		if !st.m.Recovery {
			if r.deliv+1 > r.safe && needsSafe(st.m) && n.cfg.Break != BreakSafeEarly {
				break
			}
			n.deliverFrame(st.m)
		}
		r.deliv++
	}
	r.release()
}
