package totem

// This file holds ring formation: gather (join messages and consensus), the
// commit token, recovery of old-ring messages and the installation of the
// new ring with its transitional and regular configurations.

// enterGather starts (or restarts) forming a ring with proc, minus fail.
func (n *Node) enterGather(proc, fail NodeSet) {
	if n.state == Gather {
		n.stats.ContinuousGather++
	}
	n.state = Gather
	n.proc = proc.Add(n.id)
	n.fail = fail.Minus(NodeSet{n.id})
	n.agreed = NodeSet{n.id}
	n.joinRingSeq = n.ringSeqMax
	n.next, n.commit, n.recovery = nil, nil, nil
	n.held, n.tokenRetransAt = nil, 0
	n.consensusAt = n.after(n.cfg.Consensus, timerConsensus)
	n.sendJoin()
}

func (n *Node) sendJoin() {
	j := &Join{Sender: n.id, RingSeq: n.ringSeqMax, Proc: n.proc, Fail: n.fail}
	n.broadcast(j.AppendTo(nil))
	n.stats.MembJoinTx++
	n.joinAt = n.after(n.cfg.Join, timerJoin)
}

func (n *Node) tokenLost() {
	switch n.state {
	case Operational:
		n.stats.OperationalTokenLost++
		n.enterGather(n.cur.members, nil)
	case Commit:
		n.stats.CommitTokenLost++
		n.enterGather(n.proc.Union(n.commit.Members), n.fail)
	case Recovery:
		n.stats.RecoveryTokenLost++
		n.enterGather(n.proc.Union(n.commit.Members), n.fail)
	}
}

func (n *Node) onJoin(j *Join) {
	n.stats.MembJoinRx++
	if j.Sender == n.id {
		return
	}
	// A node's ring sequence number only grows: a join carrying an older
	// one than we have seen from its sender was sent in an earlier round.
	if j.RingSeq < n.seenSeq[j.Sender] {
		n.stats.RxMsgDropped++
		return
	}
	n.seenSeq[j.Sender] = j.RingSeq
	switch n.state {
	case Operational:
		if n.cur.members.Contains(j.Sender) && j.RingSeq < n.cur.id.Seq {
			return // sent while the current ring was being formed
		}
		n.enterGather(n.cur.members, nil)
	case Commit, Recovery:
		// Members of the forming ring that still gather will time out and
		// retry; a node outside it that is not known to have failed means
		// the ring is already out of date.
		if n.commit.Members.Contains(j.Sender) || n.fail.Contains(j.Sender) {
			return
		}
		n.enterGather(n.proc.Union(n.commit.Members), n.fail)
	}
	if n.state != Gather || n.fail.Contains(j.Sender) {
		return
	}
	if j.RingSeq > n.joinRingSeq {
		n.joinRingSeq = j.RingSeq
	}
	switch {
	case j.Fail.Contains(n.id):
		// The sender believes we failed. Its fail set is not ours to adopt;
		// it cannot agree with us, and the consensus timeout settles it.
		if proc := n.proc.Union(j.Proc); !proc.Equal(n.proc) {
			n.changeSets(proc, n.fail)
		}
	case j.Proc.Equal(n.proc) && j.Fail.Equal(n.fail):
		n.agreed = n.agreed.Add(j.Sender)
	default:
		proc := n.proc.Union(j.Proc)
		fail := n.fail.Union(j.Fail.Minus(NodeSet{n.id}))
		if !proc.Equal(n.proc) || !fail.Equal(n.fail) {
			n.changeSets(proc, fail)
		}
		// Having adopted the sender's sets, we agree with it: its join
		// counts (waiting for its next one could outlast our timeout).
		if j.Proc.Equal(n.proc) && j.Fail.Equal(n.fail) {
			n.agreed = n.agreed.Add(j.Sender)
		}
	}
	n.checkConsensus(false)
}

// changeSets makes proc and fail this node's sets while gathering. Agreement
// starts over, and so does the consensus timeout: the others need a full
// timeout to answer the new sets. Without the restart a node that adopted a
// peer's fail set just before its own (older) deadline failed every peer
// whose matching join had not arrived yet, the one it had just adopted
// from included, and formed a ring without them. Sets only grow while
// gathering, so the timeout restarts a bounded number of times.
func (n *Node) changeSets(proc, fail NodeSet) {
	n.proc, n.fail = proc, fail
	n.agreed = NodeSet{n.id}
	n.consensusAt = n.after(n.cfg.Consensus, timerConsensus)
	n.sendJoin()
}

func (n *Node) consensusTimeout() {
	n.stats.ConsensusTimeouts++
	n.stats.GatherTokenLost++
	live := n.proc.Minus(n.fail)
	n.fail = n.fail.Union(live.Minus(n.agreed))
	n.agreed = NodeSet{n.id}
	n.consensusAt = n.after(n.cfg.Consensus, timerConsensus)
	n.sendJoin()
	n.checkConsensus(true)
}

// checkConsensus starts a new ring when every live node has sent a join
// with our proc and fail sets and this node represents them. A ring of one
// forms only once the consensus timeout has passed (alone is true).
func (n *Node) checkConsensus(alone bool) {
	live := n.proc.Minus(n.fail)
	if !live.SubsetOf(n.agreed) || live[0] != n.id || (len(live) == 1 && !alone) {
		return
	}
	seq := max(n.ringSeqMax, n.joinRingSeq) + 4
	ct := &CommitToken{
		Ring:    RingID{Rep: n.id, Seq: seq},
		Round:   1,
		Members: live,
		Entries: make([]CommitEntry, len(live)),
	}
	n.onCommitToken(ct)
}

func (n *Node) onCommitToken(ct *CommitToken) {
	n.stats.MembCommitTokenRx++
	me := -1
	for i, id := range ct.Members {
		if id == n.id {
			me = i
		}
	}
	if me < 0 {
		return
	}
	complete := true
	for _, e := range ct.Entries {
		complete = complete && e.Filled
	}
	switch {
	case ct.Round == 1 && n.state == Gather:
		if ct.Ring.Seq <= n.ringSeqMax || !ct.Members.Equal(n.proc.Minus(n.fail)) {
			return
		}
		ct.Entries[me] = CommitEntry{Filled: true, OldRing: n.cur.id, Aru: n.cur.aru, HighSeq: n.cur.high, SafeSeq: n.cur.safe}
		n.enterCommit(ct)
		if ct.Members.Next(n.id) == ct.Ring.Rep {
			complete = true
			for _, e := range ct.Entries {
				complete = complete && e.Filled
			}
			if complete && n.id == ct.Ring.Rep { // a ring of one
				ct.Round = 2
				n.enterRecovery(ct)
			}
		}
		n.forwardCommit(ct)
	case ct.Round == 1 && n.state == Commit && ct.Ring == n.commit.Ring && n.id == ct.Ring.Rep && complete:
		ct.Round = 2
		n.enterRecovery(ct)
		n.forwardCommit(ct)
	case ct.Round == 2 && n.state == Commit && ct.Ring == n.commit.Ring && complete:
		n.enterRecovery(ct)
		n.forwardCommit(ct)
	case ct.Round == 2 && n.state == Recovery && ct.Ring == n.next.id && n.id == ct.Ring.Rep && !n.tokenStart:
		// The commit token went round twice: every member is recovering.
		n.tokenStart = true
		t := &Token{Ring: ct.Ring, RecoveryPending: ct.Members}
		n.lastTokenRing, n.lastTokenSeq = RingID{}, 0
		n.onToken(t)
	}
}

func (n *Node) forwardCommit(ct *CommitToken) {
	ct.TokenSeq++
	raw := ct.AppendTo(nil)
	next := ct.Members.Next(n.id)
	n.lastSent, n.lastSentTo, n.lastSentSeq = raw, next, 0
	if next != n.id {
		n.tokenRetransAt = n.after(n.cfg.TokenRetransmit(), timerTokenRetrans)
	}
	n.stats.MembCommitTokenTx++
	n.emit(next, raw)
}

func (n *Node) enterCommit(ct *CommitToken) {
	n.state = Commit
	n.commit = ct
	n.ringSeqMax = ct.Ring.Seq
	n.persist = ct.Ring.Seq
	n.tokenStart = false
	n.tokenLossAt = n.after(n.cfg.RuntimeToken(), timerTokenLoss)
}

// enterRecovery starts recovering: the new ring's token will carry the
// old-ring frames that some member from our old ring may lack.
func (n *Node) enterRecovery(ct *CommitToken) {
	n.state = Recovery
	n.commit = ct
	n.next = newRingState(ct.Ring, ct.Members)
	n.recovery = nil
	n.readyVisits = 0
	n.lastVisitSeq = 0
	n.myLastFCC, n.myLastBacklog = 0, 0
	n.tokenLossAt = n.after(n.cfg.RuntimeToken(), timerTokenLoss)
	if n.cur.id.Seq == 0 || n.cfg.Break == BreakSkipRecovery {
		return
	}
	var group []CommitEntry
	var ids []NodeID
	for i, e := range ct.Entries {
		if e.OldRing == n.cur.id {
			group = append(group, e)
			ids = append(ids, ct.Members[i])
		}
	}
	low, high := group[0].Aru, group[0].HighSeq
	for _, e := range group {
		low, high = min(low, e.Aru), max(high, e.HighSeq)
	}
	for seq := low + 1; seq <= high; seq++ {
		st, ok := n.cur.get(seq)
		if !ok {
			continue
		}
		// One member that surely has the frame sends it; if none surely
		// has it, every member that has it does.
		sender := NodeID(0)
		for i, e := range group {
			if e.Aru >= seq {
				sender = ids[i]
				break
			}
		}
		if sender == 0 || sender == n.id {
			n.recovery = append(n.recovery, st.raw)
		}
	}
}

// install makes the recovered ring the installed one: it delivers the old
// ring's remaining messages around the transitional configuration, then the
// new regular configuration.
func (n *Node) install() {
	old, ring := n.cur, n.next
	var group NodeSet
	safeSplit, high := old.safe, old.high
	for i, e := range n.commit.Entries {
		if e.OldRing == old.id {
			group = group.Add(n.commit.Members[i])
			safeSplit, high = max(safeSplit, e.SafeSeq), max(high, e.HighSeq)
		}
	}
	if old.id.Seq != 0 {
		// Old-ring messages every old member could deliver in order.
		for seq := old.deliv + 1; seq <= high; seq++ {
			st, ok := old.get(seq)
			if !ok || (seq > safeSplit && needsSafe(st.m)) {
				break
			}
			if !st.m.Recovery {
				n.deliverFrame(st.m)
			}
			old.deliv = seq
		}
		n.out.Deliveries = append(n.out.Deliveries, Delivery{Config: &ConfigChange{
			Kind: Transitional, Ring: ring.id, Members: group,
		}})
		// The rest, in the transitional configuration, skipping what no
		// member received.
		for seq := old.deliv + 1; seq <= high; seq++ {
			if st, ok := old.get(seq); ok && !st.m.Recovery {
				n.deliverFrame(st.m)
			}
		}
		clear(n.partial)
		// A message this node had only partly sent is sent again whole.
		if len(n.queue) > 0 && n.queue[0].sent > 0 {
			n.queue[0].sent = 0
		}
	}
	// Joined and left are relative to the members that came with us from
	// our old ring (the transitional configuration): a member of our old
	// ring that went through another ring in between left and joined.
	stayed := group.Intersect(old.members)
	n.out.Deliveries = append(n.out.Deliveries, Delivery{Config: &ConfigChange{
		Kind: Regular, Ring: ring.id, Members: ring.members,
		Joined: ring.members.Minus(stayed), Left: old.members.Minus(stayed),
	}})
	n.stats.MembershipChanges++
	n.state = Operational
	n.cur, n.next, n.commit, n.recovery = ring, nil, nil, nil
	n.proc, n.fail, n.agreed = nil, nil, nil
	n.idleVisits, n.stuckVisits = 0, 0
	n.mergeAt = n.after(n.cfg.Merge, timerMerge)
	n.deliverReady()
}

func (n *Node) onMergeDetect(m *MergeDetect) {
	n.stats.MembMergeDetectRx++
	if m.Ring.Seq > n.seenSeq[m.Sender] {
		n.seenSeq[m.Sender] = m.Ring.Seq
	}
	switch n.state {
	case Operational:
		if m.Ring == n.cur.id || (n.cur.members.Contains(m.Sender) && m.Ring.Seq <= n.cur.id.Seq) {
			return
		}
		n.enterGather(n.cur.members.Add(m.Sender), nil)
	case Gather:
		if !n.proc.Contains(m.Sender) && !n.fail.Contains(m.Sender) {
			n.changeSets(n.proc.Add(m.Sender), n.fail)
		}
	}
}

func (n *Node) onLeave(l *Leave) {
	switch n.state {
	case Operational:
		if l.Ring == n.cur.id && n.cur.members.Contains(l.Sender) {
			n.enterGather(n.cur.members, NodeSet{l.Sender})
		}
	case Gather, Commit, Recovery:
		if n.proc.Contains(l.Sender) && !n.fail.Contains(l.Sender) {
			n.enterGather(n.proc, n.fail.Add(l.Sender))
		}
	}
}
