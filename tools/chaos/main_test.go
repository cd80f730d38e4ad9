package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/totem-gcs/totem/chaos"
)

// writeLog writes one process log as the agent does.
func writeLog(t *testing.T, dir string, self chaos.Member, recs ...chaos.Record) {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.Encode(chaos.Record{Type: chaos.TypeSelf, Group: "g", NodeID: self.NodeID, PID: self.PID})
	for _, r := range recs {
		enc.Encode(r)
	}
	name := filepath.Join(dir, "g-"+strings.ReplaceAll(chaos.ProcID{Group: "g", NodeID: self.NodeID, PID: self.PID}.String(), "/", "-")+".jsonl")
	if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckCommand(t *testing.T) {
	a := chaos.Member{NodeID: 1, PID: 10}
	b := chaos.Member{NodeID: 2, PID: 20}
	msg := chaos.Payload{Seed: 5, NodeID: 1, PID: 10, Counter: 1, Guarantee: "safe", Size: 64}.Encode()
	both := chaos.Record{Type: chaos.TypeConfChg, Group: "g", Members: []chaos.Member{a, b}, Joined: []chaos.Member{b}}
	deliver := chaos.Record{Type: chaos.TypeDeliver, Group: "g", NodeID: 1, PID: 10, Guarantee: "safe", Data: msg}
	end := chaos.Record{Type: chaos.TypeEnd, Reason: chaos.EndStop}

	dir := t.TempDir()
	writeLog(t, dir, a,
		chaos.Record{Type: chaos.TypeConfChg, Group: "g", Members: []chaos.Member{a}, Joined: []chaos.Member{a}},
		both, chaos.Record{Type: chaos.TypeSent, Counter: 1}, deliver, end)
	writeLog(t, dir, b, both, deliver, end)
	var out, errb bytes.Buffer
	if code := runCheck([]string{dir, "--seed", "5"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d on a correct run: %s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "seed=5 processes=2 messages=1 deliveries=2 views=2 faults=0 violations=0") {
		t.Errorf("summary: %q", out.String())
	}

	// b never gets the message though it stayed with a to the end.
	bad := t.TempDir()
	writeLog(t, bad, a,
		chaos.Record{Type: chaos.TypeConfChg, Group: "g", Members: []chaos.Member{a}, Joined: []chaos.Member{a}},
		both, chaos.Record{Type: chaos.TypeSent, Counter: 1}, deliver, end)
	writeLog(t, bad, b, both, end)
	out.Reset()
	if code := runCheck([]string{bad}, &out, &errb); code != 1 {
		t.Fatalf("exit %d on a run with a lost message, want 1: %s", code, out.String())
	}
	for _, want := range []string{"violation lost", "same-set=1", "lost=1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q: %s", want, out.String())
		}
	}

	// Unreadable input is an error (2), never a pass.
	if code := runCheck([]string{t.TempDir()}, &out, &errb); code != 2 {
		t.Errorf("exit %d for a directory without logs, want 2", code)
	}
}

func TestSoakFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runSoak([]string{"--nodes", "1", "--loopback"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--nodes") {
		t.Errorf("--nodes 1: exit %d, %q", code, errb.String())
	}
	if code := runSoak([]string{"--tolerate", "bogus", "--loopback"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "not a violation kind") {
		t.Errorf("--tolerate bogus: exit %d, %q", code, errb.String())
	}
	if code := runSoak([]string{"--bogus"}, &out, &errb); code != 2 {
		t.Errorf("unknown flag: exit %d", code)
	}
}

// The schedule depends on the seed alone.
func TestScheduleIsSeeded(t *testing.T) {
	draw := func(seed int64, loopback bool) []string {
		p := newPlanner(seed, 5, 2, 20, loopback)
		var out []string
		for range 200 {
			st := p.next()
			out = append(out, fmt.Sprintf("%v pause %v", st, st.Pause))
		}
		return out
	}
	a, b, c := draw(7, false), draw(7, false), draw(8, false)
	if !slices.Equal(a, b) {
		t.Fatal("two schedules of seed 7 differ")
	}
	if slices.Equal(a, c) {
		t.Fatal("seeds 7 and 8 gave the same schedule")
	}
	seen := map[string]bool{}
	for _, s := range a {
		seen[strings.Fields(s)[0]] = true
	}
	for _, k := range []string{"kill", "restart", "cut", "loss", "partition", "flap"} {
		if !seen[k] {
			t.Errorf("no %q fault in 200 steps: %v", k, seen)
		}
	}
	for _, s := range draw(7, true) {
		for _, k := range []string{"partition", "flap", "cut link"} {
			if strings.HasPrefix(s, k) {
				t.Errorf("loopback schedule has a namespace-only fault: %s", s)
			}
		}
	}
	// Partitions split the nodes: a non-empty side of at most half.
	p := newPlanner(1, 5, 2, 20, false)
	for range 500 {
		if st := p.next(); st.Kind == "partition" && (len(st.Side) == 0 || len(st.Side) > 2) {
			t.Fatalf("partition side %v of 5 nodes", st.Side)
		}
	}
}
