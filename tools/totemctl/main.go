// Command totemctl is the admin and scripting tool of totemd: status,
// links, groups, members and counters, the cluster key, and a CPG client
// that listens to and sends to a group.
//
// Run "totemctl --help" for the commands and the exit codes scripts can
// rely on.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/totem-gcs/totem/client"
	"github.com/totem-gcs/totem/ipc"
	"github.com/totem-gcs/totem/rrp"
)

// Exit codes.
const (
	exitOK           = 0
	exitError        = 1
	exitNotConnected = 2
)

const usage = `Usage: totemctl [--socket PATH] [--timeout D] COMMAND [ARGS] [--json]

Commands:
  status                 this node: node ID, state, ring ID, ring members, link states
  links                  every link to every node, with counters
  groups                 every process group of the cluster and its members
  members GROUP          the members of GROUP (node ID and pid)
  stats                  the daemon's counters (srp.*, cpg.*, net.*, ipc.*)
  keygen [PATH]          write a new cluster key (default /etc/totemd/authkey, mode 0400)
  key set SEND [ACCEPT...]
                         send with the key file SEND and accept it and the ACCEPT keys
                         (absolute paths, read by totemd). Rotate without a restart: on
                         every node "key set OLD NEW", then on every node "key set NEW OLD",
                         then on every node "key set NEW"; then install NEW as the keyfile
  link N cut|restore     tests: cut link N of this node (all traffic, both ways) or clear its faults
  link N fault [--drop P] [--delay D] [--duplicate P]
                         tests: drop/duplicate datagrams sent on link N with probability P,
                         or delay them (root or totemd's own user only)
  cpg listen GROUP       join GROUP and print every delivery and configuration change
                         until interrupted (SIGINT/SIGTERM: leave, print the change that
                         removes it, exit 0)
  cpg send GROUP [--safe] [--count N] [--size B] [DATA]
                         join GROUP, send DATA (or each line of standard input, or N
                         generated messages of B bytes), wait until every message sent
                         has been delivered back, leave and exit 0

Read commands take --json for machine-readable output. "cpg listen --json" prints one
object per line:
  {"type":"deliver","group":G,"nodeid":N,"pid":P,"guarantee":"agreed"|"safe","data":BASE64}
  {"type":"confchg","group":G,"members":[{"nodeid":N,"pid":P}],"joined":[{"nodeid":N,"pid":P,"reason":R}],"left":[...]}
where R is join, leave, nodedown, nodeup or procdown. A confchg also has
"ring_id":"REP.SEQ", the ring whose configuration the view belongs to (two views
with the same members are one view only if their ring_id is the same), and, for a
transitional configuration (the ring broke; members of nodes that are gone left),
"transitional":true.

Exit codes:
  0  success
  1  error: bad usage, a request refused by the daemon, a failed send or key write
  2  not connected: totemd is unreachable or the connection was lost; for "status"
     also: this node is not part of an operational ring

Global flags:
`

type options struct {
	socket  string
	timeout time.Duration
	json    bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// exitErr carries an exit code with a message.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string { return e.err.Error() }

func fail(code int, format string, args ...any) error {
	return &exitErr{code: code, err: fmt.Errorf(format, args...)}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("totemctl", pflag.ContinueOnError)
	fs.SetInterspersed(true)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.socket, "socket", "", "totemd socket (default $"+ipc.SocketEnv+" or "+ipc.DefaultSocket+")")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for the daemon (cpg send: for progress)")
	fs.BoolVar(&o.json, "json", false, "machine-readable output")
	safe := fs.Bool("safe", false, "cpg send: safe delivery (default agreed)")
	count := fs.Int("count", 0, "cpg send: number of messages to send")
	size := fs.Int("size", 0, "cpg send: size of each generated message in bytes")
	var lf client.LinkFault
	fs.Float64Var(&lf.Drop, "drop", 0, "link fault: probability of dropping a datagram sent")
	fs.DurationVar(&lf.Delay, "delay", 0, "link fault: delay of every datagram sent")
	fs.Float64Var(&lf.Duplicate, "duplicate", 0, "link fault: probability of sending a datagram twice")
	fs.Usage = func() { fmt.Fprint(stderr, usage, fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "totemctl: %v\n", err)
		return exitError
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	cmd, cargs := rest[0], rest[1:]
	switch cmd {
	case "status":
		err = withArgs(cargs, 0, func() error { return cmdStatus(ctx, o, stdout) })
	case "links":
		err = withArgs(cargs, 0, func() error { return cmdLinks(ctx, o, stdout) })
	case "groups":
		err = withArgs(cargs, 0, func() error { return cmdGroups(ctx, o, stdout) })
	case "members":
		err = withArgs(cargs, 1, func() error { return cmdMembers(ctx, o, cargs[0], stdout) })
	case "stats":
		err = withArgs(cargs, 0, func() error { return cmdStats(ctx, o, stdout) })
	case "keygen":
		path := "/etc/totemd/authkey"
		if len(cargs) > 1 {
			err = fail(exitError, "keygen takes at most one path")
			break
		}
		if len(cargs) == 1 {
			path = cargs[0]
		}
		err = cmdKeygen(path, stdout)
	case "link":
		err = cmdLink(ctx, o, cargs, lf, stdout)
	case "key":
		if len(cargs) < 2 || cargs[0] != "set" {
			err = fail(exitError, "usage: totemctl key set SEND [ACCEPT...]")
			break
		}
		err = cmdKeySet(ctx, o, cargs[1], cargs[2:], stdout)
	case "cpg":
		if len(cargs) < 2 {
			err = fail(exitError, "usage: totemctl cpg listen GROUP | cpg send GROUP [DATA]")
			break
		}
		switch cargs[0] {
		case "listen":
			err = withArgs(cargs[1:], 1, func() error { return cmdListen(ctx, o, cargs[1], stdout) })
		case "send":
			if len(cargs) > 3 {
				err = fail(exitError, "cpg send takes GROUP and at most one DATA argument")
				break
			}
			g := client.Agreed
			if *safe {
				g = client.Safe
			}
			var data *string
			if len(cargs) == 3 {
				data = &cargs[2]
			}
			err = cmdSend(ctx, o, cargs[1], g, data, *count, *size, stdin, stdout)
		default:
			err = fail(exitError, "unknown cpg command %q (listen or send)", cargs[0])
		}
	default:
		err = fail(exitError, "unknown command %q (see totemctl --help)", cmd)
	}
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "totemctl: %v\n", err)
	var ee *exitErr
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(err, client.ErrDisconnected) {
		return exitNotConnected
	}
	return exitError
}

func withArgs(args []string, n int, f func() error) error {
	if len(args) != n {
		return fail(exitError, "expected %d argument(s), got %d (see totemctl --help)", n, len(args))
	}
	return f()
}

func connect(ctx context.Context, o options) (*client.Handle, error) {
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	h, err := client.Connect(cctx, client.Options{Socket: o.socket, Name: "totemctl"})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fail(exitNotConnected, "totemd did not answer within %v", o.timeout)
		}
		return nil, err
	}
	return h, nil
}

// request runs one read request with the timeout.
func request[T any](ctx context.Context, o options, f func(context.Context, *client.Handle) (T, error)) (T, error) {
	var zero T
	h, err := connect(ctx, o)
	if err != nil {
		return zero, err
	}
	defer h.Close()
	rctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	v, err := f(rctx, h)
	if errors.Is(err, context.DeadlineExceeded) {
		return zero, fail(exitNotConnected, "totemd did not answer within %v", o.timeout)
	}
	return v, err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// JSON shapes of the read commands.
type jsonMember struct {
	NodeID uint32 `json:"nodeid"`
	PID    uint32 `json:"pid"`
}

type jsonLink struct {
	NodeID   uint32            `json:"nodeid"`
	Link     int               `json:"link"`
	Addr     string            `json:"addr"`
	State    string            `json:"state"`
	Counters map[string]uint64 `json:"counters,omitempty"`
}

type jsonStatus struct {
	NodeID      uint32     `json:"nodeid"`
	ClusterName string     `json:"cluster_name"`
	State       string     `json:"state"`
	RingID      string     `json:"ring_id"`
	RingRep     uint32     `json:"ring_rep"`
	RingSeq     uint64     `json:"ring_seq"`
	Members     []uint32   `json:"members"`
	Links       []jsonLink `json:"links"`
	Clients     int        `json:"clients"`
	Version     string     `json:"version"`
}

func toJSONLinks(ls []client.Link, counters bool) []jsonLink {
	out := make([]jsonLink, 0, len(ls))
	for _, l := range ls {
		jl := jsonLink{NodeID: l.NodeID, Link: l.Link, Addr: l.Addr, State: l.State}
		if counters {
			jl.Counters = l.Counters
		}
		out = append(out, jl)
	}
	return out
}

func cmdStatus(ctx context.Context, o options, w io.Writer) error {
	st, err := request(ctx, o, func(ctx context.Context, h *client.Handle) (client.Status, error) { return h.Status(ctx) })
	if err != nil {
		return err
	}
	if o.json {
		js := jsonStatus{NodeID: st.NodeID, ClusterName: st.ClusterName, State: st.State, RingID: st.Ring.String(),
			RingRep: st.Ring.Rep, RingSeq: st.Ring.Seq, Members: st.Members, Links: toJSONLinks(st.Links, false),
			Clients: st.Clients, Version: st.Version}
		if js.Members == nil {
			js.Members = []uint32{}
		}
		if err := printJSON(w, js); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "Node ID:   %d\n", st.NodeID)
		if st.ClusterName != "" {
			fmt.Fprintf(w, "Cluster:   %s\n", st.ClusterName)
		}
		fmt.Fprintf(w, "State:     %s\n", st.State)
		fmt.Fprintf(w, "Ring ID:   %s\n", st.Ring)
		fmt.Fprintf(w, "Members:   %s\n", joinIDs(st.Members))
		fmt.Fprintf(w, "Clients:   %d\n", st.Clients)
		fmt.Fprintf(w, "Links:\n")
		printLinks(w, st.Links)
	}
	if st.State != "operational" {
		return fail(exitNotConnected, "node %d is not in an operational ring (state %s)", st.NodeID, st.State)
	}
	return nil
}

func joinIDs(ids []uint32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, " ")
}

func printLinks(w io.Writer, ls []client.Link) {
	for _, l := range ls {
		node := fmt.Sprint(l.NodeID)
		if l.State == "local" {
			node = "local"
		}
		fmt.Fprintf(w, "  link %d  node %-5s  %-22s  %s\n", l.Link, node, l.Addr, l.State)
	}
}

func cmdLinks(ctx context.Context, o options, w io.Writer) error {
	ls, err := request(ctx, o, func(ctx context.Context, h *client.Handle) ([]client.Link, error) { return h.Links(ctx) })
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(w, toJSONLinks(ls, true))
	}
	printLinks(w, ls)
	return nil
}

func membersJSON(ms []client.Member) []jsonMember {
	out := make([]jsonMember, 0, len(ms))
	for _, m := range ms {
		out = append(out, jsonMember{NodeID: uint32(m.NodeID), PID: m.PID})
	}
	return out
}

func cmdGroups(ctx context.Context, o options, w io.Writer) error {
	gs, err := request(ctx, o, func(ctx context.Context, h *client.Handle) ([]client.Group, error) { return h.Groups(ctx) })
	if err != nil {
		return err
	}
	if o.json {
		type jsonGroup struct {
			Name    string       `json:"name"`
			Members []jsonMember `json:"members"`
		}
		out := make([]jsonGroup, 0, len(gs))
		for _, g := range gs {
			out = append(out, jsonGroup{Name: g.Name, Members: membersJSON(g.Members)})
		}
		return printJSON(w, out)
	}
	fmt.Fprintln(w, "Group Name             PID         Node ID")
	for _, g := range gs {
		fmt.Fprintf(w, "%s\n", g.Name)
		for _, m := range g.Members {
			fmt.Fprintf(w, "                   %10d  %10d\n", m.PID, m.NodeID)
		}
	}
	return nil
}

func cmdMembers(ctx context.Context, o options, group string, w io.Writer) error {
	ms, err := request(ctx, o, func(ctx context.Context, h *client.Handle) ([]client.Member, error) { return h.Members(ctx, group) })
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(w, membersJSON(ms))
	}
	for _, m := range ms {
		fmt.Fprintf(w, "nodeid %d pid %d\n", m.NodeID, m.PID)
	}
	return nil
}

func cmdStats(ctx context.Context, o options, w io.Writer) error {
	st, err := request(ctx, o, func(ctx context.Context, h *client.Handle) (map[string]uint64, error) { return h.Stats(ctx) })
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(w, st)
	}
	keys := make([]string, 0, len(st))
	for k := range st {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s = %d\n", k, st[k])
	}
	return nil
}

func cmdKeygen(path string, w io.Writer) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fail(exitError, "%v", err)
	}
	if err := rrp.GenerateKey(path); err != nil {
		return fail(exitError, "%v", err)
	}
	fmt.Fprintf(w, "wrote a new cluster key to %s (mode 0400); copy it to every node\n", path)
	return nil
}

func cmdLink(ctx context.Context, o options, args []string, lf client.LinkFault, w io.Writer) error {
	if len(args) != 2 {
		return fail(exitError, "usage: totemctl link N cut|restore|fault")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 {
		return fail(exitError, "bad link number %q", args[0])
	}
	switch args[1] {
	case "cut":
		lf = client.LinkFault{Cut: true}
	case "restore":
		lf = client.LinkFault{}
	case "fault":
	default:
		return fail(exitError, "unknown link action %q (cut, restore or fault)", args[1])
	}
	_, err = request(ctx, o, func(ctx context.Context, h *client.Handle) (struct{}, error) {
		return struct{}{}, h.SetLinkFault(ctx, n, lf)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "link %d: %s\n", n, args[1])
	return nil
}

func cmdKeySet(ctx context.Context, o options, send string, accept []string, w io.Writer) error {
	abs := func(p string) (string, error) { return filepath.Abs(p) }
	send, err := abs(send)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	for i := range accept {
		if accept[i], err = abs(accept[i]); err != nil {
			return fail(exitError, "%v", err)
		}
	}
	_, err = request(ctx, o, func(ctx context.Context, h *client.Handle) (struct{}, error) {
		return struct{}{}, h.SetKeys(ctx, send, accept...)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "sending with %s", send)
	if len(accept) > 0 {
		fmt.Fprintf(w, ", also accepting %s", strings.Join(accept, " "))
	}
	fmt.Fprintln(w)
	return nil
}
