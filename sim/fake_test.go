package sim

import (
	"encoding/binary"
	"time"

	"github.com/totem-gcs/totem/membership"
	"github.com/totem-gcs/totem/totem"
)

// seqEngine is a stand-in engine for testing the harness without Totem: a
// fixed sequencer (node 1) numbers every proposal and multicasts it; nodes
// deliver in number order and pull what they miss. It survives delay and
// reordering but not loss or crashes, so it is only run with NoFaults.
// With selfFirst set it delivers its own messages at once instead of
// waiting for their number: a broken engine the checker must catch.
type seqEngine struct {
	id, nodes totem.NodeID
	selfFirst bool

	now      time.Duration
	lastPull time.Duration
	started  bool
	out      []totem.Frame
	deliv    []totem.Delivery
	outbox   []fakeMsg // proposals not yet seen sequenced
	lseq     uint64
	queued   int
	next     uint64 // next sequence number to deliver
	buffer   map[uint64]fakeMsg
	high     uint64
	selfSeen map[uint64]bool // own lseqs already delivered early (selfFirst)

	// Sequencer state.
	history []fakeMsg
	seen    map[[2]uint64]bool
}

type fakeMsg struct {
	seq     uint64
	from    totem.NodeID
	lseq    uint64
	g       totem.Guarantee
	payload []byte
}

const fakeQueueLimit = 1 << 20

func newSeqEngine(selfFirst bool) EngineFactory {
	return func(cfg totem.Config) (Engine, error) {
		return &seqEngine{id: cfg.NodeID, nodes: totem.NodeID(cfg.Nodes), selfFirst: selfFirst,
			buffer: map[uint64]fakeMsg{}, seen: map[[2]uint64]bool{}, selfSeen: map[uint64]bool{}, next: 1}, nil
	}
}

func (e *seqEngine) members() totem.NodeSet {
	var ids []totem.NodeID
	for i := totem.NodeID(1); i <= e.nodes; i++ {
		ids = append(ids, i)
	}
	return membership.NewNodeSet(ids...)
}

func (e *seqEngine) Tick(now time.Duration) {
	e.now = now
	if !e.started {
		e.started = true
		e.deliv = append(e.deliv, totem.Delivery{Config: &totem.ConfigChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 1}, Members: e.members()}})
	}
	if now >= e.lastPull+20*time.Millisecond {
		e.lastPull = now
		if e.id == 1 {
			return
		}
		for _, m := range e.outbox {
			e.out = append(e.out, totem.Frame{To: 1, Data: encodeFake('P', m)})
		}
		e.out = append(e.out, totem.Frame{To: 1, Data: encodeFake('N', fakeMsg{from: e.id, seq: e.next})})
	}
}

func encodeFake(kind byte, m fakeMsg) []byte {
	b := []byte{kind}
	b = binary.BigEndian.AppendUint64(b, m.seq)
	b = binary.BigEndian.AppendUint32(b, uint32(m.from))
	b = binary.BigEndian.AppendUint64(b, m.lseq)
	b = append(b, byte(m.g))
	return append(b, m.payload...)
}

func decodeFake(b []byte) (byte, fakeMsg, error) {
	if len(b) < 22 {
		return 0, fakeMsg{}, totem.ErrMalformed
	}
	return b[0], fakeMsg{
		seq:  binary.BigEndian.Uint64(b[1:]),
		from: totem.NodeID(binary.BigEndian.Uint32(b[9:])),
		lseq: binary.BigEndian.Uint64(b[13:]),
		g:    totem.Guarantee(b[21]),
		// Copy: the frame is shared with the other receivers.
		payload: append([]byte(nil), b[22:]...),
	}, nil
}

func (e *seqEngine) Step(frame []byte) error {
	kind, m, err := decodeFake(frame)
	if err != nil {
		return err
	}
	switch kind {
	case 'P':
		e.sequence(m)
	case 'N':
		from := min(m.seq-1, uint64(len(e.history)))
		for _, h := range e.history[from:min(from+8, uint64(len(e.history)))] {
			e.out = append(e.out, totem.Frame{To: m.from, Data: encodeFake('D', h)})
		}
	case 'D':
		e.receive(m)
	}
	return nil
}

// sequence (on node 1) numbers a proposal once and multicasts it.
func (e *seqEngine) sequence(m fakeMsg) {
	key := [2]uint64{uint64(m.from), m.lseq}
	if e.seen[key] {
		return
	}
	e.seen[key] = true
	m.seq = uint64(len(e.history)) + 1
	e.history = append(e.history, m)
	e.out = append(e.out, totem.Frame{Data: encodeFake('D', m)})
	e.receive(m)
}

func (e *seqEngine) receive(m fakeMsg) {
	if m.seq < e.next {
		return
	}
	e.buffer[m.seq] = m
	e.high = max(e.high, m.seq)
	for {
		d, ok := e.buffer[e.next]
		if !ok {
			return
		}
		delete(e.buffer, e.next)
		e.next++
		if d.from == e.id {
			for i, o := range e.outbox {
				if o.lseq == d.lseq {
					e.queued -= len(o.payload)
					e.outbox = append(e.outbox[:i], e.outbox[i+1:]...)
					break
				}
			}
			if e.selfSeen[d.lseq] {
				continue
			}
		}
		e.deliv = append(e.deliv, totem.Delivery{Sender: d.from, Guarantee: d.g, Payload: d.payload})
	}
}

func (e *seqEngine) Propose(payload []byte, g totem.Guarantee) error {
	if e.queued+len(payload) > fakeQueueLimit {
		return totem.ErrBackpressure
	}
	e.lseq++
	m := fakeMsg{from: e.id, lseq: e.lseq, g: g, payload: append([]byte(nil), payload...)}
	e.queued += len(payload)
	e.outbox = append(e.outbox, m)
	if e.selfFirst {
		e.selfSeen[m.lseq] = true
		e.deliv = append(e.deliv, totem.Delivery{Sender: e.id, Guarantee: g, Payload: m.payload})
	}
	if e.id == 1 {
		e.sequence(m)
	}
	return nil
}

func (e *seqEngine) Leave() {}

func (e *seqEngine) Ready() totem.Ready {
	rd := totem.Ready{Frames: e.out, Deliveries: e.deliv, Deadline: e.lastPull + 20*time.Millisecond}
	e.out, e.deliv = nil, nil
	return rd
}

func (e *seqEngine) Status() totem.Status {
	return totem.Status{NodeID: e.id, State: totem.Operational, Ring: totem.RingID{Rep: 1, Seq: 1}, Members: e.members(),
		QueuedMessages: len(e.outbox), Aru: e.next - 1, HighSeq: e.high}
}
