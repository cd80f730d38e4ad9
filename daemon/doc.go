// Package daemon is totemd: it runs one node of a Totem cluster and serves
// closed process groups to the processes of its host.
//
// # Shape
//
// One event-loop goroutine owns the engines, a *totem.Node and a
// *cpg.Service. Reader goroutines feed it: the transport (package rrp)
// delivers batches of authenticated frames, and one goroutine per client
// connection delivers IPC requests. Each loop iteration steps the frames,
// handles the requests (cpg Join/Leave/Send, queries), ticks the engine,
// then drains the engine's Ready output: the ring sequence number is
// persisted to the state directory first (a file named ringseq, like
// Corosync's ringid file), frames go to the transport, deliveries go to
// the CPG service, whose events go to the clients. Nothing in the loop
// blocks on a client: each client has a bounded outbound queue drained by
// its own writer goroutine. A client that lets its queue fill is
// disconnected with a reason; a client whose queue is half full, or whose
// send the ring cannot take, gets try-again. SIGTERM (a cancelled Run
// context) makes the node leave the ring and flushes the leave before the
// sockets close, so peers form a new ring at once.
//
// # Configuration
//
// A TOML file (see totemd.toml in this directory) with a flag for every
// option; LoadConfig and CheckConfig report every problem with its line and
// a fix (totemd --check-config). The engine's timeouts are named as in
// Corosync's totem section and start from a profile: "default"
// (totem.DefaultConfig) or "fast" (totem.FastConfig). The node ID comes
// from the config, or from matching this host's addresses against the
// node list.
//
// # IPC
//
// The Unix socket (default /run/totemd/totemd.sock) carries the protocol
// of package ipc. Access is checked with SO_PEERCRED: root, the daemon's
// own uid (the socket's owner) and the uids and gids in ipc.allow_uids and
// ipc.allow_gids (primary or supplementary group).
//
// # Several daemons in one process
//
// Start and Run keep no global state: tests run several daemons in one
// process, each with its own socket, ports and state directory.
package daemon
