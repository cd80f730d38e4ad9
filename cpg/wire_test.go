package cpg

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/totem-gcs/totem/totem"
)

func TestWireRoundTrip(t *testing.T) {
	d := newDecoder()
	long := strings.Repeat("g", MaxGroupName)
	cases := []struct {
		name    string
		payload []byte
		want    message
	}{
		{"data", encodeData("grp", 42, []byte("hello")), message{Type: msgData, Group: "grp", Pid: 42, Data: []byte("hello")}},
		{"empty data", encodeData(long, 1<<32-1, nil), message{Type: msgData, Group: long, Pid: 1<<32 - 1, Data: []byte{}}},
		{"big data", encodeData("g", 7, bytes.Repeat([]byte{0xab}, 70000)), message{Type: msgData, Group: "g", Pid: 7, Data: bytes.Repeat([]byte{0xab}, 70000)}},
		{"control", encodeControl([]ctrlOp{{opJoin, "a", 1}, {opLeave, "b", 2}, {opProcDown, long, 3}}),
			message{Type: msgControl, Ops: []ctrlOp{{opJoin, "a", 1}, {opLeave, "b", 2}, {opProcDown, long, 3}}}},
		{"sync", encodeSync(totem.RingID{Rep: 3, Seq: 1 << 40}, 2, true, []syncEntry{{"a", 1}, {"b", 99}}),
			message{Type: msgSync, Ring: totem.RingID{Rep: 3, Seq: 1 << 40}, Part: 2, Last: true, Entries: []syncEntry{{"a", 1}, {"b", 99}}}},
		{"empty sync", encodeSync(totem.RingID{Rep: 1, Seq: 1}, 0, true, nil),
			message{Type: msgSync, Ring: totem.RingID{Rep: 1, Seq: 1}, Last: true, Entries: []syncEntry{}}},
	}
	for _, c := range cases {
		got, err := d.decode(c.payload)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Fatalf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	// The decoded data is the payload's own bytes, not a copy.
	p := encodeData("g", 1, []byte("abc"))
	got, _ := d.decode(p)
	if len(got.Data) != 3 || &got.Data[0] != &p[len(p)-3] || cap(got.Data) != 3 {
		t.Fatal("decoded data is not the payload's last bytes")
	}
	if len(encodeData(long, 1<<32-1, nil)) > MessageOverhead {
		t.Fatalf("data header %d bytes exceeds MessageOverhead %d", len(encodeData(long, 1<<32-1, nil)), MessageOverhead)
	}
}

func TestWireRejects(t *testing.T) {
	d := newDecoder()
	good := encodeControl([]ctrlOp{{opJoin, "a", 1}})
	bad := map[string][]byte{
		"empty":          nil,
		"version only":   {wireVersion},
		"wrong version":  append([]byte{2}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte{}, good...), 0),
		"unknown type":   {wireVersion, 0x92, 9, 0x90},
		"no array":       {wireVersion, 0x01},
		"empty control":  {wireVersion, 0x92, msgControl, 0x90},
		"bad op":         {wireVersion, 0x92, msgControl, 0x91, 0x93, 7, 0xa1, 'a', 1},
		"op zero":        {wireVersion, 0x92, msgControl, 0x91, 0x93, 0, 0xa1, 'a', 1},
		"empty group":    encodeData("", 1, nil),
		"long group":     encodeData(strings.Repeat("x", MaxGroupName+1), 1, nil),
		"negative pid":   {wireVersion, 0x94, msgData, 0xa1, 'g', 0xff, 0xc4, 0},
		"huge list":      {wireVersion, 0x92, msgControl, 0xdd, 0x7f, 0xff, 0xff, 0xff},
		"data arity":     {wireVersion, 0x93, msgData, 0xa1, 'g', 1},
		"pid too big":    {wireVersion, 0x94, msgData, 0xa1, 'g', 0xcf, 1, 0, 0, 0, 0, 0, 0, 0, 0xc4, 0},
		"string as data": {wireVersion, 0x94, msgData, 0xa1, 'g', 1, 0x01},
	}
	for name, p := range bad {
		if _, err := d.decode(p); !errors.Is(err, errDecode) {
			t.Errorf("%s: decode(% x) = %v, want a decode error", name, p, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encodeData("grp", 42, []byte("hello")))
	f.Add(encodeControl([]ctrlOp{{opJoin, "a", 1}, {opProcDown, "b", 2}}))
	f.Add(encodeSync(totem.RingID{Rep: 3, Seq: 9}, 0, true, []syncEntry{{"a", 1}}))
	f.Add([]byte{wireVersion, 0x92, msgControl, 0xdd, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		d := newDecoder()
		m, err := d.decode(p)
		if err != nil {
			if !errors.Is(err, errDecode) {
				t.Fatalf("error %v does not wrap errDecode", err)
			}
			return
		}
		// Whatever decodes re-encodes to the same message.
		var again []byte
		switch m.Type {
		case msgData:
			again = encodeData(m.Group, m.Pid, m.Data)
		case msgControl:
			again = encodeControl(m.Ops)
		case msgSync:
			again = encodeSync(m.Ring, m.Part, m.Last, m.Entries)
		default:
			t.Fatalf("decoded unknown type %d", m.Type)
		}
		m2, err := d.decode(again)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encoding %+v gave %+v, %v", m, m2, err)
		}
	})
}
