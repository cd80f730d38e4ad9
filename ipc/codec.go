package ipc

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Hand-written msgpack codecs for the types on the data path (Event and
// Request): a fixed-length array instead of a map of field names, without
// reflection. The other messages use the struct tags.

const (
	eventFields   = 12
	requestFields = 9
)

var (
	_ msgpack.CustomEncoder = Event{}
	_ msgpack.CustomDecoder = (*Event)(nil)
	_ msgpack.CustomEncoder = Request{}
	_ msgpack.CustomDecoder = (*Request)(nil)
)

func encodeMembers(enc *msgpack.Encoder, ms []Member) error {
	if err := enc.EncodeArrayLen(len(ms)); err != nil {
		return err
	}
	for _, m := range ms {
		if err := enc.EncodeArrayLen(3); err != nil {
			return err
		}
		if err := enc.EncodeUint32(m.NodeID); err != nil {
			return err
		}
		if err := enc.EncodeUint32(m.PID); err != nil {
			return err
		}
		if err := enc.EncodeUint8(uint8(m.Reason)); err != nil {
			return err
		}
	}
	return nil
}

func decodeMembers(dec *msgpack.Decoder) ([]Member, error) {
	n, err := dec.DecodeArrayLen()
	if err != nil || n <= 0 {
		return nil, err
	}
	if n > 1<<16 {
		return nil, fmt.Errorf("member list of %d entries", n)
	}
	out := make([]Member, n)
	for i := range out {
		if k, err := dec.DecodeArrayLen(); err != nil || k != 3 {
			return nil, fmt.Errorf("member: want an array of 3, got %d (%v)", k, err)
		}
		if out[i].NodeID, err = dec.DecodeUint32(); err != nil {
			return nil, err
		}
		if out[i].PID, err = dec.DecodeUint32(); err != nil {
			return nil, err
		}
		r, err := dec.DecodeUint8()
		if err != nil {
			return nil, err
		}
		out[i].Reason = Reason(r)
	}
	return out, nil
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (e Event) EncodeMsgpack(enc *msgpack.Encoder) error {
	if err := enc.EncodeArrayLen(eventFields + 1); err != nil {
		return err
	}
	for _, f := range []func() error{
		func() error { return enc.EncodeUint8(uint8(e.Type)) },
		func() error { return enc.EncodeString(e.Group) },
		func() error { return enc.EncodeUint32(e.NodeID) },
		func() error { return enc.EncodeUint32(e.PID) },
		func() error { return enc.EncodeUint8(e.Guarantee) },
		func() error { return enc.EncodeBytes(e.Data) },
		func() error { return encodeMembers(enc, e.Members) },
		func() error { return encodeMembers(enc, e.Joined) },
		func() error { return encodeMembers(enc, e.Left) },
		func() error { return enc.EncodeUint32(e.Ring.Rep) },
		func() error { return enc.EncodeUint64(e.Ring.Seq) },
		func() error { return enc.Encode(e.Nodes) },
		func() error { return enc.EncodeBool(e.Transitional) },
	} {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (e *Event) DecodeMsgpack(dec *msgpack.Decoder) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n < eventFields {
		return fmt.Errorf("event: want an array of %d, got %d", eventFields, n)
	}
	t, err := dec.DecodeUint8()
	if err != nil {
		return err
	}
	e.Type = EventType(t)
	if e.Group, err = dec.DecodeString(); err != nil {
		return err
	}
	if e.NodeID, err = dec.DecodeUint32(); err != nil {
		return err
	}
	if e.PID, err = dec.DecodeUint32(); err != nil {
		return err
	}
	if e.Guarantee, err = dec.DecodeUint8(); err != nil {
		return err
	}
	if e.Data, err = dec.DecodeBytes(); err != nil {
		return err
	}
	if e.Members, err = decodeMembers(dec); err != nil {
		return err
	}
	if e.Joined, err = decodeMembers(dec); err != nil {
		return err
	}
	if e.Left, err = decodeMembers(dec); err != nil {
		return err
	}
	if e.Ring.Rep, err = dec.DecodeUint32(); err != nil {
		return err
	}
	if e.Ring.Seq, err = dec.DecodeUint64(); err != nil {
		return err
	}
	if err := dec.Decode(&e.Nodes); err != nil {
		return err
	}
	// Transitional came after the first version: absent means false.
	if n > eventFields {
		if e.Transitional, err = dec.DecodeBool(); err != nil {
			return err
		}
	}
	// Fields added by later versions are skipped.
	for i := eventFields + 1; i < n; i++ {
		if err := dec.Skip(); err != nil {
			return err
		}
	}
	return nil
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r Request) EncodeMsgpack(enc *msgpack.Encoder) error {
	if err := enc.EncodeArrayLen(requestFields); err != nil {
		return err
	}
	for _, f := range []func() error{
		func() error { return enc.EncodeUint64(r.ID) },
		func() error { return enc.EncodeUint8(uint8(r.Op)) },
		func() error { return enc.EncodeString(r.Group) },
		func() error { return enc.EncodeUint8(r.Guarantee) },
		func() error { return enc.EncodeBytes(r.Data) },
		func() error { return enc.EncodeInt(int64(r.Link)) },
		func() error { return enc.Encode(r.Fault) },
		func() error { return enc.EncodeString(r.KeyFile) },
		func() error { return enc.Encode(r.AcceptKeys) },
	} {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (r *Request) DecodeMsgpack(dec *msgpack.Decoder) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n < requestFields {
		return fmt.Errorf("request: want an array of %d, got %d", requestFields, n)
	}
	if r.ID, err = dec.DecodeUint64(); err != nil {
		return err
	}
	op, err := dec.DecodeUint8()
	if err != nil {
		return err
	}
	r.Op = Op(op)
	if r.Group, err = dec.DecodeString(); err != nil {
		return err
	}
	if r.Guarantee, err = dec.DecodeUint8(); err != nil {
		return err
	}
	if r.Data, err = dec.DecodeBytes(); err != nil {
		return err
	}
	link, err := dec.DecodeInt()
	if err != nil {
		return err
	}
	r.Link = link
	if err := dec.Decode(&r.Fault); err != nil {
		return err
	}
	if r.KeyFile, err = dec.DecodeString(); err != nil {
		return err
	}
	if err := dec.Decode(&r.AcceptKeys); err != nil {
		return err
	}
	for i := requestFields; i < n; i++ {
		if err := dec.Skip(); err != nil {
			return err
		}
	}
	return nil
}
