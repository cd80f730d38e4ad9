package cpg

import (
	"slices"

	"github.com/totem-gcs/totem/totem"
)

// config handles a configuration change delivered by Totem.
func (s *Service) config(cc *totem.ConfigChange) {
	if cc.Kind != totem.Regular {
		// Transitional: old-ring messages keep coming and are applied (or
		// held) as usual, in the views they were ordered in: a node that
		// delivers one here delivers it in the same view as a node that
		// delivered it in the regular configuration. Members of nodes that
		// left are removed by the sync of the next regular configuration.
		return
	}
	if s.syncing {
		s.abandonSync()
	}
	s.ring = RingInfo{ID: cc.Ring, Members: slices.Clone(cc.Members)}
	s.haveRing = true
	s.events = append(s.events, RingChange{Ring: cc.Ring, Members: slices.Clone(cc.Members)})
	s.startSync(cc.Ring, cc.Members)
	s.syncJoined = slices.Clone(cc.Joined)
}

// abandonSync ends a sync that another regular configuration cut short.
// Nodes on different sides of the new partition may have delivered
// different parts of it, so nothing it held back can be applied in a view
// they would all agree on: the view stays as it was (the next sync
// replaces it), the held data messages are discarded (their senders get
// an Undelivered event), and this node's own held control operations go
// back to the front of its queue, to be applied in the next ring.
func (s *Service) abandonSync() {
	s.stats.PartialSyncs++
	var requeue []ctrlOp
	for _, h := range s.held {
		switch h.m.Type {
		case msgData:
			s.stats.Discarded++
			if h.sender == s.local {
				s.undelivered(h.m)
			}
		case msgControl:
			if h.sender == s.local {
				requeue = append(requeue, h.m.Ops...)
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
	s.held = nil
	s.syncing = false
	s.ann = nil
}

// startSync begins the sync of ring: it queues this node's announcement of
// its local members (those whose join has been delivered), in parts.
func (s *Service) startSync(ring totem.RingID, nodes totem.NodeSet) {
	s.syncing = true
	s.syncRing = ring
	s.syncNodes = slices.Clone(nodes)
	s.ann = make(map[totem.NodeID]*announcement, len(nodes))
	s.held = nil
	s.syncOut = nil // parts of an older sync are worthless now

	entries := make([]syncEntry, 0, len(s.records))
	for k, r := range s.records {
		if r.applied {
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
				if announced[m.Node] && !s.syncJoined.Contains(m.Node) {
					// Its node stayed with us and no longer has it.
					m.Reason = ReasonProcDown
				} else {
					m.Reason = ReasonNodeDown
				}
				left = append(left, m)
			}
		}
		if len(joined) == 0 && len(left) == 0 {
			continue
		}
		recipients := s.localRecipients(g, old)
		for _, r := range s.localRecipients(g, cur) {
			if !slices.Contains(recipients, r) {
				recipients = append(recipients, r)
			}
		}
		s.confchg(g, cur, recipients, joined, left)
	}
	s.groups = view

	s.syncing = false
	s.ann = nil
	s.stats.Syncs++
	held := s.held
	s.held = nil
	for _, h := range held {
		s.apply(h.sender, h.guarantee, h.m)
	}
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
