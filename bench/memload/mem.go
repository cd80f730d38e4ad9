package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// procMem is what /proc/PID/status says about a process's resident memory.
type procMem struct {
	HWM uint64 // VmHWM: peak resident set size, bytes
	RSS uint64 // VmRSS: resident set size now, bytes
}

// readProcMem reads VmHWM and VmRSS of process pid.
func readProcMem(pid int) (procMem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{}, err
	}
	var m procMem
	var found int
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "VmHWM" && name != "VmRSS") {
			continue
		}
		f := strings.Fields(val) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("/proc/%d/status: cannot read %q", pid, line)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("/proc/%d/status: cannot read %q", pid, line)
		}
		if name == "VmHWM" {
			m.HWM = kb << 10
		} else {
			m.RSS = kb << 10
		}
		found++
	}
	if found != 2 {
		return m, fmt.Errorf("/proc/%d/status has no VmHWM and VmRSS", pid)
	}
	return m, nil
}

// resetHWM resets the peak resident set size of process pid to its
// current size (Linux 4.0 and later), so that VmHWM covers one scenario.
func resetHWM(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// heapStats are the Go runtime's heap figures of a daemon.
type heapStats struct {
	HeapAlloc uint64 // bytes of allocated heap objects (live and not yet swept)
	HeapInuse uint64 // bytes in in-use spans
	HeapSys   uint64 // heap bytes obtained from the OS
}

// readHeap reads the runtime.MemStats that a daemon's pprof server prints
// at the end of /debug/pprof/heap?debug=1. With gc the daemon collects
// garbage first, so that HeapAlloc is the live heap.
func readHeap(ctx context.Context, addr string, gc bool) (heapStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := "http://" + addr + "/debug/pprof/heap?debug=1"
	if gc {
		url += "&gc=1"
	}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return heapStats{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return heapStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return heapStats{}, fmt.Errorf("pprof %s: %s", addr, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return heapStats{}, err
	}
	return parseHeap(body)
}

// parseHeap extracts heapStats from a debug=1 heap profile.
func parseHeap(body []byte) (heapStats, error) {
	var h heapStats
	fields := map[string]*uint64{"HeapAlloc": &h.HeapAlloc, "HeapInuse": &h.HeapInuse, "HeapSys": &h.HeapSys}
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "# ")
		if !ok {
			continue
		}
		name, val, ok := strings.Cut(line, " = ")
		dst := fields[name]
		if !ok || dst == nil {
			continue
		}
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return h, fmt.Errorf("heap profile: cannot read %q", line)
		}
		*dst = v
		found++
	}
	if found != len(fields) {
		return h, fmt.Errorf("heap profile: no runtime.MemStats section")
	}
	return h, nil
}

// NodeMem is one daemon's memory during one scenario. Sizes are bytes.
type NodeMem struct {
	Node int `json:"node"`
	// PeakRSS is VmHWM at the scenario's end: the peak resident set since
	// the scenario began (since the daemon started when HWMReset is false).
	PeakRSS uint64 `json:"peak_rss"`
	// HWMReset tells whether the peak was reset at the scenario's start.
	HWMReset bool `json:"hwm_reset"`
	// EndRSS is VmRSS at the scenario's end, after its clients closed.
	EndRSS uint64 `json:"end_rss"`
	// PeakHeapInuse is the largest Go HeapInuse sampled during the
	// scenario; EndHeapLive is HeapAlloc after a GC at its end (after
	// EndRSS was read): the live heap. Zero: not read.
	PeakHeapInuse uint64 `json:"peak_heap_inuse"`
	EndHeapLive   uint64 `json:"end_heap_live"`
	// HeapSamples counts the heap samples taken.
	HeapSamples int `json:"heap_samples"`
}

// sampler watches the daemons' memory during one scenario.
type sampler struct {
	c      *cluster
	mu     sync.Mutex
	peak   []uint64 // largest HeapInuse seen, per node
	n      []int    // heap samples per node
	reset  []bool
	cancel context.CancelFunc
	done   chan struct{}
}

// startSampler resets the daemons' peak RSS and samples their Go heap
// every interval until finish.
func startSampler(ctx context.Context, c *cluster, interval time.Duration) *sampler {
	s := &sampler{c: c, peak: make([]uint64, len(c.procs)), n: make([]int, len(c.procs)),
		reset: make([]bool, len(c.procs)), done: make(chan struct{})}
	for i, p := range c.procs {
		s.reset[i] = resetHWM(p.cmd.Process.Pid) == nil
	}
	ctx, s.cancel = context.WithCancel(ctx)
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.sample(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) sample(ctx context.Context) {
	for i, p := range s.c.procs {
		h, err := readHeap(ctx, p.pprof, false)
		if err != nil {
			continue
		}
		s.mu.Lock()
		s.peak[i] = max(s.peak[i], h.HeapInuse)
		s.n[i]++
		s.mu.Unlock()
	}
}

// finish stops sampling and returns each daemon's figures.
func (s *sampler) finish(ctx context.Context) ([]NodeMem, error) {
	s.cancel()
	<-s.done
	s.sample(ctx)
	out := make([]NodeMem, len(s.c.procs))
	for i, p := range s.c.procs {
		m, err := readProcMem(p.cmd.Process.Pid)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", p.id, err)
		}
		nm := NodeMem{Node: p.id, PeakRSS: m.HWM, HWMReset: s.reset[i], EndRSS: m.RSS,
			PeakHeapInuse: s.peak[i], HeapSamples: s.n[i]}
		if h, err := readHeap(ctx, p.pprof, true); err == nil {
			nm.EndHeapLive = h.HeapAlloc
		}
		out[i] = nm
	}
	return out, nil
}
