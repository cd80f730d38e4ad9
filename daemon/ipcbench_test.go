package daemon

import (
	"context"
	"errors"

	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/totem-gcs/totem/client"
)

// The IPC benchmarks measure the path client → daemon reader → event loop
// → writer → client over the real socket, with the engines replaced by
// test doubles that deliver every message at once (no ring): what the
// daemon's IPC side and the client library cost per message. Each
// operation is one message sent and delivered back to its sender;
// allocs/op counts both sides (they share the process).
//
//	go test ./daemon -run '^$' -bench IPC -benchmem

// benchIPC sends b.N messages of size bytes through send and waits until
// every one is delivered back.
// finish, if not nil, runs after the workers, before the wait for the
// deliveries (a pipelined sender resends what was refused).
func benchIPC(b *testing.B, size int, send func(ctx context.Context, h *client.Handle, data []byte) error, workers int,
	finish func(ctx context.Context, h *client.Handle) error) {
	l := startLone(b, 1<<20, IPCOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h, err := client.Connect(ctx, client.Options{Socket: l.socket, Name: "bench", EventBuffer: 4096})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	if err := h.Join(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	// The join's view change.
	if _, ok := (<-h.Events()).(*client.ConfChange); !ok {
		b.Fatal("no view after join")
	}
	var got atomic.Int64
	want := int64(b.N)
	back := make(chan struct{})
	go func() {
		defer close(back)
		for ev := range h.Events() {
			if _, ok := ev.(*client.Message); ok && got.Add(1) == want {
				return
			}
		}
	}()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := make([]byte, size)
			for next.Add(1) <= want {
				if err := send(ctx, h, data); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		b.Fatal(err)
	default:
	}
	if finish != nil {
		if err := finish(ctx, h); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-back:
	case <-h.Done():
		b.Fatal(h.Err())
	case <-ctx.Done():
		b.Fatalf("%d of %d messages came back", got.Load(), want)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	// CPU time of the whole process (client and daemon) per message:
	// steadier than msgs/s on a shared machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/msg")
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func sendWait(ctx context.Context, h *client.Handle, data []byte) error {
	return h.Send(ctx, "bench", data, client.Agreed)
}

// BenchmarkIPCSend: Send, one request at a time per goroutine, with 1 and
// 64 goroutines.
func BenchmarkIPCSend(b *testing.B) {
	for _, size := range []int{64, 1024} {
		for _, workers := range []int{1, 64} {
			b.Run(fmt.Sprintf("%dB/%dworkers", size, workers), func(b *testing.B) {
				benchIPC(b, size, sendWait, workers, nil)
			})
		}
	}
}

// BenchmarkIPCSendAsync: one goroutine keeps up to 64 SendAsync requests
// unanswered; a message refused with try-again is sent again.
func BenchmarkIPCSendAsync(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			window := make(chan struct{}, 64)
			var failed atomic.Pointer[error]
			var refused atomic.Int64
			done := func(err error) {
				<-window
				switch {
				case errors.Is(err, client.ErrTryAgain):
					refused.Add(1)
				case err != nil:
					failed.Store(&err)
				}
			}
			data := make([]byte, size)
			resend := func(ctx context.Context, h *client.Handle) error {
				// The messages refused so far go again.
				for n := refused.Swap(0); n > 0; n-- {
					if err := failed.Load(); err != nil {
						return *err
					}
					window <- struct{}{}
					if err := h.SendAsync(ctx, "bench", data, client.Agreed, done); err != nil {
						return err
					}
				}
				return nil
			}
			benchIPC(b, size, func(ctx context.Context, h *client.Handle, data []byte) error {
				if err := resend(ctx, h); err != nil {
					return err
				}
				window <- struct{}{}
				return h.SendAsync(ctx, "bench", data, client.Agreed, done)
			}, 1, func(ctx context.Context, h *client.Handle) error {
				// Until every request is answered and none was refused.
				for {
					for range cap(window) {
						window <- struct{}{}
					}
					for range cap(window) {
						<-window
					}
					if refused.Load() == 0 {
						if err := failed.Load(); err != nil {
							return *err
						}
						return nil
					}
					if err := resend(ctx, h); err != nil {
						return err
					}
				}
			})
		})
	}
}
