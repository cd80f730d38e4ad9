package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/totem-gcs/totem/ipc"
)

// NodeID identifies a node of the cluster.
type NodeID uint32

// Guarantee is the delivery guarantee of a message.
type Guarantee uint8

// Guarantees.
const (
	// Agreed: every member delivers the message in the same total order.
	Agreed Guarantee = Guarantee(ipc.Agreed)
	// Safe: agreed, and delivered only once every node of the ring has it.
	Safe Guarantee = Guarantee(ipc.Safe)
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

// Reason tells why a member joined or left (Corosync's values).
type Reason = ipc.Reason

// Reasons.
const (
	ReasonJoin     = ipc.ReasonJoin
	ReasonLeave    = ipc.ReasonLeave
	ReasonNodeDown = ipc.ReasonNodeDown
	ReasonNodeUp   = ipc.ReasonNodeUp
	ReasonProcDown = ipc.ReasonProcDown
)

// Member is one process in a group. Reason is set in ConfChange.Joined and
// ConfChange.Left.
type Member struct {
	NodeID NodeID
	PID    uint32
	Reason Reason
}

// String formats the member as "node:pid".
func (m Member) String() string { return fmt.Sprintf("%d:%d", m.NodeID, m.PID) }

// Event is a *Message, a *ConfChange, an *Undelivered or a *RingChange.
type Event interface{ isEvent() }

// Message is one delivered message. Data belongs to the application;
// small messages delivered together may share one allocation for their
// Data (each its own part, with no room to append into the next), so that
// keeping one Message keeps at most 32 KiB alive. Copy Data out to keep
// only the message itself.
type Message struct {
	Group     string
	NodeID    NodeID // sender's node
	PID       uint32 // sender's pid
	Guarantee Guarantee
	Data      []byte
}

// ConfChange is a new view of a group: the members after the change, who
// joined and who left, with reasons.
type ConfChange struct {
	Group   string
	Members []Member
	Joined  []Member
	Left    []Member
	// Transitional is set on the view of a transitional configuration:
	// the ring broke up and the members of nodes that did not come along
	// left (NODEDOWN) at once; the old ring's last messages follow in this
	// view, and the next view brings whoever the new ring adds. Most
	// programs can treat it as any other change.
	Transitional bool
	// Ring is the ring whose configuration this view belongs to. Two
	// views with the same members are the same view only if they carry
	// the same ring (a node cut off during a ring the others went through
	// never saw that ring's views).
	Ring Ring
}

// Undelivered tells that one of this handle's own messages to Group was
// discarded by the cluster and will not be delivered (a configuration
// change cut the group's resynchronisation short, or this handle was no
// longer a member where the message was ordered). Send it again if it
// must get through.
type Undelivered struct {
	Group string
	Data  []byte
}

// RingChange is a new ring of the cluster (Corosync's totem_confchg):
// delivered only to handles opened with Options.RingChanges.
type RingChange struct {
	Ring    Ring
	Members []NodeID
}

func (*RingChange) isEvent()  {}
func (*Message) isEvent()     {}
func (*ConfChange) isEvent()  {}
func (*Undelivered) isEvent() {}

// Group is a group and its members.
type Group struct {
	Name    string
	Members []Member
}

// Link is the state of one link to one node.
type Link = ipc.Link

// Ring names a ring.
type Ring = ipc.Ring

// Status is the daemon's view of the cluster.
type Status = ipc.Status

// Errors. Errors returned by the handle match these with errors.Is.
var (
	// ErrTryAgain: the ring or the daemon cannot take the message now
	// (TrySend only; Send retries).
	ErrTryAgain = errors.New("totem: try again")
	// ErrTooBig: the message exceeds MaxMessageSize; the error is a
	// *TooBigError.
	ErrTooBig = errors.New("totem: message too big")
	// ErrNotJoined: the group is not joined on this handle.
	ErrNotJoined = errors.New("totem: group not joined")
	// ErrExists: the group is already joined on this handle.
	ErrExists = errors.New("totem: group already joined")
	// ErrInvalid: a bad argument (group name, guarantee).
	ErrInvalid = errors.New("totem: invalid request")
	// ErrShuttingDown: the daemon is leaving the ring.
	ErrShuttingDown = errors.New("totem: daemon shutting down")
	// ErrDisconnected: the daemon connection is lost; the error is a
	// *DisconnectedError.
	ErrDisconnected = errors.New("totem: disconnected from totemd")
	// ErrClosed: the handle was closed by Close.
	ErrClosed = errors.New("totem: handle closed")
	// ErrDenied: the operation needs root or the daemon's own user.
	ErrDenied = errors.New("totem: permission denied")
	// ErrEventOverflow: the application stopped reading Events.
	ErrEventOverflow = errors.New("totem: events not read")
)

// TooBigError names the size limit a message exceeded.
type TooBigError struct{ Size, Limit int }

func (e *TooBigError) Error() string {
	return fmt.Sprintf("totem: message of %d bytes exceeds the limit of %d bytes", e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrTooBig) true.
func (e *TooBigError) Is(t error) bool { return t == ErrTooBig }

// DisconnectedError is a lost connection, with the daemon's reason when it
// gave one.
type DisconnectedError struct {
	Reason string // from the daemon; empty when it just went away
	Err    error  // the I/O error seen, if any
	// Connecting is set when the connection was never established.
	Connecting bool
}

func (e *DisconnectedError) Error() string {
	switch {
	case e.Connecting && e.Reason != "":
		return "totem: totemd refused the connection: " + e.Reason
	case e.Connecting:
		return "totem: " + e.Err.Error()
	case e.Reason != "":
		return "totem: disconnected by totemd: " + e.Reason
	case e.Err != nil:
		return "totem: lost the connection to totemd: " + e.Err.Error()
	}
	return "totem: lost the connection to totemd"
}

// Is makes errors.Is(err, ErrDisconnected) true.
func (e *DisconnectedError) Is(t error) bool { return t == ErrDisconnected }

// Unwrap returns the I/O error.
func (e *DisconnectedError) Unwrap() error { return e.Err }

// RequestError is a request the daemon refused.
type RequestError struct {
	Op   string
	Code ipc.Code
	Msg  string
}

func (e *RequestError) Error() string { return fmt.Sprintf("totem: %s: %s", e.Op, e.Msg) }

// Is matches the sentinel errors by code.
func (e *RequestError) Is(t error) bool {
	switch e.Code {
	case ipc.TryAgain:
		return t == ErrTryAgain
	case ipc.TooBig:
		return t == ErrTooBig
	case ipc.NotJoined:
		return t == ErrNotJoined
	case ipc.Exists:
		return t == ErrExists
	case ipc.Invalid:
		return t == ErrInvalid
	case ipc.ShuttingDown:
		return t == ErrShuttingDown
	case ipc.Denied:
		return t == ErrDenied
	}
	return false
}

// LinkFault describes faults to inject on a link; the zero value clears
// them. Drop and Duplicate are probabilities (0..1) per datagram sent,
// Delay holds every datagram back, Cut drops all traffic both ways.
type LinkFault struct {
	Drop      float64
	Delay     time.Duration
	Duplicate float64
	Cut       bool
}
