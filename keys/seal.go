package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// ErrSealed: sealed bytes do not open with this key (the wrong key, bytes moved to another ID, or
// damaged bytes).
var ErrSealed = errors.New("sealed data does not open with this key")

// Sealer encrypts what sealpost keeps at rest outside the spool (messages waiting in the secure
// mailbox) with AES-256-GCM under a key from the data directory, never from the store: a dump of
// the database holds no plaintext. Sealed bytes are a magic line naming the format, a 12-byte
// nonce and the ciphertext; the magic and the item's ID are the additional data, so bytes copied
// under another ID do not open.
type Sealer struct {
	aead  cipher.AEAD
	magic string
}

// NewSealer seals under key (32 bytes, e.g. DataDir.MailboxKey) in the format magic names (a line
// ending in CRLF, e.g. "sealpost-mailbox-v1\r\n").
func NewSealer(key []byte, magic string) (*Sealer, error) {
	if len(key) != heldKeySize {
		return nil, fmt.Errorf("seal key is %d bytes, want %d", len(key), heldKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: g, magic: magic}, nil
}

// Seal returns plain sealed for id.
func (s *Sealer) Seal(id string, plain []byte) ([]byte, error) {
	n := len(s.magic) + s.aead.NonceSize()
	out := make([]byte, n, n+len(plain)+s.aead.Overhead())
	copy(out, s.magic)
	nonce := out[len(s.magic):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, nonce, plain, []byte(s.magic+id)), nil
}

// Open returns what Seal sealed for id; ErrSealed when b is not that.
func (s *Sealer) Open(id string, b []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(b, []byte(s.magic))
	if !ok {
		return nil, fmt.Errorf("%w: not in this format", ErrSealed)
	}
	if len(rest) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: truncated", ErrSealed)
	}
	ns := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, rest[:ns], rest[ns:], []byte(s.magic+id))
	if err != nil {
		return nil, ErrSealed
	}
	return plain, nil
}
