package cpg

import (
	"errors"
	"fmt"

	"github.com/totem-gcs/totem/totem"
)

// ConnID names one local client connection; the daemon chooses the values.
// One connection belongs to one process (pid) and may join several groups.
type ConnID uint64

// MaxGroupName is the longest group name, in bytes (as in Corosync).
const MaxGroupName = 128

// Reason tells why a member joined or left a group view. The values are
// Corosync's, so that tools and users recognise them.
type Reason uint8

// Reasons for a membership change.
const (
	ReasonJoin     Reason = 1 // the process joined the group
	ReasonLeave    Reason = 2 // the process left the group
	ReasonNodeDown Reason = 3 // the process's node left the ring
	ReasonNodeUp   Reason = 4 // the process was learned from a node that joined the ring (or a merged partition)
	ReasonProcDown Reason = 5 // the process died or disconnected
)

// String returns "join", "leave", "nodedown", "nodeup" or "procdown".
func (r Reason) String() string {
	switch r {
	case ReasonJoin:
		return "join"
	case ReasonLeave:
		return "leave"
	case ReasonNodeDown:
		return "nodedown"
	case ReasonNodeUp:
		return "nodeup"
	case ReasonProcDown:
		return "procdown"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Member is one process in a group: the node it runs on and its pid.
// Reason is set only in the Joined and Left lists of a ConfChg.
type Member struct {
	Node   totem.NodeID
	Pid    uint32
	Reason Reason
}

// String formats the member as "node:pid" (and the reason, if any).
func (m Member) String() string {
	if m.Reason != 0 {
		return fmt.Sprintf("%d:%d(%s)", m.Node, m.Pid, m.Reason)
	}
	return fmt.Sprintf("%d:%d", m.Node, m.Pid)
}

// less orders members by node, then pid.
func (m Member) less(o Member) bool {
	if m.Node != o.Node {
		return m.Node < o.Node
	}
	return m.Pid < o.Pid
}

// key drops the reason, for identity comparisons.
func (m Member) key() Member { return Member{Node: m.Node, Pid: m.Pid} }

// Event is one item of output for the daemon: a Deliver, a ConfChg, a
// RingChange or an Undelivered. Events come in the order clients must see them.
type Event interface{ isEvent() }

// Deliver is a group message for the local connection Conn.
type Deliver struct {
	Conn      ConnID
	Group     string
	Sender    totem.NodeID
	Pid       uint32
	Guarantee totem.Guarantee
	// Data is the message; it is shared by every local recipient and must
	// be treated as read-only.
	Data []byte
}

// ConfChg is a new view of Group for the local connection Conn: the members
// after the change (sorted by node, then pid), who joined and who left.
type ConfChg struct {
	Conn    ConnID
	Group   string
	Members []Member
	Joined  []Member
	Left    []Member
	// Transitional marks the view of a transitional configuration: the
	// ring broke up, the members of nodes that did not come along with
	// this one have left (NODEDOWN), and the old ring's last messages
	// follow in this view. A message is delivered in the view it was
	// ordered in, or, by a node that could only deliver it after the
	// break, in the transitional view that follows it; a safe message
	// delivered in a view reaches every member of that view that does
	// not fail. A transitional view may list nobody in Joined or Left:
	// its members did not change, but the old ring's last messages that
	// follow may come from members outside it (a group sync that
	// completed after the ring broke up).
	Transitional bool
	// Ring is the Totem ring whose configuration the view was installed
	// in (for a transitional view, the ring whose transitional
	// configuration it is). Two views with the same members are the same
	// view only if they carry the same ring: a node that missed a ring
	// the others went through shows that by a different ring.
	Ring totem.RingID
}

// RingChange is a new Totem ring (regular configuration). It is addressed
// to no connection in particular: the daemon forwards it to every
// connection that asked for ring changes (Corosync's totem_confchg).
type RingChange struct {
	Ring    totem.RingID
	Members totem.NodeSet
}

// Undelivered tells the local connection Conn that one of its messages was
// discarded on this node (and on every node in the same configuration):
// either it reached the ring while a sync was in progress and another
// configuration change cut that sync short, so it could not be delivered
// in a view every node agrees on, or the sender was no longer in the
// group's view where the message was ordered (it left, or its membership
// was withdrawn by such a cut-short sync). Other partitions may have
// delivered it. The client may send it again; a daemon may also ignore
// this event.
type Undelivered struct {
	Conn  ConnID
	Group string
	Pid   uint32
	Data  []byte
}

func (Undelivered) isEvent() {}
func (Deliver) isEvent()     {}
func (ConfChg) isEvent()     {}
func (RingChange) isEvent()  {}

// RingInfo is the ring the service last saw installed.
type RingInfo struct {
	ID      totem.RingID
	Members totem.NodeSet
}

// Proposer is the part of the Totem engine the service needs:
// *totem.Node satisfies it. Propose must never block; a full queue returns
// totem.ErrBackpressure.
type Proposer interface {
	Propose(payload []byte, g totem.Guarantee) error
}

// queueReporter is what the service uses, if the Proposer has it, to
// bound Totem's send queue (see Config.MaxQueued).
type queueReporter interface {
	Status() totem.Status
}

// Config holds the service's limits. Zero fields take defaults.
type Config struct {
	// MaxMessageSize is the largest data a Send accepts, in bytes. It must
	// leave room for the cpg header (MessageOverhead) within Totem's
	// MaxMessageSize. Default: totem.DefaultMaxMessageSize - MessageOverhead.
	MaxMessageSize int
	// MaxPendingControl bounds the join and leave operations waiting for
	// Totem to accept them; beyond it Join and Leave return ErrTryAgain.
	// Procdown operations (ConnGone) and sync announcements are always
	// queued. Default 1024.
	MaxPendingControl int
	// SyncChunk is the largest sync announcement payload, in bytes; a node
	// with more local members announces them in several parts. Default
	// 64 KiB. It must be below Totem's MaxMessageSize.
	SyncChunk int
	// MaxQueued bounds the messages waiting in Totem's send queue (when
	// the Proposer reports it, as *totem.Node does through Status): beyond
	// it Send returns ErrTryAgain. A short queue keeps the sync after a
	// configuration change quick (announcements queue behind data), so
	// fewer messages are caught by a second change. Default 1024;
	// negative means no bound.
	MaxQueued int
	// MaxQueuedBytes bounds the bytes waiting there the same way: small
	// messages are bounded by count (enough to fill several token visits
	// with packed messages), large ones by bytes. Default 1 MiB; negative
	// means no bound.
	MaxQueuedBytes int
	// MaxLocalMembers bounds the memberships of this node's processes;
	// beyond it Join returns ErrNoSpace. Default 65536.
	MaxLocalMembers int
}

// MessageOverhead is the most the cpg header adds to a data message.
const MessageOverhead = 1 + 1 + 1 + 2 + MaxGroupName + 5 + 5 + 16

// Defaults for Config.
const (
	DefaultMaxPendingControl = 1024
	DefaultSyncChunk         = 64 << 10
	DefaultMaxLocalMembers   = 65536
	DefaultMaxQueued         = 1024
	DefaultMaxQueuedBytes    = 1 << 20
	DefaultMaxMessageSize    = totem.DefaultMaxMessageSize - MessageOverhead
)

func (c Config) withDefaults() Config {
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.MaxPendingControl <= 0 {
		c.MaxPendingControl = DefaultMaxPendingControl
	}
	if c.SyncChunk <= 0 {
		c.SyncChunk = DefaultSyncChunk
	}
	if c.SyncChunk < 1024 {
		c.SyncChunk = 1024
	}
	if c.MaxQueuedBytes == 0 {
		c.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = DefaultMaxQueued
	}
	if c.MaxLocalMembers <= 0 {
		c.MaxLocalMembers = DefaultMaxLocalMembers
	}
	return c
}

// Stats are the service's counters since it started.
type Stats struct {
	Sent             uint64 // data messages accepted by Send
	Delivered        uint64 // data deliveries handed to local connections
	ControlProposed  uint64 // control messages (join/leave/procdown batches and sync parts) accepted by Totem
	ProposalsRefused uint64 // Propose calls refused with back-pressure
	DecodeErrors     uint64 // delivered payloads that did not decode, skipped
	NotMember        uint64 // data messages dropped: sender not in the group's view
	StaleSync        uint64 // sync announcements for another ring, ignored
	Ignored          uint64 // control operations that changed nothing (duplicate join, leave of a non-member)
	Syncs            uint64 // syncs completed with every announcement
	PartialSyncs     uint64 // syncs cut short by another configuration that split their ring (held messages discarded)
	CarriedSyncs     uint64 // syncs cut short while their whole ring moved on (held messages kept for the next sync)
	Discarded        uint64 // data messages held back by a sync cut short, discarded
	HeldBack         uint64 // messages held back while syncing
}

// Errors returned by the client-side methods.
var (
	// ErrTryAgain means the request cannot be taken now (Totem's queue or
	// the control queue is full, or a sync is in progress); nothing was
	// done. Retry after the daemon's next loop iteration.
	ErrTryAgain = errors.New("cpg: try again")
	// ErrNotMember means the process has not joined the group (or is
	// leaving it).
	ErrNotMember = errors.New("cpg: process is not a member of the group")
	// ErrExist means the process has already joined the group.
	ErrExist = errors.New("cpg: process already joined the group")
	// ErrTooBig means the message exceeds the size limit; the error
	// returned is a *TooBigError naming the limit.
	ErrTooBig = errors.New("cpg: message too big")
	// ErrBadGroupName means the group name is empty or longer than
	// MaxGroupName bytes.
	ErrBadGroupName = fmt.Errorf("cpg: group name must be 1 to %d bytes", MaxGroupName)
	// ErrBadGuarantee means the guarantee is neither totem.Agreed nor
	// totem.Safe.
	ErrBadGuarantee = errors.New("cpg: guarantee must be agreed or safe")
	// ErrBadPid means a connection used a pid other than the one it first
	// joined with.
	ErrBadPid = errors.New("cpg: connection already belongs to another pid")
	// ErrNoSpace means the node has MaxLocalMembers memberships already.
	ErrNoSpace = errors.New("cpg: too many local memberships")
)

// TooBigError is returned by Send for a message over the limit; it matches
// ErrTooBig with errors.Is.
type TooBigError struct {
	Size, Limit int
}

// Error names the size and the limit.
func (e *TooBigError) Error() string {
	return fmt.Sprintf("cpg: message of %d bytes exceeds the limit of %d bytes", e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrTooBig) true.
func (e *TooBigError) Is(target error) bool { return target == ErrTooBig }
