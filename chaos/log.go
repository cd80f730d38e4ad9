package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Record types of a process log.
const (
	// TypeSelf is the first line: which process wrote the log.
	TypeSelf = "self"
	// TypeDeliver is a delivered message (the `totemctl cpg listen --json` form).
	TypeDeliver = "deliver"
	// TypeConfChg is a new view of the group (the `totemctl cpg listen --json` form).
	TypeConfChg = "confchg"
	// TypeSent is written, and reaches the file, before the message is handed to Send.
	TypeSent = "sent"
	// TypeSendFail says that Send returned an error for a counter.
	TypeSendFail = "sendfail"
	// TypeUndelivered says that the service discarded one of the process's
	// own messages (a sync cut short by a partition) and told it so: the
	// message need not come back.
	TypeUndelivered = "undelivered"
	// TypeEnd is the last line of a process that stopped on its own.
	TypeEnd = "end"
)

// EndStop is the reason of an end record written after a clean leave:
// only such processes count as survivors.
const EndStop = "stop"

// Member is one process in a view, as totemctl prints it.
type Member struct {
	NodeID uint32 `json:"nodeid"`
	PID    uint32 `json:"pid"`
	Reason string `json:"reason,omitempty"`
}

// Record is one line of a process log. Which fields are set depends on Type.
type Record struct {
	Type      string   `json:"type"`
	Group     string   `json:"group,omitempty"`
	NodeID    uint32   `json:"nodeid,omitempty"`
	PID       uint32   `json:"pid,omitempty"`
	Guarantee string   `json:"guarantee,omitempty"`
	Data      []byte   `json:"data,omitempty"`
	Members   []Member `json:"members,omitempty"`
	Joined    []Member `json:"joined,omitempty"`
	Left      []Member `json:"left,omitempty"`
	// Transitional marks the view of a transitional configuration.
	Transitional bool `json:"transitional,omitempty"`
	// RingID is the ring whose configuration the view belongs to
	// ("rep.seq"); empty in logs of daemons that do not report it.
	RingID  string `json:"ring_id,omitempty"`
	Counter uint64 `json:"counter,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Error   string `json:"error,omitempty"`
	Time    int64  `json:"t,omitempty"` // unix nanoseconds, informative
}

// ProcID names one process in one group: the (node, pid) the daemon
// reports, and the group.
type ProcID struct {
	Group  string
	NodeID uint32
	PID    uint32
}

// String formats the process as "group/node:pid".
func (p ProcID) String() string { return fmt.Sprintf("%s/%d:%d", p.Group, p.NodeID, p.PID) }

// Log is one process's log: its identity and its records after the self
// line, in order. Truncated is set when the last line was cut short (the
// process was killed while writing); that line is dropped.
type Log struct {
	Name      string // file name or other label, for messages
	Proc      ProcID
	Records   []Record
	Truncated bool
}

// ParseLog reads one process log. The first line must be a self record;
// every other line must be a known record of the same group. A last line
// without a newline that is not valid JSON is dropped (the writer was
// killed); any other bad line is an error, since a checker that skips what
// it cannot read could pass a broken run.
func ParseLog(name string, r io.Reader) (*Log, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	l := &Log{Name: name}
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && err == io.EOF {
			break
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		complete := bytes.HasSuffix(line, []byte("\n"))
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			if !complete {
				break
			}
			continue
		}
		var rec Record
		if jerr := json.Unmarshal(line, &rec); jerr != nil {
			if !complete {
				l.Truncated = true
				break
			}
			return nil, fmt.Errorf("%s:%d: %v", name, lineNo, jerr)
		}
		if lineNo == 1 {
			if rec.Type != TypeSelf {
				return nil, fmt.Errorf("%s:1: first record is %q, want %q naming the process", name, rec.Type, TypeSelf)
			}
			if rec.Group == "" || rec.PID == 0 {
				return nil, fmt.Errorf("%s:1: self record needs group and pid", name)
			}
			l.Proc = ProcID{Group: rec.Group, NodeID: rec.NodeID, PID: rec.PID}
		} else {
			switch rec.Type {
			case TypeDeliver, TypeConfChg:
				if rec.Group != l.Proc.Group {
					return nil, fmt.Errorf("%s:%d: %s of group %q in a log of group %q", name, lineNo, rec.Type, rec.Group, l.Proc.Group)
				}
			case TypeSent, TypeSendFail, TypeUndelivered, TypeEnd:
			default:
				return nil, fmt.Errorf("%s:%d: unknown record type %q", name, lineNo, rec.Type)
			}
			l.Records = append(l.Records, rec)
		}
		if err == io.EOF {
			break
		}
	}
	if l.Proc.PID == 0 {
		return nil, fmt.Errorf("%s: %w", name, ErrEmptyLog)
	}
	return l, nil
}

// ErrEmptyLog is returned by ParseLog for a log without a complete self
// record: its process was killed before it wrote one, so before it joined.
var ErrEmptyLog = errors.New("empty log (no complete self record)")

// ReadDir parses every *.jsonl file in dir, in name order, skipping empty
// logs (ErrEmptyLog).
func ReadDir(dir string) ([]*Log, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var logs []*Log
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			return nil, err
		}
		l, err := ParseLog(filepath.Base(n), f)
		f.Close()
		if errors.Is(err, ErrEmptyLog) {
			continue
		}
		if err != nil {
			return nil, err
		}
		logs = append(logs, l)
	}
	if len(logs) == 0 {
		return nil, fmt.Errorf("%s: no *.jsonl process logs", dir)
	}
	return logs, nil
}

// Payload is the content of every chaos message: who sent it, its
// per-sender counter, its guarantee, and filler up to Size bytes. The
// checker regenerates the filler, so a corrupted message is caught.
type Payload struct {
	Seed      int64
	NodeID    uint32
	PID       uint32
	Counter   uint64
	Guarantee string
	Size      int
}

const payloadTag = "chaos"

// Encode returns the message bytes: "chaos|seed|node|pid|counter|guarantee|"
// followed by filler to Size bytes (or none if the header is longer).
func (p Payload) Encode() []byte {
	head := fmt.Sprintf("%s|%d|%d|%d|%d|%s|", payloadTag, p.Seed, p.NodeID, p.PID, p.Counter, p.Guarantee)
	b := []byte(head)
	for i := len(head); i < p.Size; i++ {
		b = append(b, filler(p.Counter, i))
	}
	return b
}

func filler(counter uint64, i int) byte { return 'a' + byte((counter+uint64(i))%26) }

// ErrNotChaos is returned by DecodePayload for bytes that are not a chaos
// payload.
var ErrNotChaos = errors.New("not a chaos payload")

// DecodePayload parses and verifies a payload made by Encode.
func DecodePayload(b []byte) (Payload, error) {
	parts := strings.SplitN(string(b), "|", 7)
	if len(parts) != 7 || parts[0] != payloadTag {
		return Payload{}, ErrNotChaos
	}
	var p Payload
	var err error
	var n uint64
	if p.Seed, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
		return Payload{}, ErrNotChaos
	}
	if n, err = strconv.ParseUint(parts[2], 10, 32); err != nil {
		return Payload{}, ErrNotChaos
	}
	p.NodeID = uint32(n)
	if n, err = strconv.ParseUint(parts[3], 10, 32); err != nil {
		return Payload{}, ErrNotChaos
	}
	p.PID = uint32(n)
	if p.Counter, err = strconv.ParseUint(parts[4], 10, 64); err != nil {
		return Payload{}, ErrNotChaos
	}
	p.Guarantee = parts[5]
	p.Size = len(b)
	headLen := len(b) - len(parts[6])
	for i := headLen; i < len(b); i++ {
		if b[i] != filler(p.Counter, i) {
			return Payload{}, fmt.Errorf("%w: filler corrupted at byte %d", ErrNotChaos, i)
		}
	}
	return p, nil
}
