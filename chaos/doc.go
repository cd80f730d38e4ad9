// Package chaos is the checker of the chaos soak (tools/chaos): it reads
// the log of every client process of a run and verifies the closed process
// group virtual-synchrony properties over them. It shares no code with the
// engine, cpg or the daemon (it imports only the standard library), so a
// bug in those cannot hide itself from it.
//
// # Logs
//
// One file per process incarnation and group, JSON lines. The first line
// names the process ({"type":"self","group":G,"nodeid":N,"pid":P}, the
// (node, pid) totemd reports for it); then, in the order they happened,
// the `totemctl cpg listen --json` events (deliver, confchg) and the
// process's own sends: {"type":"sent","counter":C} written before Send is
// called, {"type":"sendfail","counter":C} if it failed,
// {"type":"undelivered","counter":C} if the service later discarded it and
// said so (a sync cut short by a partition; it need not come back), and a last
// {"type":"end","reason":"stop"} when the process left the group cleanly.
// A log without that end record is a process that crashed, was killed or
// lost its daemon; it is not a survivor. Every message is a Payload naming
// its sender and counter, with filler the checker regenerates.
//
// # Views
//
// A view is a group, its sorted member list, the ring it belongs to (the
// confchg's ring_id) and the occurrence of that pair in the process's
// history (the second time a process sees members {1:10, 2:20} in one ring
// is another view than the first). The ring tells apart the views of a
// ring that some process never installed (it was cut off while the others
// went through it): without it, counting occurrences would pair that
// process's next view with the others' view of the missed ring. Messages between two
// confchgs belong to the first. A confchg marked "transitional":true is the
// view of a transitional configuration: the ring broke up, and the old
// ring's last messages may be delivered in it instead of in the view
// before it (its parent), as extended virtual synchrony allows.
//
// # Properties
//
// See the Kind constants: agreed order within a view; the same set for
// members that moved together to the same next view (or both left it
// cleanly); no duplicates; no invented or corrupted messages; per-sender
// FIFO; self delivery for survivors (messages the service reported
// undelivered excepted); safe delivery (a safe message delivered in a view
// by anyone is delivered, in it or in the transitional view that follows
// it, by every member that installed a next view); views agree (a listed
// member that survived installed the view, views follow from joined and
// left, a message is delivered in the same view by all, a transitional
// view and its parent counting as one, and two transitional views not
// compared: the old ring's last messages may be delivered in different
// transitional configurations on different sides of a partition); and no loss: a message its sender
// got back reached every member that stayed in every view with the sender
// until both ended cleanly. With Options.ExpectClean, a run in which fewer
// processes ended cleanly, or nothing was delivered, fails too (liveness),
// so a run that proves nothing does not pass.
//
// The output of `totemctl cpg listen --json` is such a log once a self line
// is put in front of it and an end record after a clean exit; tools/chaos
// does that for one totemctl listener per node.
package chaos
