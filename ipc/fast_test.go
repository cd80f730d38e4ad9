package ipc

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func sampleRequests() []Request {
	return []Request{
		{ID: 1, Op: OpJoin, Group: "g"},
		{ID: 2, Op: OpSend, Group: "g", Guarantee: Safe, Data: []byte("hello")},
		{ID: 3, Op: OpSend, Group: strings.Repeat("x", 128), Guarantee: Agreed, Data: []byte{}},
		{ID: math.MaxUint64, Op: OpSend, Group: "big", Guarantee: Agreed, Data: bytes.Repeat([]byte{7}, 70000)},
		{ID: 300, Op: OpSend, Group: "g", Guarantee: Agreed, Data: bytes.Repeat([]byte{1}, 300)},
		{ID: 4, Op: OpLinkFault, Link: 1, Fault: &LinkFault{Drop: 0.5, Cut: true}},
		{ID: 5, Op: OpLinkFault, Link: -1},
		{ID: 6, Op: OpSetKeys, KeyFile: "/k", AcceptKeys: []string{"/a", "/b"}},
		{ID: 7, Op: OpSetKeys, KeyFile: "/k", AcceptKeys: []string{}},
		{ID: 1 << 40, Op: OpStatus},
	}
}

func sampleServerMsgs() []ServerMsg {
	return []ServerMsg{
		{Kind: KindReply, Reply: &Reply{ID: 1}},
		{Kind: KindReply, Reply: &Reply{ID: 1 << 33, Code: TryAgain, Error: "read your deliveries"}},
		{Kind: KindReply, Reply: &Reply{ID: 9, Members: []Member{{NodeID: 1, PID: 2}}}},
		{Kind: KindReply, Reply: &Reply{ID: 9, Status: &Status{NodeID: 3, State: "operational"}}},
		{Kind: KindEvent, Event: &Event{Type: EventDeliver, Group: "g", NodeID: 2, PID: 1234, Guarantee: Agreed, Data: []byte("x")}},
		{Kind: KindEvent, Event: &Event{Type: EventDeliver, Group: "g", NodeID: math.MaxUint32, PID: 70000, Guarantee: Safe, Data: bytes.Repeat([]byte{3}, 66000)}},
		{Kind: KindEvent, Event: &Event{Type: EventConfchg, Group: "g", Members: []Member{{NodeID: 1, PID: 2}, {NodeID: 3, PID: 4}},
			Joined: []Member{{NodeID: 3, PID: 4, Reason: ReasonJoin}}, Left: []Member{{NodeID: 5, PID: 6, Reason: ReasonProcDown}}, Transitional: true}},
		{Kind: KindEvent, Event: &Event{Type: EventRing, Ring: Ring{Rep: 2, Seq: 1 << 40}, Nodes: []uint32{1, 2, 3}}},
		{Kind: KindEvent, Event: &Event{Type: EventUndelivered, Group: "g", PID: 5, Data: []byte("lost")}},
		{Kind: KindWelcome, Welcome: &Welcome{Version: Version, NodeID: 1, MaxMessage: 1 << 20}},
		{Kind: KindBye, Bye: "shutting down"},
	}
}

// TestFastRequestCodec: the fast encoder writes what the library decodes
// to the same request, and the fast decoder reads the library's frames to
// the same request.
func TestFastRequestCodec(t *testing.T) {
	for _, r := range sampleRequests() {
		f, err := AppendRequestFrame([]byte("prefix"), &r)
		if err != nil {
			t.Fatal(err)
		}
		f = f[len("prefix"):]
		var viaLib Request
		if err := Decode(f[HeaderSize:], &viaLib); err != nil {
			t.Fatalf("%+v: library cannot decode the fast frame: %v", r, err)
		}
		if !reflect.DeepEqual(viaLib, r) {
			t.Errorf("fast encode, library decode:\n got %+v\nwant %+v", viaLib, r)
		}
		lib, err := Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		var names StringCache
		for _, frame := range [][]byte{lib, f} {
			var got Request
			if err := DecodeRequest(frame[HeaderSize:], &got, &names); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, r) {
				t.Errorf("fast decode:\n got %+v\nwant %+v", got, r)
			}
		}
	}
}

// TestFastServerCodec is TestFastRequestCodec for the daemon's messages.
func TestFastServerCodec(t *testing.T) {
	for _, m := range sampleServerMsgs() {
		f, err := AppendServerFrame(nil, &m)
		if err != nil {
			t.Fatal(err)
		}
		lib, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		var viaLib ServerMsg
		if err := Decode(f[HeaderSize:], &viaLib); err != nil {
			t.Fatalf("%+v: library cannot decode the fast frame: %v", m, err)
		}
		if !reflect.DeepEqual(viaLib, m) {
			t.Errorf("fast encode, library decode:\n got %+v\nwant %+v", viaLib, m)
		}
		for _, frame := range [][]byte{lib, f} {
			var got ServerMsg
			if err := DecodeServerMsg(frame[HeaderSize:], &got, &StringCache{}); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("fast decode:\n got %+v %+v %+v\nwant %+v %+v %+v", got, got.Reply, got.Event, m, m.Reply, m.Event)
			}
		}
	}
}

// TestAppendEventFrameSplit: head, data and tail together are the frame
// AppendEventFrame writes, for every sample event and data size.
func TestAppendEventFrameSplit(t *testing.T) {
	for _, m := range sampleServerMsgs() {
		if m.Kind != KindEvent {
			continue
		}
		for _, data := range [][]byte{m.Event.Data, make([]byte, 300), make([]byte, 70000)} {
			e := *m.Event
			e.Data = data
			whole := AppendEventFrame([]byte("x"), &e)
			head, tail := AppendEventFrameSplit([]byte("x"), &e)
			joined := append(append(append([]byte{}, head...), data...), tail...)
			if !bytes.Equal(joined, whole) {
				t.Errorf("event %+v with %d bytes: split frame differs from the whole one", e.Type, len(data))
			}
		}
	}
}

// TestDecodeServerMsgReuse: decoding into a reply and an event given by
// the caller, frame after frame, gives what fresh values give.
func TestDecodeServerMsgReuse(t *testing.T) {
	var reply Reply
	var event Event
	var names StringCache
	for round := range 2 {
		for _, want := range sampleServerMsgs() {
			f, _ := AppendServerFrame(nil, &want)
			m := ServerMsg{Reply: &reply, Event: &event}
			if err := DecodeServerMsg(f[HeaderSize:], &m, &names); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, want) {
				t.Fatalf("round %d: got %+v %+v %+v, want %+v %+v %+v", round, m, m.Reply, m.Event, want, want.Reply, want.Event)
			}
		}
	}
}

// TestFastDecodeTruncated: every prefix of a valid frame is refused with
// an error, never a panic or a wrong message.
func TestFastDecodeTruncated(t *testing.T) {
	for _, r := range sampleRequests() {
		f, _ := AppendRequestFrame(nil, &r)
		p := f[HeaderSize:]
		if len(p) > 4096 {
			continue // every prefix of the large ones takes long
		}
		for i := range len(p) {
			var got Request
			if DecodeRequest(p[:i:i], &got, nil) == nil {
				t.Fatalf("%+v: prefix of %d/%d bytes decoded to %+v", r, i, len(p), got)
			}
		}
	}
	for _, m := range sampleServerMsgs() {
		f, _ := AppendServerFrame(nil, &m)
		p := f[HeaderSize:]
		if len(p) > 4096 {
			continue
		}
		for i := range len(p) {
			var got ServerMsg
			if DecodeServerMsg(p[:i:i], &got, nil) == nil {
				t.Fatalf("%+v: prefix of %d/%d bytes decoded to %+v", m, i, len(p), got)
			}
		}
	}
}

// TestFastIntegers: integers of every width and sign decode as the
// library decodes them.
func TestFastIntegers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		v := rng.Uint64() >> rng.IntN(64)
		b := appendUint(nil, v)
		c := cursor{p: b}
		got, ok := c.uint()
		if !ok || got != v || c.i != len(b) {
			t.Fatalf("uint %d: %d %v", v, got, ok)
		}
		s := -int64(v >> 1)
		b = appendInt(nil, s)
		var viaLib int64
		if err := Decode(b, &viaLib); err != nil || viaLib != s {
			t.Fatalf("int %d: library reads %d %v", s, viaLib, err)
		}
	}
}

// TestStringCache: equal names share one string, and a new name replaces
// the cached one.
func TestStringCache(t *testing.T) {
	var c StringCache
	a := c.get([]byte("alpha"))
	b := c.get([]byte("alpha"))
	if a != "alpha" || b != "alpha" || &[]byte(a)[0] == nil {
		t.Fatal(a, b)
	}
	if allocs := testing.AllocsPerRun(100, func() { c.get([]byte("alpha")) }); allocs != 0 {
		t.Errorf("cached name allocates %v times", allocs)
	}
	if got := c.get([]byte("beta")); got != "beta" {
		t.Fatal(got)
	}
}

// FuzzFastDecode: whatever the fast decoders accept, the library decodes
// to the same message.
func FuzzFastDecode(f *testing.F) {
	for _, r := range sampleRequests() {
		b, _ := AppendRequestFrame(nil, &r)
		f.Add(b[HeaderSize:])
	}
	for _, m := range sampleServerMsgs() {
		b, _ := AppendServerFrame(nil, &m)
		f.Add(b[HeaderSize:])
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var fast Request
		if decodeRequestFast(p, &fast, nil) {
			var lib Request
			if err := Decode(p, &lib); err != nil || !reflect.DeepEqual(fast, lib) {
				t.Fatalf("request: fast %+v, library %+v %v", fast, lib, err)
			}
		}
		var fm ServerMsg
		if decodeServerFast(p, &fm, nil) {
			var lm ServerMsg
			if err := Decode(p, &lm); err != nil || !reflect.DeepEqual(fm, lm) {
				t.Fatalf("server message: fast %+v, library %+v %v", fm, lm, err)
			}
		}
	})
}

func BenchmarkAppendServerFrameDeliver(b *testing.B) {
	m := &ServerMsg{Kind: KindEvent, Event: &Event{Type: EventDeliver, Group: "bench", NodeID: 2, PID: 1234, Guarantee: Agreed, Data: make([]byte, 100)}}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf, _ = AppendServerFrame(buf[:0], m)
	}
}

func BenchmarkDecodeServerMsgDeliver(b *testing.B) {
	f, _ := Encode(&ServerMsg{Kind: KindEvent, Event: &Event{Type: EventDeliver, Group: "bench", NodeID: 2, PID: 1234, Guarantee: Agreed, Data: make([]byte, 100)}})
	b.ReportAllocs()
	var names StringCache
	for b.Loop() {
		var m ServerMsg
		if err := DecodeServerMsg(f[HeaderSize:], &m, &names); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRequestSend(b *testing.B) {
	f, _ := AppendRequestFrame(nil, &Request{ID: 77, Op: OpSend, Group: "bench", Guarantee: Agreed, Data: make([]byte, 100)})
	b.ReportAllocs()
	var names StringCache
	for b.Loop() {
		var r Request
		if err := DecodeRequest(f[HeaderSize:], &r, &names); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFastCodecsKnowEveryField fails when a field is added to a message
// the fast codecs write or read: they must learn it (fast.go), or the
// field would be dropped on the data path.
func TestFastCodecsKnowEveryField(t *testing.T) {
	for typ, want := range map[reflect.Type][]string{
		reflect.TypeFor[Request]():   {"ID", "Op", "Group", "Guarantee", "Data", "Link", "Fault", "KeyFile", "AcceptKeys"},
		reflect.TypeFor[Reply]():     {"ID", "Code", "Error", "Members", "Groups", "Status", "Stats", "Links"},
		reflect.TypeFor[Event]():     {"Type", "Group", "NodeID", "PID", "Guarantee", "Data", "Members", "Joined", "Left", "Transitional", "Ring", "Nodes"},
		reflect.TypeFor[ServerMsg](): {"Kind", "Welcome", "Reply", "Event", "Bye"},
	} {
		var got []string
		for i := range typ.NumField() {
			got = append(got, typ.Field(i).Name)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s has fields %v; the fast codecs know %v", typ.Name(), got, want)
		}
	}
}
