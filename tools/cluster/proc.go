package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// readPID returns the recorded pid of node n's totemd, or 0.
func readPID(n *NodeInfo) int {
	b, err := os.ReadFile(n.PIDFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// alive reports whether pid is a live process (not a zombie) running
// node n's config: a recycled pid does not count.
func alive(n *NodeInfo, pid int) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		if st := stat[i+2]; st == 'Z' || st == 'X' {
			return false
		}
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return bytes.Contains(cmdline, []byte(n.Config))
}

// runningPID returns the pid of node n's totemd when it runs, else 0.
func runningPID(n *NodeInfo) int {
	if pid := readPID(n); alive(n, pid) {
		return pid
	}
	return 0
}

// startNode starts node n's totemd detached (own session, output to its
// log) and waits until its socket accepts connections or it dies.
func startNode(s *State, n *NodeInfo, wait time.Duration) (int, error) {
	if pid := runningPID(n); pid != 0 {
		return pid, fmt.Errorf("node %d already runs (pid %d)", n.ID, pid)
	}
	logf, err := os.OpenFile(n.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- cluster: starting node %d at %s ---\n", n.ID, time.Now().UTC().Format(time.RFC3339Nano))
	os.Remove(n.Socket) // a stale socket of a killed daemon
	args := []string{s.Totemd, "--config", n.Config}
	if s.Mode == modeNetns {
		args = append([]string{"ip", "netns", "exec", n.Namespace}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = n.Dir
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start node %d: %v", n.ID, err)
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(n.PIDFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		cmd.Process.Kill()
		return 0, err
	}
	// Reap it if it dies while we wait; otherwise leave it to init.
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(wait)
	for {
		select {
		case <-exited:
			return 0, fmt.Errorf("node %d's totemd exited at once; the end of %s:\n%s", n.ID, n.Log, tail(n.Log, 15))
		default:
		}
		if socketUp(n.Socket) {
			return pid, nil
		}
		if time.Now().After(deadline) {
			return pid, fmt.Errorf("node %d's totemd (pid %d) runs but its socket %s did not appear within %v; see %s", n.ID, pid, n.Socket, wait, n.Log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// socketUp reports whether path is a socket.
func socketUp(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

// errNotRunning: the node's totemd is not running.
var errNotRunning = errors.New("not running")

// stopNode sends sig to node n's totemd and waits until it is gone; after
// SIGTERM it falls back to SIGKILL when grace runs out. It returns
// errNotRunning when there was nothing to stop.
func stopNode(n *NodeInfo, sig syscall.Signal, grace time.Duration) error {
	pid := runningPID(n)
	if pid == 0 {
		os.Remove(n.PIDFile)
		return errNotRunning
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal node %d (pid %d): %v", n.ID, pid, err)
	}
	deadline := time.Now().Add(grace)
	for alive(n, pid) {
		if time.Now().After(deadline) {
			if sig == syscall.SIGKILL {
				return fmt.Errorf("node %d (pid %d) still alive after SIGKILL", n.ID, pid)
			}
			fmt.Fprintf(os.Stderr, "cluster: node %d (pid %d) did not stop within %v of %v; killing it\n", n.ID, pid, grace, sig)
			sig, grace = syscall.SIGKILL, 5*time.Second
			syscall.Kill(pid, sig)
			deadline = time.Now().Add(grace)
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.Remove(n.PIDFile)
	return nil
}

// tail returns the last lines of a file.
func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return "  " + strings.Join(ls, "\n  ")
}
