package ipc

import (
	"fmt"
	"strings"
)

// Magic opens every Hello, so that a stray connection is told apart from a
// client speaking another protocol.
const Magic = "totemd"

// Version is the protocol version this package speaks.
const Version = 1

// DefaultSocket is the daemon's socket path unless configured otherwise.
const DefaultSocket = "/run/totemd/totemd.sock"

// SocketEnv names the environment variable clients read the socket path
// from when none is given explicitly.
const SocketEnv = "TOTEMD_SOCKET"

// MaxGroupName is the longest group name, in bytes (as in Corosync's CPG).
const MaxGroupName = 128

// FrameOverhead is the room a frame needs beyond its payload for the
// envelope fields; the daemon's frame limit is MaxMessage + FrameOverhead.
const FrameOverhead = 4096

// Hello is the client's first frame.
type Hello struct {
	Magic   string `msgpack:"magic"`
	Version int    `msgpack:"version"`
	// Name is a free-form client name for the daemon's logs.
	Name string `msgpack:"name,omitempty"`
	// RingEvents asks for an EventRing at every new ring (Corosync's
	// totem_confchg).
	RingEvents bool `msgpack:"ring_events,omitempty"`
	// FlowEvents asks for an EventReady after a send of this connection
	// was refused with TryAgain, once the daemon has room again: the
	// client can then refuse sends itself meanwhile instead of moving
	// their data only to have them refused (Corosync's IPC flow control).
	FlowEvents bool `msgpack:"flow_events,omitempty"`
}

// Welcome is the daemon's answer to an accepted Hello.
type Welcome struct {
	Version int    `msgpack:"version"`
	NodeID  uint32 `msgpack:"nodeid"`
	// PID is the client's process ID as the daemon saw it (SO_PEERCRED);
	// group members are (NodeID, PID) pairs.
	PID uint32 `msgpack:"pid"`
	// MaxMessage is the largest payload Send accepts, in bytes.
	MaxMessage int `msgpack:"max_message"`
	// ConnID numbers the connection within the daemon, for logs.
	ConnID uint64 `msgpack:"conn_id"`
	// FlowEvents: the daemon sends the EventReady that Hello.FlowEvents
	// asked for.
	FlowEvents bool `msgpack:"flow_events,omitempty"`
}

// Op is the operation a Request asks for.
type Op uint8

// Operations.
const (
	OpJoin    Op = 1 // join Group
	OpLeave   Op = 2 // leave Group
	OpSend    Op = 3 // multicast Data to Group with Guarantee
	OpMembers Op = 4 // members of Group
	OpGroups  Op = 5 // every group known to the cluster
	OpStatus  Op = 6 // node and ring status
	OpStats   Op = 7 // counters
	OpLinks   Op = 8 // link states
	// OpLinkFault injects faults on one link of this node (tests; root or
	// the daemon's own user only).
	OpLinkFault Op = 9
	// OpSetKeys makes the transport send with the key in file KeyFile
	// and accept it and the keys in AcceptKeys (key rotation without a
	// restart; root or the daemon's own user only).
	OpSetKeys Op = 10
)

// String names the operation.
func (o Op) String() string {
	switch o {
	case OpJoin:
		return "join"
	case OpLeave:
		return "leave"
	case OpSend:
		return "send"
	case OpMembers:
		return "members"
	case OpGroups:
		return "groups"
	case OpStatus:
		return "status"
	case OpStats:
		return "stats"
	case OpLinks:
		return "links"
	case OpLinkFault:
		return "link-fault"
	case OpSetKeys:
		return "set-keys"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Guarantees, with the values of totem.Guarantee.
const (
	Agreed uint8 = 1
	Safe   uint8 = 2
)

// Request is one client request.
type Request struct {
	ID        uint64 `msgpack:"id"`
	Op        Op     `msgpack:"op"`
	Group     string `msgpack:"group,omitempty"`
	Guarantee uint8  `msgpack:"guarantee,omitempty"`
	Data      []byte `msgpack:"data,omitempty"`
	// Link and Fault are the arguments of OpLinkFault.
	Link  int        `msgpack:"link,omitempty"`
	Fault *LinkFault `msgpack:"fault,omitempty"`
	// KeyFile and AcceptKeys are the arguments of OpSetKeys: key file
	// paths, read by the daemon.
	KeyFile    string   `msgpack:"key_file,omitempty"`
	AcceptKeys []string `msgpack:"accept_keys,omitempty"`
}

// LinkFault describes faults to inject on a link (the zero value clears
// them): Drop and Duplicate are probabilities (0..1) for each datagram
// sent, Delay holds datagrams back, Cut drops everything in both
// directions.
type LinkFault struct {
	Drop      float64 `msgpack:"drop,omitempty"`
	Delay     int64   `msgpack:"delay_ns,omitempty"`
	Duplicate float64 `msgpack:"duplicate,omitempty"`
	Cut       bool    `msgpack:"cut,omitempty"`
}

// Code classifies the outcome of a request.
type Code uint8

// Result codes.
const (
	OK Code = iota
	// TryAgain: the ring's send queue (or this client's share of the
	// daemon's queue) is full; wait for deliveries and retry. Nothing was
	// sent.
	TryAgain
	// TooBig: the message exceeds the largest message accepted.
	TooBig
	// Invalid: a malformed request (bad group name, unknown op, ...).
	Invalid
	// Exists: the group is already joined on this connection.
	Exists
	// NotJoined: the operation needs a group this connection has not joined.
	NotJoined
	// ShuttingDown: the daemon is leaving the ring.
	ShuttingDown
	// Internal: a daemon-side failure.
	Internal
	// Denied: the operation needs root or the daemon's own user.
	Denied
)

// String names the code.
func (c Code) String() string {
	switch c {
	case OK:
		return "ok"
	case TryAgain:
		return "try-again"
	case TooBig:
		return "too-big"
	case Invalid:
		return "invalid"
	case Exists:
		return "exists"
	case NotJoined:
		return "not-joined"
	case ShuttingDown:
		return "shutting-down"
	case Internal:
		return "internal"
	case Denied:
		return "denied"
	}
	return fmt.Sprintf("code(%d)", uint8(c))
}

// Member is one process in a group: a client connection on a node, named
// by the node ID and the client's process ID. Reason is set in the Left
// and Joined lists of a configuration change.
type Member struct {
	NodeID uint32 `msgpack:"nodeid"`
	PID    uint32 `msgpack:"pid"`
	Reason Reason `msgpack:"reason,omitempty"`
}

// Reason tells why a member joined or left, with Corosync's values.
type Reason uint8

// Reasons.
const (
	ReasonJoin     Reason = 1
	ReasonLeave    Reason = 2
	ReasonNodeDown Reason = 3
	ReasonNodeUp   Reason = 4
	ReasonProcDown Reason = 5
)

// String is the lowercase word used in totemctl's JSON: join, leave,
// nodedown, nodeup, procdown.
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
	return fmt.Sprintf("reason%d", uint8(r))
}

// ParseReason is the inverse of Reason.String.
func ParseReason(s string) (Reason, error) {
	for r := ReasonJoin; r <= ReasonProcDown; r++ {
		if strings.EqualFold(s, r.String()) {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown reason %q", s)
}

// GroupInfo describes one group known to the cluster.
type GroupInfo struct {
	Name    string   `msgpack:"name"`
	Members []Member `msgpack:"members"`
}

// Ring names a ring: its representative and sequence number.
type Ring struct {
	Rep uint32 `msgpack:"rep"`
	Seq uint64 `msgpack:"seq"`
}

// String formats the ring as "rep.seq", like totem.RingID.
func (r Ring) String() string { return fmt.Sprintf("%d.%d", r.Rep, r.Seq) }

// Link is the state of one link to one node.
type Link struct {
	NodeID uint32 `msgpack:"nodeid"`
	Link   int    `msgpack:"link"`
	Addr   string `msgpack:"addr,omitempty"`
	// State is "up", "down" or "local" (this node's own link).
	State string `msgpack:"state"`
	// Counters as the transport reports them (packets, bytes, drops).
	Counters map[string]uint64 `msgpack:"counters,omitempty"`
}

// Status is the node's view of the cluster.
type Status struct {
	NodeID      uint32   `msgpack:"nodeid"`
	ClusterName string   `msgpack:"cluster_name,omitempty"`
	State       string   `msgpack:"state"` // operational, gather, commit, recovery, left
	Ring        Ring     `msgpack:"ring"`
	Members     []uint32 `msgpack:"members"`
	Links       []Link   `msgpack:"links"`
	Clients     int      `msgpack:"clients"`
	Version     string   `msgpack:"version,omitempty"`
}

// Reply answers the Request with the same ID.
type Reply struct {
	ID   uint64 `msgpack:"id"`
	Code Code   `msgpack:"code"`
	// Error explains a Code other than OK in words a user can act on.
	Error   string            `msgpack:"error,omitempty"`
	Members []Member          `msgpack:"members,omitempty"`
	Groups  []GroupInfo       `msgpack:"groups,omitempty"`
	Status  *Status           `msgpack:"status,omitempty"`
	Stats   map[string]uint64 `msgpack:"stats,omitempty"`
	Links   []Link            `msgpack:"links,omitempty"`
}

// EventType tells a delivery from a configuration change.
type EventType uint8

// Event types.
const (
	EventDeliver EventType = 1
	EventConfchg EventType = 2
	// EventUndelivered: one of this connection's own messages (Data, sent
	// to Group) was discarded by the cluster and will not be delivered;
	// the client may send it again.
	EventUndelivered EventType = 3
	// EventRing: a new ring was installed (Ring, Nodes); sent only to
	// clients that asked in Hello.RingEvents.
	EventRing EventType = 4
	// EventReady: after refusing a send of this connection with TryAgain,
	// the daemon has room for sends again; sent only to clients that asked
	// in Hello.FlowEvents, once per refusal streak.
	EventReady EventType = 5
)

// Event is a delivery or a configuration change of a joined group.
type Event struct {
	Type  EventType `msgpack:"type"`
	Group string    `msgpack:"group"`
	// Deliver: the sender and the message.
	NodeID    uint32 `msgpack:"nodeid,omitempty"`
	PID       uint32 `msgpack:"pid,omitempty"`
	Guarantee uint8  `msgpack:"guarantee,omitempty"`
	Data      []byte `msgpack:"data,omitempty"`
	// Confchg: the members after the change, and who joined and left.
	Members []Member `msgpack:"members,omitempty"`
	Joined  []Member `msgpack:"joined,omitempty"`
	Left    []Member `msgpack:"left,omitempty"`
	// Transitional marks the view of a transitional configuration (see
	// cpg.ConfChg).
	Transitional bool `msgpack:"transitional,omitempty"`
	// Ring: the new ring and its nodes; for a confchg, the ring whose
	// configuration the view belongs to (see cpg.ConfChg).
	Ring  Ring     `msgpack:"ring,omitempty"`
	Nodes []uint32 `msgpack:"nodes,omitempty"`
}

// Kind tells which field of a ServerMsg is set.
type Kind uint8

// Server message kinds.
const (
	KindWelcome Kind = 1
	KindReply   Kind = 2
	KindEvent   Kind = 3
	KindBye     Kind = 4
)

// ServerMsg is one frame from the daemon.
type ServerMsg struct {
	Kind    Kind     `msgpack:"kind"`
	Welcome *Welcome `msgpack:"welcome,omitempty"`
	Reply   *Reply   `msgpack:"reply,omitempty"`
	Event   *Event   `msgpack:"event,omitempty"`
	// Bye is the reason the daemon ends the connection.
	Bye string `msgpack:"bye,omitempty"`
}

// ValidGroupName reports why name cannot name a group, or nil.
func ValidGroupName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("group name is empty")
	case len(name) > MaxGroupName:
		return fmt.Errorf("group name is %d bytes, longer than the limit of %d", len(name), MaxGroupName)
	}
	return nil
}
