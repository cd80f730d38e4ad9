package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/totem-gcs/totem/client"
	"github.com/totem-gcs/totem/rrp"
)

// clusterConfig says how to start the daemons.
type clusterConfig struct {
	totemd        string // path of the totemd binary
	dir           string // work directory: key, configs, sockets, logs
	nodes         int
	profile       string // totemd --profile
	token         time.Duration
	ipcQueueBytes int // 0: the daemon's default
	ipcQueueMsgs  int // 0: the daemon's default
	maxQueueBytes int // 0: the daemon's default
}

// daemonProc is one running totemd.
type daemonProc struct {
	id     int
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	err    error         // its exit status, once done is closed
	socket string
	pprof  string // host:port of its pprof server
	log    string // path of its log file (JSON lines)
}

// cluster is a local cluster of totemd processes on 127.0.0.1.
type cluster struct {
	cfg   clusterConfig
	procs []*daemonProc
}

// freePorts returns n distinct free ports on 127.0.0.1 of network
// ("udp4" or "tcp4"). They are closed before use, so another process
// could take one meanwhile; the daemon then fails to start and says so.
func freePorts(network string, n int) ([]int, error) {
	var ports []int
	var closers []func() error
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for len(ports) < n {
		switch network {
		case "udp4":
			c, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			closers = append(closers, c.Close)
			ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
		default:
			l, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			closers = append(closers, l.Close)
			ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		}
	}
	return ports, nil
}

// startCluster writes a key and starts cfg.nodes daemons. On error it
// stops whatever it started.
func startCluster(cfg clusterConfig) (*cluster, error) {
	c := &cluster{cfg: cfg}
	key := filepath.Join(cfg.dir, "authkey")
	if err := rrp.GenerateKey(key); err != nil {
		return nil, fmt.Errorf("cluster key: %w", err)
	}
	empty := filepath.Join(cfg.dir, "empty.toml")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		return nil, err
	}
	udp, err := freePorts("udp4", cfg.nodes)
	if err != nil {
		return nil, err
	}
	tcp, err := freePorts("tcp4", cfg.nodes)
	if err != nil {
		return nil, err
	}
	for id := 1; id <= cfg.nodes; id++ {
		nd := filepath.Join(cfg.dir, fmt.Sprintf("n%d", id))
		if err := os.MkdirAll(nd, 0o755); err != nil {
			c.stop()
			return nil, err
		}
		p := &daemonProc{
			id:     id,
			socket: filepath.Join(nd, "totemd.sock"),
			pprof:  fmt.Sprintf("127.0.0.1:%d", tcp[id-1]),
			log:    filepath.Join(nd, "totemd.log"),
			done:   make(chan struct{}),
		}
		args := []string{"--config", empty, "--nodeid", strconv.Itoa(id), "--keyfile", key,
			"--state-dir", nd, "--socket", p.socket, "--profile", cfg.profile,
			"--cluster-name", "memload", "--log-format", "json", "--log-level", "info",
			"--pprof", p.pprof}
		if cfg.token > 0 {
			args = append(args, "--token", cfg.token.String())
		}
		if cfg.ipcQueueBytes > 0 {
			args = append(args, "--ipc-queue-bytes", strconv.Itoa(cfg.ipcQueueBytes))
		}
		if cfg.ipcQueueMsgs > 0 {
			args = append(args, "--ipc-queue-messages", strconv.Itoa(cfg.ipcQueueMsgs))
		}
		if cfg.maxQueueBytes > 0 {
			args = append(args, "--max-queue-bytes", strconv.Itoa(cfg.maxQueueBytes))
		}
		for j, port := range udp {
			args = append(args, "--node", fmt.Sprintf("%d=127.0.0.1:%d", j+1, port))
		}
		logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			c.stop()
			return nil, err
		}
		p.cmd = exec.Command(cfg.totemd, args...)
		p.cmd.Stdout, p.cmd.Stderr = logf, logf
		p.cmd.Env = daemonEnv()
		// The daemons die with us even if we are killed.
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		err = p.cmd.Start()
		logf.Close()
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("start totemd %d: %w", id, err)
		}
		go func() {
			p.err = p.cmd.Wait()
			close(p.done)
		}()
		c.procs = append(c.procs, p)
	}
	return c, nil
}

// daemonEnv is our environment without the Go runtime's memory settings:
// the daemons run with the runtime's defaults, as a packaged totemd does.
func daemonEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	return env
}

// exited returns an error naming the first daemon that is no longer
// running, or nil.
func (c *cluster) exited() error {
	for _, p := range c.procs {
		select {
		case <-p.done:
			return fmt.Errorf("totemd %d exited: %v (log %s)", p.id, p.err, p.log)
		default:
		}
	}
	return nil
}

// members returns the node IDs 1..n.
func (c *cluster) members() []uint32 {
	m := make([]uint32, len(c.procs))
	for i := range m {
		m[i] = uint32(i + 1)
	}
	return m
}

// connect opens a client handle on node id (1-based), retrying while the
// daemon starts.
func (c *cluster) connect(ctx context.Context, id int, name string) (*client.Handle, error) {
	for {
		h, err := client.Connect(ctx, client.Options{Socket: c.procs[id-1].socket, Name: name})
		if err == nil {
			return h, nil
		}
		if xerr := c.exited(); xerr != nil {
			return nil, xerr
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to node %d: %w", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRing waits until every node is operational in a ring of all nodes
// and returns that ring.
func (c *cluster) waitRing(ctx context.Context) (client.Ring, error) {
	var ring client.Ring
	for _, p := range c.procs {
		h, err := c.connect(ctx, p.id, "memload-status")
		if err != nil {
			return ring, err
		}
		var last client.Status
		for {
			st, err := h.Status(ctx)
			if err == nil && st.State == "operational" && slices.Equal(st.Members, c.members()) {
				ring = st.Ring
				break
			}
			last = st
			if xerr := c.exited(); xerr != nil {
				h.Close()
				return ring, xerr
			}
			if ctx.Err() != nil {
				h.Close()
				return ring, fmt.Errorf("node %d did not join a ring of %v: last status %+v (%v)", p.id, c.members(), last, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		h.Close()
	}
	return ring, nil
}

// stats returns node id's counters.
func (c *cluster) stats(ctx context.Context, id int) (map[string]uint64, error) {
	h, err := c.connect(ctx, id, "memload-stats")
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return h.Stats(ctx)
}

// stop stops every daemon: SIGTERM, then SIGKILL after a grace period.
// It returns once all have exited.
func (c *cluster) stop() {
	for _, p := range c.procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range c.procs {
		select {
		case <-p.done:
		case <-time.After(time.Until(deadline)):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}
