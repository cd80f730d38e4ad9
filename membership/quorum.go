package membership

import (
	"errors"
	"fmt"
)

// QuorumConfig configures the quorum calculation, after Corosync's
// votequorum.
type QuorumConfig struct {
	// ExpectedVotes is the number of votes of the whole cluster. Zero means
	// the sum of Votes (one per node listed in Nodes).
	ExpectedVotes int
	// Nodes lists every configured node; each has one vote unless Votes
	// says otherwise.
	Nodes NodeSet
	Votes map[NodeID]int
	// TwoNode makes a two-node cluster quorate with one node; it implies
	// WaitForAll.
	TwoNode bool
	// WaitForAll keeps the cluster inquorate until every node has been seen
	// in one ring at least once.
	WaitForAll bool
	// AutoTieBreaker makes the half that holds the lowest node ID quorate
	// when the cluster splits into two equal halves.
	AutoTieBreaker bool
}

// Validate reports a configuration that cannot work.
func (c QuorumConfig) Validate() error {
	var errs []error
	if len(c.Nodes) == 0 {
		errs = append(errs, errors.New("quorum: no nodes configured"))
	}
	for id, v := range c.Votes {
		if v < 0 {
			errs = append(errs, fmt.Errorf("quorum: node %d has negative votes %d", id, v))
		}
		if !c.Nodes.Contains(id) {
			errs = append(errs, fmt.Errorf("quorum: votes given for node %d, which is not configured", id))
		}
	}
	if c.TwoNode && len(c.Nodes) != 2 {
		errs = append(errs, fmt.Errorf("quorum: two_node needs exactly 2 nodes, have %d", len(c.Nodes)))
	}
	if c.ExpectedVotes < 0 {
		errs = append(errs, errors.New("quorum: expected_votes must not be negative"))
	}
	return errors.Join(errs...)
}

// Quorum tracks whether the current ring holds a quorum of votes. It is a
// pure calculation fed with each regular configuration's members.
type Quorum struct {
	cfg     QuorumConfig
	seenAll bool
	members NodeSet
}

// NewQuorum returns a calculator for cfg, before any ring.
func NewQuorum(cfg QuorumConfig) *Quorum {
	if cfg.TwoNode {
		cfg.WaitForAll = true
	}
	return &Quorum{cfg: cfg}
}

func (q *Quorum) votes(id NodeID) int {
	if v, ok := q.cfg.Votes[id]; ok {
		return v
	}
	if q.cfg.Nodes.Contains(id) {
		return 1
	}
	return 0
}

// Expected returns the cluster's expected votes.
func (q *Quorum) Expected() int {
	if q.cfg.ExpectedVotes > 0 {
		return q.cfg.ExpectedVotes
	}
	total := 0
	for _, id := range q.cfg.Nodes {
		total += q.votes(id)
	}
	return total
}

// Needed returns the votes a ring needs to be quorate.
func (q *Quorum) Needed() int {
	if q.cfg.TwoNode && q.Expected() == 2 {
		return 1
	}
	return q.Expected()/2 + 1
}

// Update records the members of a newly installed regular configuration.
func (q *Quorum) Update(members NodeSet) {
	q.members = members
	if q.cfg.Nodes.SubsetOf(members) {
		q.seenAll = true
	}
}

// Votes returns the votes held by the current ring.
func (q *Quorum) Votes() int {
	total := 0
	for _, id := range q.members {
		total += q.votes(id)
	}
	return total
}

// Quorate reports whether the current ring holds a quorum.
func (q *Quorum) Quorate() bool {
	if q.cfg.WaitForAll && !q.seenAll {
		return false
	}
	have, expected := q.Votes(), q.Expected()
	if have >= q.Needed() {
		return true
	}
	if q.cfg.AutoTieBreaker && 2*have == expected && len(q.cfg.Nodes) > 0 {
		return q.members.Contains(q.cfg.Nodes[0])
	}
	return false
}
