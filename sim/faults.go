package sim

import (
	"time"

	"github.com/totem-gcs/totem/totem"
)

// fault applies one random fault of the chaos phase.
func (s *simulator) fault() {
	var up, down []*node
	for _, n := range s.nodes {
		switch {
		case n.up():
			up = append(up, n)
		case n.started:
			down = append(down, n)
		}
	}
	switch r := s.rng.IntN(100); {
	case r < 20:
		s.partition()
	case r < 38:
		s.net.Heal()
		s.tr.printf(s.now, "", "network heals (partitions and link losses removed)")
	case r < 50:
		if len(up) > 1 {
			n := up[s.rng.IntN(len(up))]
			s.crash(n, "CRASH")
			s.maybeScheduleRestart(n)
		}
	case r < 58:
		if len(down) > 0 {
			n := down[s.rng.IntN(len(down))]
			s.q.Push(s.now, event{kind: evRestart, node: n.id, inc: n.inc})
		}
	case r < 70:
		from := s.ids[s.rng.IntN(len(s.ids))]
		to := s.ids[s.rng.IntN(len(s.ids))]
		if from == to {
			return
		}
		p := 1.0
		if s.rng.IntN(2) == 0 {
			p = 0.3 + 0.6*s.rng.Float64()
		}
		s.net.SetLinkLoss(from, to, p)
		s.tr.printf(s.now, "", "link n%d -> n%d loses %.0f%% (one direction only)", from, to, 100*p)
	case r < 80:
		p := s.net.Params()
		p.Loss = 0.05 + 0.3*s.rng.Float64()
		s.net.SetParams(p)
		d := s.uniform(20*time.Millisecond, 300*time.Millisecond)
		s.tr.printf(s.now, "", "loss burst: network loses %.0f%% for %v", 100*p.Loss, d)
		s.q.Push(s.now+d, event{kind: evRestoreLoss})
	case r < 92:
		if len(up) > 0 {
			n := up[s.rng.IntN(len(up))]
			d := s.uniform(5*time.Millisecond, 150*time.Millisecond)
			n.pausedUntil = max(n.pausedUntil, s.now+d)
			s.tr.printf(s.now, procName(n), "PAUSE for %v (process stalled; packets wait)", d)
		}
	default:
		if len(up) > 1 {
			n := up[s.rng.IntN(len(up))]
			s.tr.printf(s.now, procName(n), "LEAVE")
			n.eng.Tick(s.now)
			n.eng.Leave()
			s.drain(n)
			s.crash(n, "process exits after leaving")
			s.maybeScheduleRestart(n)
		}
	}
}

func (s *simulator) maybeScheduleRestart(n *node) {
	if s.rng.IntN(10) < 7 {
		at := s.now + s.uniform(20*time.Millisecond, 800*time.Millisecond)
		if at < s.chaosEnd {
			s.q.Push(at, event{kind: evRestart, node: n.id, inc: n.inc})
		}
	}
}

// partition splits the nodes into two or three random groups.
func (s *simulator) partition() {
	ids := append([]totem.NodeID(nil), s.ids...)
	s.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	k := 2
	if len(ids) >= 4 && s.rng.IntN(4) == 0 {
		k = 3
	}
	if len(ids) < k {
		return
	}
	// k-1 distinct cut points in 1..len-1.
	cuts := s.rng.Perm(len(ids) - 1)[:k-1]
	for i := range cuts {
		cuts[i]++
	}
	if k == 3 && cuts[0] > cuts[1] {
		cuts[0], cuts[1] = cuts[1], cuts[0]
	}
	var groups [][]totem.NodeID
	prev := 0
	for _, c := range append(cuts, len(ids)) {
		g := append([]totem.NodeID(nil), ids[prev:c]...)
		groups = append(groups, g)
		prev = c
	}
	s.net.Partition(groups...)
	s.tr.printf(s.now, "", "PARTITION %v", groups)
}

// enterCalm stops the faults: the network heals and loses nothing more,
// pauses end, and most crashed nodes restart.
func (s *simulator) enterCalm() {
	s.calm = true
	s.net.Heal()
	p := s.baseNet
	p.Loss = 0
	s.net.SetParams(p)
	s.tr.printf(s.now, "", "CALM: faults stop, network heals (no loss from now on)")
	for _, n := range s.nodes {
		n.pausedUntil = min(n.pausedUntil, s.now)
		if !n.up() && (!n.started || s.rng.IntN(4) != 0) {
			// Nodes never started yet start now; crashed ones mostly restart.
			kind := evRestart
			if !n.started {
				kind = evStart
			}
			s.q.Push(s.now+s.uniform(0, 100*time.Millisecond), event{kind: kind, node: n.id, inc: n.inc})
		}
	}
}
