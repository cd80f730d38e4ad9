package totem

// maxWindow bounds how far past the freed mark a frame may be held; flow
// control keeps a working ring far below it.
const maxWindow = 1 << 16

// ringState holds one ring's message buffer and the marks that track it.
type ringState struct {
	id      RingID
	members NodeSet
	// window holds the frames after freed: window[i] is sequence number
	// freed+1+i; a zero entry is a frame not (yet) received.
	window []stored
	high   uint64 // highest sequence number seen
	aru    uint64 // all received up to (contiguous)
	deliv  uint64 // delivered (or skipped) up to
	safe   uint64 // every member has received up to
	freed  uint64 // frames up to this are released

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
	return &ringState{id: id, members: members}
}

// get returns the frame with sequence number seq, if held.
func (r *ringState) get(seq uint64) (stored, bool) {
	if seq <= r.freed || seq-r.freed > uint64(len(r.window)) {
		return stored{}, false
	}
	st := r.window[seq-r.freed-1]
	return st, st.m != nil
}

// add stores a frame unless it is old or already held; it reports whether
// the frame was new.
func (r *ringState) add(m *Mcast, raw []byte) bool {
	if m.Seq <= r.freed {
		return false
	}
	i := m.Seq - r.freed - 1
	if i >= uint64(len(r.window)) {
		if i >= maxWindow {
			return false // far beyond flow control: it will be retransmitted
		}
		r.window = append(r.window, make([]stored, i+1-uint64(len(r.window)))...)
	}
	if r.window[i].m != nil {
		return false
	}
	r.window[i] = stored{m: m, raw: raw}
	if m.Seq > r.high {
		r.high = m.Seq
	}
	for {
		if _, ok := r.get(r.aru + 1); !ok {
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
	_, ok := r.get(seq)
	return ok
}

// release frees frames that every member has and this node has delivered.
func (r *ringState) release() {
	to := min(r.safe, r.deliv, r.aru)
	if to <= r.freed {
		return
	}
	k := to - r.freed
	clear(r.window[:k])
	r.window = r.window[k:]
	r.freed = to
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
