// Package netsim models an unreliable datagram network between simulated
// nodes: per-packet delay, loss, duplication and reordering, loss on single
// directed links (asymmetric loss), and partitions that split the nodes
// into groups that cannot hear each other until healed.
//
// The model decides, for one packet from one node to another, when its
// copies arrive (none if lost); the simulator schedules the arrivals. All
// randomness comes from the *rand.Rand given to New, so one seed gives one
// schedule.
package netsim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/totem-gcs/totem/totem"
)

// Params are the network-wide packet fates.
type Params struct {
	// MinDelay and MaxDelay bound the ordinary one-way delay, drawn
	// uniformly per packet (so packets between two nodes may reorder when
	// the range is wide).
	MinDelay, MaxDelay time.Duration
	// Loss is the probability that a packet is lost.
	Loss float64
	// Dup is the probability that a delivered packet arrives twice.
	Dup float64
	// Reorder is the probability that a packet is held back by an extra
	// delay of up to ReorderDelay, so later packets overtake it.
	Reorder      float64
	ReorderDelay time.Duration
}

// Validate reports bad parameters.
func (p Params) Validate() error {
	if p.MinDelay <= 0 || p.MaxDelay < p.MinDelay {
		return fmt.Errorf("netsim: need 0 < min delay (%v) <= max delay (%v)", p.MinDelay, p.MaxDelay)
	}
	for _, f := range []float64{p.Loss, p.Dup, p.Reorder} {
		if f < 0 || f > 1 {
			return fmt.Errorf("netsim: probability %v outside [0,1]", f)
		}
	}
	return nil
}

// Fate says what became of one packet.
type Fate uint8

// Fates of a packet.
const (
	Delivered Fate = iota
	LostRandom
	LostLink
	LostPartition
)

// String names the fate.
func (f Fate) String() string {
	switch f {
	case Delivered:
		return "delivered"
	case LostRandom:
		return "lost"
	case LostLink:
		return "lost on link"
	case LostPartition:
		return "partitioned"
	}
	return fmt.Sprintf("fate(%d)", uint8(f))
}

// Stats count packet fates since New.
type Stats struct {
	Sent, Delivered, Duplicated, Reordered uint64
	Lost, LostLink, LostPartition          uint64
}

// Network is the model. It is not safe for concurrent use.
type Network struct {
	rng      *rand.Rand
	params   Params
	group    map[totem.NodeID]int
	linkLoss map[[2]totem.NodeID]float64
	stats    Stats
}

// New returns a fully connected network with params p.
func New(rng *rand.Rand, p Params) (*Network, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Network{rng: rng, params: p, group: map[totem.NodeID]int{}, linkLoss: map[[2]totem.NodeID]float64{}}, nil
}

// Params returns the current network-wide parameters.
func (n *Network) Params() Params { return n.params }

// SetParams changes the network-wide parameters.
func (n *Network) SetParams(p Params) error {
	if err := p.Validate(); err != nil {
		return err
	}
	n.params = p
	return nil
}

// Stats returns the packet counters.
func (n *Network) Stats() Stats { return n.stats }

// Partition splits the network: nodes in different groups cannot reach
// each other; nodes in no group form one more group together.
func (n *Network) Partition(groups ...[]totem.NodeID) {
	clear(n.group)
	for i, g := range groups {
		for _, id := range g {
			n.group[id] = i + 1
		}
	}
}

// Partitioned reports whether any partition is in force.
func (n *Network) Partitioned() bool { return len(n.group) > 0 }

// SetLinkLoss sets the loss probability of the directed link from -> to
// on top of the network-wide loss (1 cuts that direction only).
func (n *Network) SetLinkLoss(from, to totem.NodeID, p float64) {
	if p <= 0 {
		delete(n.linkLoss, [2]totem.NodeID{from, to})
		return
	}
	n.linkLoss[[2]totem.NodeID{from, to}] = p
}

// Heal removes every partition and every link loss; the network-wide
// parameters stay.
func (n *Network) Heal() {
	clear(n.group)
	clear(n.linkLoss)
}

// Reachable reports whether a packet from -> to can get through at all.
func (n *Network) Reachable(from, to totem.NodeID) bool {
	return n.group[from] == n.group[to] && n.linkLoss[[2]totem.NodeID{from, to}] < 1
}

// Send decides the fate of one packet sent at now from -> to and appends
// the arrival times of its copies to arrivals (none if lost, two if
// duplicated).
func (n *Network) Send(now time.Duration, from, to totem.NodeID, arrivals []time.Duration) ([]time.Duration, Fate) {
	n.stats.Sent++
	if n.group[from] != n.group[to] {
		n.stats.LostPartition++
		return arrivals, LostPartition
	}
	if p, ok := n.linkLoss[[2]totem.NodeID{from, to}]; ok && n.rng.Float64() < p {
		n.stats.LostLink++
		return arrivals, LostLink
	}
	if n.params.Loss > 0 && n.rng.Float64() < n.params.Loss {
		n.stats.Lost++
		return arrivals, LostRandom
	}
	n.stats.Delivered++
	arrivals = append(arrivals, now+n.delay())
	if n.params.Dup > 0 && n.rng.Float64() < n.params.Dup {
		n.stats.Duplicated++
		arrivals = append(arrivals, now+n.delay())
	}
	return arrivals, Delivered
}

func (n *Network) delay() time.Duration {
	p := n.params
	d := p.MinDelay
	if p.MaxDelay > p.MinDelay {
		d += time.Duration(n.rng.Int64N(int64(p.MaxDelay-p.MinDelay) + 1))
	}
	if p.Reorder > 0 && p.ReorderDelay > 0 && n.rng.Float64() < p.Reorder {
		n.stats.Reordered++
		d += time.Duration(n.rng.Int64N(int64(p.ReorderDelay) + 1))
	}
	return d
}
