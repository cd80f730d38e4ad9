package daemon

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/totem-gcs/totem/ipc"
)

// A client that reads slowly holds at most one queue's worth of frames in
// the daemon: the frames the writer is writing still count, so the client
// is disconnected once queued plus in-flight frames pass the limit (it
// used to be able to hold a second full queue while the first was being
// written).
func TestSlowReaderHoldsOneQueue(t *testing.T) {
	daemonSide, clientSide := net.Pipe()
	defer clientSide.Close()
	srv := &ipcServer{log: slog.New(slog.NewTextHandler(io.Discard, nil)), qMsgs: 1 << 20, qBytes: 10 << 10, conns: map[uint64]*ipcConn{}}
	ic := &ipcConn{id: 1, srv: srv, c: ipc.NewConn(daemonSide, 1<<20), wake: make(chan struct{}, 1), done: make(chan struct{})}
	frame := make([]byte, 1<<10)
	// Nine frames wait when the writer starts: it takes them all as one
	// batch and blocks, because the client reads one byte and stalls.
	for range 9 {
		ic.q = append(ic.q, outBuf{b: frame})
		ic.frames++
		ic.qBytes += len(frame)
	}
	go func() {
		var b [1]byte
		clientSide.Read(b[:])
	}()
	srv.wg.Add(1)
	go ic.writer()
	ic.wake <- struct{}{}
	time.Sleep(20 * time.Millisecond)
	sent := 0
	for ; sent < 40 && !ic.isClosed(); sent++ {
		ic.sendFrame(frame)
		time.Sleep(time.Millisecond) // let the writer take a batch
	}
	if !ic.isClosed() {
		t.Fatalf("a client that stopped reading holds %d KiB against a limit of 10 KiB and is still connected", 9+sent)
	}
	if sent > 2 {
		t.Fatalf("disconnected only after 9 + %d frames of 1 KiB; limit 10 KiB", sent)
	}
	if srv.dropped.Load() != 1 {
		t.Fatalf("dropped counter %d, want 1", srv.dropped.Load())
	}
	clientSide.Close()
	srv.wg.Wait()
}
