package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func runTool(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

var summary = regexp.MustCompile(`^seeds=(\d+) violations=(\d+) delivered=(\d+) configs=(\d+)$`)

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestSummaryLine(t *testing.T) {
	code, out, _ := runTool(t, "--seeds", "2", "--start", "5", "--no-faults", "--chaos", "300ms")
	if code != 0 {
		t.Fatalf("exit %d; output:\n%s", code, out)
	}
	m := summary.FindStringSubmatch(lastLine(out))
	if m == nil {
		t.Fatalf("last line %q is not the summary", lastLine(out))
	}
	if m[1] != "2" || m[2] != "0" || m[3] == "0" || m[4] == "0" {
		t.Errorf("summary %q: want 2 seeds, 0 violations, some deliveries and configurations", m[0])
	}
}

func TestViolationsExitOneWithReplayCommands(t *testing.T) {
	code, out, _ := runTool(t, "--seeds", "3", "--break", "safe-early", "--chaos", "1s")
	if code != 1 {
		t.Fatalf("exit %d with a broken engine; output:\n%s", code, out)
	}
	m := summary.FindStringSubmatch(lastLine(out))
	if m == nil || m[2] == "0" {
		t.Fatalf("summary %q should count violations", lastLine(out))
	}
	replays := regexp.MustCompile(`replay: totemsim --seed (\d+) --break safe-early --chaos 1s --trace`).FindAllStringSubmatch(out, -1)
	fails := regexp.MustCompile(`(?m)^FAIL seed (\d+) `).FindAllStringSubmatch(out, -1)
	if len(replays) == 0 || len(replays) != len(fails) {
		t.Fatalf("%d failing seeds but %d replay commands:\n%s", len(fails), len(replays), out)
	}
	for i := range fails {
		if fails[i][1] != replays[i][1] {
			t.Errorf("failing seed %s has replay for seed %s", fails[i][1], replays[i][1])
		}
	}
}

func TestTraceOfOneSeed(t *testing.T) {
	code, out, _ := runTool(t, "--seed", "2", "--trace", "--nodes", "3", "--chaos", "300ms")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, lastLine(out))
	}
	for _, want := range []string{"seed 2: 3 nodes {", " start (ring seq on disk 0)", "send token ring", "install regular", "deliver m[", "CALM"} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q", want)
		}
	}
	if !summary.MatchString(lastLine(out)) {
		t.Errorf("trace does not end with the summary line: %q", lastLine(out))
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--seeds", "0"},
		{"--seeds", "2", "--seed", "3"},
		{"--seeds", "2", "--trace"},
		{"--seeds", "1", "--nodes", "17"},
		{"--seeds", "1", "--break", "everything"},
		{"--seeds", "1", "extra"},
		{"--no-such-flag"},
	} {
		if code, _, errOut := runTool(t, args...); code != 2 || errOut == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errOut)
		}
	}
}
