package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/totem-gcs/totem/ipc"
)

// fakeDaemon serves one cpgbench at a time on a Unix socket: joins and
// leaves succeed (with a view of the one member), every refuseEvery-th
// send is refused with try-again, the others are delivered back at once.
func fakeDaemon(t *testing.T, refuseEvery int) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	pid := uint32(os.Getpid())
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go serveFake(nc, pid, refuseEvery)
		}
	}()
	return sock
}

func serveFake(nc net.Conn, pid uint32, refuseEvery int) {
	c := ipc.NewConn(nc, 8<<20)
	defer c.Close()
	var h ipc.Hello
	if c.Read(&h) != nil {
		return
	}
	if c.Write(ipc.ServerMsg{Kind: ipc.KindWelcome, Welcome: &ipc.Welcome{Version: ipc.Version, NodeID: 1, PID: pid, MaxMessage: 1 << 20}}) != nil {
		return
	}
	var out []byte
	sends := 0
	for {
		frames, err := c.ReadFrames(nil)
		if err != nil {
			return
		}
		out = out[:0]
		for _, p := range frames {
			var r ipc.Request
			if ipc.DecodeRequest(p, &r, nil) != nil {
				return
			}
			rep := ipc.Reply{ID: r.ID}
			var ev *ipc.Event
			switch r.Op {
			case ipc.OpJoin:
				ev = &ipc.Event{Type: ipc.EventConfchg, Group: r.Group, Members: []ipc.Member{{NodeID: 1, PID: pid}},
					Joined: []ipc.Member{{NodeID: 1, PID: pid, Reason: ipc.ReasonJoin}}}
			case ipc.OpSend:
				sends++
				if sends%refuseEvery == 0 {
					rep.Code, rep.Error = ipc.TryAgain, "busy"
				} else {
					ev = &ipc.Event{Type: ipc.EventDeliver, Group: r.Group, NodeID: 1, PID: pid, Guarantee: r.Guarantee, Data: r.Data}
				}
			}
			out, _ = ipc.AppendReplyFrame(out, &rep)
			if ev != nil {
				out = ipc.AppendEventFrame(out, ev)
			}
		}
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

func runFake(t *testing.T, args ...string) report {
	t.Helper()
	var stdout bytes.Buffer
	if code := run(args, &stdout, io.Discard); code != exitOK {
		t.Fatalf("cpgbench %v: exit %d: %s", args, code, stdout.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	return rep
}

// TestThroughputAgainstFake: the pipelined sender and the goroutine per
// send both get every accepted message back, in each worker's order,
// while the daemon refuses some with try-again.
func TestThroughputAgainstFake(t *testing.T) {
	sock := fakeDaemon(t, 7)
	for _, mode := range [][]string{nil, {"--ahead", "8"}, {"--sync"}} {
		args := append([]string{"--socket", sock, "--sizes", "64,2000", "--duration", "300ms", "--inflight", "16", "--json", "-q"}, mode...)
		rep := runFake(t, args...)
		want := "pipelined"
		if len(mode) == 1 {
			want = "sync"
		}
		if rep.Sends != want || len(rep.Throughput) != 2 {
			t.Fatalf("%v: %+v", mode, rep)
		}
		for _, r := range rep.Throughput {
			if r.Sent == 0 || r.Delivered != r.Sent || r.TryAgain == 0 || r.faulty() {
				t.Errorf("%v size %d: sent %d delivered %d try-again %d lost %d dups %d reordered %d unknown %d",
					mode, r.Size, r.Sent, r.Delivered, r.TryAgain, r.Lost, r.Dups, r.Reordered, r.Unknown)
			}
		}
	}
}

// TestLatencyAgainstFake: every latency sample is taken, try-again
// refusals retried.
func TestLatencyAgainstFake(t *testing.T) {
	sock := fakeDaemon(t, 5)
	rep := runFake(t, "--socket", sock, "--latency", "--sizes", "64", "--count", "100", "--json", "-q")
	if len(rep.Latency) != 1 || rep.Latency[0].N != 100 || rep.Latency[0].Retry == 0 || rep.Latency[0].P50 <= 0 {
		t.Fatalf("%+v", rep.Latency)
	}
}
