package totem

// Status is a snapshot of a node's view of the ring, for admin tools.
type Status struct {
	NodeID  NodeID
	State   State
	Ring    RingID  // the ring last installed (zero before the first)
	Members NodeSet // members of that ring
	// QueuedMessages and QueuedBytes count proposals not yet broadcast.
	QueuedMessages, QueuedBytes int
	// Aru is this node's all-received-up-to; HighSeq the highest sequence
	// number seen on the current ring.
	Aru, HighSeq uint64
}

// Stats are counters since the node started, named after Corosync's
// stats.srp keys so operators find their way.
type Stats struct {
	OrfTokenTx, OrfTokenRx      uint64 // tokens sent and received
	McastTx, McastRx, McastRetx uint64 // message frames sent, received, retransmitted
	MembJoinTx, MembJoinRx      uint64
	MembCommitTokenTx           uint64
	MembCommitTokenRx           uint64
	MembMergeDetectTx           uint64
	MembMergeDetectRx           uint64
	TokenHoldCancelTx           uint64
	TokenHoldCancelRx           uint64
	OperationalTokenLost        uint64 // token timeouts while operational
	GatherTokenLost             uint64 // consensus timeouts while gathering
	CommitTokenLost             uint64
	RecoveryTokenLost           uint64
	ConsensusTimeouts           uint64
	FailedToReceive             uint64 // times this node declared itself unable to receive
	PausesDetected              uint64 // ticks that came far later than asked: this process was not scheduled
	ContinuousGather            uint64 // gathers restarted before a ring formed
	RxMsgDropped                uint64 // frames ignored: foreign, stale or undecodable
	MembershipChanges           uint64 // regular configurations installed
	MessagesDelivered           uint64 // application messages delivered
	MessagesProposed            uint64 // application messages accepted by Propose
	ProposalsRefused            uint64 // Propose calls refused with ErrBackpressure
	Fragmented                  uint64 // messages split across frames
}
