package ipc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
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
