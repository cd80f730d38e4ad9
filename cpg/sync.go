package cpg

import (
	"slices"

	"github.com/totem-gcs/totem/totem"
)

// segment is the messages held back by a sync that the next configuration
// cut short while every node of its ring moved on together (nodes).
type segment struct {
	nodes totem.NodeSet
	msgs  []heldMsg
}

// config handles a configuration change delivered by Totem.
func (s *Service) config(cc *totem.ConfigChange) {
	s.cfgRing = cc.Ring
	s.transShown = nil
	if cc.Kind != totem.Regular {
		// Transitional: the members of nodes that did not come along
		// leave at once (a transitional view), and the old ring's last
		// messages are applied in that view: Totem guarantees a safe
		// message delivered here only to the nodes of this configuration.
		// A sync in progress keeps holding messages; if it completes
		// here, its view is restricted the same way (see finishSync).
		s.trans = slices.Clone(cc.Members)
		s.haveTrans = true
		if !s.syncing {
			s.orderedIn = s.groups
			s.install(viewOn(s.groups, s.trans), nil, true)
		}
		return
	}
	if s.syncing {
		if s.haveTrans && s.trans.Equal(s.syncNodes) {
			s.carrySync()
		} else {
			s.abandonSync()
		}
	}
	s.haveTrans = false
	s.orderedIn = nil
	s.ring = RingInfo{ID: cc.Ring, Members: slices.Clone(cc.Members)}
	s.haveRing = true
	s.events = append(s.events, RingChange{Ring: cc.Ring, Members: slices.Clone(cc.Members)})
	s.startSync(cc.Ring, cc.Members)
	// Nodes that joined a ring whose sync never completed stay new to us
	// until one does.
	s.syncJoined = s.syncJoined.Union(cc.Joined)
}

// carrySync ends a sync that another regular configuration cut short when
// every node of its ring moved on together (the transitional configuration
// is the whole ring): all of them delivered the same messages, none is
// elsewhere, so what it held back is kept and applied when the next sync
// completes, in a view of those nodes' members only (see finishSync).
func (s *Service) carrySync() {
	s.stats.CarriedSyncs++
	s.carried = append(s.carried, segment{nodes: slices.Clone(s.syncNodes), msgs: s.held})
	s.held = nil
	s.syncing = false
	s.ann = nil
}

// abandonSync ends a sync that another regular configuration cut short
// while its ring broke up. Nodes on different sides may have delivered
// different parts of it, so nothing it held back (nor anything carried
// from earlier syncs) can be applied in a view they would all agree on:
// the view stays as it was (the next sync replaces it), the held data
// messages are discarded (their senders get an Undelivered event), and
// this node's own held control operations go back to the front of its
// queue, to be applied in the next ring.
func (s *Service) abandonSync() {
	s.stats.PartialSyncs++
	var requeue []ctrlOp
	for _, h := range s.allHeld() {
		switch h.m.Type {
		case msgData:
			s.stats.Discarded++
			if h.sender == s.local {
				s.undelivered(h.m)
			}
		case msgControl:
			if h.sender != s.local {
				continue
			}
			for _, op := range h.m.Ops {
				// A join whose process has asked to leave since is dropped:
				// its leave may already be on the way, and must not land
				// before it (the process would linger in every view).
				if r := s.records[memberKey{op.Group, op.Pid}]; op.Op == opJoin && (r == nil || r.leaving || r.gone) {
					s.stats.Ignored++
					continue
				}
				requeue = append(requeue, op)
			}
		}
	}
	if len(requeue) > 0 {
		for _, op := range requeue {
			if op.Op != opProcDown {
				s.ctrlClient++
			}
		}
		s.ctrl = append(requeue, s.ctrl...)
	}
	s.carried = nil
	s.held = nil
	s.syncing = false
	s.ann = nil
}

// allHeld returns the carried messages and the held ones, in order.
func (s *Service) allHeld() []heldMsg {
	var all []heldMsg
	for _, seg := range s.carried {
		all = append(all, seg.msgs...)
	}
	return append(all, s.held...)
}

// startSync begins the sync of ring: it queues this node's announcement of
// its local members, in parts: those whose join has been delivered, with
// the effect of its own carried control operations (so that the union of
// the announcements is the state after every carried message).
func (s *Service) startSync(ring totem.RingID, nodes totem.NodeSet) {
	s.syncing = true
	s.syncRing = ring
	s.syncNodes = slices.Clone(nodes)
	s.ann = make(map[totem.NodeID]*announcement, len(nodes))
	s.held = nil
	s.syncOut = nil // parts of an older sync are worthless now

	mine := make(map[memberKey]bool, len(s.records))
	for k, r := range s.records {
		if r.applied {
			mine[k] = true
		}
	}
	for _, seg := range s.carried {
		for _, h := range seg.msgs {
			if h.sender != s.local || h.m.Type != msgControl {
				continue
			}
			for _, op := range h.m.Ops {
				mine[memberKey{op.Group, op.Pid}] = op.Op == opJoin
			}
		}
	}
	entries := make([]syncEntry, 0, len(mine))
	for k, in := range mine {
		if in {
			entries = append(entries, syncEntry{Group: k.group, Pid: k.pid})
		}
	}
	slices.SortFunc(entries, func(a, b syncEntry) int {
		if a.Group != b.Group {
			if a.Group < b.Group {
				return -1
			}
			return 1
		}
		return int(int64(a.Pid) - int64(b.Pid))
	})
	perPart := max(1, (s.cfg.SyncChunk-syncHeader)/entryWireMax)
	part := uint32(0)
	for {
		n := min(len(entries), perPart)
		last := n == len(entries)
		s.syncOut = append(s.syncOut, s.enc.sync(ring, part, last, entries[:n]))
		entries = entries[n:]
		part++
		if last {
			break
		}
	}
}

// syncPart handles one delivered sync part.
func (s *Service) syncPart(sender totem.NodeID, m message) {
	if !s.syncing || m.Ring != s.syncRing || !s.syncNodes.Contains(sender) {
		s.stats.StaleSync++
		return
	}
	a := s.ann[sender]
	if a == nil {
		a = &announcement{}
		s.ann[sender] = a
	}
	if a.done || m.Part != a.next {
		s.stats.StaleSync++
		return
	}
	a.next++
	a.entries = append(a.entries, m.Entries...)
	if !m.Last {
		return
	}
	a.done = true
	for _, n := range s.syncNodes {
		if a := s.ann[n]; a == nil || !a.done {
			return
		}
	}
	s.finishSync()
}

// finishSync installs the view made of the announcements, tells the local
// members what changed, and applies the messages held back. It runs at the
// same place in the order on every node of the ring: when the last
// announcement is delivered.
//
// Messages carried from syncs cut short come first, segment by segment:
// before each, the view is the announced members of that segment's nodes
// with the segment's (and later segments') control operations undone, so
// that applying them in order leads to exactly what was announced. Only
// the nodes of a segment delivered its messages, and only their members
// are in the view they are applied in; nodes that joined later reach the
// same view before the next segment or the held messages.
func (s *Service) finishSync() {
	view := make(map[string][]Member)
	announced := make(map[totem.NodeID]bool, len(s.ann))
	for node, a := range s.ann {
		announced[node] = true
		for _, e := range a.entries {
			view[e.Group] = append(view[e.Group], Member{Node: node, Pid: e.Pid})
		}
	}
	for g, ms := range view {
		slices.SortFunc(ms, compareMembers)
		view[g] = slices.CompactFunc(ms, func(a, b Member) bool { return a == b })
	}

	s.syncing = false
	s.ann = nil
	s.stats.Syncs++
	// First the view of the nodes that have stayed with us since our last
	// sync: members of nodes that left, and of nodes that come from
	// configurations we were not part of (Totem's joined set: a restart,
	// or a partition we did not notice), go with NODEDOWN, as those nodes
	// saw ours go. Every node that stayed with us computes this same view,
	// so every view a process installs is installed by every member it
	// lists; then the new view brings back who came back.
	//
	// A sync that completes after the ring broke up (among the old ring's
	// last messages, in a transitional configuration) installs every view
	// restricted to the nodes of that configuration and marked
	// transitional: its safe messages are guaranteed to those nodes only.
	// Old-ring messages from members that left there are still delivered
	// if their senders are in the announced view (the same on every node
	// of the transitional configuration).
	keep, tr := s.syncNodes.Minus(s.syncJoined), s.haveTrans
	restrict := func(v map[string][]Member) map[string][]Member { return v }
	if tr {
		keep = keep.Intersect(s.trans)
		restrict = func(v map[string][]Member) map[string][]Member { return viewOn(v, s.trans) }
		s.orderedIn = view
	}
	s.install(viewOn(s.groups, keep), announced, tr)
	s.syncJoined = nil
	carried := s.carried
	s.carried = nil
	for k, seg := range carried {
		s.install(restrict(undoView(view, seg.nodes, carried[k:])), announced, tr)
		for _, h := range seg.msgs {
			s.apply(h.sender, h.guarantee, h.m)
		}
	}
	s.install(restrict(view), announced, tr)
	held := s.held
	s.held = nil
	for _, h := range held {
		s.apply(h.sender, h.guarantee, h.m)
	}
}

// install replaces the agreed view with view and tells the local members
// of every group that changed; transitional marks the views of a
// transitional configuration (members of nodes outside it leave with
// NODEDOWN).
func (s *Service) install(view map[string][]Member, announced map[totem.NodeID]bool, transitional bool) {
	names := sortedKeys(s.groups)
	for g := range view {
		if _, ok := s.groups[g]; !ok {
			names = append(names, g)
		}
	}
	slices.Sort(names)
	for _, g := range names {
		old, cur := s.groups[g], view[g]
		var joined, left []Member
		for _, m := range cur {
			if !containsMember(old, m) {
				m.Reason = ReasonNodeUp
				joined = append(joined, m)
			}
		}
		for _, m := range old {
			if !containsMember(cur, m) {
				if announced[m.Node] && !s.syncJoined.Contains(m.Node) && (!transitional || s.trans.Contains(m.Node)) {
					// Its node stayed with us and no longer has it.
					m.Reason = ReasonProcDown
				} else {
					m.Reason = ReasonNodeDown
				}
				left = append(left, m)
			}
		}
		if len(joined) == 0 && len(left) == 0 && !s.needsTransitionalView(g, cur, transitional) {
			continue
		}
		recipients := s.localRecipients(g, old)
		for _, r := range s.localRecipients(g, cur) {
			if !slices.Contains(recipients, r) {
				recipients = append(recipients, r)
			}
		}
		s.confchg(g, cur, recipients, joined, left, transitional)
		if transitional {
			if s.transShown == nil {
				s.transShown = make(map[string]bool)
			}
			s.transShown[g] = true
		}
	}
	s.groups = make(map[string][]Member, len(view))
	for g, ms := range view {
		if len(ms) > 0 {
			s.groups[g] = slices.Clone(ms)
		}
	}
}

// needsTransitionalView reports whether a transitional view of group g
// with members cur must be shown although no member joins or leaves: the
// old ring's last messages may come from senders outside cur (members of
// the view they were ordered in, orderedIn), and the local members have
// not been shown a transitional view in this configuration yet, so they
// would see those messages in a regular view, or in one of another ring.
func (s *Service) needsTransitionalView(g string, cur []Member, transitional bool) bool {
	if !transitional || s.transShown[g] {
		return false
	}
	for _, m := range s.orderedIn[g] {
		if !containsMember(cur, m) {
			return true
		}
	}
	return false
}

// viewOn returns the members of view on nodes.
func viewOn(view map[string][]Member, nodes totem.NodeSet) map[string][]Member {
	out := make(map[string][]Member, len(view))
	for g, ms := range view {
		for _, m := range ms {
			if nodes.Contains(m.Node) {
				out[g] = append(out[g], m)
			}
		}
	}
	return out
}

// undoView returns the members of view on nodes, with the control
// operations of those nodes in segs undone (last first).
func undoView(view map[string][]Member, nodes totem.NodeSet, segs []segment) map[string][]Member {
	out := make(map[string][]Member)
	for g, ms := range view {
		for _, m := range ms {
			if nodes.Contains(m.Node) {
				out[g] = append(out[g], m)
			}
		}
	}
	for i := len(segs) - 1; i >= 0; i-- {
		msgs := segs[i].msgs
		for j := len(msgs) - 1; j >= 0; j-- {
			h := msgs[j]
			if h.m.Type != msgControl || !nodes.Contains(h.sender) {
				continue
			}
			for o := len(h.m.Ops) - 1; o >= 0; o-- {
				op := h.m.Ops[o]
				who := Member{Node: h.sender, Pid: op.Pid}
				if op.Op == opJoin {
					out[op.Group] = removeMember(out[op.Group], who)
				} else if !containsMember(out[op.Group], who) {
					out[op.Group] = insertMember(out[op.Group], who)
				}
			}
		}
	}
	return out
}

func compareMembers(a, b Member) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}
