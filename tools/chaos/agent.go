package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/totem-gcs/totem/chaos"
	"github.com/totem-gcs/totem/client"
)

// agentFlags configure one client process of the soak: it joins a group,
// logs every event, and (rate > 0) sends numbered messages.
type agentFlags struct {
	group    string
	logDir   string
	seed     int64
	rate     float64
	size     int
	safe     float64
	stopSend string
	stop     string
}

// runAgent is `chaos agent`: one listener (and sender) in one group. Its
// log is LOGDIR/<group>-<node>-<pid>.jsonl. It stops sending when the
// file --stop-send exists, and leaves the group cleanly, writes the end
// record and exits when --stop exists or on SIGTERM. If the daemon goes
// away it writes an unclean end and exits 3.
func runAgent(args []string) int {
	var f agentFlags
	fs := pflag.NewFlagSet("chaos agent", pflag.ContinueOnError)
	fs.StringVar(&f.group, "group", "", "group to join")
	fs.StringVar(&f.logDir, "log-dir", "", "directory for the process log")
	fs.Int64Var(&f.seed, "seed", 0, "seed written into every payload")
	fs.Float64Var(&f.rate, "rate", 0, "messages per second (0: listen only)")
	fs.IntVar(&f.size, "size", 100, "payload size in bytes")
	fs.Float64Var(&f.safe, "safe", 0.3, "fraction of messages sent safe")
	fs.StringVar(&f.stopSend, "stop-send", "", "stop sending once this file exists")
	fs.StringVar(&f.stop, "stop", "", "leave and exit once this file exists")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintln(os.Stderr, "chaos agent:", err)
		return 2
	}
	if f.group == "" || f.logDir == "" {
		fmt.Fprintln(os.Stderr, "chaos agent: --group and --log-dir are required")
		return 2
	}
	err := agent(f)
	if errors.Is(err, errUnclean) {
		return 3
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos agent:", err)
		return 1
	}
	return 0
}

var errUnclean = errors.New("lost the daemon")

// logWriter serialises records to the process log. Sent records are
// flushed before Send is called, so a killed process never delivers a
// message its log does not show as sent.
type logWriter struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

func (l *logWriter) write(r chaos.Record, flush bool) error {
	r.Time = time.Now().UnixNano()
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Write(b)
	l.w.WriteByte('\n')
	if flush {
		return l.w.Flush()
	}
	return nil
}

func (l *logWriter) flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Flush()
}

func exists(path string) bool {
	if path == "" {
		return false
	}
	_, err := os.Stat(path)
	return err == nil
}

func members(ms []client.Member) []chaos.Member {
	out := make([]chaos.Member, len(ms))
	for i, m := range ms {
		out[i] = chaos.Member{NodeID: uint32(m.NodeID), PID: m.PID}
		if m.Reason != 0 {
			out[i].Reason = m.Reason.String()
		}
	}
	return out
}

func agent(f agentFlags) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	h, err := client.Connect(ctx, client.Options{Name: "chaos-agent", EventBuffer: 4096})
	cancel()
	if err != nil {
		return fmt.Errorf("%w: %v", errUnclean, err)
	}
	defer h.Close()
	name := filepath.Join(f.logDir, fmt.Sprintf("%s-%d-%d.jsonl", f.group, h.NodeID(), h.PID()))
	file, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer file.Close()
	lw := &logWriter{f: file, w: bufio.NewWriterSize(file, 1<<16)}
	if err := lw.write(chaos.Record{Type: chaos.TypeSelf, Group: f.group, NodeID: uint32(h.NodeID()), PID: h.PID()}, true); err != nil {
		return err
	}
	unclean := func(why error) error {
		lw.write(chaos.Record{Type: chaos.TypeEnd, Reason: "unclean", Error: fmt.Sprint(why)}, true)
		return fmt.Errorf("%w: %v", errUnclean, why)
	}
	jctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	err = h.Join(jctx, f.group)
	cancel()
	if err != nil {
		return unclean(fmt.Errorf("join: %v", err))
	}

	// Events: logged in order; flushed whenever none is waiting.
	evDone := make(chan error, 1)
	go func() {
		for ev := range h.Events() {
			var r chaos.Record
			switch e := ev.(type) {
			case *client.Message:
				if e.Group != f.group {
					continue
				}
				r = chaos.Record{Type: chaos.TypeDeliver, Group: e.Group, NodeID: uint32(e.NodeID), PID: e.PID, Guarantee: e.Guarantee.String(), Data: e.Data}
			case *client.ConfChange:
				if e.Group != f.group {
					continue
				}
				r = chaos.Record{Type: chaos.TypeConfChg, Group: e.Group, Members: members(e.Members), Joined: members(e.Joined), Left: members(e.Left), Transitional: e.Transitional, RingID: e.Ring.String()}
			case *client.Undelivered:
				pl, err := chaos.DecodePayload(e.Data)
				if e.Group != f.group || err != nil {
					continue
				}
				r = chaos.Record{Type: chaos.TypeUndelivered, Counter: pl.Counter}
			default:
				continue
			}
			if err := lw.write(r, len(h.Events()) == 0); err != nil {
				evDone <- err
				return
			}
		}
		evDone <- h.Err()
	}()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	sendCtx, stopSending := context.WithCancel(context.Background())
	defer stopSending()
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		if f.rate <= 0 {
			return
		}
		rng := rand.New(rand.NewPCG(uint64(f.seed), uint64(h.PID())<<32|uint64(h.NodeID())))
		interval := time.Duration(float64(time.Second) / f.rate)
		for n := uint64(1); sendCtx.Err() == nil; n++ {
			g, gs := client.Agreed, "agreed"
			if rng.Float64() < f.safe {
				g, gs = client.Safe, "safe"
			}
			p := chaos.Payload{Seed: f.seed, NodeID: uint32(h.NodeID()), PID: h.PID(), Counter: n, Guarantee: gs, Size: f.size}
			if lw.write(chaos.Record{Type: chaos.TypeSent, Counter: n}, true) != nil {
				return
			}
			if err := h.Send(sendCtx, f.group, p.Encode(), g); err != nil {
				lw.write(chaos.Record{Type: chaos.TypeSendFail, Counter: n, Error: err.Error()}, true)
				if errors.Is(err, client.ErrDisconnected) || errors.Is(err, client.ErrClosed) {
					return
				}
			}
			select {
			case <-sendCtx.Done():
			case <-time.After(interval/2 + time.Duration(rng.Int64N(int64(interval)))):
			}
		}
	}()

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-evDone:
			stopSending()
			<-sendDone
			return unclean(err)
		case <-sigs:
			return leave(h, f, lw, stopSending, sendDone, evDone)
		case <-tick.C:
			if exists(f.stopSend) {
				stopSending()
			}
			if exists(f.stop) {
				return leave(h, f, lw, stopSending, sendDone, evDone)
			}
		}
	}
}

// leave stops sending, leaves the group, logs what is still queued and
// writes the clean end record.
func leave(h *client.Handle, f agentFlags, lw *logWriter, stopSending func(), sendDone chan struct{}, evDone chan error) error {
	stopSending()
	<-sendDone
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	err := h.Leave(ctx, f.group)
	cancel()
	if err != nil {
		lw.flush()
		return fmt.Errorf("%w: leave: %v", errUnclean, err)
	}
	// Let the event goroutine log what arrived before the leave completed.
	time.Sleep(300 * time.Millisecond)
	h.Close()
	select {
	case <-evDone:
	case <-time.After(2 * time.Second):
	}
	return lw.write(chaos.Record{Type: chaos.TypeEnd, Reason: chaos.EndStop}, true)
}
