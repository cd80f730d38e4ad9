package rrp

import (
	"sync/atomic"
	"time"
)

// DropCounters counts dropped datagrams by reason.
type DropCounters struct {
	// Truncated: shorter than a header, or than header, nonce and tag.
	Truncated uint64
	// Oversized: larger than the link's MTU allows.
	Oversized uint64
	// Malformed: bad magic, version, type, flags or link number, or a
	// heartbeat body that does not decode.
	Malformed uint64
	// UnknownNode: claims a sender that is not configured.
	UnknownNode uint64
	// NotForUs: addressed to another node (seen on multicast links).
	NotForUs uint64
	// AuthFailed: failed authentication (wrong key, forged or corrupted).
	AuthFailed uint64
	// CryptoMismatch: encrypted when crypto is off here, or the reverse.
	CryptoMismatch uint64
	// Duplicate: a frame number already accepted or older than the window
	// (replays, and the extra copies of active mode).
	Duplicate uint64
	// Stale: from an older incarnation of the sender.
	Stale uint64
	// Fault: dropped by injected faults (SetFault).
	Fault uint64
	// Overrun: authenticated frames dropped because the reader of Recv
	// fell behind by more than a heartbeat interval.
	Overrun uint64
}

// Total is the sum of all reasons.
func (d DropCounters) Total() uint64 {
	return d.Truncated + d.Oversized + d.Malformed + d.UnknownNode + d.NotForUs +
		d.AuthFailed + d.CryptoMismatch + d.Duplicate + d.Stale + d.Fault + d.Overrun
}

// LinkCounters are the counters of one link.
type LinkCounters struct {
	// Frames and bytes (whole datagrams) sent and accepted.
	FramesSent, FramesReceived uint64
	BytesSent, BytesReceived   uint64
	// Heartbeat datagrams sent and accepted.
	HeartbeatsSent, HeartbeatsReceived uint64
	// SendErrors counts datagrams the kernel refused.
	SendErrors uint64
	// OffloadSends counts sends that carried several datagrams at once
	// (UDP segmentation offload); OffloadReceives counts received
	// buffers that held several datagrams (UDP receive coalescing).
	OffloadSends, OffloadReceives uint64
	// Own counts this node's own multicast datagrams looped back (ignored).
	Own uint64
	// Dropped counts dropped datagrams by reason.
	Dropped DropCounters
}

func (c *LinkCounters) add(o *LinkCounters) {
	c.FramesSent += o.FramesSent
	c.FramesReceived += o.FramesReceived
	c.BytesSent += o.BytesSent
	c.BytesReceived += o.BytesReceived
	c.HeartbeatsSent += o.HeartbeatsSent
	c.HeartbeatsReceived += o.HeartbeatsReceived
	c.SendErrors += o.SendErrors
	c.OffloadSends += o.OffloadSends
	c.OffloadReceives += o.OffloadReceives
	c.Own += o.Own
	d, e := &c.Dropped, &o.Dropped
	d.Truncated += e.Truncated
	d.Oversized += e.Oversized
	d.Malformed += e.Malformed
	d.UnknownNode += e.UnknownNode
	d.NotForUs += e.NotForUs
	d.AuthFailed += e.AuthFailed
	d.CryptoMismatch += e.CryptoMismatch
	d.Duplicate += e.Duplicate
	d.Stale += e.Stale
	d.Fault += e.Fault
	d.Overrun += e.Overrun
}

// PeerLinkStatus is the state of one link towards one peer.
type PeerLinkStatus struct {
	Node NodeID
	Up   bool
	// Epoch counts transitions (odd while up); both ends of a link agree
	// on it within two transitions.
	Epoch uint32
	// Ups and Downs count transitions to up and to down.
	Ups, Downs uint64
	// LastChange is the time of the last transition (zero if none).
	LastChange time.Time
	// LastHeard is when the peer was last heard on this link (zero if
	// never).
	LastHeard time.Time
	// Address is the peer's address on this link (UDPU links).
	Address string
}

// LinkStatus is a snapshot of one link.
type LinkStatus struct {
	Link      int
	Transport string
	// Local is the bound address; Group the multicast group (UDP links).
	Local, Group string
	MTU          int
	// GSO and GRO say whether the link uses UDP segmentation offload on
	// send and receive coalescing (see Config.NoOffload).
	GSO, GRO bool
	// Up is true when the link is up towards every peer; UpPeers counts
	// the peers it is up towards.
	Up      bool
	UpPeers int
	Peers   []PeerLinkStatus
	Fault   Fault
	LinkCounters
}

// Stats is a snapshot of the transport's counters.
type Stats struct {
	// Links holds each link's counters; Total their sum.
	Links []LinkCounters
	Total LinkCounters
	// Incarnation is this node's incarnation.
	Incarnation uint64
	// KeyID is the fingerprint of the sending key (0 when insecure).
	KeyID uint8
	// RecvQueued is the number of received batches waiting in Recv.
	RecvQueued int
}

// linkCounters is the atomic form of LinkCounters.
type linkCounters struct {
	framesSent, framesReceived, bytesSent, bytesReceived atomic.Uint64
	hbSent, hbReceived, sendErrors, own                  atomic.Uint64
	truncated, oversized, malformed, unknownNode         atomic.Uint64
	notForUs, authFailed, cryptoMismatch, duplicate      atomic.Uint64
	stale, fault, overrun                                atomic.Uint64
	gsoSends, groReceives                                atomic.Uint64
}

func (c *linkCounters) snapshot() LinkCounters {
	return LinkCounters{
		FramesSent:         c.framesSent.Load(),
		FramesReceived:     c.framesReceived.Load(),
		BytesSent:          c.bytesSent.Load(),
		BytesReceived:      c.bytesReceived.Load(),
		HeartbeatsSent:     c.hbSent.Load(),
		HeartbeatsReceived: c.hbReceived.Load(),
		SendErrors:         c.sendErrors.Load(),
		OffloadSends:       c.gsoSends.Load(),
		OffloadReceives:    c.groReceives.Load(),
		Own:                c.own.Load(),
		Dropped: DropCounters{
			Truncated:      c.truncated.Load(),
			Oversized:      c.oversized.Load(),
			Malformed:      c.malformed.Load(),
			UnknownNode:    c.unknownNode.Load(),
			NotForUs:       c.notForUs.Load(),
			AuthFailed:     c.authFailed.Load(),
			CryptoMismatch: c.cryptoMismatch.Load(),
			Duplicate:      c.duplicate.Load(),
			Stale:          c.stale.Load(),
			Fault:          c.fault.Load(),
			Overrun:        c.overrun.Load(),
		},
	}
}
