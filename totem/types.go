package totem

import (
	"errors"
	"fmt"
	"time"

	"github.com/totem-gcs/totem/membership"
)

// NodeID identifies a node; zero is never valid.
type NodeID = membership.NodeID

// NodeSet is a sorted set of node IDs.
type NodeSet = membership.NodeSet

// Guarantee is the delivery guarantee chosen for one message.
type Guarantee uint8

const (
	// Agreed delivery: every member delivers the message in the same total
	// order, without gaps.
	Agreed Guarantee = 1
	// Safe delivery: agreed, and delivered only once every member of the
	// configuration has received the message.
	Safe Guarantee = 2
)

// String returns "agreed" or "safe".
func (g Guarantee) String() string {
	switch g {
	case Agreed:
		return "agreed"
	case Safe:
		return "safe"
	}
	return fmt.Sprintf("guarantee(%d)", uint8(g))
}

// RingID names one ring (one regular configuration): the representative
// that formed it and a sequence number that grows with every new ring.
type RingID struct {
	Rep NodeID
	Seq uint64
}

// String formats the ring ID as "rep.seq".
func (r RingID) String() string { return fmt.Sprintf("%d.%d", r.Rep, r.Seq) }

// ConfigKind tells a transitional configuration from a regular one.
type ConfigKind uint8

const (
	// Transitional is the configuration of the members that move together
	// from the old ring to the new one; old-ring messages that could not be
	// delivered in the old regular configuration are delivered in it.
	Transitional ConfigKind = 1
	// Regular is the configuration of a newly formed ring.
	Regular ConfigKind = 2
)

// String returns "transitional" or "regular".
func (k ConfigKind) String() string {
	if k == Transitional {
		return "transitional"
	}
	return "regular"
}

// ConfigChange is a configuration delivered in order among the messages.
type ConfigChange struct {
	Kind    ConfigKind
	Ring    RingID  // the new ring (for a transitional one too)
	Members NodeSet // members of this configuration
	// For a regular configuration: members that were not in the previous
	// regular configuration (Joined) and previous members that are not in
	// this one (Left). Empty for a transitional configuration.
	Joined, Left NodeSet
}

// Delivery is one item delivered to the application, in order: either a
// message (Config is nil) or a configuration change.
type Delivery struct {
	Config    *ConfigChange
	Sender    NodeID
	Guarantee Guarantee
	// Payload is the message as proposed. It must be treated as read-only:
	// it may share memory with the engine's buffers.
	Payload []byte
}

// Frame is one packet to put on the network.
type Frame struct {
	// To is the destination node, or 0 for every node (multicast, or one
	// unicast per configured node).
	To   NodeID
	Data []byte
}

// Ready is the output accumulated since the previous call to Node.Ready.
type Ready struct {
	// RingSeq, when non-zero, is the highest ring sequence number this node
	// has used; it must be stored durably before Frames are sent and given
	// back in Config.RingSeq on restart, so a restarted node's rings are
	// newer than the ones it was part of.
	RingSeq uint64
	// Frames to send, in order.
	Frames []Frame
	// Deliveries in delivery order, configuration changes in their place.
	Deliveries []Delivery
	// Deadline is the time at which Tick must be called next at the latest.
	Deadline time.Duration
}

// Errors returned by Node methods.
var (
	// ErrBackpressure means the send queue is full: deliver, wait for the
	// ring to make progress, and try again. Nothing was queued.
	ErrBackpressure = errors.New("totem: send queue full, try again")
	// ErrTooBig means the message exceeds Config.MaxMessageSize.
	ErrTooBig = errors.New("totem: message too big")
	// ErrMalformed means a frame could not be decoded; it was dropped.
	ErrMalformed = errors.New("totem: malformed frame")
	// ErrStopped means the node has left the ring.
	ErrStopped = errors.New("totem: node has left the ring")
)

// State is the membership state of a node.
type State uint8

// Membership states of the Totem SRP.
const (
	Operational State = iota + 1
	Gather
	Commit
	Recovery
	Left
)

// String names the state.
func (s State) String() string {
	switch s {
	case Operational:
		return "operational"
	case Gather:
		return "gather"
	case Commit:
		return "commit"
	case Recovery:
		return "recovery"
	case Left:
		return "left"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}
