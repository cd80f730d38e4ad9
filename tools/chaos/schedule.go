package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// step is one fault of the schedule, with every random choice made: where,
// how long it lasts (Hold) and the quiet time after it is healed (Pause).
type step struct {
	Kind  string
	Node  int // 1-based
	Link  int
	Slot  int   // client: index of the client slot to kill
	Side  []int // partition: the nodes on the smaller side
	Hold  time.Duration
	Pause time.Duration
	Drop  float64 // loss
	Dup   float64
	Delay time.Duration
	Flaps []time.Duration // flap: down, up, down, up, ...
}

func (st step) String() string {
	switch st.Kind {
	case "kill":
		return fmt.Sprintf("kill totemd %d for %v", st.Node, st.Hold)
	case "restart":
		return fmt.Sprintf("restart totemd %d", st.Node)
	case "client":
		return fmt.Sprintf("kill client slot %d, replace it after %v", st.Slot, st.Hold)
	case "link":
		return fmt.Sprintf("cut link %d of node %d for %v", st.Link, st.Node, st.Hold)
	case "node":
		return fmt.Sprintf("cut node %d for %v", st.Node, st.Hold)
	case "loss":
		return fmt.Sprintf("loss on node %d: drop %.3f duplicate %.3f delay %v on every link for %v", st.Node, st.Drop, st.Dup, st.Delay, st.Hold)
	case "partition":
		s := make([]string, len(st.Side))
		for i, n := range st.Side {
			s[i] = fmt.Sprint(n)
		}
		return fmt.Sprintf("partition {%s} | rest for %v", strings.Join(s, " "), st.Hold)
	case "flap":
		return fmt.Sprintf("flap link %d of node %d %d times", st.Link, st.Node, len(st.Flaps)/2)
	}
	return st.Kind
}

// planner draws the fault schedule from the seed alone, so a seed always
// gives the same faults in the same order, whatever the daemons do.
type planner struct {
	rng   *rand.Rand
	kinds []string
	nodes int
	links int
	slots int
}

func newPlanner(seed int64, nodes, links, slots int, loopback bool) *planner {
	kinds := []string{"kill", "restart", "client", "client", "loss", "loss", "node"}
	if !loopback {
		kinds = append(kinds, "link", "link", "partition", "partition", "flap")
	}
	return &planner{rng: rand.New(rand.NewPCG(uint64(seed), 0x7363686564)), kinds: kinds, nodes: nodes, links: links, slots: slots}
}

func (p *planner) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(p.rng.Int64N(int64(hi-lo)+1))
}

// next returns the next fault.
func (p *planner) next() step {
	st := step{Kind: p.kinds[p.rng.IntN(len(p.kinds))], Node: 1 + p.rng.IntN(p.nodes), Link: p.rng.IntN(p.links)}
	switch st.Kind {
	case "kill":
		st.Hold = p.between(500*time.Millisecond, 3*time.Second)
	case "client":
		st.Slot = p.rng.IntN(p.slots)
		st.Hold = p.between(500*time.Millisecond, 2*time.Second)
	case "link":
		st.Hold = p.between(time.Second, 4*time.Second)
	case "node":
		st.Hold = p.between(2*time.Second, 6*time.Second)
	case "loss":
		st.Drop = 0.05 + 0.25*p.rng.Float64()
		st.Dup = 0.1 * p.rng.Float64()
		st.Delay = time.Duration(p.rng.IntN(20)) * time.Millisecond
		st.Hold = p.between(2*time.Second, 6*time.Second)
	case "partition":
		perm := p.rng.Perm(p.nodes)
		k := 1 + p.rng.IntN(p.nodes/2)
		for n := 1; n <= p.nodes; n++ {
			for _, q := range perm[:k] {
				if q+1 == n {
					st.Side = append(st.Side, n)
				}
			}
		}
		st.Hold = p.between(3*time.Second, 8*time.Second)
	case "flap":
		for range 4 + p.rng.IntN(6) {
			st.Flaps = append(st.Flaps, p.between(50*time.Millisecond, 250*time.Millisecond), p.between(100*time.Millisecond, 400*time.Millisecond))
		}
	}
	st.Pause = p.between(500*time.Millisecond, 2*time.Second)
	return st
}
