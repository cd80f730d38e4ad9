// Package rrp is the network layer of totemd: it carries the Totem engine's
// frames between daemons over UDP, encrypted and authenticated, on up to
// eight redundant links (the Redundant Ring Protocol).
//
// # Use
//
//	key, err := rrp.ReadKey("/etc/totem/authkey")
//	t, err := rrp.New(rrp.Config{
//		NodeID: 1,
//		Nodes: []rrp.Node{
//			{ID: 1, Addrs: []string{"198.18.0.1", "198.18.1.1"}},
//			{ID: 2, Addrs: []string{"198.18.0.2", "198.18.1.2"}},
//		},
//		Links: []rrp.LinkConfig{{Transport: rrp.UDPU}, {Transport: rrp.UDPU}},
//		Mode:  rrp.Passive,
//		Key:   key,
//	})
//	defer t.Close()
//	netMTU := t.MaxFrame() // give this to the engine as totem.Config.NetMTU
//	t.SendBatch(frames)    // frames from totem.Node.Ready().Frames
//	for batch := range t.Recv() {
//		for _, r := range batch { node.Step(r.Frame) }
//	}
//
// Send and SendBatch may be called from any goroutine; received frames
// arrive in batches (one batch per recvmmsg call) on the channel returned
// by Recv, and each Received.Frame is owned by the receiver. A reader that
// falls behind by more than a heartbeat interval loses frames (counted as
// Dropped.Overrun; the engine retransmits them) rather than stalling the
// socket readers, so link monitoring keeps working.
//
// # Links
//
// A link is one UDP socket bound to a local address on one network, either
// unicast to every configured node (Transport "udpu": works anywhere,
// including loopback and clouds) or multicast to a group (Transport "udp":
// the LAN default, with a second socket bound to the group address).
// IPv4 and IPv6 both work. Datagrams are read and written in batches
// (recvmmsg/sendmmsg through golang.org/x/net's ipv4 and ipv6 PacketConn).
//
// # Offload
//
// Most of the cost of a large message is per datagram in the kernel. On
// Linux the transport therefore uses UDP segmentation offload (GSO,
// Linux 4.18): consecutive datagrams of one SendBatch to the same address
// and of one size (the last may be shorter) go to the kernel as one
// buffer, which the kernel or the NIC cuts into the same datagrams, and
// UDP receive coalescing (GRO, Linux 5.0), which hands several datagrams
// of one flow to one recvmmsg slot; readLoop cuts them apart. The wire
// format does not change: every datagram is still sealed on its own, and
// nodes with and without offload talk to each other. Per destination the
// datagrams keep their order; a batch's destinations go one after the
// other, in the order of each one's last datagram, so the token (last in
// its batch) still leaves after the frames before it. If the kernel or
// device refuses a segmented send (EIO, EINVAL...), the link turns GSO
// off, logs it once and resends that batch datagram by datagram.
// Config.NoOffload turns both off; LinkStatus says what a link uses. A
// capture on the sending host (or on a veth) sees the uncut buffers:
// package rrplayer splits them.
//
// # Wire format
//
// Every datagram starts with a fixed HeaderSize-byte clear header (see
// Header), followed, when crypto is on, by a 24-byte random XChaCha20
// nonce and the ChaCha20-Poly1305 ciphertext of the body with its 16-byte
// tag. The clear header is the AEAD's additional data, so every byte of the
// datagram is authenticated. Overhead is the total the transport adds to a
// frame; MaxFrame gives the largest frame for the configured MTUs.
//
// # Security and replay
//
// Each node picks an incarnation when it starts (wall-clock nanoseconds, or
// Config.Incarnation) and numbers its frames from one counter. A receiver
// keeps, per sender, the newest incarnation seen and a sliding window of
// frame numbers: a frame from an older incarnation, or one whose number was
// already accepted or is older than the window, is dropped before it is
// decrypted. The same window drops the copies that active mode sends on
// every link. A restarted peer is recognised by its higher incarnation; a
// peer whose clock stepped back across a restart is refused (and logged)
// until its clock passes its previous start (a daemon that stores its
// state can avoid this by passing Config.Incarnation = max(now, stored+1)).
// Replays of a current
// incarnation's frames are therefore impossible; ring-level staleness (old
// ring ids, old sequence numbers) remains the engine's business.
//
// Anything that is truncated, oversized, malformed, claims an unknown node,
// fails authentication or replays is dropped and counted by reason (see
// LinkCounters), never parsed further. Authentication failures are logged
// in plain words, at most once per
// Config.AuthLogInterval per peer address.
//
// SetKeys switches keys without a restart: first install the new key as an
// accepted key on every node, then make it the sending key everywhere, then
// drop the old one. Each key is named on the wire by a one-byte
// fingerprint.
//
// # Redundancy and link monitoring
//
// In Passive mode a frame goes out on the lowest-numbered link that is up
// towards its destination, so traffic fails over when that link goes down
// and moves back when it heals. While the link in use is suspect (nothing
// heard from the destination on it for two heartbeat intervals or a third
// of LinkTimeout, whichever is longer) but not yet down, frames go out on
// every link that is up, so a silent failure loses frames for that long,
// not for a whole LinkTimeout. In Active mode it goes out on every link
// that is up, and the receiver keeps the first copy. When no link is up
// towards a destination (at start, or when everything failed), frames go
// out on every link.
//
// Every HeartbeatInterval each node sends a heartbeat on each link to each
// peer, saying whether it hears that peer on that link and the link's
// history counter (the epoch: odd while up, even while down). A link to a
// peer is up only while both directions work (I hear you and you say you
// hear me); a side may move at most one transition ahead of what it last
// heard from the other towards up, and catches up with transitions the
// other side made, so both ends see the same sequence of up/down
// transitions (the consistent-history protocol of the RAIN system). A link
// is declared down LinkTimeout after it stops working.
//
// # Fault injection
//
// SetFault sets, per link and at run time, a drop rate, a delay, a
// duplication rate and a cut switch. It is meant for tests; by default no
// fault is set and the code path costs one atomic load.
package rrp
