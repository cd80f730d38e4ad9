package main

import (
	"sync"
	"time"

	"github.com/totem-gcs/totem/client"
)

// bitset is a growable set of sequence numbers.
type bitset []uint64

func (s *bitset) add(i uint64) (had bool) {
	w := int(i / 64)
	for w >= len(*s) {
		*s = append(*s, 0)
	}
	m := uint64(1) << (i % 64)
	had = (*s)[w]&m != 0
	(*s)[w] |= m
	return had
}

func (s bitset) has(i uint64) bool {
	w := int(i / 64)
	return w < len(s) && s[w]&(uint64(1)<<(i%64)) != 0
}

// count returns the number of members.
func (s bitset) count() uint64 {
	var n uint64
	for _, w := range s {
		for ; w != 0; w &= w - 1 {
			n++
		}
	}
	return n
}

// andNotCount returns |s \ t|.
func (s bitset) andNotCount(t bitset) uint64 {
	var n uint64
	for i, w := range s {
		if i < len(t) {
			w &^= t[i]
		}
		for ; w != 0; w &= w - 1 {
			n++
		}
	}
	return n
}

// tputPhase is the state of one throughput phase. The sending workers
// and the receiver share it under receiver.mu.
type tputPhase struct {
	index     uint32
	size      int
	start     time.Time
	windowEnd time.Time

	accepted  bitset // own seqs the daemon took
	seen      bitset // own seqs delivered back
	delivered uint64 // own deliveries, duplicates not counted
	dups      uint64
	reordered uint64   // own deliveries older than an earlier one of the same worker
	lastSeq   []uint64 // per worker: last seq delivered + 1 (0: none yet)
	lastOwn   time.Time

	allMsgs  uint64 // any sender's messages of this phase delivered in the window
	allBytes uint64
}

// receiver reads the handle's events and keeps the counts.
type receiver struct {
	h     *client.Handle
	group string
	run   uint64

	mu      sync.Mutex
	members int // members of group in the latest view
	phase   *tputPhase
	latSeq  uint64
	latWait bool
	foreign uint64 // messages of the group that are not cpgbench's
	total   uint64 // every message of the group
	bytes   uint64

	// changed is signalled on every view change; kick on every own
	// delivery (senders waiting after try-again); lat gets the delivery
	// time of the awaited latency message.
	changed chan struct{}
	kick    chan struct{}
	lat     chan time.Time
}

func newReceiver(h *client.Handle, group string, run uint64) *receiver {
	r := &receiver{
		h: h, group: group, run: run,
		changed: make(chan struct{}, 1),
		kick:    make(chan struct{}, 1),
		lat:     make(chan time.Time, 1),
	}
	go r.loop()
	return r
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (r *receiver) loop() {
	self, pid := r.h.NodeID(), r.h.PID()
	for ev := range r.h.Events() {
		switch ev := ev.(type) {
		case *client.ConfChange:
			if ev.Group != r.group {
				continue
			}
			r.mu.Lock()
			r.members = len(ev.Members)
			r.mu.Unlock()
			notify(r.changed)
		case *client.Message:
			if ev.Group != r.group {
				continue
			}
			now := time.Now()
			hd, err := parseHeader(ev.Data)
			own := err == nil && ev.NodeID == self && ev.PID == pid && hd.Run == r.run
			r.mu.Lock()
			r.total++
			r.bytes += uint64(len(ev.Data))
			switch {
			case err != nil:
				r.foreign++
			case hd.Kind == kindThroughput:
				if p := r.phase; p != nil && hd.Phase == p.index {
					if !now.After(p.windowEnd) {
						p.allMsgs++
						p.allBytes += uint64(len(ev.Data))
					}
					if own {
						p.ownDelivery(hd, now)
					}
				}
			case hd.Kind == kindLatency:
				if own && r.latWait && hd.Seq == r.latSeq {
					r.latWait = false
					r.lat <- now
				}
			}
			r.mu.Unlock()
			if own {
				notify(r.kick)
			}
		}
	}
	notify(r.changed)
	notify(r.kick)
}

// ownDelivery counts one of our messages coming back (r.mu held).
func (p *tputPhase) ownDelivery(hd header, now time.Time) {
	if p.seen.add(hd.Seq) {
		p.dups++
		return
	}
	p.delivered++
	p.lastOwn = now
	w := int(hd.Worker)
	for w >= len(p.lastSeq) {
		p.lastSeq = append(p.lastSeq, 0)
	}
	if hd.Seq+1 < p.lastSeq[w] {
		p.reordered++
	} else {
		p.lastSeq[w] = hd.Seq + 1
	}
}

// memberCount returns the members of the group in the latest view.
func (r *receiver) memberCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.members
}

// expectLatency arms the receiver for the latency message seq.
func (r *receiver) expectLatency(seq uint64) {
	r.mu.Lock()
	r.latSeq, r.latWait = seq, true
	select {
	case <-r.lat:
	default:
	}
	r.mu.Unlock()
}

// totals returns the messages and bytes of the group delivered so far.
func (r *receiver) totals() (msgs, bytes uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total, r.bytes
}
