package rrp

import (
	"crypto/rand"
	"errors"
)

// ErrAuth means no given key authenticates a datagram.
var ErrAuth = errors.New("rrp: authentication failed (wrong key, or a forged or corrupted packet)")

// ErrEncrypted means a datagram is encrypted and no key was given.
var ErrEncrypted = errors.New("rrp: packet is encrypted and no key was given")

// AppendPacket appends to dst a complete datagram with header h and body,
// sealed under key (FlagEncrypted and KeyID are set from it) or, when key
// is nil, in the clear. It is meant for tools and tests; the transport
// builds its datagrams itself.
func AppendPacket(dst []byte, h Header, body, key []byte) ([]byte, error) {
	if key == nil {
		h.Flags &^= FlagEncrypted
		h.KeyID = 0
		return append(AppendHeader(dst, &h), body...), nil
	}
	kr, err := newKeyring(key)
	if err != nil {
		return dst, err
	}
	h.Flags |= FlagEncrypted
	h.KeyID = kr.sendID
	nonce := make([]byte, NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return dst, err
	}
	start := len(dst)
	out := AppendHeader(dst, &h)
	return append(out[:start], kr.seal(out[start:], nonce, body)...), nil
}

// OpenPacket decodes a datagram's header and returns its plaintext body,
// decrypting it with whichever of keys authenticates it. A clear datagram
// needs no key. It does no replay or membership checks: it is meant for
// tools such as totemdump.
func OpenPacket(pkt []byte, keys ...[]byte) (Header, []byte, error) {
	var h Header
	if err := DecodeHeader(pkt, &h); err != nil {
		return h, nil, err
	}
	if !h.Encrypted() {
		return h, pkt[HeaderSize:], nil
	}
	if len(keys) == 0 {
		return h, nil, ErrEncrypted
	}
	for _, k := range keys {
		kr, err := newKeyring(k)
		if err != nil {
			return h, nil, err
		}
		if body, ok := kr.open(nil, pkt, h.KeyID); ok {
			return h, body, nil
		}
	}
	return h, nil, ErrAuth
}
