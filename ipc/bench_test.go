package ipc

import "testing"

func BenchmarkEncodeDeliver(b *testing.B) {
	m := &ServerMsg{Kind: KindEvent, Event: &Event{Type: EventDeliver, Group: "bench", NodeID: 2, PID: 1234, Guarantee: Agreed, Data: make([]byte, 100)}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeDeliver(b *testing.B) {
	f, _ := Encode(&ServerMsg{Kind: KindEvent, Event: &Event{Type: EventDeliver, Group: "bench", NodeID: 2, PID: 1234, Guarantee: Agreed, Data: make([]byte, 100)}})
	b.ReportAllocs()
	for b.Loop() {
		var m ServerMsg
		if err := Decode(f[HeaderSize:], &m); err != nil {
			b.Fatal(err)
		}
	}
}
