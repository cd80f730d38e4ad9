package totem

// ringState holds one ring's message buffer and the marks that track it.
type ringState struct {
	id      RingID
	members NodeSet
	frames  map[uint64]stored
	high    uint64 // highest sequence number seen
	aru     uint64 // all received up to (contiguous)
	deliv   uint64 // delivered (or skipped) up to
	safe    uint64 // every member has received up to
	freed   uint64 // frames up to this are released

	// Safe-point tracking: the token's incoming aru at this node's previous
	// visit.
	prevAru     uint64
	havePrevAru bool
}

// stored is a frame kept for delivery and retransmission: the decoded form
// and the exact bytes, which are resent unchanged.
type stored struct {
	m   *Mcast
	raw []byte
}

func newRingState(id RingID, members NodeSet) *ringState {
	return &ringState{id: id, members: members, frames: make(map[uint64]stored)}
}

// add stores a frame unless it is old or already held; it reports whether
// the frame was new.
func (r *ringState) add(m *Mcast, raw []byte) bool {
	if m.Seq <= r.freed {
		return false
	}
	if _, ok := r.frames[m.Seq]; ok {
		return false
	}
	r.frames[m.Seq] = stored{m: m, raw: raw}
	if m.Seq > r.high {
		r.high = m.Seq
	}
	for {
		if _, ok := r.frames[r.aru+1]; !ok && r.aru+1 > r.freed {
			break
		}
		r.aru++
	}
	return true
}

func (r *ringState) has(seq uint64) bool {
	if seq <= r.freed {
		return true
	}
	_, ok := r.frames[seq]
	return ok
}

// release frees frames that every member has and this node has delivered.
func (r *ringState) release() {
	to := min(r.safe, r.deliv)
	for s := r.freed + 1; s <= to; s++ {
		delete(r.frames, s)
	}
	if to > r.freed {
		r.freed = to
	}
}

// needsSafe reports whether a frame carries a message with safe delivery.
func needsSafe(m *Mcast) bool {
	for i := range m.Entries {
		if m.Entries[i].Guarantee == Safe {
			return true
		}
	}
	return false
}
