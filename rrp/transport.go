package rrp

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// Received is one authenticated frame from a peer. Frame belongs to the
// receiver: the transport never touches it again.
type Received struct {
	From  NodeID
	Link  int
	Frame []byte
}

// Frame is one frame to send: To is the destination node, 0 for every
// node. It has the shape of totem.Frame.
type Frame struct {
	To   NodeID
	Data []byte
}

// Errors returned by Transport methods.
var (
	// ErrClosed means the transport was closed.
	ErrClosed = errors.New("rrp: transport closed")
	// ErrFrameTooBig means a frame exceeds MaxFrame; it was not sent.
	ErrFrameTooBig = errors.New("rrp: frame larger than the link MTU allows")
	// ErrUnknownNode means a frame's destination is not a configured peer.
	ErrUnknownNode = errors.New("rrp: destination is not a configured peer")
)

// Transport carries frames between the nodes of a cluster. Create it with
// New; all methods are safe for concurrent use.
type Transport struct {
	cfg      Config
	links    []*link
	peers    map[NodeID]*peer
	peerList []*peer
	allMask  uint32
	maxFrame int

	keys     atomic.Pointer[keyring] // nil when insecure
	frameSeq atomic.Uint64

	recv      chan []Received
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	sendPool  sync.Pool
	closed    atomic.Bool

	logLimit rateLimiter
}

// peer is what this node knows about one other node.
type peer struct {
	id     NodeID
	mu     sync.Mutex
	inc    uint64 // newest incarnation seen, 0 = never heard
	window replayWindow
	health [MaxLinks]linkHealth
	upMask atomic.Uint32 // links up towards this peer
	// quietMask: links on which the peer has not been heard for
	// quietAfter (suspect, not yet down).
	quietMask atomic.Uint32
}

func (p *peer) updateMask(n int) {
	var m uint32
	for l := 0; l < n; l++ {
		if p.health[l].up() {
			m |= 1 << l
		}
	}
	p.upMask.Store(m)
}

// New opens the links of cfg and starts the transport. The sockets are
// created before New returns, in the calling thread's network namespace.
func New(cfg Config) (*Transport, error) {
	c := cfg.withDefaults()
	specs, err := c.resolve()
	if err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:   c,
		peers: map[NodeID]*peer{},
		recv:  make(chan []Received, c.RecvQueue),
		done:  make(chan struct{}),
	}
	t.logLimit.interval = c.AuthLogInterval
	if !c.Insecure {
		kr, err := newKeyring(c.Key)
		if err != nil {
			return nil, err
		}
		t.keys.Store(kr)
	}
	t.maxFrame = 1 << 30
	for i, s := range specs {
		l := &link{idx: i, spec: s}
		if err := l.open(c.SocketBuffer, !c.NoOffload); err != nil {
			for _, o := range t.links {
				o.close()
			}
			return nil, err
		}
		if c.wrapConn != nil {
			l.out = c.wrapConn(l.out)
		}
		t.links = append(t.links, l)
		t.allMask |= 1 << i
		t.maxFrame = min(t.maxFrame, s.maxPayload()-c.overhead())
	}
	for _, n := range c.Nodes {
		if n.ID != c.NodeID {
			p := &peer{id: n.ID}
			t.peers[n.ID] = p
			t.peerList = append(t.peerList, p)
		}
	}
	slices.SortFunc(t.peerList, func(a, b *peer) int { return int(a.id) - int(b.id) })
	t.sendPool.New = func() any { return new(sendBuf) }
	for _, l := range t.links {
		c, pc := l.conn, l.pc
		if l.multicast() {
			c, pc = l.mconn, l.mpc
		}
		r, err := newBatchReader(c, pc)
		if err != nil {
			t.Close()
			return nil, err
		}
		t.wg.Add(1)
		go t.readLoop(l, r)
	}
	t.wg.Add(1)
	go t.heartbeatLoop()
	return t, nil
}

// MaxFrame is the largest frame Send accepts: the smallest link MTU minus
// the IP and UDP headers and the transport's overhead. Give it to the
// engine as its NetMTU.
func (t *Transport) MaxFrame() int { return t.maxFrame }

// Incarnation returns this node's incarnation.
func (t *Transport) Incarnation() uint64 { return t.cfg.Incarnation }

// Recv returns the channel on which received frames arrive, in batches
// (one per recvmmsg call: at most RecvBatch frames each, more with
// receive coalescing). It is closed by Close. Batches wait in
// a queue of RecvQueue; when the reader falls behind by more than a
// heartbeat interval, batches are dropped and counted (Dropped.Overrun).
func (t *Transport) Recv() <-chan []Received { return t.recv }

// Send sends one frame to node to, or to every other node when to is 0.
// This node is not a destination: the engine handles its own frames.
func (t *Transport) Send(to NodeID, frame []byte) error {
	f := [1]Frame{{To: to, Data: frame}}
	return t.SendBatch(f[:])
}

// SendBatch sends frames in order, batching the system calls. A frame that
// is too big or addressed to an unknown node is skipped and the first such
// error returned; the others are sent. The frames' data is not retained.
func (t *Transport) SendBatch(frames []Frame) error {
	if t.closed.Load() {
		return ErrClosed
	}
	sb := t.sendPool.Get().(*sendBuf)
	kr := t.keys.Load()
	var firstErr error
	for _, f := range frames {
		if len(f.Data) > t.maxFrame {
			firstErr = cmpErr(firstErr, fmt.Errorf("%w: %d bytes, at most %d", ErrFrameTooBig, len(f.Data), t.maxFrame))
			continue
		}
		var dest *peer
		if f.To != 0 {
			dest = t.peers[f.To]
			if dest == nil {
				firstErr = cmpErr(firstErr, fmt.Errorf("%w: %d", ErrUnknownNode, f.To))
				continue
			}
		}
		seq := t.frameSeq.Add(1)
		var built [MaxLinks][]byte
		var groupMask uint32
		visit := func(p *peer) {
			mask := t.linksFor(p)
			for li, l := range t.links {
				if mask&(1<<li) == 0 {
					continue
				}
				if built[li] == nil {
					built[li] = t.build(sb, kr, TypeFrame, f.To, li, seq, f.Data)
				}
				if l.multicast() {
					groupMask |= 1 << li
				} else {
					sb.q[li].add(built[li], l.peerAddrs[p.id], false)
				}
			}
		}
		if dest != nil {
			visit(dest)
		} else {
			for _, p := range t.peerList {
				visit(p)
			}
		}
		for li, l := range t.links {
			if groupMask&(1<<li) != 0 {
				sb.q[li].add(built[li], l.group, false)
			}
		}
	}
	t.flush(sb)
	return firstErr
}

func cmpErr(old, e error) error {
	if old != nil {
		return old
	}
	return e
}

// quietAfter is how long a peer may stay silent on a link before passive
// mode treats the link as suspect: two heartbeat intervals, or a third of
// the link timeout if that is longer.
func (t *Transport) quietAfter() time.Duration {
	return max(2*t.cfg.HeartbeatInterval, t.cfg.LinkTimeout/3)
}

// linksFor returns the mask of links to send on towards p.
func (t *Transport) linksFor(p *peer) uint32 {
	up := p.upMask.Load()
	if up == 0 {
		return t.allMask
	}
	if t.cfg.Mode == Passive {
		first := up & -up
		if first&p.quietMask.Load() != 0 {
			// The link in use has gone quiet: until it is declared
			// down (or heard again), send on every link that is up so
			// that frames are not lost for a whole LinkTimeout.
			return up
		}
		return first
	}
	return up
}

// build encodes one datagram into sb's memory.
func (t *Transport) build(sb *sendBuf, kr *keyring, typ PacketType, to NodeID, li int, seq uint64, body []byte) []byte {
	h := Header{Type: typ, Link: uint8(li), From: t.cfg.NodeID, To: to, Incarnation: t.cfg.Incarnation, Seq: seq}
	n := HeaderSize + len(body)
	if kr != nil {
		h.Flags = FlagEncrypted
		h.KeyID = kr.sendID
		n += NonceSize + TagSize
	}
	p := AppendHeader(sb.alloc(n), &h)
	if kr != nil {
		return kr.seal(p, sb.nonces.next(), body)
	}
	return append(p, body...)
}

// sendBuf holds the memory of one SendBatch or heartbeat round.
type sendBuf struct {
	nonces nonceSource
	chunk  []byte
	total  int // bytes handed out by alloc since the last flush
	q      [MaxLinks]sendQueue
	body   []byte
	hbe    [MaxLinks][]HeartbeatEntry
}

func (sb *sendBuf) alloc(n int) []byte {
	sb.total += n
	if cap(sb.chunk)-len(sb.chunk) < n {
		sb.chunk = make([]byte, 0, max(64<<10, n))
	}
	s := len(sb.chunk)
	sb.chunk = sb.chunk[:s+n]
	return sb.chunk[s:s:(s + n)]
}

type sendQueue struct {
	msgs []ipv4.Message
	hb   []bool
	n    int
	gso  gsoScratch
}

func (q *sendQueue) add(pkt []byte, addr *net.UDPAddr, hb bool) {
	if q.n == len(q.msgs) {
		q.msgs = append(q.msgs, ipv4.Message{Buffers: make([][]byte, 1)})
		q.hb = append(q.hb, false)
	}
	m := &q.msgs[q.n]
	m.Buffers[0] = pkt
	m.Addr = addr
	q.hb[q.n] = hb
	q.n++
}

// flush writes every queued datagram, applying injected faults, and
// returns sb to the pool.
func (t *Transport) flush(sb *sendBuf) {
	for li := range t.links {
		q := &sb.q[li]
		if q.n > 0 {
			t.writeQueue(t.links[li], q)
		}
		for i := 0; i < q.n; i++ {
			q.msgs[i].Buffers[0] = nil
			q.msgs[i].Addr = nil
		}
		q.n = 0
	}
	// Keep one chunk big enough for a round like this one (up to 4 MiB).
	if sb.total > cap(sb.chunk) && sb.total <= 4<<20 {
		sb.chunk = make([]byte, 0, sb.total)
	}
	sb.chunk = sb.chunk[:0]
	sb.total = 0
	t.sendPool.Put(sb)
}

func (t *Transport) writeQueue(l *link, q *sendQueue) {
	msgs, hbs := q.msgs[:q.n], q.hb[:q.n]
	c := &l.counters
	if f := l.fault.Load(); f != nil {
		// Rebuild the queue under the fault: drop, duplicate or delay.
		var out []ipv4.Message
		var outHB []bool
		for i := range msgs {
			copies := faultCopies(f)
			if copies == 0 {
				c.fault.Add(1)
				continue
			}
			for k := 0; k < copies; k++ {
				if f.Delay > 0 {
					pkt := slices.Clone(msgs[i].Buffers[0])
					m := ipv4.Message{Buffers: [][]byte{pkt}, Addr: msgs[i].Addr}
					hb := hbs[i]
					time.AfterFunc(f.Delay, func() {
						if !t.closed.Load() {
							t.writeMsgs(l, []ipv4.Message{m}, []bool{hb}, nil)
						}
					})
					continue
				}
				out = append(out, msgs[i])
				outHB = append(outHB, hbs[i])
			}
		}
		msgs, hbs = out, outHB
	}
	t.writeMsgs(l, msgs, hbs, &q.gso)
}

// writeMsgs sends msgs (one buffer each; hbs says which are heartbeats),
// with segmentation offload when the link has it and gso is not nil.
func (t *Transport) writeMsgs(l *link, msgs []ipv4.Message, hbs []bool, gso *gsoScratch) {
	if gso != nil && len(msgs) > 1 && l.gso.Load() {
		msgs, hbs = t.writeGSO(l, msgs, hbs, gso)
	}
	c := &l.counters
	for i := 0; i < len(msgs); {
		n, err := l.out.WriteBatch(msgs[i:], 0)
		if n < 0 {
			n = 0 // the batch calls return -1 with an error
		}
		for k := i; k < i+n; k++ {
			if hbs[k] {
				c.hbSent.Add(1)
			} else {
				c.framesSent.Add(1)
			}
			c.bytesSent.Add(uint64(len(msgs[k].Buffers[0])))
		}
		i += n
		if err != nil || n == 0 {
			// The datagram at i was refused (interface down, no route...).
			c.sendErrors.Add(1)
			if i < len(msgs) {
				t.logSendError(l, msgs[i].Addr, err)
			}
			i++
		}
	}
}

// readLoop reads datagrams from one socket until Close.
func (t *Transport) readLoop(l *link, pc batchReader) {
	defer t.wg.Done()
	maxPayload := l.spec.maxPayload()
	bufSize, batch := maxPayload, t.cfg.RecvBatch
	if l.gro {
		bufSize, batch = max(groBufSize, maxPayload), min(batch, maxGROBatch)
	}
	msgs := make([]ipv4.Message, batch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, bufSize)}
		if l.gro {
			msgs[i].OOB = make([]byte, groOOBSize)
		}
	}
	for {
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			t.cfg.Logger.Debug("rrp: read error", "link", l.idx, "err", err)
			time.Sleep(time.Millisecond)
			continue
		}
		if f := l.fault.Load(); f != nil && f.Cut {
			l.counters.fault.Add(uint64(n))
			continue
		}
		total := 0
		for i := 0; i < n; i++ {
			total += msgs[i].N
		}
		slab := make([]byte, 0, total)
		var out []Received
		now := time.Now()
		kr := t.keys.Load()
		for i := 0; i < n; i++ {
			m := &msgs[i]
			if m.Flags&unix.MSG_TRUNC != 0 {
				l.counters.oversized.Add(1)
				continue
			}
			seg := 0
			if l.gro {
				seg = groSegment(m.OOB[:m.NN])
				if seg > 0 && m.N > seg {
					l.counters.groReceives.Add(1)
				}
			}
			splitGRO(m.Buffers[0][:m.N], seg, func(pkt []byte) {
				if len(pkt) > maxPayload {
					l.counters.oversized.Add(1)
					return
				}
				var from NodeID
				var frame []byte
				var ok bool
				slab, frame, from, ok = t.handle(l, pkt, m.Addr, now, kr, slab)
				if ok {
					if out == nil {
						out = make([]Received, 0, n-i)
					}
					out = append(out, Received{From: from, Link: l.idx, Frame: frame})
				}
			})
		}
		if len(out) > 0 && !t.deliver(l, out) {
			return
		}
	}
}

// deliver queues a batch for Recv. If the reader stays behind for a
// heartbeat interval the batch is dropped and counted (Dropped.Overrun),
// so that the socket keeps being read and heartbeats keep being processed:
// link monitoring reflects the network, not the reader's speed. It
// reports false when the transport is closing.
func (t *Transport) deliver(l *link, out []Received) bool {
	select {
	case t.recv <- out:
		return true
	case <-t.done:
		return false
	default:
	}
	timer := time.NewTimer(t.cfg.HeartbeatInterval)
	defer timer.Stop()
	select {
	case t.recv <- out:
	case <-t.done:
		return false
	case <-timer.C:
		l.counters.overrun.Add(uint64(len(out)))
	}
	return true
}

// handle checks, authenticates and decrypts one datagram. Frames are
// decrypted into slab (which has room for them) and returned; heartbeats
// are consumed here.
func (t *Transport) handle(l *link, pkt []byte, addr net.Addr, now time.Time, kr *keyring, slab []byte) ([]byte, []byte, NodeID, bool) {
	c := &l.counters
	var h Header
	if err := DecodeHeader(pkt, &h); err != nil {
		if errors.Is(err, ErrTruncated) {
			c.truncated.Add(1)
		} else {
			c.malformed.Add(1)
		}
		return slab, nil, 0, false
	}
	if int(h.Link) != l.idx {
		c.malformed.Add(1)
		return slab, nil, 0, false
	}
	if h.From == t.cfg.NodeID {
		c.own.Add(1)
		return slab, nil, 0, false
	}
	p := t.peers[h.From]
	if p == nil {
		c.unknownNode.Add(1)
		t.logLimited(addr, "unknown", func() {
			t.cfg.Logger.Warn(fmt.Sprintf("rrp: dropping packets from %v on link %d: they claim node %d, which is not in the node list", addr, l.idx, h.From),
				"peer", addrString(addr), "link", l.idx, "claimed_node", uint32(h.From))
		})
		return slab, nil, 0, false
	}
	if h.To != 0 && h.To != t.cfg.NodeID {
		c.notForUs.Add(1)
		return slab, nil, 0, false
	}
	if h.Encrypted() != (kr != nil) {
		c.cryptoMismatch.Add(1)
		t.logLimited(addr, "crypto", func() {
			if kr != nil {
				t.cfg.Logger.Warn(fmt.Sprintf("rrp: dropping unencrypted packets from %v (node %d) on link %d: crypto is on here and off there; every node needs the same crypto setting and key", addr, h.From, l.idx),
					"peer", addrString(addr), "link", l.idx, "claimed_node", uint32(h.From))
			} else {
				t.cfg.Logger.Warn(fmt.Sprintf("rrp: dropping encrypted packets from %v (node %d) on link %d: crypto is off here and on there; every node needs the same crypto setting", addr, h.From, l.idx),
					"peer", addrString(addr), "link", l.idx, "claimed_node", uint32(h.From))
			}
		})
		return slab, nil, 0, false
	}
	if kr != nil && !kr.knows(h.KeyID) {
		c.authFailed.Add(1)
		t.logAuth(addr, l.idx, h.From)
		return slab, nil, 0, false
	}
	// Cheap replay check before spending time on decryption.
	p.mu.Lock()
	stale := h.Incarnation < p.inc
	dup := false
	if !stale && h.Incarnation == p.inc {
		if h.Type == TypeFrame {
			dup = !p.window.check(h.Seq)
		} else {
			dup = h.Seq <= p.health[l.idx].hbSeq
		}
	}
	p.mu.Unlock()
	if stale {
		c.stale.Add(1)
		t.logStale(addr, l.idx, h.From)
		return slab, nil, 0, false
	}
	if dup {
		c.duplicate.Add(1)
		return slab, nil, 0, false
	}
	start := len(slab)
	if kr != nil {
		var ok bool
		slab, ok = kr.open(slab, pkt, h.KeyID)
		if !ok {
			c.authFailed.Add(1)
			t.logAuth(addr, l.idx, h.From)
			return slab[:start], nil, 0, false
		}
	} else {
		slab = append(slab, pkt[HeaderSize:]...)
	}
	body := slab[start:len(slab):len(slab)]

	var entries []HeartbeatEntry
	if h.Type == TypeHeartbeat {
		slab = slab[:start]
		var err error
		entries, err = DecodeHeartbeat(body, nil)
		if err != nil {
			c.malformed.Add(1)
			return slab, nil, 0, false
		}
	}

	p.mu.Lock()
	var restarted bool
	var oldInc uint64
	switch {
	case h.Incarnation > p.inc:
		restarted, oldInc = p.inc != 0, p.inc
		p.inc = h.Incarnation
		p.window.reset()
		for i := range t.links {
			p.health[i].reset(now)
		}
		p.updateMask(len(t.links))
	case h.Incarnation < p.inc: // lost a race with a newer packet
		p.mu.Unlock()
		c.stale.Add(1)
		return slab[:start], nil, 0, false
	}
	hl := &p.health[l.idx]
	if h.Type == TypeFrame {
		if !p.window.accept(h.Seq) {
			p.mu.Unlock()
			c.duplicate.Add(1)
			return slab[:start], nil, 0, false
		}
		hl.heard(now)
		p.mu.Unlock()
		c.framesReceived.Add(1)
		c.bytesReceived.Add(uint64(len(pkt)))
		if restarted {
			t.cfg.Logger.Info(fmt.Sprintf("rrp: node %d restarted", h.From), "node", uint32(h.From), "old_incarnation", oldInc, "incarnation", h.Incarnation)
		}
		return slab, body, h.From, true
	}
	if h.Seq <= hl.hbSeq {
		p.mu.Unlock()
		c.duplicate.Add(1)
		return slab, nil, 0, false
	}
	hl.hbSeq = h.Seq
	hl.heard(now)
	for _, e := range entries {
		if e.Node != t.cfg.NodeID {
			continue
		}
		if e.PeerIncarnation == t.cfg.Incarnation {
			hl.report(now, e.Hears, e.Epoch)
		} else {
			hl.report(now, false, 0)
		}
	}
	changed := hl.evaluate(now, t.cfg.LinkTimeout)
	up := hl.up()
	if changed {
		p.updateMask(len(t.links))
	}
	p.mu.Unlock()
	c.hbReceived.Add(1)
	c.bytesReceived.Add(uint64(len(pkt)))
	if restarted {
		t.cfg.Logger.Info(fmt.Sprintf("rrp: node %d restarted", h.From), "node", uint32(h.From), "old_incarnation", oldInc, "incarnation", h.Incarnation)
	}
	if changed {
		t.logTransition(l.idx, p.id, up)
	}
	return slab, nil, 0, false
}

func (t *Transport) logTransition(li int, node NodeID, up bool) {
	if up {
		t.cfg.Logger.Info(fmt.Sprintf("rrp: link %d to node %d is up", li, node), "link", li, "node", uint32(node))
	} else {
		t.cfg.Logger.Warn(fmt.Sprintf("rrp: link %d to node %d is down", li, node), "link", li, "node", uint32(node))
	}
}

func (t *Transport) logAuth(addr net.Addr, li int, claimed NodeID) {
	t.logLimited(addr, "auth", func() {
		t.cfg.Logger.Warn(fmt.Sprintf("rrp: packets from %v on link %d fail authentication: the cluster keys probably differ (compare the key files of this node and node %d)", addr, li, claimed),
			"peer", addrString(addr), "link", li, "claimed_node", uint32(claimed))
	})
}

func (t *Transport) logStale(addr net.Addr, li int, node NodeID) {
	t.logLimited(addr, "stale", func() {
		t.cfg.Logger.Warn(fmt.Sprintf("rrp: dropping packets from %v (node %d) on link %d from an older incarnation: replayed traffic, or the node restarted with its clock behind its previous start", addr, node, li),
			"peer", addrString(addr), "link", li, "node", uint32(node))
	})
}

func (t *Transport) logSendError(l *link, to net.Addr, err error) {
	if err == nil {
		return
	}
	if t.logLimit.allow("send "+strconv.Itoa(l.idx)+" "+addrString(to), time.Now()) {
		t.cfg.Logger.Warn(fmt.Sprintf("rrp: link %d cannot send to %v: %v", l.idx, to, err),
			"link", l.idx, "peer", addrString(to), "err", err)
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// heartbeatLoop sends heartbeats and times links out until Close.
func (t *Transport) heartbeatLoop() {
	defer t.wg.Done()
	tick := time.NewTicker(t.cfg.HeartbeatInterval)
	defer tick.Stop()
	for {
		t.heartbeat(time.Now())
		select {
		case <-t.done:
			return
		case <-tick.C:
		}
	}
}

// heartbeat evaluates every link towards every peer and sends heartbeats.
func (t *Transport) heartbeat(now time.Time) {
	sb := t.sendPool.Get().(*sendBuf)
	type change struct {
		link int
		node NodeID
		up   bool
	}
	var changes []change
	for li := range t.links {
		sb.hbe[li] = sb.hbe[li][:0]
	}
	for _, p := range t.peerList {
		p.mu.Lock()
		any := false
		for li := range t.links {
			hl := &p.health[li]
			if hl.evaluate(now, t.cfg.LinkTimeout) {
				any = true
				changes = append(changes, change{li, p.id, hl.up()})
			}
			sb.hbe[li] = append(sb.hbe[li], HeartbeatEntry{
				Node: p.id, PeerIncarnation: p.inc, Hears: hl.hears(now, t.cfg.LinkTimeout), Epoch: hl.epoch,
			})
		}
		if any {
			p.updateMask(len(t.links))
		}
		var quiet uint32
		for li := range t.links {
			if !p.health[li].hears(now, t.quietAfter()) {
				quiet |= 1 << li
			}
		}
		p.quietMask.Store(quiet)
		p.mu.Unlock()
	}
	for _, ch := range changes {
		t.logTransition(ch.link, ch.node, ch.up)
	}
	kr := t.keys.Load()
	for li, l := range t.links {
		entries := sb.hbe[li]
		if l.multicast() {
			per := (l.spec.maxPayload() - t.cfg.overhead() - 2) / heartbeatEntrySize
			for len(entries) > 0 {
				n := min(per, len(entries))
				sb.body = AppendHeartbeat(sb.body[:0], entries[:n])
				entries = entries[n:]
				sb.q[li].add(t.build(sb, kr, TypeHeartbeat, 0, li, l.hbSeq.Add(1), sb.body), l.group, true)
			}
			continue
		}
		for i, e := range entries {
			sb.body = AppendHeartbeat(sb.body[:0], entries[i:i+1])
			sb.q[li].add(t.build(sb, kr, TypeHeartbeat, e.Node, li, l.hbSeq.Add(1), sb.body), l.peerAddrs[e.Node], true)
		}
	}
	t.flush(sb)
}

// SetKeys installs send as the key used for sending and accepts packets
// under send and under each of accept. To rotate the cluster key without
// a restart: SetKeys(old, new) on every node, then SetKeys(new, old) on
// every node, then SetKeys(new).
func (t *Transport) SetKeys(send []byte, accept ...[]byte) error {
	if t.cfg.Insecure {
		return errors.New("rrp: crypto is off (Insecure); keys cannot be set")
	}
	kr, err := newKeyring(send, accept...)
	if err != nil {
		return err
	}
	t.keys.Store(kr)
	return nil
}

// Links returns a snapshot of every link's state and counters.
func (t *Transport) Links() []LinkStatus {
	out := make([]LinkStatus, len(t.links))
	for li, l := range t.links {
		ls := LinkStatus{
			Link:         li,
			Transport:    l.spec.transport,
			Local:        l.spec.bind.String(),
			MTU:          l.spec.mtu,
			GSO:          l.gso.Load(),
			GRO:          l.gro,
			LinkCounters: l.counters.snapshot(),
		}
		if l.multicast() {
			ls.Group = l.spec.group.String()
		}
		if f := l.fault.Load(); f != nil {
			ls.Fault = *f
		}
		for _, p := range t.peerList {
			p.mu.Lock()
			hl := &p.health[li]
			ps := PeerLinkStatus{
				Node: p.id, Up: hl.up(), Epoch: hl.epoch, Ups: hl.ups, Downs: hl.downs,
				LastChange: hl.lastChange, LastHeard: hl.lastRx,
			}
			p.mu.Unlock()
			if a, ok := l.spec.peers[p.id]; ok {
				ps.Address = a.String()
			}
			if ps.Up {
				ls.UpPeers++
			}
			ls.Peers = append(ls.Peers, ps)
		}
		ls.Up = ls.UpPeers == len(t.peerList)
		out[li] = ls
	}
	return out
}

// Stats returns a snapshot of the counters.
func (t *Transport) Stats() Stats {
	s := Stats{Incarnation: t.cfg.Incarnation, RecvQueued: len(t.recv)}
	if kr := t.keys.Load(); kr != nil {
		s.KeyID = kr.sendID
	}
	for _, l := range t.links {
		c := l.counters.snapshot()
		s.Links = append(s.Links, c)
		s.Total.add(&c)
	}
	return s
}

// Close stops the transport: it closes the sockets, waits for its
// goroutines and closes the Recv channel. Frames not yet read from Recv
// are discarded.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		close(t.done)
		for _, l := range t.links {
			l.close()
		}
		t.wg.Wait()
		close(t.recv)
	})
	return nil
}

// rateLimiter allows one event per key per interval.
type rateLimiter struct {
	mu       sync.Mutex
	interval time.Duration
	last     map[string]time.Time
}

func (r *rateLimiter) allow(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil || len(r.last) > 4096 {
		r.last = map[string]time.Time{}
	}
	if t, ok := r.last[key]; ok && now.Sub(t) < r.interval {
		return false
	}
	r.last[key] = now
	return true
}

func (t *Transport) logLimited(addr net.Addr, kind string, f func()) {
	if t.logLimit.allow(kind+" "+addrString(addr), time.Now()) {
		f()
	}
}
