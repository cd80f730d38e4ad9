package totem

import "time"

// Node is one node's Totem engine. It is not safe for concurrent use: one
// goroutine (the daemon's event loop, or the simulator) owns it.
type Node struct {
	cfg Config
}

// NewNode returns an engine for cfg (zero fields take their defaults). The
// node starts by gathering: it forms a ring with whichever nodes answer, or
// alone after the consensus timeout. The first Tick sets the clock.
func NewNode(cfg Config) (*Node, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Node{cfg: cfg}, nil
}

// Tick tells the node the time is now (monotonic; never goes backwards).
func (n *Node) Tick(now time.Duration) { panic("totem: engine not written yet") }

// Step hands the node one authenticated frame from the network. A frame
// that does not decode returns ErrMalformed and changes nothing.
func (n *Node) Step(frame []byte) error { panic("totem: engine not written yet") }

// Propose queues payload for broadcast with guarantee g. It never blocks: a
// full queue returns ErrBackpressure, a payload over MaxMessageSize ErrTooBig.
func (n *Node) Propose(payload []byte, g Guarantee) error {
	panic("totem: engine not written yet")
}

// Leave makes the node leave the ring gracefully: it tells the others, who
// form a new ring at once instead of waiting for a token timeout. The node
// delivers nothing more afterwards.
func (n *Node) Leave() { panic("totem: engine not written yet") }

// HasReady reports whether Ready has anything to hand out.
func (n *Node) HasReady() bool { panic("totem: engine not written yet") }

// Ready returns and clears the output accumulated since the last call.
func (n *Node) Ready() Ready { panic("totem: engine not written yet") }

// Status returns a snapshot of the node's view of the ring.
func (n *Node) Status() Status { panic("totem: engine not written yet") }

// Stats returns the node's counters.
func (n *Node) Stats() Stats { panic("totem: engine not written yet") }
