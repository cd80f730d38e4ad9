// Package totem implements the Totem single-ring protocol (SRP) as a pure,
// deterministic state machine: a token circulates a logical ring of nodes;
// the holder broadcasts new messages stamped with sequence numbers, answers
// retransmission requests and updates the all-received-up-to (aru) mark, so
// that every node delivers the same messages in the same (agreed) order, and
// safe messages only once every member has them. Ring membership (gather,
// consensus, commit token, recovery) and extended virtual synchrony
// (transitional and regular configurations delivered in order with the
// messages) are part of the same state machine.
//
// A Node does no I/O, starts no goroutines, reads no clock, draws no random
// numbers and logs nothing. It is driven by three kinds of input:
//
//	n.Tick(now)              // time moved on (monotonic, from any origin)
//	n.Step(frame)            // an authenticated frame from the network
//	n.Propose(payload, g)    // an application message, or ErrBackpressure
//
// and hands back its output through Ready: frames to send, deliveries in
// order with configuration changes in their place, the ring sequence number
// to persist, and the next deadline at which Tick must be called.
//
//	for {
//		rd := n.Ready()
//		persist(rd.RingSeq)         // if non-zero, before sending
//		send(rd.Frames)
//		deliver(rd.Deliveries)
//		wait until rd.Deadline, a frame or a request
//		n.Tick(now)
//		...
//	}
//
// The engine's clock moves only in Tick. Frames and proposals may be handed
// over before or after the Tick of the moment they arrive; timers they arm
// (token loss, consensus, join, ...) count from the next Tick, that is from
// when the caller has finished handling them, so a caller that steps a long
// batch of frames and then ticks does not shorten any timeout.
//
// The wire codec of every Totem packet lives in this package (Encode,
// Decode): msgpack, hand-written without reflection, behind a version byte.
package totem
