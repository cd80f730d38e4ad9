package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progress writes the running status to stderr: on a terminal one line
// rewritten in place, otherwise one line per tick.
type progress struct {
	w     io.Writer
	tty   bool
	quiet bool

	mu      sync.Mutex
	pending bool // a rewritable line is on screen
}

func newProgress(w *os.File, quiet bool) *progress {
	tty := false
	if fi, err := w.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		tty = true
	}
	return &progress{w: w, tty: tty, quiet: quiet}
}

// line shows a status line (rewritten on a terminal).
func (p *progress) line(s string) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", s)
		p.pending = true
		return
	}
	fmt.Fprintln(p.w, s)
}

// endLine keeps the current status line and moves on.
func (p *progress) endLine() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending {
		fmt.Fprintln(p.w)
		p.pending = false
	}
}

// note prints an informational line (unless quiet).
func (p *progress) note(format string, args ...any) {
	if p.quiet {
		return
	}
	p.endLine()
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// warn prints a warning, even when quiet.
func (p *progress) warn(format string, args ...any) {
	p.endLine()
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "cpgbench: warning: "+format+"\n", args...)
}

// every shows status() every interval until the returned stop is called;
// stop shows it a last time (status(true)) and is idempotent.
func (p *progress) every(interval time.Duration, status func(final bool) string) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.line(status(false))
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-exited
			p.line(status(true))
			p.endLine()
		})
	}
}
