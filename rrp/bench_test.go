package rrp

import (
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// benchSize is the frame size of the throughput benchmarks (the raw UDP
// reference figures use 1000-byte datagrams).
const benchSize = 1000

// cpuTime returns the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runThroughput sends b.N frames of benchSize bytes from ts[0] to ts[1] in
// batches and reports the send and receive rates in datagrams per second.
func runThroughput(b *testing.B, ts []*Transport, batch int) {
	var got atomic.Int64
	var last atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for bt := range ts[1].Recv() {
			got.Add(int64(len(bt)))
			last.Store(time.Now().UnixNano())
		}
	}()
	frames := make([]Frame, batch)
	for i := range frames {
		frames[i] = Frame{To: 2, Data: make([]byte, benchSize)}
	}
	b.SetBytes(benchSize)
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for sent := 0; sent < b.N; sent += batch {
		n := min(batch, b.N-sent)
		if err := ts[0].SendBatch(frames[:n]); err != nil {
			b.Fatal(err)
		}
	}
	sendDur := time.Since(start)
	// Wait until nothing more arrives.
	for prev := int64(-1); got.Load() != prev; {
		prev = got.Load()
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(got.Load()), "cpu-ns/dgram")
	recvDur := time.Duration(last.Load() - start.UnixNano())
	b.ReportMetric(float64(b.N)/sendDur.Seconds(), "sent/s")
	if recvDur > 0 {
		b.ReportMetric(float64(got.Load())/recvDur.Seconds(), "recv/s")
	}
	b.ReportMetric(100*float64(int64(b.N)-got.Load())/float64(b.N), "loss%")
	ts[1].Close()
	<-done
}

// benchModes are the variants of the throughput benchmarks: crypto on or
// off, UDP segmentation offload and receive coalescing on (where the
// kernel has them) or off.
var benchModes = []struct {
	name                string
	insecure, noOffload bool
}{
	{"crypto", false, false},
	{"insecure", true, false},
	{"crypto-nooffload", false, true},
	{"insecure-nooffload", true, true},
}

func benchConfigs(b *testing.B, insecure, noOffload bool) []Config {
	cfgs := loopbackConfigs(b, "127.0.0.1", 2, 1)
	for i := range cfgs {
		if insecure {
			cfgs[i].Key, cfgs[i].Insecure = nil, true
		}
		cfgs[i].NoOffload = noOffload
		cfgs[i].HeartbeatInterval = 100 * time.Millisecond
		cfgs[i].LinkTimeout = time.Second
	}
	return cfgs
}

// BenchmarkLoopback measures one udpu link on 127.0.0.1, 1000-byte frames
// sent 64 per SendBatch, with and without crypto and offload.
func BenchmarkLoopback(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			ts := startAll(b, benchConfigs(b, mode.insecure, mode.noOffload))
			runThroughput(b, ts, 64)
		})
	}
}

// BenchmarkRawUDPBatch is the reference: bare 1000-byte datagrams written
// 64 per sendmmsg on loopback, no header and no crypto.
func BenchmarkRawUDPBatch(b *testing.B) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	setBuffers(rx, DefaultSocketBuffer)
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	var got atomic.Int64
	var last atomic.Int64
	go func() {
		pc := ipv4.NewPacketConn(rx)
		ms := make([]ipv4.Message, 64)
		for i := range ms {
			ms[i].Buffers = [][]byte{make([]byte, 2000)}
		}
		for {
			n, err := pc.ReadBatch(ms, 0)
			if err != nil {
				return
			}
			got.Add(int64(n))
			last.Store(time.Now().UnixNano())
		}
	}()
	pc := ipv4.NewPacketConn(tx)
	ms := make([]ipv4.Message, 64)
	for i := range ms {
		ms[i] = ipv4.Message{Buffers: [][]byte{make([]byte, benchSize)}, Addr: rx.LocalAddr()}
	}
	b.SetBytes(benchSize)
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for sent := 0; sent < b.N; {
		n, err := pc.WriteBatch(ms[:min(64, b.N-sent)], 0)
		if err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	sendDur := time.Since(start)
	for prev := int64(-1); got.Load() != prev; {
		prev = got.Load()
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(got.Load()), "cpu-ns/dgram")
	rx.Close()
	b.ReportMetric(float64(b.N)/sendDur.Seconds(), "sent/s")
	b.ReportMetric(float64(got.Load())/time.Duration(last.Load()-start.UnixNano()).Seconds(), "recv/s")
	b.ReportMetric(100*float64(int64(b.N)-got.Load())/float64(b.N), "loss%")
}

// BenchmarkSealPath is the CPU cost of building one encrypted 1000-byte
// datagram (header, nonce, XChaCha20-Poly1305), without the system call.
func BenchmarkSealPath(b *testing.B) {
	tr := fuzzTransport(testKey)
	kr := tr.keys.Load()
	sb := new(sendBuf)
	data := make([]byte, benchSize)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tr.build(sb, kr, TypeFrame, 2, 0, uint64(i+1), data)
		if i%32 == 31 {
			sb.chunk, sb.total = sb.chunk[:0], 0
		}
	}
}

// BenchmarkOpenPath is the CPU cost of accepting one encrypted 1000-byte
// datagram: header and replay checks, authentication, decryption.
func BenchmarkOpenPath(b *testing.B) {
	tr := fuzzTransport(testKey)
	l := tr.links[0]
	kr := tr.keys.Load()
	pkts := make([][]byte, 1024)
	for i := range pkts {
		pkts[i] = forge(testKey, Header{Type: TypeFrame, From: 1, To: 2, Incarnation: 1, Seq: uint64(i + 1)}, make([]byte, benchSize))
	}
	addr := &net.UDPAddr{}
	now := time.Now()
	slab := make([]byte, 0, 64*benchSize)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if i%len(pkts) == 0 {
			tr.peers[1].window.reset() // replay the same packets
		}
		if i%64 == 0 {
			slab = slab[:0]
		}
		var ok bool
		slab, _, _, ok = tr.handle(l, pkts[i%len(pkts)], addr, now, kr, slab)
		if !ok {
			b.Fatal("not accepted")
		}
	}
}

// BenchmarkSendRound measures one token visit's worth of sending on a
// 3-node loopback udpu link: 17 full-size broadcast frames (the
// fragments of a large message) and a small unicast token, with offload
// (where the kernel has it) and without. ns/op is the sender's time per
// round, including the system calls.
func BenchmarkSendRound(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			cfgs := loopbackConfigs(b, "127.0.0.1", 3, 1)
			for i := range cfgs {
				if mode.insecure {
					cfgs[i].Key, cfgs[i].Insecure = nil, true
				}
				cfgs[i].NoOffload = mode.noOffload
			}
			ts := startAll(b, cfgs)
			stop := make(chan struct{})
			defer close(stop)
			go drain(ts[1], stop)
			go drain(ts[2], stop)
			frames := make([]Frame, 0, 18)
			for i := 0; i < 17; i++ {
				frames = append(frames, Frame{Data: make([]byte, ts[0].MaxFrame())})
			}
			frames = append(frames, Frame{To: 2, Data: make([]byte, 80)})
			b.SetBytes(int64(17 * ts[0].MaxFrame()))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := ts[0].SendBatch(frames); err != nil {
					b.Fatal(err)
				}
				if i%8 == 7 {
					time.Sleep(200 * time.Microsecond) // let the receivers keep up
				}
			}
		})
	}
}

// BenchmarkPingPong measures the round trip of a small frame between two
// transports on loopback (one token hop there and back): the latency the
// transport adds to every token pass, system calls and goroutine
// hand-offs included.
func BenchmarkPingPong(b *testing.B) {
	for _, mode := range benchModes[:2] {
		b.Run(mode.name, func(b *testing.B) {
			ts := startAll(b, benchConfigs(b, mode.insecure, false))
			go func() {
				for bt := range ts[1].Recv() {
					for range bt {
						ts[1].Send(1, make([]byte, 80))
					}
				}
			}()
			ping := make([]byte, 80)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := ts[0].Send(2, ping); err != nil {
					b.Fatal(err)
				}
				<-ts[0].Recv()
			}
		})
	}
}

// runRing passes a token around ts (node 1, 2, ... and back) b.N times.
// On each visit node 1 first broadcasts perVisit full-size frames, as the
// engine does with max_messages frames of a large message; the others
// only pass the token on. It reports rotations per second and the data
// rate: the transport's ceiling for one sender at that per-visit limit.
func runRing(b *testing.B, ts []*Transport, perVisit int) {
	n := len(ts)
	token := func(to int) Frame { return Frame{To: NodeID(to), Data: []byte("token")} }
	visit := make([]Frame, 0, perVisit+1)
	for i := 0; i < perVisit; i++ {
		visit = append(visit, Frame{Data: make([]byte, ts[0].MaxFrame())})
	}
	visit = append(visit, token(2))
	done := make(chan struct{})
	for i := 1; i < n; i++ {
		go func(i int) {
			next := (i+1)%n + 1
			for bt := range ts[i].Recv() {
				for _, r := range bt {
					if string(r.Frame) == "token" {
						ts[i].SendBatch([]Frame{token(next)})
					}
				}
			}
		}(i)
	}
	b.SetBytes(int64(perVisit * ts[0].MaxFrame()))
	b.ResetTimer()
	start := time.Now()
	go func() {
		defer close(done)
		for rot := 0; rot < b.N; {
			if err := ts[0].SendBatch(visit); err != nil {
				b.Error(err)
				return
			}
			// Wait for the token to come back; a lost token (the
			// receivers' buffers overflowed) is reissued.
			timeout := time.After(500 * time.Millisecond)
		wait:
			for {
				select {
				case bt := <-ts[0].Recv():
					for _, r := range bt {
						if string(r.Frame) == "token" {
							rot++
							break wait
						}
					}
				case <-timeout:
					var st []string
					for _, tr := range ts {
						l := tr.Links()[0]
						st = append(st, fmt.Sprintf("gso=%v sent=%d recv=%d senderr=%d drops=%d", l.GSO, l.FramesSent, l.FramesReceived, l.SendErrors, l.Dropped.Total()))
					}
					b.Logf("token lost; reissued (rotation %d): %v", rot, st)
					break wait
				}
			}
		}
	}()
	<-done
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rotations/s")
	for i, tr := range ts {
		if d := tr.Stats().Total.Dropped; d.Total() > 0 {
			b.Logf("node %d dropped %+v", i+1, d)
		}
	}
}

// BenchmarkRing is runRing on 3 loopback transports, 17 (Corosync's
// max_messages) and 50 frames per visit, offload on and off.
func BenchmarkRing(b *testing.B) {
	for _, perVisit := range []int{17, 50} {
		for _, mode := range benchModes {
			b.Run(fmt.Sprintf("%d/%s", perVisit, mode.name), func(b *testing.B) {
				cfgs := loopbackConfigs(b, "127.0.0.1", 3, 1)
				for i := range cfgs {
					if mode.insecure {
						cfgs[i].Key, cfgs[i].Insecure = nil, true
					}
					cfgs[i].NoOffload = mode.noOffload
				}
				runRing(b, startAll(b, cfgs), perVisit)
			})
		}
	}
}
