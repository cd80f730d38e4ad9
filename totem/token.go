package totem

// maxRtr bounds the retransmission requests one token carries.
const maxRtr = 30

// onToken handles the ordering token of the ring in use.
func (n *Node) onToken(t *Token) {
	var r *ringState
	switch {
	case n.state == Operational && t.Ring == n.cur.id:
		r = n.cur
	case n.state == Recovery && n.next != nil && t.Ring == n.next.id:
		r = n.next
	default:
		n.stats.RxMsgDropped++
		return
	}
	if t.Ring == n.lastTokenRing && t.TokenSeq <= n.lastTokenSeq {
		return // a retransmitted copy of a token already handled
	}
	n.lastTokenRing, n.lastTokenSeq = t.Ring, t.TokenSeq
	n.stats.OrfTokenRx++
	n.tokenLossAt = n.after(n.cfg.RuntimeToken(), timerTokenLoss)
	n.tokenRetransAt = 0
	n.cancelSent = false

	switch {
	case n.state == Recovery && t.Install:
		n.install()
		r = n.cur
	case t.Install && n.id == t.Ring.Rep:
		t.Install = false // back at the representative: every member has installed
	}
	if t.Seq > r.high {
		r.high = t.Seq
	}
	inAru := t.Aru

	// The representative installs the new ring once every member has every
	// recovered frame: no member has any left to send, and the aru equalled
	// the unchanged highest sequence number on two successive visits.
	if n.state == Recovery && n.id == t.Ring.Rep {
		ready := len(n.recovery) == 0 && len(t.RecoveryPending.Minus(NodeSet{n.id})) == 0 &&
			inAru == t.Seq && t.Seq == n.lastVisitSeq
		if ready {
			n.readyVisits++
		} else {
			n.readyVisits = 0
		}
		if n.readyVisits >= 2 {
			t.Install = true
			n.install()
			r = n.cur
		}
	}

	// Retransmit what others miss.
	retrans := 0
	if len(t.Rtr) > 0 {
		keep := t.Rtr[:0]
		for _, seq := range t.Rtr {
			if st, ok := r.get(seq); ok && retrans < n.cfg.MaxMessages {
				n.broadcast(st.raw)
				n.stats.McastRetx++
				retrans++
				continue
			}
			if seq > r.freed {
				keep = append(keep, seq)
			}
		}
		t.Rtr = keep
	}

	// Flow control: the ring sends at most WindowSize frames per rotation,
	// this node at most MaxMessages per visit, and never runs too far ahead
	// of the slowest member.
	fcc := int(t.FCC) - int(n.myLastFCC)
	if fcc < 0 {
		fcc = 0
	}
	allowed := min(n.cfg.MaxMessages-retrans, n.cfg.WindowSize-fcc-retrans)
	// Share the window by backlog, so heavy senders leave room for a node
	// that sent nothing last rotation instead of starving it.
	mine := n.backlogFrames()
	if total := int(t.Backlog) - int(n.myLastBacklog) + mine; mine > 0 && total > 0 {
		if share := n.cfg.WindowSize * mine / total; share > 0 && allowed > share {
			allowed = share
		}
	}
	if out := int(t.Seq - t.Aru); out+allowed > maxOutstanding(n.cfg) {
		allowed = maxOutstanding(n.cfg) - out
	}
	sent := n.sendFrames(t, r, allowed)
	if n.state == Recovery {
		if len(n.recovery) == 0 {
			t.RecoveryPending = t.RecoveryPending.Minus(NodeSet{n.id})
		} else {
			t.RecoveryPending = t.RecoveryPending.Add(n.id)
		}
	}
	n.myLastFCC = uint32(sent + retrans)
	t.FCC = uint32(fcc + sent + retrans)
	mine = n.backlogFrames()
	backlog := int(t.Backlog) - int(n.myLastBacklog) + mine
	n.myLastBacklog = uint32(mine)
	t.Backlog = uint32(max(backlog, 0))

	// The aru: lower it to ours, or raise it if we set it last time.
	if r.aru < t.Aru || t.AruSetter == n.id || t.AruSetter == 0 {
		t.Aru, t.AruSetter = r.aru, n.id
	}
	// Ask for what we miss.
	if r.aru < t.Seq {
		for seq := r.aru + 1; seq <= t.Seq && len(t.Rtr) < maxRtr; seq++ {
			if !r.has(seq) && !containsSeq(t.Rtr, seq) {
				t.Rtr = append(t.Rtr, seq)
			}
		}
	}

	// Whatever the aru was on two successive visits, every member has.
	if r.havePrevAru {
		if s := min(r.prevAru, inAru); s > r.safe {
			r.safe = s
		}
	}
	prevAru := r.prevAru
	r.prevAru, r.havePrevAru = inAru, true
	if n.state == Operational {
		n.deliverReady()
		n.checkStuck(t, inAru, prevAru)
	}

	// An idle ring's representative holds the token instead of spinning.
	idle := t.Seq == n.lastVisitSeq && t.Aru == t.Seq && len(t.Rtr) == 0 && len(n.queue) == 0 && t.Backlog == 0
	if idle {
		n.idleVisits++
	} else {
		n.idleVisits = 0
	}
	n.lastVisitSeq = t.Seq
	if n.state == Left {
		return
	}
	if n.state == Operational && n.id == r.id.Rep && n.idleVisits >= n.holdAfter(r) {
		n.held = t
		n.holdUntil = n.after(n.cfg.Hold, timerHold)
		return
	}
	n.forwardToken(t, r)
}

// holdAfter is how many idle visits in a row make the representative hold
// the token: SeqnoUnchanged, or one in a ring of one, where no other node
// can have anything to send or to acknowledge, and each visit is only the
// node handing the token to itself (it did so 30 times after every
// message: a third of the daemon's CPU in a one-node latency run).
func (n *Node) holdAfter(r *ringState) int {
	if len(r.members) == 1 {
		return 1
	}
	return n.cfg.SeqnoUnchanged
}

func maxOutstanding(c Config) int { return max(4*c.WindowSize, 256) }

// backlogFrames estimates how many frames the send queue needs.
func (n *Node) backlogFrames() int {
	if len(n.queue) == 0 {
		return 0
	}
	room := n.cfg.NetMTU - mcastHeaderMax
	return 1 + (n.queueBytes+len(n.queue)*entryHeaderMax)/room
}

// sendFrames broadcasts up to allowed new frames on the token's ring (old-
// ring frames while recovering, else the send queue) and returns how many.
func (n *Node) sendFrames(t *Token, r *ringState, allowed int) int {
	sent := 0
	for ; sent < allowed; sent++ {
		var m *Mcast
		if n.state == Recovery {
			if len(n.recovery) == 0 {
				break
			}
			m = &Mcast{Ring: r.id, Sender: n.id, Recovery: true, Inner: n.recovery[0]}
			n.recovery = n.recovery[1:]
		} else if m = n.pack(r.id); m == nil {
			break
		}
		t.Seq++
		m.Seq = t.Seq
		raw := m.AppendTo(make([]byte, 0, n.cfg.NetMTU))
		r.add(m, raw)
		n.broadcast(raw)
		n.stats.McastTx++
	}
	return sent
}

func containsSeq(list []uint64, seq uint64) bool {
	for _, s := range list {
		if s == seq {
			return true
		}
	}
	return false
}

// forwardToken passes the token to the next member and arms its
// retransmission.
func (n *Node) forwardToken(t *Token, r *ringState) {
	t.TokenSeq++
	next := r.members.Next(n.id)
	raw := t.AppendTo(nil)
	n.lastSent, n.lastSentTo, n.lastSentSeq = raw, next, t.Seq
	n.stats.OrfTokenTx++
	if next != n.id {
		n.tokenRetransAt = n.after(n.cfg.TokenRetransmit(), timerTokenRetrans)
	}
	n.emit(next, raw)
}

// releaseHold passes on the held token. Only when someone has something to
// send (busy) does the ring stop counting as idle; a hold that simply
// timed out is held again at the next visit.
func (n *Node) releaseHold(busy bool) {
	t := n.held
	n.held = nil
	if busy {
		n.idleVisits = 0
	}
	if t == nil || n.state != Operational || t.Ring != n.cur.id {
		return
	}
	if len(n.queue) > 0 {
		// We hold the token: send our own messages now rather than after a
		// rotation. The token's aru was already taken into account at this
		// visit, so only the send pass is repeated.
		r := n.cur
		sent := n.sendFrames(t, r, min(n.cfg.MaxMessages, n.cfg.WindowSize-int(t.FCC)))
		n.myLastFCC += uint32(sent)
		t.FCC += uint32(sent)
		if t.AruSetter == n.id {
			t.Aru = r.aru
		}
		n.deliverReady()
	}
	n.forwardToken(t, n.cur)
}

// checkStuck counts visits on which this node keeps the ring's aru from
// moving; after FailToReceive of them it gives up on the ring.
func (n *Node) checkStuck(t *Token, inAru, prevAru uint64) {
	if t.AruSetter == n.id && inAru == prevAru && inAru < t.Seq && n.cur.aru < t.Seq {
		n.stuckVisits++
	} else {
		n.stuckVisits = 0
	}
	if n.stuckVisits >= n.cfg.FailToReceive {
		n.stats.FailedToReceive++
		n.stuckVisits = 0
		n.enterGather(n.cur.members, nil)
	}
}

// pack builds the next frame from the send queue: several small messages
// share a frame; a large one is split into fragments. It returns nil when
// the queue is empty.
func (n *Node) pack(ring RingID) *Mcast {
	if len(n.queue) == 0 {
		return nil
	}
	m := &Mcast{Ring: ring, Sender: n.id}
	space := n.cfg.NetMTU - mcastHeaderMax
	for len(n.queue) > 0 {
		p := &n.queue[0]
		room := space - entryHeaderMax
		left := len(p.payload) - p.sent
		if room <= 0 || (left > room && room < 64 && len(m.Entries) > 0) {
			break
		}
		take := min(left, room)
		if take < left {
			n.stats.Fragmented += boolInt(p.sent == 0)
		}
		m.Entries = append(m.Entries, Entry{
			Guarantee: p.g,
			Total:     uint32(len(p.payload)),
			Offset:    uint32(p.sent),
			Data:      p.payload[p.sent : p.sent+take],
		})
		p.sent += take
		space -= entryHeaderMax + take
		if p.sent < len(p.payload) {
			break
		}
		n.queueBytes -= len(p.payload)
		n.queue[0] = pending{}
		n.queue = n.queue[1:]
	}
	return m
}

func boolInt(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// onMcast stores a frame of the ring in use and delivers what is ready.
func (n *Node) onMcast(m *Mcast, raw []byte) {
	n.stats.McastRx++
	switch {
	case m.Ring == n.cur.id && (n.state == Operational || n.state == Gather):
		if m.Sender == n.id {
			return
		}
		n.cur.add(m, raw)
		if n.state == Operational {
			if m.Seq > n.lastSentSeq && n.tokenRetransAt > 0 {
				n.tokenRetransAt = 0 // someone after us has the token
			}
			n.deliverReady()
		}
	case n.state == Recovery && m.Ring == n.next.id:
		if m.Sender == n.id || !n.next.add(m, raw) {
			return
		}
		if m.Seq > n.lastSentSeq {
			n.tokenRetransAt = 0
		}
		if m.Recovery && n.cfg.Break != BreakSkipRecovery {
			if inner, err := Decode(m.Inner); err == nil {
				if im, ok := inner.(*Mcast); ok && im.Ring == n.cur.id && !im.Recovery {
					n.cur.add(im, m.Inner)
				}
			}
		}
	default:
		// Frames of other rings: stale, or from a ring that will announce
		// itself with a merge detect if it is alive.
		n.stats.RxMsgDropped++
	}
}
