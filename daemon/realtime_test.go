//go:build linux

package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/totem-gcs/totem/client"
)

// totemd --sched-rr runs every thread under SCHED_RR (as root), including
// the threads the Go runtime starts later, and still serves clients; by
// default it is a normal process.
func TestSchedRR(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SCHED_RR needs root")
	}
	if testing.Short() {
		t.Skip("starts totemd")
	}
	totemd, ctl := buildBinaries(t)
	t.Run("on", func(t *testing.T) { checkSchedRR(t, totemd, ctl, true, "--sched-rr") })
	t.Run("default", func(t *testing.T) { checkSchedRR(t, totemd, ctl, false) })
}

// checkSchedRR starts totemd with args, sends through it, and checks the
// scheduling policy of every thread: SCHED_RR at RealtimePriority when rr.
func checkSchedRR(t *testing.T, totemd, ctl string, rr bool, args ...string) {
	dir := t.TempDir()
	key := filepath.Join(dir, "authkey")
	if out, err := exec.Command(ctl, "keygen", key).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "none.toml"), nil, 0o644)
	sock := filepath.Join(dir, "totemd.sock")
	port := freeUDPPorts(t, 1)[0]
	cmd := exec.Command(totemd, append([]string{"--config", filepath.Join(dir, "none.toml"), "--nodeid", "1", "--keyfile", key,
		"--state-dir", dir, "--socket", sock, "--profile", "fast", "--node", fmt.Sprintf("1=127.0.0.1:%d", port)}, args...)...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var h *client.Handle
	for {
		var err error
		if h, err = client.Connect(ctx, client.Options{Socket: sock}); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no socket: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer h.Close()
	if err := h.Join(ctx, "rt"); err != nil {
		t.Fatal(err)
	}
	if err := h.Send(ctx, "rt", []byte("x"), client.Agreed); err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", cmd.Process.Pid, task.Name()))
		if err != nil {
			continue // the thread exited
		}
		// Fields after the command name "(...)": policy is field 41 of
		// stat, the 39th after it.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		prio, _ := strconv.Atoi(fields[37])
		policy, _ := strconv.Atoi(fields[38])
		switch {
		case rr && (policy != 2 || prio != RealtimePriority):
			t.Errorf("thread %s: policy %d rt_priority %d, want SCHED_RR (2) at %d\n%s", task.Name(), policy, prio, RealtimePriority, logs.String())
		case !rr && policy != 0:
			t.Errorf("thread %s: policy %d, want SCHED_OTHER (0)\n%s", task.Name(), policy, logs.String())
		}
	}
	if got := strings.Contains(logs.String(), "running under SCHED_RR"); got != rr {
		t.Errorf("sched_rr line in the log: %v, want %v:\n%s", got, rr, logs.String())
	}
}
