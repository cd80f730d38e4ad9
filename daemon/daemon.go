package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/totem-gcs/totem/cpg"
	"github.com/totem-gcs/totem/ipc"
	"github.com/totem-gcs/totem/rrp"
	"github.com/totem-gcs/totem/totem"
)

// Version is reported by totemctl status.
const Version = "0.1.0"

// maxBatch bounds how many inputs (network batches, IPC requests) the
// loop takes before it drains Ready.
const maxBatch = 256

// Daemon is one totemd instance: an event loop that owns the Totem engine
// and the CPG service, the network transport, and the IPC server. Several
// daemons may run in one process (each with its own socket, ports and
// state directory).
type Daemon struct {
	cfg    Config
	nodeID totem.NodeID
	log    *slog.Logger

	node  engine
	cpg   groupService
	net   network
	netIn <-chan []rrp.Received
	state *stateStore
	srv   *ipcServer
	ipcIn chan loopInput

	conns map[cpg.ConnID]*ipcConn
	// blocked lists the connections owed an EventReady (see unblockSenders).
	blocked []*ipcConn

	// Counters owned by the loop.
	persistErrors, sendErrors, stepErrors uint64
	// pauseAfter is the gap between the loop's ticks that the engine
	// counts as a pause of this process (half the token timeout).
	pauseAfter time.Duration

	stopped chan struct{}
	runOnce sync.Once
}

// Start resolves the node ID, opens the state directory, the transport and
// the IPC socket, and returns a daemon ready to Run. Cancelling Run's
// context releases everything; Close releases a daemon that never ran.
func Start(cfg Config, log *slog.Logger) (*Daemon, error) {
	if log == nil {
		log = slog.Default()
	}
	if ps := CheckConfig(&cfg, nil, LocalAddrs()); len(ps) > 0 {
		return nil, ps
	}
	id, err := cfg.ResolveNodeID(LocalAddrs())
	if err != nil {
		return nil, err
	}
	cfg.NodeID = id
	log = log.With("node", id)
	d := &Daemon{cfg: cfg, nodeID: totem.NodeID(id), log: log, conns: map[cpg.ConnID]*ipcConn{}, stopped: make(chan struct{})}
	if d.state, err = openState(cfg.StateDir); err != nil {
		return nil, err
	}
	ecfg, err := cfg.EngineConfig(id)
	if err != nil {
		return nil, err
	}
	ecfg.RingSeq = d.state.RingSeq()
	d.pauseAfter = ecfg.RuntimeToken() / 2
	maxMsg, err := d.openEngines(ecfg)
	if err != nil {
		return nil, err
	}
	if err := d.listen(maxMsg); err != nil {
		d.net.Close()
		return nil, err
	}
	log.Info("totemd starting", "version", Version, "socket", cfg.IPC.Socket, "ring_seq", ecfg.RingSeq,
		"token", ecfg.RuntimeToken(), "consensus", ecfg.Consensus, "nodes", len(cfg.Nodes), "gomaxprocs", runtime.GOMAXPROCS(0))
	return d, nil
}

// listen opens the IPC socket; clients may send up to maxMsg bytes.
func (d *Daemon) listen(maxMsg int) error {
	cfg := &d.cfg
	ln, err := listenUnix(cfg.IPC.Socket)
	if err != nil {
		return fmt.Errorf("ipc socket: %w", err)
	}
	d.ipcIn = make(chan loopInput, 1024)
	d.srv = &ipcServer{
		log:    d.log,
		ln:     ln,
		policy: AccessPolicy{OwnerUID: uint32(os.Geteuid()), UIDs: cfg.IPC.AllowUIDs, GIDs: cfg.IPC.AllowGIDs},
		nodeID: uint32(d.nodeID),
		maxMsg: maxMsg,
		qMsgs:  cfg.IPC.QueueMessages,
		qBytes: cfg.IPC.QueueBytes,
		in:     d.ipcIn,
		conns:  map[uint64]*ipcConn{},
		// The loop calls flushClients after every round.
		loopWrites: true,
	}
	return nil
}

// NodeID returns the node's ID.
func (d *Daemon) NodeID() totem.NodeID { return d.nodeID }

// Run runs the event loop until ctx is done, then leaves the ring
// gracefully (peers see the leave at once), disconnects clients and
// releases the socket and the transport. It returns nil after a clean
// shutdown.
func (d *Daemon) Run(ctx context.Context) error {
	var err error
	d.runOnce.Do(func() {
		d.srv.wg.Add(1)
		go d.srv.serve()
		err = d.loop(ctx)
		close(d.stopped)
	})
	return err
}

// Close releases the socket and the transport of a daemon whose Run was
// never called; after Run it does nothing (cancel Run's context instead).
func (d *Daemon) Close() error {
	d.runOnce.Do(func() {
		d.srv.closing.Store(true)
		d.srv.ln.Close()
		d.net.Close()
		close(d.stopped)
	})
	return nil
}

func (d *Daemon) loop(ctx context.Context) (err error) {
	start := time.Now()
	now := func() time.Duration { return time.Since(start) }
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("event loop panic: %v", r)
			d.log.Error("event loop panic", "panic", r)
			d.shutdown(now, false)
		}
	}()
	ticked := now()
	d.node.Tick(ticked)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		deadline := d.drain()
		d.srv.flushClients()
		wait := deadline - now()
		if wait < 0 {
			wait = 0
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			d.shutdown(now, true)
			return nil
		case batch := <-d.netIn:
			d.stepFrames(batch)
			for i := 0; i < maxBatch; i++ {
				select {
				case more := <-d.netIn:
					d.stepFrames(more)
					continue
				default:
				}
				break
			}
		case in := <-d.ipcIn:
			// An input may carry many requests: the budget counts
			// requests, so that a flood of them does not hold up a
			// token waiting in netIn.
			spent := d.handleInput(in)
			for spent < maxBatch {
				select {
				case more := <-d.ipcIn:
					spent += d.handleInput(more)
					continue
				default:
				}
				break
			}
		case <-timer.C:
		}
		t := now()
		if gap := t - ticked; gap > d.pauseAfter {
			// As Corosync's "Process pause detected": the engine gives
			// the token a grace period, and the log says why a ring
			// may re-form.
			d.log.Warn("process pause detected: totemd did not run for over half the token timeout (CPU starvation? see sched_rr)",
				"ms", gap.Milliseconds(), "token_ms", (2 * d.pauseAfter).Milliseconds())
		}
		d.node.Tick(t)
		ticked = t
	}
}

func (d *Daemon) stepFrames(batch []rrp.Received) {
	for _, f := range batch {
		if err := d.node.Step(f.Frame); err != nil {
			d.stepErrors++
			d.log.Debug("frame dropped by engine", "from", f.From, "link", f.Link, "err", err)
		}
	}
}

// drain hands the engine's output to the network, the state file and the
// CPG service until the engine has nothing more, then dispatches the CPG
// events to clients. It returns the engine's next deadline.
func (d *Daemon) drain() time.Duration {
	var deadline time.Duration
	for first := true; first || d.node.HasReady(); first = false {
		rd := d.node.Ready()
		deadline = rd.Deadline
		if rd.RingSeq != 0 {
			if err := d.state.Save(rd.RingSeq); err != nil {
				d.persistErrors++
				d.log.Error("cannot persist the ring sequence", "seq", rd.RingSeq, "err", err)
			}
		}
		if err := d.net.SendBatch(rrpFrames(rd.Frames)); err != nil {
			d.sendErrors++
			d.log.Debug("send", "err", err)
		}
		for _, dl := range rd.Deliveries {
			if c := dl.Config; c != nil && c.Kind == totem.Regular {
				d.log.Info("ring installed", "ring", c.Ring.String(), "members", c.Members.String(), "joined", c.Joined.String(), "left", c.Left.String())
			}
			d.cpg.Deliver(dl)
		}
		d.cpg.Flush()
	}
	d.dispatch(d.cpg.Events())
	d.unblockSenders()
	return deadline
}

// unblockSenders sends EventReady to the connections whose sends were
// refused, once a send would be accepted again.
func (d *Daemon) unblockSenders() {
	if len(d.blocked) == 0 || !d.cpg.SendReady() {
		return
	}
	k := 0
	for _, c := range d.blocked {
		switch {
		case c.isClosed():
		case c.congested():
			d.blocked[k] = c
			k++
			continue
		default:
			c.sendEvent(&ipc.Event{Type: ipc.EventReady})
		}
		c.sendBlocked = false
	}
	clear(d.blocked[k:])
	d.blocked = d.blocked[:k]
}

func (d *Daemon) dispatch(evs []cpg.Event) {
	// A small message is encoded into each recipient's own buffer. A
	// large one is written from where it lies (cpg hands every recipient
	// the same Data, a slice of the Totem payload) between a head and a
	// tail encoded once for all its recipients.
	var last cpg.Deliver
	var lastHead, lastTail []byte
	for _, ev := range evs {
		switch ev := ev.(type) {
		case cpg.Deliver:
			c := d.conns[ev.Conn]
			if c == nil {
				continue
			}
			e := ipc.Event{Type: ipc.EventDeliver, Group: ev.Group, NodeID: uint32(ev.Sender), PID: ev.Pid,
				Guarantee: uint8(ev.Guarantee), Data: ev.Data}
			if len(ev.Data) <= sharedFrameMin {
				c.sendEvent(&e)
				continue
			}
			if lastHead == nil || !sameDelivery(&last, &ev) {
				last = ev
				lastHead, lastTail = ipc.AppendEventFrameSplit(make([]byte, 0, len(ev.Group)+64), &e)
			}
			c.sendFrame(lastHead, ev.Data, lastTail)
		case cpg.ConfChg:
			if c := d.conns[ev.Conn]; c != nil {
				c.sendEvent(&ipc.Event{
					Type: ipc.EventConfchg, Group: ev.Group,
					Members: members(ev.Members), Joined: members(ev.Joined), Left: members(ev.Left),
					Transitional: ev.Transitional,
					Ring:         ipc.Ring{Rep: uint32(ev.Ring.Rep), Seq: ev.Ring.Seq},
				})
			}
		case cpg.Undelivered:
			if c := d.conns[ev.Conn]; c != nil {
				c.sendEvent(&ipc.Event{Type: ipc.EventUndelivered, Group: ev.Group, PID: ev.Pid, Data: ev.Data})
			}
		case cpg.RingChange:
			var f []byte
			for _, c := range d.conns {
				if !c.ringEvents {
					continue
				}
				if f == nil {
					nodes := make([]uint32, len(ev.Members))
					for i, m := range ev.Members {
						nodes[i] = uint32(m)
					}
					f = ipc.AppendEventFrame(nil, &ipc.Event{
						Type: ipc.EventRing, Ring: ipc.Ring{Rep: uint32(ev.Ring.Rep), Seq: ev.Ring.Seq}, Nodes: nodes,
					})
				}
				c.sendFrame(f)
			}
		}
	}
}

// sharedFrameMin: deliveries above this size are written from the
// payload itself, around a head and a tail shared by the local recipients;
// smaller ones are copied into each recipient's own buffer (no
// allocation).
const sharedFrameMin = 4096

// sameDelivery reports whether a and b are one message to two recipients.
func sameDelivery(a, b *cpg.Deliver) bool {
	return a.Group == b.Group && a.Sender == b.Sender && a.Pid == b.Pid && a.Guarantee == b.Guarantee &&
		len(a.Data) == len(b.Data) && (len(a.Data) == 0 || &a.Data[0] == &b.Data[0])
}

func members(ms []cpg.Member) []ipc.Member {
	out := make([]ipc.Member, len(ms))
	for i, m := range ms {
		out[i] = ipc.Member{NodeID: uint32(m.Node), PID: m.Pid, Reason: ipc.Reason(m.Reason)}
	}
	return out
}

// handleInput applies one input from the IPC side and returns how many
// requests it carried (at least 1, for the loop's budget).
func (d *Daemon) handleInput(in loopInput) int {
	id := cpg.ConnID(in.conn.id)
	switch in.kind {
	case inputOpen:
		d.conns[id] = in.conn
	case inputGone:
		if _, ok := d.conns[id]; ok {
			delete(d.conns, id)
			d.cpg.ConnGone(id)
		}
	case inputRequests:
		if _, ok := d.conns[id]; !ok {
			return 1
		}
		for i := range in.reqs {
			req := &in.reqs[i]
			rep := d.handleRequest(in.conn, req)
			rep.ID = req.ID
			in.conn.sendReply(rep)
		}
	}
	return max(len(in.reqs), 1)
}

func (d *Daemon) handleRequest(c *ipcConn, req *ipc.Request) *ipc.Reply {
	id := cpg.ConnID(c.id)
	pid := uint32(c.peer.PID)
	switch req.Op {
	case ipc.OpJoin:
		return replyErr(d.cpg.Join(id, pid, req.Group))
	case ipc.OpLeave:
		return replyErr(d.cpg.Leave(id, pid, req.Group))
	case ipc.OpSend:
		if len(req.Data) > d.srv.maxMsg {
			return &ipc.Reply{Code: ipc.TooBig, Error: fmt.Sprintf("message of %d bytes exceeds the limit of %d bytes", len(req.Data), d.srv.maxMsg)}
		}
		var rep *ipc.Reply
		if c.congested() {
			rep = &ipc.Reply{Code: ipc.TryAgain, Error: "read your deliveries: your queue at the daemon is more than half full"}
		} else {
			rep = replyErr(d.cpg.Send(id, pid, req.Group, req.Data, totem.Guarantee(req.Guarantee)))
		}
		if rep.Code == ipc.TryAgain && c.flowEvents && !c.sendBlocked {
			c.sendBlocked = true
			d.blocked = append(d.blocked, c)
		}
		return rep
	case ipc.OpMembers:
		if err := ipc.ValidGroupName(req.Group); err != nil {
			return &ipc.Reply{Code: ipc.Invalid, Error: err.Error()}
		}
		return &ipc.Reply{Members: members(d.cpg.Members(req.Group))}
	case ipc.OpGroups:
		names := d.cpg.Groups()
		sort.Strings(names)
		gs := make([]ipc.GroupInfo, 0, len(names))
		for _, g := range names {
			gs = append(gs, ipc.GroupInfo{Name: g, Members: members(d.cpg.Members(g))})
		}
		return &ipc.Reply{Groups: gs}
	case ipc.OpStatus:
		st := d.status()
		return &ipc.Reply{Status: &st}
	case ipc.OpStats:
		return &ipc.Reply{Stats: d.stats()}
	case ipc.OpLinks:
		return &ipc.Reply{Links: d.links()}
	case ipc.OpSetKeys:
		if c.peer.UID != 0 && c.peer.UID != d.srv.policy.OwnerUID {
			return &ipc.Reply{Code: ipc.Denied, Error: fmt.Sprintf("changing keys needs root or uid %d", d.srv.policy.OwnerUID)}
		}
		send, err := rrp.ReadKey(req.KeyFile)
		if err != nil {
			return &ipc.Reply{Code: ipc.Invalid, Error: err.Error()}
		}
		var accept [][]byte
		for _, p := range req.AcceptKeys {
			k, err := rrp.ReadKey(p)
			if err != nil {
				return &ipc.Reply{Code: ipc.Invalid, Error: err.Error()}
			}
			accept = append(accept, k)
		}
		if err := d.net.SetKeys(send, accept...); err != nil {
			return &ipc.Reply{Code: ipc.Invalid, Error: err.Error()}
		}
		d.log.Warn("cluster keys changed", "send", req.KeyFile, "accept", req.AcceptKeys, "by_uid", c.peer.UID)
		return &ipc.Reply{}
	case ipc.OpLinkFault:
		if c.peer.UID != 0 && c.peer.UID != d.srv.policy.OwnerUID {
			return &ipc.Reply{Code: ipc.Denied, Error: fmt.Sprintf("injecting link faults needs root or uid %d", d.srv.policy.OwnerUID)}
		}
		var f rrp.Fault
		if lf := req.Fault; lf != nil {
			f = rrp.Fault{Drop: lf.Drop, Delay: time.Duration(lf.Delay), Duplicate: lf.Duplicate, Cut: lf.Cut}
		}
		if err := d.net.SetFault(req.Link, f); err != nil {
			return &ipc.Reply{Code: ipc.Invalid, Error: err.Error()}
		}
		d.log.Warn("link fault injected", "link", req.Link, "cut", f.Cut, "drop", f.Drop, "delay", f.Delay, "duplicate", f.Duplicate)
		return &ipc.Reply{}
	}
	return &ipc.Reply{Code: ipc.Invalid, Error: fmt.Sprintf("unknown operation %d", req.Op)}
}

// replyErr maps a CPG or Totem error to a reply.
func replyErr(err error) *ipc.Reply {
	if err == nil {
		return &ipc.Reply{}
	}
	code := ipc.Internal
	switch {
	case errors.Is(err, cpg.ErrTryAgain), errors.Is(err, totem.ErrBackpressure):
		code = ipc.TryAgain
	case errors.Is(err, cpg.ErrTooBig), errors.Is(err, totem.ErrTooBig):
		code = ipc.TooBig
	case errors.Is(err, cpg.ErrNotMember):
		code = ipc.NotJoined
	case errors.Is(err, cpg.ErrExist):
		code = ipc.Exists
	case errors.Is(err, cpg.ErrBadGroupName), errors.Is(err, cpg.ErrBadGuarantee), errors.Is(err, cpg.ErrBadPid):
		code = ipc.Invalid
	case errors.Is(err, cpg.ErrNoSpace):
		code = ipc.TryAgain
	case errors.Is(err, totem.ErrStopped):
		code = ipc.ShuttingDown
	}
	return &ipc.Reply{Code: code, Error: err.Error()}
}

func (d *Daemon) status() ipc.Status {
	s := d.node.Status()
	st := ipc.Status{
		NodeID:      uint32(d.nodeID),
		ClusterName: d.cfg.ClusterName,
		State:       s.State.String(),
		Ring:        ipc.Ring{Rep: uint32(s.Ring.Rep), Seq: s.Ring.Seq},
		Links:       d.links(),
		Clients:     len(d.conns),
		Version:     Version,
	}
	for _, m := range s.Members {
		st.Members = append(st.Members, uint32(m))
	}
	return st
}

func (d *Daemon) links() []ipc.Link {
	ls := d.net.Links()
	out := make([]ipc.Link, len(ls))
	for i, l := range ls {
		out[i] = ipc.Link{NodeID: uint32(l.Node), Link: l.Link, Addr: l.Addr, State: l.State, Counters: l.Counters}
	}
	return out
}

// stats gathers every counter under Corosync-like dotted names.
func (d *Daemon) stats() map[string]uint64 {
	m := map[string]uint64{}
	// Field names in snake case are Corosync's stats.srp keys
	// (OrfTokenTx: srp.orf_token_tx).
	addFields(m, "srp.", d.node.Stats())
	addFields(m, "cpg.", d.cpg.Stats())
	for k, v := range d.net.Counters() {
		m["net."+k] = v
	}
	m["ipc.clients"] = uint64(len(d.conns))
	m["ipc.accepted"] = d.srv.accepted.Load()
	m["ipc.denied"] = d.srv.denied.Load()
	m["ipc.disconnected_slow"] = d.srv.dropped.Load()
	m["ipc.bad_frames"] = d.srv.badFrame.Load()
	m["daemon.persist_errors"] = d.persistErrors
	m["daemon.send_errors"] = d.sendErrors
	m["daemon.step_errors"] = d.stepErrors
	return m
}

// shutdown stops the IPC server, leaves the ring (when graceful) and sends
// the leave frames before closing the transport.
func (d *Daemon) shutdown(now func() time.Duration, graceful bool) {
	d.srv.close("totemd is shutting down")
	if graceful {
		d.node.Leave()
		d.node.Tick(now())
		for first := true; first || d.node.HasReady(); first = false {
			rd := d.node.Ready()
			if rd.RingSeq != 0 {
				d.state.Save(rd.RingSeq)
			}
			d.net.SendBatch(rrpFrames(rd.Frames))
		}
		d.log.Info("left the ring")
	}
	// Let the readers of departing clients finish.
	done := make(chan struct{})
	go func() { d.srv.wg.Wait(); close(done) }()
	for {
		select {
		case <-d.ipcIn:
			continue
		case <-done:
		case <-time.After(5 * time.Second):
			d.log.Warn("ipc clients did not finish in time")
		}
		break
	}
	d.net.Close()
}

// addFields adds every uint64 field of the struct v to m, named prefix
// plus the field name in snake case (ProposalsRefused: proposals_refused).
func addFields(m map[string]uint64, prefix string, v any) {
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		if f := rv.Field(i); f.Kind() == reflect.Uint64 {
			m[prefix+snake(rt.Field(i).Name)] = f.Uint()
		}
	}
}

func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
