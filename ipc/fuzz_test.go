package ipc

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadFrame feeds arbitrary bytes to the frame reader and the request
// decoder, as a hostile client would: they must fail with an error (never
// panic, never allocate past the limit), and whatever decodes must encode
// and decode back to the same request.
func FuzzReadFrame(f *testing.F) {
	for _, r := range []Request{
		{ID: 1, Op: OpJoin, Group: "g"},
		{ID: 2, Op: OpSend, Group: "g", Guarantee: Safe, Data: []byte("hello")},
		{ID: 3, Op: OpLinkFault, Link: 1, Fault: &LinkFault{Drop: 0.5, Cut: true}},
		{ID: 4, Op: OpSetKeys, KeyFile: "/k", AcceptKeys: []string{"/a"}},
	} {
		frame, err := Encode(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
	}
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	const limit = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		payload, err := ReadFrame(bytes.NewReader(data), limit)
		if err != nil {
			var tb *FrameTooBigError
			if !errors.As(err, &tb) && !errors.Is(err, ErrEmptyFrame) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(payload) > limit {
			t.Fatalf("payload of %d bytes past the limit", len(payload))
		}
		var req Request
		if Decode(payload, &req) != nil {
			return
		}
		again, err := Encode(req)
		if err != nil {
			t.Fatalf("decoded request does not encode: %+v: %v", req, err)
		}
		var back Request
		if err := Decode(again[HeaderSize:], &back); err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		// Compare the encodings: a NaN (a fault rate) is not equal to
		// itself, but it must come back as the same bytes.
		if twice, err := Encode(back); err != nil || !bytes.Equal(twice, again) {
			t.Fatalf("round trip:\n%+v\n%+v", req, back)
		}
	})
}

// FuzzDecodeServerMsg feeds arbitrary payloads to the client's decoder of
// what the daemon sends: errors, never panics.
func FuzzDecodeServerMsg(f *testing.F) {
	for _, m := range []ServerMsg{
		{Kind: KindWelcome, Welcome: &Welcome{}},
		{Kind: KindEvent, Event: &Event{Type: EventConfchg, Group: "g", Members: []Member{{NodeID: 1, PID: 2}},
			Left: []Member{{NodeID: 3, PID: 4, Reason: ReasonProcDown}}, Ring: Ring{Rep: 1, Seq: 8}, Nodes: []uint32{1, 3}}},
		{Kind: KindEvent, Event: &Event{Type: EventDeliver, Group: "g", NodeID: 1, PID: 2, Data: []byte("x")}},
		{Kind: KindBye, Bye: "too slow"},
	} {
		frame, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame[HeaderSize:])
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var m ServerMsg
		_ = Decode(payload, &m)
	})
}
