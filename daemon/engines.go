package daemon

import (
	"time"

	"github.com/totem-gcs/totem/cpg"
	"github.com/totem-gcs/totem/rrp"
	"github.com/totem-gcs/totem/totem"
)

// engine is the part of *totem.Node the event loop drives.
type engine interface {
	Tick(now time.Duration)
	Step(frame []byte) error
	Propose(payload []byte, g totem.Guarantee) error
	Leave()
	HasReady() bool
	Ready() totem.Ready
	Status() totem.Status
	Stats() totem.Stats
}

var (
	_ engine       = (*totem.Node)(nil)
	_ groupService = (*cpg.Service)(nil)
)

// groupService is the part of *cpg.Service the event loop drives.
type groupService interface {
	Join(conn cpg.ConnID, pid uint32, group string) error
	Leave(conn cpg.ConnID, pid uint32, group string) error
	Send(conn cpg.ConnID, pid uint32, group string, data []byte, g totem.Guarantee) error
	SendReady() bool
	ConnGone(conn cpg.ConnID)
	Deliver(d totem.Delivery)
	Flush()
	Events() []cpg.Event
	Groups() []string
	Members(group string) []cpg.Member
	Stats() cpg.Stats
}

// network is the part of the transport the event loop uses: SendBatch never
// blocks for long; received frames come through the channel given at
// construction.
type network interface {
	SendBatch(frames []rrp.Frame) error
	Links() []linkState
	Counters() map[string]uint64
	SetFault(link int, f rrp.Fault) error
	SetKeys(send []byte, accept ...[]byte) error
	Close() error
}

// linkState is one link towards one node, for status and links.
type linkState struct {
	Node     totem.NodeID
	Link     int
	Addr     string
	State    string
	Counters map[string]uint64
}
