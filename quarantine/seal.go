package quarantine

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// sealedMagic starts a held file encrypted at rest: the magic, a 12-byte nonce, then the v1 file
// (envelope and message) sealed with AES-256-GCM, the held ID and the magic as additional data so
// that a file renamed to another ID does not open.
const sealedMagic = "sealpost-held-v2\r\n"

// SealKeySize is the length of the key WithSealKey takes (AES-256).
const SealKeySize = 32

// ErrSealed: a held file is encrypted and does not open with this quarantine's key (no key, the
// wrong key, a file renamed to another ID, or damaged bytes).
var ErrSealed = errors.New("held message does not open with the quarantine key")

// WithSealKey encrypts every message held from now on with AES-256-GCM under key (SealKeySize
// bytes, e.g. keys.DataDir.HeldKey), so the quarantine directory (and a copy or backup of it)
// holds no customer reply in clear. Files held before, in the clear v1 format, stay readable.
func WithSealKey(key []byte) Option {
	return func(q *Quarantine) { q.sealKey = key }
}

func (q *Quarantine) aead() (cipher.AEAD, error) {
	if len(q.sealKey) != SealKeySize {
		return nil, fmt.Errorf("quarantine: seal key is %d bytes, want %d", len(q.sealKey), SealKeySize)
	}
	block, err := aes.NewCipher(q.sealKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal returns the file for id holding plain (a v1 file): sealed when the quarantine has a key.
func (q *Quarantine) seal(id string, plain []byte) ([]byte, error) {
	if q.sealKey == nil {
		return plain, nil
	}
	g, err := q.aead()
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(sealedMagic)+g.NonceSize(), len(sealedMagic)+g.NonceSize()+len(plain)+g.Overhead())
	copy(out, sealedMagic)
	nonce := out[len(sealedMagic):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.Seal(out, nonce, plain, []byte(sealedMagic+id)), nil
}

// unseal returns the v1 file inside b, the file held under id: b itself when it is not sealed.
func (q *Quarantine) unseal(id string, b []byte) ([]byte, error) {
	rest, sealed := bytes.CutPrefix(b, []byte(sealedMagic))
	if !sealed {
		return b, nil
	}
	if q.sealKey == nil {
		return nil, fmt.Errorf("%w: the quarantine has no key", ErrSealed)
	}
	g, err := q.aead()
	if err != nil {
		return nil, err
	}
	if len(rest) < g.NonceSize()+g.Overhead() {
		return nil, fmt.Errorf("%w: truncated", ErrSealed)
	}
	plain, err := g.Open(nil, rest[:g.NonceSize()], rest[g.NonceSize():], []byte(sealedMagic+id))
	if err != nil {
		return nil, ErrSealed
	}
	return plain, nil
}
