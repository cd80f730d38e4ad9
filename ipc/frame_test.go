package ipc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestFrameRoundTrip(t *testing.T) {
	req := Request{ID: 7, Op: OpSend, Group: "g", Guarantee: Safe, Data: []byte("hello")}
	f, err := Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint32(f); int(got) != len(f)-HeaderSize {
		t.Fatalf("length prefix %d, body %d", got, len(f)-HeaderSize)
	}
	p, err := ReadFrame(bytes.NewReader(f), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var back Request
	if err := Decode(p, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != 7 || back.Op != OpSend || back.Group != "g" || back.Guarantee != Safe || string(back.Data) != "hello" {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestReadFrameLimits(t *testing.T) {
	big := binary.BigEndian.AppendUint32(nil, 1000)
	_, err := ReadFrame(bytes.NewReader(big), 999)
	var tb *FrameTooBigError
	if !errors.As(err, &tb) || tb.Limit != 999 || tb.Size != 1000 {
		t.Fatalf("oversized frame: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 0}), 10); !errors.Is(err, ErrEmptyFrame) {
		t.Fatalf("empty frame: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 5, 1}), 10); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: %v", err)
	}
	if err := Decode([]byte{0xc1}, &Request{}); err == nil {
		t.Fatal("garbage decoded without error")
	}
}

func TestReasonWords(t *testing.T) {
	want := map[Reason]string{ReasonJoin: "join", ReasonLeave: "leave", ReasonNodeDown: "nodedown", ReasonNodeUp: "nodeup", ReasonProcDown: "procdown"}
	for r, w := range want {
		if r.String() != w {
			t.Errorf("%d: %q, want %q", r, r.String(), w)
		}
		if back, err := ParseReason(w); err != nil || back != r {
			t.Errorf("ParseReason(%q) = %v, %v", w, back, err)
		}
	}
}

func TestCodecRoundTrip(t *testing.T) {
	ev := &Event{Type: EventConfchg, Group: "g", Members: []Member{{NodeID: 1, PID: 2}, {NodeID: 3, PID: 4}},
		Joined: []Member{{NodeID: 3, PID: 4, Reason: ReasonNodeUp}}, Left: []Member{{NodeID: 5, PID: 6, Reason: ReasonProcDown}},
		Ring: Ring{Rep: 1, Seq: 1 << 40}, Nodes: []uint32{1, 3}, Transitional: true}
	f, err := Encode(&ServerMsg{Kind: KindEvent, Event: ev})
	if err != nil {
		t.Fatal(err)
	}
	var m ServerMsg
	if err := Decode(f[HeaderSize:], &m); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Event, ev) {
		t.Fatalf("event round trip:\n%+v\n%+v", m.Event, ev)
	}
	req := Request{ID: 9, Op: OpLinkFault, Link: 2, Fault: &LinkFault{Drop: 0.5, Cut: true}, KeyFile: "/k", AcceptKeys: []string{"/a", "/b"}}
	f, _ = Encode(req)
	var back Request
	if err := Decode(f[HeaderSize:], &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, req) {
		t.Fatalf("request round trip:\n%+v\n%+v", back, req)
	}
	// A short array is an error, not a panic.
	short, _ := msgpack.Marshal([]int{1, 2})
	if err := Decode(short, &back); err == nil {
		t.Fatal("short request decoded")
	}
}
