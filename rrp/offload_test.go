package rrp

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// TestGSOPlan checks the grouping of a send round: per destination in
// order, runs of one size whose last datagram may be shorter, bounded in
// count and bytes, destinations ordered by their last datagram.
func TestGSOPlan(t *testing.T) {
	a := &net.UDPAddr{IP: net.IPv4(198, 18, 0, 2), Port: 1}
	b := &net.UDPAddr{IP: net.IPv4(198, 18, 0, 3), Port: 1}
	type dg struct {
		to   *net.UDPAddr
		size int
	}
	cases := []struct {
		name string
		in   []dg
		// want: per unit, the indices of the datagrams it carries.
		want [][]int
	}{
		{"interleaved broadcast then token to a",
			[]dg{{a, 100}, {b, 100}, {a, 100}, {b, 100}, {a, 60}, {b, 60}, {a, 20}},
			// b's last (5) comes before a's last (6): b first.
			[][]int{{1, 3, 5}, {0, 2, 4}, {6}}},
		{"a short datagram ends a run",
			[]dg{{a, 100}, {a, 50}, {a, 100}, {a, 100}, {a, 100}},
			[][]int{{0, 1}, {2, 3, 4}}},
		{"a longer datagram starts a new run",
			[]dg{{a, 50}, {a, 50}, {a, 100}, {a, 100}},
			[][]int{{0, 1}, {2, 3}}},
		{"single datagrams",
			[]dg{{a, 10}, {b, 10}},
			[][]int{{0}, {1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msgs := make([]ipv4.Message, len(tc.in))
			for i, d := range tc.in {
				msgs[i] = ipv4.Message{Buffers: [][]byte{make([]byte, d.size)}, Addr: d.to}
			}
			var s gsoScratch
			grouped := s.plan(msgs)
			var got [][]int
			for k := range s.units {
				got = append(got, slices.Clone(s.order[s.bounds[k]:s.bounds[k+1]]))
				u := s.units[k]
				if len(u.Buffers) != s.bounds[k+1]-s.bounds[k] {
					t.Fatalf("unit %d has %d buffers for %d datagrams", k, len(u.Buffers), s.bounds[k+1]-s.bounds[k])
				}
				for j, i := range got[k] {
					if &u.Buffers[j][0] != &msgs[i].Buffers[0][0] || u.Addr != msgs[i].Addr {
						t.Fatalf("unit %d segment %d is not datagram %d", k, j, i)
					}
				}
				if runtime.GOOS == "linux" && (len(u.OOB) > 0) != (len(u.Buffers) > 1) {
					t.Fatalf("unit %d: %d datagrams but control message %v", k, len(u.Buffers), u.OOB)
				}
				if len(u.OOB) > 0 && runtime.GOOS == "linux" && strconv.IntSize == 64 {
					// struct cmsghdr is 16 bytes on 64-bit Linux.
					if seg := int(binary.NativeEndian.Uint16(u.OOB[16:])); seg != len(u.Buffers[0]) {
						t.Fatalf("unit %d: segment size %d, want %d", k, seg, len(u.Buffers[0]))
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("units %v, want %v", got, tc.want)
			}
			wantGrouped := slices.ContainsFunc(tc.want, func(u []int) bool { return len(u) > 1 })
			if grouped != wantGrouped {
				t.Fatalf("grouped = %v, want %v", grouped, wantGrouped)
			}
		})
	}

	t.Run("bounds", func(t *testing.T) {
		var msgs []ipv4.Message
		for i := 0; i < 200; i++ {
			msgs = append(msgs, ipv4.Message{Buffers: [][]byte{make([]byte, 100)}, Addr: a})
		}
		for i := 0; i < 100; i++ {
			msgs = append(msgs, ipv4.Message{Buffers: [][]byte{make([]byte, 1400)}, Addr: a})
		}
		var s gsoScratch
		s.plan(msgs)
		total := 0
		for k, u := range s.units {
			n, bytes := len(u.Buffers), 0
			for _, b := range u.Buffers {
				bytes += len(b)
			}
			if n > maxGSOSegments || bytes > maxGSOBytes {
				t.Fatalf("unit %d: %d datagrams, %d bytes", k, n, bytes)
			}
			total += n
		}
		if total != len(msgs) || !slices.IsSorted(s.order) {
			t.Fatalf("%d datagrams planned of %d, order %v", total, len(msgs), s.order)
		}
		// 200 small ones need 4 units of 64 or fewer, 100 big ones 3.
		if len(s.units) != 4+3 {
			t.Fatalf("%d units, want 7", len(s.units))
		}
	})
}

func TestSplitGRO(t *testing.T) {
	buf := []byte("aaaabbbbcc")
	var got []string
	splitGRO(buf, 4, func(p []byte) { got = append(got, string(p)) })
	if fmt.Sprint(got) != "[aaaa bbbb cc]" {
		t.Fatalf("split %q into %q", buf, got)
	}
	got = nil
	splitGRO(buf, 0, func(p []byte) { got = append(got, string(p)) })
	if len(got) != 1 || got[0] != string(buf) {
		t.Fatalf("no segment size: %q", got)
	}
}

// offloadFrames is a round with frames of mixed sizes and destinations:
// full-size broadcasts (a large message's fragments), a short last
// fragment, unicasts of several sizes, and a token-like frame last.
func offloadFrames(max, round int) []Frame {
	var fs []Frame
	tag := func(b []byte, i int) []byte {
		copy(b, fmt.Sprintf("r%d-f%d-", round, i))
		return b
	}
	for i := 0; i < 40; i++ {
		size := max
		switch {
		case i == 17:
			size = max / 3 // end of a message
		case i >= 30:
			size = 100 + i
		}
		to := NodeID(0)
		if i%7 == 3 {
			to = NodeID(2 + i%2)
		}
		fs = append(fs, Frame{To: to, Data: tag(bytes.Repeat([]byte{byte(i)}, size), i)})
	}
	fs = append(fs, Frame{To: 2, Data: tag(make([]byte, 80), 40)})
	return fs
}

// checkOffloadDelivery sends rounds from ts[0] and checks that every
// other node receives exactly its frames, intact and in order.
func checkOffloadDelivery(t *testing.T, ts []*Transport, rounds int) {
	t.Helper()
	want := map[NodeID][][]byte{}
	for r := 0; r < rounds; r++ {
		fs := offloadFrames(ts[0].MaxFrame(), r)
		for _, f := range fs {
			for id := NodeID(2); int(id) <= len(ts); id++ {
				if f.To == 0 || f.To == id {
					want[id] = append(want[id], f.Data)
				}
			}
		}
		if err := ts[0].SendBatch(fs); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for id := NodeID(2); int(id) <= len(ts); id++ {
		got := collect(ctx, ts[id-1], len(want[id]))
		if len(got) != len(want[id]) {
			t.Fatalf("node %d got %d frames, want %d", id, len(got), len(want[id]))
		}
		for i, r := range got {
			if r.From != 1 || !bytes.Equal(r.Frame, want[id][i]) {
				t.Fatalf("node %d frame %d: from %d, %d bytes %.12q, want %d bytes %.12q", id, i, r.From, len(r.Frame), r.Frame, len(want[id][i]), want[id][i])
			}
		}
	}
}

// TestOffloadMixedBatchesArriveInOrder sends rounds of mixed sizes and
// destinations through the kernel with offload on and checks that every
// frame arrives, intact and in order, and that offload was used where the
// kernel has it.
func TestOffloadMixedBatchesArriveInOrder(t *testing.T) {
	for _, crypto := range []bool{true, false} {
		t.Run(fmt.Sprintf("crypto=%v", crypto), func(t *testing.T) {
			cfgs := loopbackConfigs(t, "127.0.0.1", 3, 1)
			for i := range cfgs {
				if !crypto {
					cfgs[i].Key, cfgs[i].Insecure = nil, true
				}
			}
			ts := startAll(t, cfgs)
			checkOffloadDelivery(t, ts, 20)
			ls := ts[0].Links()[0]
			if !ls.GSO {
				// Delivery was checked; the kernel (before Linux 4.18, or
				// a sandbox) has no UDP segmentation offload to check.
				t.Skip("no UDP segmentation offload on this kernel")
			}
			if ls.OffloadSends == 0 || ls.SendErrors != 0 {
				t.Fatalf("offload sends %d, send errors %d", ls.OffloadSends, ls.SendErrors)
			}
			if want := uint64(20 * (34*2 + 7)); ls.FramesSent != want {
				t.Fatalf("FramesSent %d, want %d (counted per datagram)", ls.FramesSent, want)
			}
			rx := ts[1].Links()[0]
			t.Logf("node 1: %d segmented sends; node 2: GRO %v, %d coalesced buffers", ls.OffloadSends, rx.GRO, rx.OffloadReceives)
		})
	}
}

func skipUnlessLinux(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("UDP segmentation offload is Linux only")
	}
}

// refusingConn fails every segmented send (one carrying a control
// message) with err, like a kernel or device without UDP segmentation.
type refusingConn struct {
	batchWriter
	err     error
	refused atomic.Int64
}

func (c *refusingConn) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	for i := range ms {
		if len(ms[i].OOB) > 0 {
			if i == 0 {
				c.refused.Add(1)
				return -1, &net.OpError{Op: "write", Net: "udp", Err: c.err}
			}
			n, err := c.batchWriter.WriteBatch(ms[:i], flags)
			return n, err
		}
	}
	return c.batchWriter.WriteBatch(ms, flags)
}

// TestOffloadFallback: when the kernel refuses a segmented send, the link
// turns GSO off, sends that round's datagrams one by one and loses
// nothing.
func TestOffloadFallback(t *testing.T) {
	skipUnlessLinux(t)
	for _, errno := range []syscall.Errno{syscall.EIO, syscall.EINVAL} {
		t.Run(errno.Error(), func(t *testing.T) {
			cfgs := loopbackConfigs(t, "127.0.0.1", 3, 1)
			var logs logBuf
			cfgs[0].Logger = logs.logger()
			var rc *refusingConn
			cfgs[0].wrapConn = func(c batchWriter) batchWriter {
				rc = &refusingConn{batchWriter: c, err: errno}
				return rc
			}
			ts := startAll(t, cfgs)
			ts[0].links[0].gso.Store(true) // as if the probe had said yes
			checkOffloadDelivery(t, ts, 3)
			if rc.refused.Load() != 1 {
				t.Fatalf("%d segmented sends refused, want 1 (then GSO off)", rc.refused.Load())
			}
			ls := ts[0].Links()[0]
			if ls.GSO || ls.OffloadSends != 0 || ls.SendErrors != 0 {
				t.Fatalf("after refusal: GSO %v, offload sends %d, send errors %d", ls.GSO, ls.OffloadSends, ls.SendErrors)
			}
			if !contains(logs.String(), "segmentation offload refused") {
				t.Fatalf("refusal not logged: %s", logs.String())
			}
		})
	}
}

// TestOffloadNetworkErrorIsNotRefusal: an error that would hit a plain
// send too (here EHOSTUNREACH) counts the unit's datagrams as send errors
// and keeps GSO on.
func TestOffloadNetworkErrorIsNotRefusal(t *testing.T) {
	skipUnlessLinux(t)
	cfgs := loopbackConfigs(t, "127.0.0.1", 2, 1)
	cfgs[0].wrapConn = func(c batchWriter) batchWriter {
		return &refusingConn{batchWriter: c, err: syscall.EHOSTUNREACH}
	}
	ts := startAll(t, cfgs)
	ts[0].links[0].gso.Store(true)
	frames := []Frame{{To: 2, Data: make([]byte, 500)}, {To: 2, Data: make([]byte, 500)}, {To: 2, Data: make([]byte, 10)}}
	if err := ts[0].SendBatch(frames); err != nil {
		t.Fatal(err)
	}
	ls := ts[0].Links()[0]
	if !ls.GSO || ls.SendErrors != 3 || ls.FramesSent != 0 {
		t.Fatalf("GSO %v, send errors %d (want 3), frames sent %d", ls.GSO, ls.SendErrors, ls.FramesSent)
	}
}

// TestOffloadWithFaults: injected drops and duplicates still apply per
// datagram when sends are segmented.
func TestOffloadWithFaults(t *testing.T) {
	cfgs := loopbackConfigs(t, "127.0.0.1", 2, 1)
	ts := startAll(t, cfgs)
	if err := ts[0].SetFault(0, Fault{Duplicate: 1}); err != nil {
		t.Fatal(err)
	}
	frames := make([]Frame, 30)
	for i := range frames {
		frames[i] = Frame{To: 2, Data: bytes.Repeat([]byte{byte(i)}, 1000)}
	}
	if err := ts[0].SendBatch(frames); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	got := collect(ctx, ts[1], 30)
	for i, r := range got {
		if r.Frame[0] != byte(i) {
			t.Fatalf("frame %d is frame %d", i, r.Frame[0])
		}
	}
	// Heartbeats are duplicated too: at least the 30 frames' copies.
	waitFor(t, 3*time.Second, "30 duplicates dropped", func() bool { return ts[1].Stats().Total.Dropped.Duplicate >= 30 })
	if s := ts[1].Stats().Total; s.FramesReceived != 30 {
		t.Fatalf("%d frames accepted, want 30", s.FramesReceived)
	}
	if len(got) != 30 {
		t.Fatalf("got %d frames, want 30", len(got))
	}
	if err := ts[0].SetFault(0, Fault{Drop: 1}); err != nil {
		t.Fatal(err)
	}
	before := ts[0].Stats().Total
	ts[0].SendBatch(frames)
	// Heartbeats sent meanwhile are dropped too.
	if after := ts[0].Stats().Total; after.Dropped.Fault-before.Dropped.Fault < 30 || after.FramesSent != before.FramesSent {
		t.Fatalf("fault drops %d (want at least 30), frames sent %d", after.Dropped.Fault-before.Dropped.Fault, after.FramesSent-before.FramesSent)
	}
}
