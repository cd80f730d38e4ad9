package ipc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
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

// TestReadFrames: one call returns the first frame and every further one
// received in full, in order; a partial frame waits for the next call;
// bad lengths are reported when they come first.
func TestReadFrames(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i := range 50 {
		body := bytes.Repeat([]byte{byte(i)}, 1+i*37)
		stream = binary.BigEndian.AppendUint32(stream, uint32(len(body)))
		stream = append(stream, body...)
		want = append(want, body)
	}
	// Half a frame at the end.
	stream = binary.BigEndian.AppendUint32(stream, 100)
	stream = append(stream, 1, 2, 3)
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		a.Write(stream)
		a.Write(bytes.Repeat([]byte{9}, 97))
		a.Write([]byte{0, 0, 0, 0})
		a.Close()
	}()
	c := NewConn(b, 1<<20)
	var got [][]byte
	for len(got) < len(want) {
		fs, err := c.ReadFrames(nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fs...)
	}
	if !reflect.DeepEqual(got[:len(want)], want) {
		t.Fatal("frames differ")
	}
	rest := got[len(want):]
	if len(rest) == 0 {
		fs, err := c.ReadFrames(nil)
		if err != nil {
			t.Fatal(err)
		}
		rest = fs
	}
	if len(rest) != 1 || len(rest[0]) != 100 || rest[0][0] != 1 || rest[0][99] != 9 {
		t.Fatalf("the frame completed later: %d frames", len(rest))
	}
	if _, err := c.ReadFrames(nil); !errors.Is(err, ErrEmptyFrame) {
		t.Fatalf("empty frame: %v", err)
	}
	d, e := net.Pipe()
	go func() {
		d.Write(binary.BigEndian.AppendUint32(nil, 5000))
		d.Close()
	}()
	var tb *FrameTooBigError
	if _, err := NewConn(e, 4096).ReadFrames(nil); !errors.As(err, &tb) || tb.Size != 5000 {
		t.Fatalf("too big: %v", err)
	}
}

// TestReadFrameShared: frames that fit in the read buffer come without a
// copy, larger ones whole; the stream stays in step.
func TestReadFrameShared(t *testing.T) {
	sizes := []int{10, 70000, 3, 65532, 65533, 1}
	var stream []byte
	for i, n := range sizes {
		stream = binary.BigEndian.AppendUint32(stream, uint32(n))
		stream = append(stream, bytes.Repeat([]byte{byte(i + 1)}, n)...)
	}
	c := NewConn(pipeWith(stream), 1<<20)
	for i, n := range sizes {
		p, err := c.ReadFrameShared()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != n || p[0] != byte(i+1) || p[n-1] != byte(i+1) {
			t.Fatalf("frame %d: %d bytes", i, len(p))
		}
	}
	if _, err := c.ReadFrameShared(); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
}

// pipeWith returns a connection that yields data, then EOF.
func pipeWith(data []byte) net.Conn {
	a, b := net.Pipe()
	go func() {
		a.Write(data)
		a.Close()
	}()
	return b
}
