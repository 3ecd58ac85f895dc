package queue

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Held is the quarantine's byte store: inbound messages held for an operator, exactly as they were
// received (still encrypted when they arrived encrypted, so no plaintext sealpost decrypted is
// written). Each message is one file, written like a spool entry: a temporary file, fsync, rename,
// directory fsync, so a held message acknowledged with 250 survives a crash. The index (who, why,
// released or not) lives in the store; Held only keeps the bytes.
type Held struct {
	dir string
	ops fileOps
}

// OpenHeld opens (creating, mode 0700) the quarantine directory.
func OpenHeld(dir string) (*Held, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	return &Held{dir: dir, ops: osOps{}}, nil
}

// NewHeldID returns a fresh ID for a held message, shaped like a queue ID so that the 250 reply
// does not tell the sender the message was held.
func NewHeldID() string { return newID() }

func heldName(id string) (string, error) {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, `/\.`) || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return "", fmt.Errorf("quarantine: invalid ID %q", id)
	}
	return id + ".eml", nil
}

// Put stores data under id durably; an existing id is an error.
func (h *Held) Put(id string, data []byte) error {
	name, err := heldName(id)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(filepath.Join(h.dir, name)); err == nil {
		return fmt.Errorf("quarantine: %s already held", id)
	}
	return writeAtomic(h.ops, filepath.Join(h.dir, "tmp"), h.dir, name, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(data))
		return err
	})
}

// Get returns the bytes held under id; an error wrapping os.ErrNotExist when there are none.
func (h *Held) Get(id string) ([]byte, error) {
	name, err := heldName(id)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(h.dir, name))
}

// Remove deletes the bytes held under id durably; removing what is not there is not an error.
func (h *Held) Remove(id string) error {
	name, err := heldName(id)
	if err != nil {
		return err
	}
	err = removeDurably(h.ops, h.dir, filepath.Join(h.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
