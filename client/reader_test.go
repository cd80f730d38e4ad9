package client

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/totem-gcs/totem/ipc"
)

// patterned returns n bytes that tell message i apart.
func patterned(i, n int) []byte {
	b := make([]byte, n)
	for k := range b {
		b[k] = byte(i + k)
	}
	return b
}

// eventSizes: small messages of many sizes, and two larger than the
// reader's buffer, one of the largest size allowed.
func eventSize(i int) int {
	switch i {
	case 200:
		return readBufSize + 1000
	case 400:
		return 1 << 20
	}
	return i % 7 * 150
}

// TestEventsInBatches: events that arrive many to a read (and frames
// larger than the read buffer) come out of Events whole, in order, each
// with its own Data; a configuration change and replies in between keep
// their places.
func TestEventsInBatches(t *testing.T) {
	f := startFake(t, func(ipc.Request) *ipc.Reply { return &ipc.Reply{} }, nil)
	ctx := testContext(t)
	h, err := Connect(ctx, Options{Socket: f.socket, EventBuffer: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c := <-f.conn
	const n = 500
	var frames []byte
	for i := range n {
		if i == 250 {
			frames = ipc.AppendEventFrame(frames, &ipc.Event{Type: ipc.EventConfchg, Group: "g",
				Members: []ipc.Member{{NodeID: 1, PID: 2}}, Ring: ipc.Ring{Rep: 1, Seq: 8}})
		}
		frames = ipc.AppendEventFrame(frames, &ipc.Event{Type: ipc.EventDeliver, Group: "g", NodeID: 3, PID: uint32(i),
			Guarantee: uint8(Agreed), Data: patterned(i, eventSize(i))})
	}
	// Half of it in one write, the rest cut in the middle of a frame.
	cut := len(frames)/2 + 3
	if err := c.WriteRaw(frames[:cut]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if err := c.WriteRaw(frames[cut:]); err != nil {
		t.Fatal(err)
	}
	var msgs []*Message
	for len(msgs) < n {
		select {
		case ev := <-h.Events():
			switch ev := ev.(type) {
			case *Message:
				msgs = append(msgs, ev)
			case *ConfChange:
				if len(msgs) != 250 || ev.Group != "g" || len(ev.Members) != 1 || ev.Ring.Seq != 8 {
					t.Fatalf("view after %d messages: %+v", len(msgs), ev)
				}
			default:
				t.Fatalf("unexpected event %T", ev)
			}
		case <-h.Done():
			t.Fatalf("handle ended after %d messages: %v", len(msgs), h.Err())
		}
	}
	for i, m := range msgs {
		if m.PID != uint32(i) || m.NodeID != 3 || m.Group != "g" || m.Guarantee != Agreed || !bytes.Equal(m.Data, patterned(i, eventSize(i))) {
			t.Fatalf("message %d: pid %d node %d group %q, %d bytes", i, m.PID, m.NodeID, m.Group, len(m.Data))
		}
	}
	// Each Data is its own: appending to one leaves the next alone.
	for i := 0; i+1 < n; i++ {
		_ = append(msgs[i].Data, 0xee, 0xee, 0xee)
	}
	for i, m := range msgs {
		if !bytes.Equal(m.Data, patterned(i, eventSize(i))) {
			t.Fatalf("message %d changed by an append to another", i)
		}
	}
	// The handle still answers requests.
	if err := h.TrySend(ctx, "g", []byte("x"), Agreed); err != nil {
		t.Fatal(err)
	}
}

// TestEventOverflowInBatch: an application that does not read gets
// ErrEventOverflow once more than MaxPendingEvents wait, even when they
// all arrive in one read.
func TestEventOverflowInBatch(t *testing.T) {
	f := startFake(t, func(ipc.Request) *ipc.Reply { return &ipc.Reply{} }, nil)
	ctx := testContext(t)
	h, err := Connect(ctx, Options{Socket: f.socket, EventBuffer: 1, MaxPendingEvents: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c := <-f.conn
	var frames []byte
	for i := range 100 {
		frames = ipc.AppendEventFrame(frames, &ipc.Event{Type: ipc.EventDeliver, Group: "g", NodeID: 3, PID: uint32(i), Data: []byte{byte(i)}})
	}
	if err := c.WriteRaw(frames); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the handle did not end")
	}
	if err := h.Err(); !errors.Is(err, ErrEventOverflow) {
		t.Fatalf("Err: %v", err)
	}
	// What arrived before the end is still handed out, in order: the
	// channel's one and the 10 queued.
	got := 0
	for ev := range h.Events() {
		m := ev.(*Message)
		if m.PID != uint32(got) {
			t.Fatalf("event %d is message %d", got, m.PID)
		}
		got++
	}
	if got != 11 {
		t.Fatalf("%d events handed out after the overflow, want 11", got)
	}
}

// BenchmarkReceive: what the handle costs per delivered 1 KiB message
// when the daemon writes them in batches of 50 (the reader and the
// application goroutine; the fake daemon shares the process).
func BenchmarkReceive(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			f := startFake(b, func(ipc.Request) *ipc.Reply { return &ipc.Reply{} }, nil)
			ctx := testContext(b)
			h, err := Connect(ctx, Options{Socket: f.socket})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			c := <-f.conn
			const perWrite = 50
			var batch []byte
			for i := range perWrite {
				batch = ipc.AppendEventFrame(batch, &ipc.Event{Type: ipc.EventDeliver, Group: "g", NodeID: 3, PID: uint32(i), Data: make([]byte, size)})
			}
			go func() {
				for i := 0; i < b.N; i += perWrite {
					if c.WriteRaw(batch) != nil {
						return
					}
				}
			}()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			want := (b.N + perWrite - 1) / perWrite * perWrite
			for got := 0; got < want; got++ {
				if _, ok := <-h.Events(); !ok {
					b.Fatal(h.Err())
				}
			}
		})
	}
}
