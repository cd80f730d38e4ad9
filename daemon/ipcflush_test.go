package daemon

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/totem-gcs/totem/ipc"
)

// TestLoopWritesSpill: deliveries well beyond what the client's socket
// holds, while the client does not read, go partly through the event
// loop's non-blocking writes and partly through the writer: once the
// client reads, every frame arrives whole and in order, replies matched
// to their requests.
func TestLoopWritesSpill(t *testing.T) {
	l := startLone(t, 1<<20, IPCOptions{QueueMessages: 1 << 16, QueueBytes: 256 << 20})
	c, _ := rawConn(t, l.socket)
	if err := c.Write(ipc.Request{ID: 1, Op: ipc.OpJoin, Group: "g"}); err != nil {
		t.Fatal(err)
	}
	// Sizes straddling the shared-frame threshold, 12 MiB in all: more
	// than a Unix socket buffers.
	const n = 400
	size := func(i int) int { return []int{100, sharedFrameMin + 1, 60000, 7}[i%4] }
	var frames []byte
	for i := range n {
		data := bytes.Repeat([]byte{byte(i)}, size(i))
		binary.BigEndian.PutUint32(data, uint32(i))
		var err error
		if frames, err = ipc.AppendRequestFrame(frames, &ipc.Request{ID: uint64(i + 2), Op: ipc.OpSend, Group: "g", Guarantee: ipc.Agreed, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	go c.NetConn().Write(frames)
	// Let the daemon fill the socket and queue the rest.
	time.Sleep(300 * time.Millisecond)
	nextReply, nextMsg := uint64(1), 0
	for nextMsg < n || nextReply < n+2 {
		var m ipc.ServerMsg
		if err := c.Read(&m); err != nil {
			t.Fatalf("after %d replies and %d messages: %v", nextReply-1, nextMsg, err)
		}
		switch {
		case m.Kind == ipc.KindReply:
			if m.Reply.ID != nextReply || m.Reply.Code != ipc.OK {
				t.Fatalf("reply %+v, want ID %d", m.Reply, nextReply)
			}
			nextReply++
		case m.Kind == ipc.KindEvent && m.Event.Type == ipc.EventDeliver:
			d := m.Event.Data
			if len(d) != size(nextMsg) || binary.BigEndian.Uint32(d) != uint32(nextMsg) || d[len(d)-1] != byte(nextMsg) {
				t.Fatalf("message %d: %d bytes, starts %x", nextMsg, len(d), d[:4])
			}
			nextMsg++
		}
	}
	if got := l.d.srv.dropped.Load(); got != 0 {
		t.Fatalf("%d clients dropped", got)
	}
}
