// Package client is the Go library for totemd's closed process groups:
// processes join named groups and multicast messages to them; every member
// receives the same messages and membership changes in the same order.
//
// The whole API in one screen:
//
//	h, err := client.Connect(ctx, client.Options{})  // $TOTEMD_SOCKET or /run/totemd/totemd.sock
//	                                                 // (RingChanges: true adds *client.RingChange events)
//	defer h.Close()
//	h.NodeID(); h.PID(); h.MaxMessageSize()           // local node, our pid as the daemon sees it, size limit
//
//	err = h.Join(ctx, "locks")                        // join a group (ErrExists if already joined)
//	err = h.Send(ctx, "locks", data, client.Agreed)   // multicast; blocks while the ring is busy
//	err = h.TrySend(ctx, "locks", data, client.Safe)  // or returns ErrTryAgain at once
//	err = h.SendAsync(ctx, "locks", data, client.Agreed, func(err error) { ... })
//	                                                 // pipelined: returns at once, done gets TrySend's result
//	for ev := range h.Events() {                      // closed when the connection ends; then h.Err()
//		switch ev := ev.(type) {
//		case *client.Message:    // ev.Group, ev.NodeID, ev.PID, ev.Guarantee, ev.Data
//		case *client.ConfChange: // ev.Group, ev.Members, ev.Joined, ev.Left (Member.Reason), ev.Transitional, ev.Ring
//		case *client.Undelivered: // one of our messages was discarded (rare): resend ev.Data?
//		case *client.RingChange:  // ev.Ring, ev.Members (only with Options.RingChanges)
//		}
//	}
//	members, err := h.Members(ctx, "locks")           // current view of a group
//	groups, err := h.Groups(ctx)                      // every group in the cluster, with members
//	st, err := h.Status(ctx)                          // node, ring, members, links
//	stats, err := h.Stats(ctx)                        // counters by name
//	err = h.Leave(ctx, "locks")
//	err = h.SetKeys(ctx, "/etc/totemd/new.key", "/etc/totemd/authkey") // admin: key rotation
//	err = h.SetLinkFault(ctx, 0, client.LinkFault{Cut: true})            // admin: tests
//
// Delivery guarantees: Agreed delivers every message in the same total
// order on every member; Safe delivers a message only once every node of
// the ring has it. Your own messages come back to you in that order too.
// When the ring breaks, members on nodes that are gone leave at once with
// NODEDOWN in a ConfChange marked Transitional, and the old ring's last
// messages follow in that view: a safe message is then known to have
// reached the members it lists.
//
// Back-pressure: when the ring or the daemon cannot take more, the daemon
// answers try-again. Send then waits and retries until ctx is done, so a
// sender that outruns the ring blocks; TrySend returns ErrTryAgain instead.
// Once the daemon has refused a send, the handle refuses the next ones
// itself (ErrTryAgain, without a round trip) until the daemon says it has
// room again.
// Messages larger than MaxMessageSize (at least 1 MiB) are refused with a
// *TooBigError that names the limit.
//
// Throughput: Send and TrySend wait for the daemon's answer, so one
// goroutine sends one message per round trip. SendAsync does not wait: a
// single goroutine can keep many requests in flight, and requests queued
// while earlier ones are unanswered go out together in few writes. Its
// done callback reports each message's fate in call order (nil, or an
// error matching ErrTryAgain: resend it to keep your own order, as the
// daemon may accept a later message meanwhile). Bound what you keep in
// flight (say 64 messages); done runs on the handle's reader goroutine and
// must not block.
//
// Events must be read: deliveries wait in the handle (up to
// Options.MaxPendingEvents) and, beyond that, the handle closes with
// ErrEventOverflow rather than stall the daemon. A lost daemon connection
// fails every call with a *DisconnectedError (matching ErrDisconnected)
// that gives the daemon's reason when it sent one; calls never hang on a
// dead daemon. Events then hands out what arrived before the loss and is
// closed; call Close to release a handle whose Events you stop reading.
//
// Latency: events reach Events from the handle's reader goroutine. With
// GOMAXPROCS above 1, handing one to a goroutine that waits on Events wakes
// a second thread, which on a busy machine costs tens of microseconds per
// event. A process that mostly waits on the daemon, as cpgbench does,
// answers sooner with GOMAXPROCS=1: on a 2-CPU machine a message's
// round trip through a 3-node ring took 227-284 µs (p50) that way, against
// 336-379 µs with a thread per CPU.
//
// Several handles may be open in one process; each is an independent
// member (same node and pid, distinct connections). A Handle is safe for
// concurrent use.
package client
