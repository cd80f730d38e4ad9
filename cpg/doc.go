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
// Every change of group state travels through Totem's agreed order, so every
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
//     view of every group is exactly the union of the announcements; each
//     node reports the difference from its previous view to its local
//     members (joined: NODEUP; left: NODEDOWN when the member's node is no
//     longer in the ring, PROCDOWN when its node is but no longer announces
//     it), then applies the held-back messages in order.
//   - If another regular configuration arrives before a sync completes, the
//     sync is completed with the announcements received so far (the members
//     of a node whose announcement is missing are left out until the next
//     sync brings them back) and the held-back messages are applied, before
//     the new sync starts. Every node that moved through the same
//     configurations delivered the same messages, so they make the same
//     decisions.
//
// Totem hands over messages proposed before a configuration change after
// it; they are simply applied at their place in the new order, against the
// view in force there.
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
package cpg
