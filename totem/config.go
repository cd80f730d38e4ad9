package totem

import (
	"errors"
	"fmt"
	"time"
)

// Config holds the parameters of one node's engine. Zero fields take the
// defaults of DefaultConfig when passed through WithDefaults.
type Config struct {
	// NodeID of this node. Required.
	NodeID NodeID
	// RingSeq is the highest ring sequence number this node used in an
	// earlier run (see Ready.RingSeq); zero on first start.
	RingSeq uint64

	// Token is the token-loss timeout: no token for this long starts a new
	// membership. Corosync's default is 3000 ms (plus TokenCoefficient per
	// node above two).
	Token time.Duration
	// TokenCoefficient is added to Token for every configured node above two.
	TokenCoefficient time.Duration
	// TokenRetransmitsBeforeLoss is how many times a token is retransmitted
	// by its sender before it counts as lost; the token retransmit interval
	// is Token / (TokenRetransmitsBeforeLoss + 0.2).
	TokenRetransmitsBeforeLoss int
	// Hold is how long an idle ring's representative holds the token before
	// passing it on (default: 0.8 of the retransmit interval).
	Hold time.Duration
	// Join is the interval at which join messages are resent while
	// gathering.
	Join time.Duration
	// Consensus is how long to wait for every node's join before declaring
	// the silent ones failed (default: 1.2 × Token).
	Consensus time.Duration
	// Merge is the interval at which a ring's representative announces its
	// ring so that partitions that heal are detected.
	Merge time.Duration
	// FailToReceive is the number of token rotations during which a node
	// may fail to receive a message others have before it is considered
	// failed ("FAILED TO RECEIVE").
	FailToReceive int
	// SeqnoUnchanged is the number of rotations with no new message after
	// which the ring counts as idle and the token is held.
	SeqnoUnchanged int

	// WindowSize is the number of frames (new and retransmitted) the whole
	// ring may send in one token rotation. Default 150, three times
	// Corosync's 50, which dates from 100 Mbit/s networks and small socket
	// buffers: the transport asks for 4 MiB buffers and sends a visit's
	// frames with segmentation offload, and on the 3-node benchmark
	// cluster 150/50 moved 64 KiB messages 1.6 times faster than 50/17
	// (docs/PERFORMANCE.md).
	WindowSize int
	// MaxMessages is the number of frames one node may send per token
	// visit. Default 100 (Corosync: 17): a lone sender fills two thirds of
	// the window. Against 50, on the benchmark cluster with one sender,
	// 4-64 KiB messages went 1.05-1.4 times faster with no more
	// retransmissions, and three senders were unchanged.
	MaxMessages int
	// NetMTU is the largest frame, in bytes, the engine hands to the network
	// (before the transport's own header and crypto overhead).
	NetMTU int
	// MaxMessageSize is the largest payload Propose accepts.
	MaxMessageSize int
	// MaxQueueBytes bounds the payload bytes waiting to be sent; Propose
	// returns ErrBackpressure beyond it.
	MaxQueueBytes int
	// Nodes is the number of configured nodes, used only for
	// TokenCoefficient. Zero means two.
	Nodes int

	// Break deliberately breaks one rule of the protocol, so that tests can
	// show the simulator's checker catches it: BreakSafeEarly or
	// BreakSkipRecovery. Never set it outside tests.
	Break string
}

// Rules Config.Break can break.
const (
	// BreakSafeEarly delivers safe messages as soon as agreed ones.
	BreakSafeEarly = "safe-early"
	// BreakSkipRecovery installs new rings without rebroadcasting old-ring
	// messages.
	BreakSkipRecovery = "skip-recovery"
)

// Defaults mirror Corosync's totem section, so that a cluster behaves as
// its operators expect. FastConfig is the LAN profile.
const (
	DefaultToken                      = 3000 * time.Millisecond
	DefaultTokenCoefficient           = 650 * time.Millisecond
	DefaultTokenRetransmitsBeforeLoss = 4
	DefaultJoin                       = 50 * time.Millisecond
	DefaultMerge                      = 200 * time.Millisecond
	DefaultFailToReceive              = 2500
	DefaultSeqnoUnchanged             = 30
	DefaultWindowSize                 = 150
	DefaultMaxMessages                = 100
	DefaultNetMTU                     = 1500
	DefaultMaxMessageSize             = 1 << 20
	DefaultMaxQueueBytes              = 8 << 20
)

// DefaultConfig returns Corosync-like defaults for node id.
func DefaultConfig(id NodeID) Config {
	return Config{NodeID: id}.WithDefaults()
}

// FastConfig returns the fast LAN profile for node id: a dead node is
// noticed after a 100 ms token timeout (Corosync's usual short token) and
// the survivors form a new ring about 60 ms later. Consensus is kept below
// the token, unlike Corosync's default of 1.2 tokens, so that a failover
// stays under 250 ms; a node that falls silent during a membership change
// is then dropped sooner, and merges back. It suits a LAN whose daemons
// get the CPU within tens of milliseconds (see the daemon's sched_rr): a
// 50 ms token re-formed the ring under load on a 2-vCPU virtual machine
// whose host stopped it for up to 96 ms at a time, which real-time
// scheduling cannot prevent.
func FastConfig(id NodeID) Config {
	return Config{
		NodeID:                     id,
		Token:                      100 * time.Millisecond,
		TokenCoefficient:           -1, // none
		TokenRetransmitsBeforeLoss: 3,
		Join:                       10 * time.Millisecond,
		Consensus:                  60 * time.Millisecond,
		Merge:                      50 * time.Millisecond,
	}.WithDefaults()
}

// WithDefaults returns c with every zero field set to its default. A
// negative TokenCoefficient means none.
func (c Config) WithDefaults() Config {
	if c.Token == 0 {
		c.Token = DefaultToken
	}
	if c.TokenCoefficient == 0 {
		c.TokenCoefficient = DefaultTokenCoefficient
	}
	if c.TokenRetransmitsBeforeLoss == 0 {
		c.TokenRetransmitsBeforeLoss = DefaultTokenRetransmitsBeforeLoss
	}
	if c.Join == 0 {
		c.Join = DefaultJoin
	}
	if c.Merge == 0 {
		c.Merge = DefaultMerge
	}
	if c.FailToReceive == 0 {
		c.FailToReceive = DefaultFailToReceive
	}
	if c.SeqnoUnchanged == 0 {
		c.SeqnoUnchanged = DefaultSeqnoUnchanged
	}
	if c.WindowSize == 0 {
		c.WindowSize = DefaultWindowSize
	}
	if c.MaxMessages == 0 {
		c.MaxMessages = DefaultMaxMessages
	}
	if c.NetMTU == 0 {
		c.NetMTU = DefaultNetMTU
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.MaxQueueBytes == 0 {
		c.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if c.Consensus == 0 {
		c.Consensus = c.RuntimeToken() * 6 / 5
	}
	if c.Hold == 0 {
		c.Hold = c.TokenRetransmit() * 4 / 5
	}
	return c
}

// RuntimeToken is the token-loss timeout in force: Token plus
// TokenCoefficient for every configured node above two.
func (c Config) RuntimeToken() time.Duration {
	t := c.Token
	if c.TokenCoefficient > 0 && c.Nodes > 2 {
		t += time.Duration(c.Nodes-2) * c.TokenCoefficient
	}
	return t
}

// TokenRetransmit is the interval after which an unacknowledged token is
// sent again.
func (c Config) TokenRetransmit() time.Duration {
	return time.Duration(float64(c.RuntimeToken()) / (float64(c.TokenRetransmitsBeforeLoss) + 0.2))
}

// MinNetMTU is the smallest NetMTU the engine accepts.
const MinNetMTU = 576

// Validate reports every problem with c (after WithDefaults) in one error.
func (c Config) Validate() error {
	var errs []error
	if c.NodeID == 0 {
		errs = append(errs, errors.New("node id must be set and non-zero"))
	}
	if c.NetMTU < MinNetMTU {
		errs = append(errs, fmt.Errorf("netmtu %d is below the minimum %d", c.NetMTU, MinNetMTU))
	}
	if c.Token <= 0 || c.Join <= 0 || c.Consensus <= 0 || c.Merge <= 0 {
		errs = append(errs, errors.New("token, join, consensus and merge timeouts must be positive"))
	}
	if c.Consensus < c.Join {
		errs = append(errs, fmt.Errorf("consensus (%v) must be at least join (%v)", c.Consensus, c.Join))
	}
	if c.Hold >= c.TokenRetransmit() {
		errs = append(errs, fmt.Errorf("hold (%v) must be below the token retransmit interval (%v)", c.Hold, c.TokenRetransmit()))
	}
	if c.WindowSize < 1 || c.MaxMessages < 1 || c.MaxMessages > c.WindowSize {
		errs = append(errs, fmt.Errorf("need 1 <= max_messages (%d) <= window_size (%d)", c.MaxMessages, c.WindowSize))
	}
	if c.MaxMessageSize < 1 || c.MaxQueueBytes < c.MaxMessageSize {
		errs = append(errs, fmt.Errorf("max queue bytes (%d) must hold at least one message of max size (%d)", c.MaxQueueBytes, c.MaxMessageSize))
	}
	switch c.Break {
	case "", BreakSafeEarly, BreakSkipRecovery:
	default:
		errs = append(errs, fmt.Errorf("unknown rule to break %q", c.Break))
	}
	return errors.Join(errs...)
}
