package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/totem-gcs/totem/client"
)

// JSON lines of cpg listen (a contract: keep field names and order).
type jsonDeliver struct {
	Type      string `json:"type"`
	Group     string `json:"group"`
	NodeID    uint32 `json:"nodeid"`
	PID       uint32 `json:"pid"`
	Guarantee string `json:"guarantee"`
	Data      string `json:"data"`
}

type jsonChange struct {
	NodeID uint32 `json:"nodeid"`
	PID    uint32 `json:"pid"`
	Reason string `json:"reason"`
}

type jsonConfchg struct {
	Type    string       `json:"type"`
	Group   string       `json:"group"`
	Members []jsonMember `json:"members"`
	Joined  []jsonChange `json:"joined"`
	Left    []jsonChange `json:"left"`
	// Transitional is present (true) only on the view of a transitional
	// configuration.
	Transitional bool `json:"transitional,omitempty"`
	// RingID is the ring the view belongs to ("rep.seq", as in status).
	RingID string `json:"ring_id,omitempty"`
}

// ringID formats a ring for JSON; the zero ring (an older daemon) is "".
func ringID(r client.Ring) string {
	if r == (client.Ring{}) {
		return ""
	}
	return r.String()
}

func changes(ms []client.Member) []jsonChange {
	out := make([]jsonChange, 0, len(ms))
	for _, m := range ms {
		out = append(out, jsonChange{NodeID: uint32(m.NodeID), PID: m.PID, Reason: m.Reason.String()})
	}
	return out
}

// formatEvent renders one event as cpg listen prints it.
func formatEvent(ev client.Event, asJSON bool) string {
	switch ev := ev.(type) {
	case *client.Message:
		if asJSON {
			b, _ := json.Marshal(jsonDeliver{Type: "deliver", Group: ev.Group, NodeID: uint32(ev.NodeID), PID: ev.PID,
				Guarantee: ev.Guarantee.String(), Data: base64.StdEncoding.EncodeToString(ev.Data)})
			return string(b)
		}
		return fmt.Sprintf("deliver group=%s from=%d:%d %s %d bytes: %s", ev.Group, ev.NodeID, ev.PID, ev.Guarantee, len(ev.Data), strconv.Quote(string(ev.Data)))
	case *client.ConfChange:
		if asJSON {
			b, _ := json.Marshal(jsonConfchg{Type: "confchg", Group: ev.Group, Members: membersJSON(ev.Members),
				Joined: changes(ev.Joined), Left: changes(ev.Left), Transitional: ev.Transitional, RingID: ringID(ev.Ring)})
			return string(b)
		}
		kind := "confchg"
		if ev.Transitional {
			kind = "confchg (transitional)"
		}
		return fmt.Sprintf("%s group=%s members=%s joined=%s left=%s", kind, ev.Group, memberList(ev.Members, false), memberList(ev.Joined, true), memberList(ev.Left, true))
	}
	return ""
}

func memberList(ms []client.Member, reasons bool) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = m.String()
		if reasons {
			s[i] += "(" + m.Reason.String() + ")"
		}
	}
	return "[" + strings.Join(s, " ") + "]"
}

func cmdListen(ctx context.Context, o options, group string, w io.Writer) error {
	h, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer h.Close()
	jctx, cancel := context.WithTimeout(ctx, o.timeout)
	err = h.Join(jctx, group)
	cancel()
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	for {
		select {
		case ev, ok := <-h.Events():
			if !ok {
				return h.Err()
			}
			if line := formatEvent(ev, o.json); line != "" {
				fmt.Fprintln(bw, line)
			}
			// Flush when nothing else is waiting, so a reader sees every
			// event as it happens without a write per event under load.
			if len(h.Events()) == 0 {
				if err := bw.Flush(); err != nil {
					return fail(exitError, "writing output: %v", err)
				}
			}
		case <-ctx.Done():
			bw.Flush()
			lctx, cancel := context.WithTimeout(context.Background(), o.timeout)
			defer cancel()
			if err := h.Leave(lctx, group); err != nil {
				if errors.Is(err, client.ErrNotJoined) {
					return nil
				}
				return err
			}
			return printUntilLeft(lctx, h, group, o.json, bw)
		}
	}
}

// printUntilLeft prints events until the group's view no longer holds
// this process (its own leave, usually at once), so that the output ends
// with the view that removes it: every view that lists the process until
// then is printed, even if configuration changes delay the leave. It gives
// up quietly when ctx ends or the connection does.
func printUntilLeft(ctx context.Context, h *client.Handle, group string, asJSON bool, bw *bufio.Writer) error {
	defer bw.Flush()
	self := func(m client.Member) bool { return m.NodeID == h.NodeID() && m.PID == h.PID() }
	for {
		select {
		case ev, ok := <-h.Events():
			if !ok {
				return nil
			}
			if line := formatEvent(ev, asJSON); line != "" {
				fmt.Fprintln(bw, line)
			}
			if cc, ok := ev.(*client.ConfChange); ok && cc.Group == group && !slices.ContainsFunc(cc.Members, self) {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// messages returns the messages cpg send sends.
func messages(data *string, count, size int, stdin io.Reader) ([][]byte, error) {
	switch {
	case count < 0 || size < 0:
		return nil, fail(exitError, "--count and --size must not be negative")
	case data != nil:
		n := max(count, 1)
		out := make([][]byte, n)
		for i := range out {
			out[i] = []byte(*data)
		}
		return out, nil
	case count > 0 || size > 0:
		n := max(count, 1)
		if size == 0 {
			size = 64
		}
		out := make([][]byte, n)
		for i := range out {
			out[i] = generated(i, size)
		}
		return out, nil
	}
	var out [][]byte
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		return nil, fail(exitError, "reading standard input: %v", err)
	}
	return out, nil
}

// generated is message i of size bytes: its number, then filler.
func generated(i, size int) []byte {
	b := make([]byte, size)
	head := []byte(fmt.Sprintf("msg %d ", i))
	for j := range b {
		if j < len(head) {
			b[j] = head[j]
		} else {
			b[j] = 'a' + byte((i+j)%26)
		}
	}
	return b
}

func cmdSend(ctx context.Context, o options, group string, g client.Guarantee, data *string, count, size int, stdin io.Reader, w io.Writer) error {
	msgs, err := messages(data, count, size, stdin)
	if err != nil {
		return err
	}
	h, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer h.Close()
	for i, m := range msgs {
		if len(m) > h.MaxMessageSize() {
			return fail(exitError, "message %d is %d bytes, over the limit of %d bytes", i+1, len(m), h.MaxMessageSize())
		}
	}
	jctx, cancel := context.WithTimeout(ctx, o.timeout)
	err = h.Join(jctx, group)
	cancel()
	if err != nil {
		return err
	}
	// Our own messages come back in the order sent. One the cluster
	// discards (Undelivered, at its place in that order) is sent again.
	self := func(m *client.Message) bool {
		return m.Group == group && m.NodeID == h.NodeID() && m.PID == h.PID()
	}
	var (
		mu       sync.Mutex
		inflight [][]byte // sent and not yet back, in send order
		resent   int
	)
	back := make(chan error, 1)
	progress := make(chan struct{}, 1)
	resend := make(chan []byte, len(msgs)+1)
	popHead := func(data []byte, what string) error {
		mu.Lock()
		defer mu.Unlock()
		if len(inflight) == 0 || !bytes.Equal(inflight[0], data) {
			return fmt.Errorf("a message %s out of the order sent (or one never sent)", what)
		}
		inflight = inflight[1:]
		return nil
	}
	go func() {
		got := 0
		for ev := range h.Events() {
			switch ev := ev.(type) {
			case *client.Message:
				if !self(ev) {
					continue
				}
				if err := popHead(ev.Data, "came back"); err != nil {
					back <- err
					return
				}
				got++
				select {
				case progress <- struct{}{}:
				default:
				}
				if got == len(msgs) {
					back <- nil
					return
				}
			case *client.Undelivered:
				if ev.Group != group {
					continue
				}
				if err := popHead(ev.Data, "was discarded"); err != nil {
					back <- err
					return
				}
				resend <- ev.Data
			}
		}
		back <- h.Err()
	}()
	send := func(m []byte) error {
		mu.Lock()
		inflight = append(inflight, m)
		mu.Unlock()
		return h.Send(ctx, group, m, g)
	}
	if len(msgs) == 0 {
		back <- nil
	}
	for i, m := range msgs {
		if err := send(m); err != nil {
			return fmt.Errorf("sending message %d of %d: %w", i+1, len(msgs), err)
		}
	}
	timer := time.NewTimer(o.timeout)
	defer timer.Stop()
	for done := false; !done; {
		select {
		case err := <-back:
			if err != nil {
				return err
			}
			done = true
		case m := <-resend:
			resent++
			if err := send(m); err != nil {
				return fmt.Errorf("sending a discarded message again: %w", err)
			}
		case <-progress:
			timer.Reset(o.timeout)
		case <-timer.C:
			return fail(exitError, "sent %d messages, but they did not all come back within %v without progress", len(msgs), o.timeout)
		case <-ctx.Done():
			return fail(exitError, "interrupted before every message came back")
		}
	}
	lctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := h.Leave(lctx, group); err != nil {
		return err
	}
	if !o.json {
		fmt.Fprintf(w, "sent %d message(s) to %s (%s), all delivered", len(msgs), group, g)
		if resent > 0 {
			fmt.Fprintf(w, " (%d sent again after the cluster discarded them)", resent)
		}
		fmt.Fprintln(w)
	} else {
		b, _ := json.Marshal(map[string]any{"group": group, "sent": len(msgs), "delivered": len(msgs), "resent": resent, "guarantee": g.String()})
		fmt.Fprintln(w, string(b))
	}
	return nil
}
