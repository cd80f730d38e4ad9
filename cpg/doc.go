// Package cpg implements closed process groups (CPG) on top of the Totem
// engine: processes join named groups, multicast to them with an agreed or
// a safe guarantee, and receive the group's messages and membership changes
// in one order on every member. It offers the semantics of Corosync's CPG
// service, with safe delivery that is real (Corosync accepts the flag but
// delivers agreed) and group state rebuilt from every node's own truth on
// every ring change.
//
// # A pure state machine
//
// A Service does no I/O, starts no goroutines, reads no clock, draws no
// random numbers and logs nothing. The daemon owns it from one goroutine and
// drives it with three kinds of input:
//
//	s.Join(conn, pid, group) / s.Leave / s.Send / s.ConnGone   // client requests
//	s.Deliver(d)                                               // every totem delivery, in order
//	s.Flush()                                                  // once per loop iteration
//
// and collects its output with s.Events(): deliveries and configuration
// changes addressed to local connections, and ring changes for every
// connection that asked for them, in the order the clients must see them.
// Messages go to the other nodes through a Proposer (a *totem.Node).
//
// # Protocol
//
// Every change of group state travels through Totem's order (control
// operations and sync parts as safe messages), so every
// node applies it at the same place among the messages:
//
//   - a Send becomes a data message; a node delivers it to its local members
//     of the group if the sender (node, pid) is a member of the group's view
//     at that place, and drops and counts it otherwise;
//   - Join, Leave and ConnGone (procdown) become control operations; the
//     member enters or leaves the view when the operation is delivered, on
//     every node, including the sender's own;
//   - after every regular configuration each node announces its own local
//     members (a sync message, split in parts if large, tagged with the ring
//     id). Until the announcements of every node of the ring have been
//     delivered the service is syncing: other messages delivered meanwhile
//     are held back, and local sends are refused with ErrTryAgain. When the
//     last announcement is delivered (the same place on every node) the new
//     view of every group is exactly the union of the announcements. Each
//     node first reports the members of nodes that Totem says joined (they
//     come from configurations this node was not part of: a restart, or a
//     partition it did not notice) as left with NODEDOWN, as those nodes
//     saw this node's members leave; then it reports the difference from
//     that view to its local members (joined: NODEUP; left: NODEDOWN when
//     the member's node is no longer in the ring, PROCDOWN when its node
//     stayed in the ring but no longer announces it), and applies the
//     held-back messages in order. So every view a process installs is
//     installed by every member it lists that stays connected.
//   - If another regular configuration arrives before a sync completes and
//     every node of the syncing ring moved on together (the transitional
//     configuration is that whole ring), they all delivered the same
//     messages and none is elsewhere: what the sync held back is carried
//     into the next sync. When that one completes, the carried messages are
//     applied first, in a view of the members of that ring's nodes only
//     (announcements include their own carried operations, which are undone
//     for that view and then applied in order), before the members of nodes
//     that joined since are added.
//   - If the syncing ring broke up instead, nodes on different sides may
//     have delivered different parts of it, so the sync is abandoned: the
//     views stay as they were (the next sync replaces them), held-back (and
//     carried) data messages are discarded (their senders get an
//     Undelivered event), and the node's own held-back control operations
//     are queued again.
//   - A transitional configuration starts a transitional view at once:
//     the members of nodes that did not come along leave (NODEDOWN, the
//     ConfChg marked Transitional), and the old-ring messages Totem still
//     delivers are applied in that view (from senders that left too, if
//     they were members where the messages were ordered), because Totem
//     guarantees a safe message delivered there only to the nodes of the
//     transitional configuration. Control operations from nodes that did
//     not come along are ignored there; the next sync settles their
//     members. A sync that completes during the transitional
//     configuration installs its views restricted to it, also marked
//     transitional. As extended virtual synchrony allows, nodes in
//     different partitions may deliver different old-ring messages there;
//     the sync of the next regular configuration brings the views together.
//
// Totem hands over messages proposed before a configuration change after
// it; they are applied at their place in the new order, against the view in
// force there (held back first if a sync is in progress). A data message
// whose sender is not in the group's view at its place is dropped on every
// node (counted; the sender gets an Undelivered event).
//
// # Events and the daemon
//
// Events() returns, in order: Deliver (a message for one local
// connection), ConfChg (a new view of a group for one local connection),
// RingChange (a new Totem ring, for every connection that asked for ring
// changes) and Undelivered (one of the connection's own messages was
// discarded; a daemon may forward or ignore it). A connection is one
// client process: its first Join binds its pid; one process may join
// several groups; several processes (connections) per node may join the
// same group. Read-only state: Groups, Members, Ring, LocalMembers,
// Syncing, PendingControl, Stats.
//
// # Guarantees
//
// A Send with totem.Safe is proposed as a safe Totem message: it is
// delivered only once every node of the ring has it (Corosync accepts the
// flag but delivers agreed). A sender receives its own messages like every
// other member. Every member of a group receives the group's messages in
// the same order, each in the same view, and views change at the same
// place among the messages on every member that stays connected.
//
// # Back-pressure
//
// Data sends are proposed at once: a full Totem queue gives ErrTryAgain and
// nothing is queued. Control operations (join, leave, procdown, sync) are
// never lost: they wait in the service's own queue, bounded by
// Config.MaxPendingControl for client requests (ErrTryAgain beyond it), and
// are proposed again by Flush and by Deliver. While control operations wait,
// data sends are refused with ErrTryAgain so that a process's join always
// reaches the ring before its first message.
//
// # Wire format
//
// Every cpg message inside a Totem payload is one version byte (1) followed
// by a msgpack array whose first element is the message type (see wire.go).
// A delivered payload that does not decode is counted in Stats and skipped.
// If other services share the ring, the daemon routes to Deliver the
// messages whose payload starts with the cpg version byte, and every
// configuration change.
package cpg
