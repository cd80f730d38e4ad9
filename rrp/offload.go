package rrp

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/net/ipv4"
)

// UDP segmentation offload (GSO) and receive coalescing (GRO), Linux only.
//
// The cost of moving a large message is mostly per datagram in the kernel
// (one trip through the UDP and IP stacks, the bridge, the peer's stack).
// With GSO, consecutive datagrams of one send round going to the same
// address, all of one size (the last may be shorter), go to the kernel as
// one buffer with a segment size; the kernel (or the NIC) cuts it into the
// same datagrams as before, so the wire format does not change and every
// segment is still a self-contained sealed datagram. With GRO, the kernel
// may hand several datagrams of one flow to recvmmsg as one buffer with
// their segment size; readLoop cuts it back into datagrams.
//
// Per destination the datagrams keep their order. Across destinations a
// round is reordered: each destination's datagrams go together, the
// destinations in the order of their last datagram in the round, so the
// token (the last frame of a round) still leaves after the frames before
// it.

const (
	// maxGSOSegments is the most datagrams one segmented send carries
	// (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels).
	maxGSOSegments = 64
	// maxGSOBytes bounds the payload of one segmented send: until it is
	// cut it is one IP packet, at most 64 KiB with its headers.
	maxGSOBytes = 65000
	// groBufSize is the receive buffer size when GRO is on: room for the
	// largest coalesced buffer.
	groBufSize = 1 << 16
	// maxGROBatch bounds the recvmmsg batch when GRO is on, since every
	// buffer is then 64 KiB (1 MiB per link; each slot may hold dozens of
	// datagrams).
	maxGROBatch = 16
)

// gsoDest is one destination address of a send round.
type gsoDest struct {
	addr        net.Addr
	first, last int
}

// gsoScratch is the memory of one segmented send round, kept with the
// sendBuf so that a round allocates nothing once warm.
type gsoScratch struct {
	dests []gsoDest
	units []ipv4.Message
	segs  [][]byte
	oob   []byte
	// order lists the queue's indices in the order they are sent;
	// units[k] carries order[bounds[k]:bounds[k+1]].
	order  []int
	bounds []int
}

// plan groups msgs (one buffer each) into units: per destination, in
// order, runs of datagrams of one size (the last of a run may be
// shorter). It reports whether any unit carries more than one datagram.
func (s *gsoScratch) plan(msgs []ipv4.Message) bool {
	s.dests = s.dests[:0]
	for i := range msgs {
		a := msgs[i].Addr
		found := false
		for k := range s.dests {
			if s.dests[k].addr == a {
				s.dests[k].last = i
				found = true
				break
			}
		}
		if !found {
			s.dests = append(s.dests, gsoDest{addr: a, first: i, last: i})
		}
	}
	// Destinations in the order of their last datagram (insertion sort:
	// there are few).
	for i := 1; i < len(s.dests); i++ {
		for k := i; k > 0 && s.dests[k].last < s.dests[k-1].last; k-- {
			s.dests[k], s.dests[k-1] = s.dests[k-1], s.dests[k]
		}
	}
	n := len(msgs)
	if cap(s.segs) < n {
		s.segs = make([][]byte, 0, n)
		s.order = make([]int, 0, n)
		s.bounds = make([]int, 0, n+1)
		s.units = make([]ipv4.Message, 0, n)
		s.oob = make([]byte, n*gsoCmsgSpace)
	}
	s.segs, s.order, s.bounds, s.units = s.segs[:0], s.order[:0], s.bounds[:0], s.units[:0]
	grouped := false
	for _, d := range s.dests {
		start, size, bytes, open := 0, 0, 0, false
		closeRun := func() {
			if !open {
				return
			}
			u := ipv4.Message{Buffers: s.segs[start:len(s.segs):len(s.segs)], Addr: d.addr}
			if cnt := len(s.segs) - start; cnt > 1 {
				k := len(s.units)
				u.OOB = putGSOCmsg(s.oob[k*gsoCmsgSpace:(k+1)*gsoCmsgSpace], size)
				grouped = true
			}
			s.bounds = append(s.bounds, start)
			s.units = append(s.units, u)
			open = false
		}
		for i := d.first; i <= d.last; i++ {
			if msgs[i].Addr != d.addr {
				continue
			}
			b := msgs[i].Buffers[0]
			cnt := len(s.segs) - start
			last := len(s.segs) - 1
			if !open || len(s.segs[last]) != size || len(b) > size ||
				cnt >= maxGSOSegments || bytes+len(b) > maxGSOBytes {
				closeRun()
				start, size, bytes, open = len(s.segs), len(b), 0, true
			}
			s.segs = append(s.segs, b)
			s.order = append(s.order, i)
			bytes += len(b)
		}
		closeRun()
	}
	s.bounds = append(s.bounds, len(s.segs))
	return grouped
}

// release drops the references the scratch holds to the round's memory.
func (s *gsoScratch) release() {
	clear(s.segs[:cap(s.segs)])
	for i := range s.units {
		s.units[i] = ipv4.Message{}
	}
	for i := range s.dests {
		s.dests[i].addr = nil
	}
}

// gsoRefused reports whether a send error means the kernel or the device
// does not do UDP segmentation for this socket (rather than a network
// error that would also hit a plain send).
func gsoRefused(err error) bool {
	for _, e := range []syscall.Errno{syscall.EIO, syscall.EINVAL, syscall.EMSGSIZE, syscall.ENOPROTOOPT, syscall.EOPNOTSUPP} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// writeGSO sends msgs (hbs says which are heartbeats) with segmentation
// offload. It returns the datagrams still to send one by one: nil when
// everything went, or, when the kernel refused a segmented send, the rest
// of the round (in the order planned) after turning GSO off for the link.
func (t *Transport) writeGSO(l *link, msgs []ipv4.Message, hbs []bool, s *gsoScratch) ([]ipv4.Message, []bool) {
	if !s.plan(msgs) {
		return msgs, hbs // nothing to group: the plain path is as good
	}
	defer s.release()
	c := &l.counters
	count := func(k int) {
		for _, i := range s.order[s.bounds[k]:s.bounds[k+1]] {
			if hbs[i] {
				c.hbSent.Add(1)
			} else {
				c.framesSent.Add(1)
			}
			c.bytesSent.Add(uint64(len(msgs[i].Buffers[0])))
		}
		if s.bounds[k+1]-s.bounds[k] > 1 {
			c.gsoSends.Add(1)
		}
	}
	units := s.units
	for k := 0; k < len(units); {
		n, err := l.out.WriteBatch(units[k:], 0)
		if n < 0 {
			n = 0
		}
		for j := k; j < k+n; j++ {
			count(j)
		}
		k += n
		if err == nil && n > 0 {
			continue
		}
		if k >= len(units) {
			break
		}
		segs := s.bounds[k+1] - s.bounds[k]
		if segs > 1 && gsoRefused(err) {
			l.gso.Store(false)
			t.cfg.Logger.Info(fmt.Sprintf("rrp: link %d: UDP segmentation offload refused (%v); sending datagrams one by one", l.idx, err),
				"link", l.idx, "err", err)
			rest := make([]ipv4.Message, 0, len(s.order)-s.bounds[k])
			restHB := make([]bool, 0, cap(rest))
			for _, i := range s.order[s.bounds[k]:] {
				rest = append(rest, msgs[i])
				restHB = append(restHB, hbs[i])
			}
			return rest, restHB
		}
		// The unit was refused (interface down, no route...).
		c.sendErrors.Add(uint64(segs))
		t.logSendError(l, units[k].Addr, err)
		k++
	}
	return nil, nil
}

// splitGRO calls fn on each datagram of a received buffer that carries
// datagrams of segment size seg (0: one datagram).
func splitGRO(buf []byte, seg int, fn func([]byte)) {
	if seg <= 0 || len(buf) <= seg {
		fn(buf)
		return
	}
	for len(buf) > 0 {
		n := min(seg, len(buf))
		fn(buf[:n:n])
		buf = buf[n:]
	}
}
