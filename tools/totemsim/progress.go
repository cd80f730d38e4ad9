package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/totem-gcs/totem/sim"
)

// progress shows how far a batch of seeds got on stderr: one line
// rewritten in place on a terminal, a line every tenth of the batch
// otherwise (CI logs).
type progress struct {
	w                          io.Writer
	tty                        bool
	total, done_, failed, viol int
	start, last                time.Time
	nextMark                   int
}

func newProgress(w io.Writer, total int) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	now := time.Now()
	return &progress{w: w, tty: tty, total: total, start: now, nextMark: max(1, total/10)}
}

func (p *progress) update(r sim.Result) {
	p.done_++
	p.viol += r.Count
	if r.Failed() {
		p.failed++
	}
	if p.total == 1 {
		return
	}
	now := time.Now()
	switch {
	case p.tty && (now.Sub(p.last) > 200*time.Millisecond || p.done_ == p.total):
		p.last = now
		fmt.Fprintf(p.w, "\r%s", p.line(now))
	case !p.tty && p.done_ >= p.nextMark:
		p.nextMark += max(1, p.total/10)
		fmt.Fprintln(p.w, p.line(now))
	}
}

func (p *progress) line(now time.Time) string {
	return fmt.Sprintf("totemsim: %d/%d seeds, %d failed (%d violations), %.1fs",
		p.done_, p.total, p.failed, p.viol, now.Sub(p.start).Seconds())
}

func (p *progress) done() {
	if p.tty && p.total > 1 {
		fmt.Fprintln(p.w)
	}
}
