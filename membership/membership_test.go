package membership

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestNodeSetAgainstMap checks the set operations against a map-based model
// on random sets.
func TestNodeSetAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	randSet := func() (NodeSet, map[NodeID]bool) {
		m := map[NodeID]bool{}
		var ids []NodeID
		for i := r.IntN(8); i > 0; i-- {
			id := NodeID(1 + r.IntN(10))
			m[id] = true
			ids = append(ids, id)
		}
		return NewNodeSet(ids...), m
	}
	fromMap := func(m map[NodeID]bool) NodeSet {
		var ids []NodeID
		for id := range m {
			ids = append(ids, id)
		}
		return NewNodeSet(ids...)
	}
	for i := 0; i < 2000; i++ {
		s, sm := randSet()
		u, um := randSet()
		union, inter, minus := map[NodeID]bool{}, map[NodeID]bool{}, map[NodeID]bool{}
		for id := range sm {
			union[id] = true
			if um[id] {
				inter[id] = true
			} else {
				minus[id] = true
			}
		}
		for id := range um {
			union[id] = true
		}
		if !s.Union(u).Equal(fromMap(union)) || !s.Intersect(u).Equal(fromMap(inter)) || !s.Minus(u).Equal(fromMap(minus)) {
			t.Fatalf("%v op %v wrong", s, u)
		}
		if got, want := s.SubsetOf(u), len(minus) == 0; got != want {
			t.Fatalf("%v subset of %v = %v", s, u, got)
		}
		if !slices.IsSorted(s.Add(5)) || !s.Add(5).Contains(5) {
			t.Fatalf("add to %v", s)
		}
	}
}

func TestNodeSetNext(t *testing.T) {
	s := NewNodeSet(3, 1, 7)
	for _, c := range []struct{ id, want NodeID }{{1, 3}, {3, 7}, {7, 1}, {4, 7}, {9, 1}, {0, 1}} {
		if got := s.Next(c.id); got != c.want {
			t.Errorf("Next(%d) = %d, want %d", c.id, got, c.want)
		}
	}
	if NodeSet(nil).Next(1) != 0 {
		t.Error("Next on empty set")
	}
	if s.String() != "{1 3 7}" {
		t.Errorf("String = %q", s.String())
	}
}

func TestQuorum(t *testing.T) {
	five := NewNodeSet(1, 2, 3, 4, 5)
	cases := []struct {
		name    string
		cfg     QuorumConfig
		rings   []NodeSet
		quorate bool
	}{
		{"majority", QuorumConfig{Nodes: five}, []NodeSet{{1, 2, 3}}, true},
		{"minority", QuorumConfig{Nodes: five}, []NodeSet{{4, 5}}, false},
		{"weighted", QuorumConfig{Nodes: five, Votes: map[NodeID]int{5: 3}}, []NodeSet{{4, 5}}, true},
		{"two node alone", QuorumConfig{Nodes: NodeSet{1, 2}, TwoNode: true}, []NodeSet{{1, 2}, {2}}, true},
		{"two node never saw both", QuorumConfig{Nodes: NodeSet{1, 2}, TwoNode: true}, []NodeSet{{2}}, false},
		{"wait for all", QuorumConfig{Nodes: five, WaitForAll: true}, []NodeSet{{1, 2, 3, 4}}, false},
		{"wait for all seen", QuorumConfig{Nodes: five, WaitForAll: true}, []NodeSet{five, {1, 2, 3}}, true},
		{"tie breaker lowest", QuorumConfig{Nodes: NodeSet{1, 2, 3, 4}, AutoTieBreaker: true}, []NodeSet{{1, 4}}, true},
		{"tie breaker other half", QuorumConfig{Nodes: NodeSet{1, 2, 3, 4}, AutoTieBreaker: true}, []NodeSet{{2, 3}}, false},
		{"expected votes", QuorumConfig{Nodes: NodeSet{1, 2, 3}, ExpectedVotes: 7}, []NodeSet{{1, 2, 3}}, false},
	}
	for _, c := range cases {
		if err := c.cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		q := NewQuorum(c.cfg)
		for _, r := range c.rings {
			q.Update(r)
		}
		if q.Quorate() != c.quorate {
			t.Errorf("%s: quorate = %v (votes %d, needed %d)", c.name, q.Quorate(), q.Votes(), q.Needed())
		}
	}
	bad := QuorumConfig{Nodes: NodeSet{1, 2, 3}, TwoNode: true, Votes: map[NodeID]int{9: 1}}
	if bad.Validate() == nil {
		t.Error("invalid config accepted")
	}
}
