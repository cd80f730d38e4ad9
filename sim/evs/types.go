// Package evs checks extended virtual synchrony (EVS) over the logs of a
// group communication run: for every process, the messages it delivered and
// the configurations it installed, in order.
//
// The checker knows nothing about networks, engines or schedulers. A
// harness (the Totem simulator in package sim, or a CPG harness) reports
// what happened through a Checker as it happens: a process started, a
// message was accepted for sending, a configuration was installed, a
// message was delivered, a process crashed. Properties that can be decided
// on the spot are checked at once; the rest when Finish is called.
//
// The properties checked (see the Property constants) are those of Moser,
// Amir, Melliar-Smith and Agarwal's EVS specification as Totem provides it:
// no delivery outside a configuration, no duplicates, no invented messages,
// senders are members, one total order, configuration agreement, failure
// atomicity (processes that move together between two configurations
// delivered the same messages in the first), safe delivery, self delivery
// and, once the run has settled, liveness (one ring of every live node that
// has delivered everything).
package evs

import (
	"fmt"
	"strings"
	"time"

	"github.com/totem-gcs/totem/totem"
)

// ProcID names one process: one run (incarnation) of a node. A node that
// crashes and restarts comes back as a new process with a higher Inc.
type ProcID struct {
	Node totem.NodeID
	Inc  uint32
}

// String formats the process as "n3" for the first incarnation and "n3.i2"
// for later ones.
func (p ProcID) String() string {
	if p.Inc == 0 {
		return fmt.Sprintf("n%d", p.Node)
	}
	return fmt.Sprintf("n%d.i%d", p.Node, p.Inc)
}

// MsgID names one application message: the process that proposed it and a
// counter unique within that process.
type MsgID struct {
	From ProcID
	Seq  uint64
}

// String formats the message id as "m[n3#17]" or "m[n3.i2#17]".
func (m MsgID) String() string { return fmt.Sprintf("m[%v#%d]", m.From, m.Seq) }

// Config is one configuration as a process installed it.
type Config struct {
	Kind    totem.ConfigKind
	Ring    totem.RingID
	Members totem.NodeSet
	// Joined and Left are checked for regular configurations after the
	// first one a process installs: they must be the difference with the
	// process's previous regular configuration.
	Joined, Left totem.NodeSet
}

// Key identifies the configuration among all processes: regular
// configurations by their ring, transitional ones by ring and members
// (processes coming from different old rings install different
// transitional configurations before the same new ring).
func (c Config) Key() string {
	if c.Kind == totem.Transitional {
		return "trans " + c.Ring.String() + c.Members.String()
	}
	return "regular " + c.Ring.String() + c.Members.String()
}

// String formats the configuration for humans.
func (c Config) String() string { return c.Key() }

// Message is one delivered (or proposed) application message as the
// harness decoded it.
type Message struct {
	ID MsgID
	// Sender is the node the engine reported as the sender.
	Sender    totem.NodeID
	Guarantee totem.Guarantee
	// Digest is a hash of the whole payload, to prove it arrived
	// byte-identical; Size its length.
	Digest uint64
	Size   int
}

// Property names one rule of extended virtual synchrony.
type Property string

// The properties the checker enforces.
const (
	// NoConfig: a message was delivered before the process installed any
	// configuration.
	NoConfig Property = "delivery-outside-configuration"
	// NoDuplicates: a process delivered a message twice.
	NoDuplicates Property = "no-duplicates"
	// NoCreation: a delivered message was never accepted by Propose, or
	// differs from what was proposed (payload, size, guarantee, sender).
	NoCreation Property = "no-creation"
	// SenderMember: a message delivered in a configuration was not sent by
	// a member of it (for a transitional configuration: of the regular
	// configuration before it), or not by the process of that node that was
	// in it.
	SenderMember Property = "sender-in-configuration"
	// AgreedOrder: the deliveries of all processes are not consistent with
	// one total order.
	AgreedOrder Property = "agreed-order"
	// ConfigAgreement: processes disagree on a ring's members, or a
	// process installed a configuration it is not a member of, an older
	// ring after a newer one, a transitional configuration that does not
	// lead from its previous ring to the next, or wrong Joined/Left sets.
	ConfigAgreement Property = "configuration-agreement"
	// FailureAtomicity: processes that installed the same two consecutive
	// configurations delivered different messages in the first one, or
	// processes moving between the same two regular configurations
	// installed different transitional configurations (so configuration
	// changes are not at the same place among the messages).
	FailureAtomicity Property = "same-messages-between-configurations"
	// SafeDelivery: a safe message delivered in a regular configuration is
	// missing at a member of that configuration that did not crash (in its
	// regular or following transitional configuration), or one delivered in
	// a transitional configuration is missing at a member of that
	// transitional configuration.
	SafeDelivery Property = "safe-delivery"
	// SelfDelivery: a process that did not crash did not deliver a message
	// it proposed.
	SelfDelivery Property = "self-delivery"
	// Liveness: after the faults stopped, the live processes did not form
	// one ring of all of them, or did not deliver the same messages in it.
	Liveness Property = "liveness"
)

// Violation is one broken rule, described precisely enough to debug from.
type Violation struct {
	Property Property
	// At is the virtual time at which the checker noticed it.
	At time.Duration
	// Procs, Msgs and Config name what is involved (may be empty).
	Procs  []ProcID
	Msgs   []MsgID
	Config string
	// Detail says what is wrong, in a sentence.
	Detail string
}

// String formats the violation on one line.
func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "t=%v %s: %s", v.At, v.Property, v.Detail)
	if v.Config != "" {
		fmt.Fprintf(&b, " [config %s]", v.Config)
	}
	if len(v.Procs) > 0 {
		fmt.Fprintf(&b, " [procs %s]", joinStrings(v.Procs))
	}
	if len(v.Msgs) > 0 {
		fmt.Fprintf(&b, " [msgs %s]", joinStrings(v.Msgs))
	}
	return b.String()
}

func joinStrings[T fmt.Stringer](xs []T) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x.String())
	}
	return b.String()
}
