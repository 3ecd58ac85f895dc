package quarantine

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/sealpost/sealpost/keys"
)

// sealedMagic starts a held file encrypted at rest (keys.Sealer's format): the magic, a 12-byte
// nonce, then the v1 file (envelope and message) sealed with AES-256-GCM, the held ID and the magic
// as additional data so that a file renamed to another ID does not open.
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

func (q *Quarantine) sealer() (*keys.Sealer, error) {
	s, err := keys.NewSealer(q.sealKey, sealedMagic)
	if err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	return s, nil
}

// seal returns the file for id holding plain (a v1 file): sealed when the quarantine has a key.
func (q *Quarantine) seal(id string, plain []byte) ([]byte, error) {
	if q.sealKey == nil {
		return plain, nil
	}
	s, err := q.sealer()
	if err != nil {
		return nil, err
	}
	return s.Seal(id, plain)
}

// unseal returns the v1 file inside b, the file held under id: b itself when it is not sealed.
func (q *Quarantine) unseal(id string, b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, []byte(sealedMagic)) {
		return b, nil
	}
	if q.sealKey == nil {
		return nil, fmt.Errorf("%w: the quarantine has no key", ErrSealed)
	}
	s, err := q.sealer()
	if err != nil {
		return nil, err
	}
	plain, err := s.Open(id, b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSealed, err)
	}
	return plain, nil
}
