// Package membership holds what the cluster's membership is made of: node
// identities, node sets (the proc, fail and member sets of the Totem
// membership protocol, whose state machine lives in package totem beside
// the message buffers it recovers), and the quorum calculation.
//
// Like package totem it performs no I/O, starts no goroutines and reads no
// clock.
package membership

import (
	"slices"
	"strconv"
	"strings"
)

// NodeID identifies a node (a totemd instance) in the cluster. Zero is never
// a valid node ID.
type NodeID uint32

// NodeSet is a sorted set of node IDs without duplicates. The zero value is
// the empty set. Operations return new sets and never modify their inputs.
type NodeSet []NodeID

// NewNodeSet returns the set holding ids.
func NewNodeSet(ids ...NodeID) NodeSet {
	s := slices.Clone(ids)
	slices.Sort(s)
	return slices.Compact(s)
}

// Contains reports whether id is in s.
func (s NodeSet) Contains(id NodeID) bool {
	_, ok := slices.BinarySearch(s, id)
	return ok
}

// Add returns s with id added.
func (s NodeSet) Add(id NodeID) NodeSet {
	i, ok := slices.BinarySearch(s, id)
	if ok {
		return s
	}
	out := make(NodeSet, 0, len(s)+1)
	out = append(out, s[:i]...)
	out = append(out, id)
	return append(out, s[i:]...)
}

// Union returns the members of s or t.
func (s NodeSet) Union(t NodeSet) NodeSet {
	out := make(NodeSet, 0, len(s)+len(t))
	i, j := 0, 0
	for i < len(s) && j < len(t) {
		switch {
		case s[i] < t[j]:
			out = append(out, s[i])
			i++
		case s[i] > t[j]:
			out = append(out, t[j])
			j++
		default:
			out = append(out, s[i])
			i++
			j++
		}
	}
	out = append(out, s[i:]...)
	return append(out, t[j:]...)
}

// Minus returns the members of s that are not in t.
func (s NodeSet) Minus(t NodeSet) NodeSet {
	out := make(NodeSet, 0, len(s))
	for _, id := range s {
		if !t.Contains(id) {
			out = append(out, id)
		}
	}
	return out
}

// Intersect returns the members of both s and t.
func (s NodeSet) Intersect(t NodeSet) NodeSet {
	out := make(NodeSet, 0, min(len(s), len(t)))
	for _, id := range s {
		if t.Contains(id) {
			out = append(out, id)
		}
	}
	return out
}

// Equal reports whether s and t hold the same members.
func (s NodeSet) Equal(t NodeSet) bool { return slices.Equal(s, t) }

// SubsetOf reports whether every member of s is in t.
func (s NodeSet) SubsetOf(t NodeSet) bool {
	for _, id := range s {
		if !t.Contains(id) {
			return false
		}
	}
	return true
}

// Next returns the member that follows id in ring order (ascending IDs,
// wrapping around). id need not be a member. It returns 0 for an empty set.
func (s NodeSet) Next(id NodeID) NodeID {
	if len(s) == 0 {
		return 0
	}
	i, ok := slices.BinarySearch(s, id)
	if ok {
		i++
	}
	if i >= len(s) {
		i = 0
	}
	return s[i]
}

// String formats the set as "{1 2 3}".
func (s NodeSet) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, id := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(uint64(id), 10))
	}
	b.WriteByte('}')
	return b.String()
}
