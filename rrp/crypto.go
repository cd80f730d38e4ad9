package rrp

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeyID returns the one-byte fingerprint that names key on the wire.
func KeyID(key []byte) uint8 {
	sum := sha256.Sum256(append([]byte("totem-rrp-key-id"), key...))
	return sum[0]
}

// keyring holds the sending key and the keys accepted on receive. It is
// immutable; SetKeys swaps in a new one.
type keyring struct {
	send   cipher.AEAD
	sendID uint8
	accept []keyEntry // includes the sending key first
}

type keyEntry struct {
	id   uint8
	aead cipher.AEAD
}

func newKeyring(send []byte, accept ...[]byte) (*keyring, error) {
	if len(send) != KeySize {
		return nil, fmt.Errorf("rrp: key is %d bytes, want %d", len(send), KeySize)
	}
	a, err := chacha20poly1305.NewX(send)
	if err != nil {
		return nil, err
	}
	kr := &keyring{send: a, sendID: KeyID(send)}
	kr.accept = append(kr.accept, keyEntry{kr.sendID, a})
	for _, k := range accept {
		if len(k) != KeySize {
			return nil, fmt.Errorf("rrp: accepted key is %d bytes, want %d", len(k), KeySize)
		}
		a, err := chacha20poly1305.NewX(k)
		if err != nil {
			return nil, err
		}
		kr.accept = append(kr.accept, keyEntry{KeyID(k), a})
	}
	return kr, nil
}

// knows reports whether some accepted key has the given id.
func (kr *keyring) knows(id uint8) bool {
	for _, e := range kr.accept {
		if e.id == id {
			return true
		}
	}
	return false
}

// seal appends nonce, ciphertext and tag of body to pkt, which holds the
// header (used as additional data). nonce must hold NonceSize random bytes.
func (kr *keyring) seal(pkt, nonce, body []byte) []byte {
	hdr := pkt[:HeaderSize]
	pkt = append(pkt, nonce...)
	return kr.send.Seal(pkt, nonce, body, hdr)
}

// open authenticates and decrypts the encrypted datagram pkt (whose header
// names key id) and appends the plaintext to dst. ok is false when no
// accepted key opens it.
func (kr *keyring) open(dst, pkt []byte, id uint8) ([]byte, bool) {
	hdr := pkt[:HeaderSize]
	nonce := pkt[HeaderSize : HeaderSize+NonceSize]
	ct := pkt[HeaderSize+NonceSize:]
	for _, e := range kr.accept {
		if e.id != id {
			continue
		}
		out, err := e.aead.Open(dst, nonce, ct, hdr)
		if err == nil {
			return out, true
		}
	}
	return dst, false
}

// nonceSource hands out random nonces, reading crypto/rand in blocks.
type nonceSource struct {
	buf []byte
}

func (s *nonceSource) next() []byte {
	if len(s.buf) < NonceSize {
		s.buf = make([]byte, NonceSize*64)
		if _, err := rand.Read(s.buf); err != nil {
			// crypto/rand.Read never fails on supported platforms.
			panic("rrp: crypto/rand: " + err.Error())
		}
	}
	n := s.buf[:NonceSize:NonceSize]
	s.buf = s.buf[NonceSize:]
	return n
}
