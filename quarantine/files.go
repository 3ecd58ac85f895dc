package quarantine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/store"
)

// files is the default byte store (Blobs) of a single node: each held file (sealed when the
// quarantine has a key) is one file in the quarantine directory, written with the spool's
// discipline (queue.WriteFileDurably: a temporary file, fsync, rename, directory fsync), so a
// held message acknowledged with 250 survives a crash.
type files struct{ dir string }

// openFiles opens (creating, mode 0700) the quarantine directory.
func openFiles(dir string) (*files, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	return &files{dir: dir}, nil
}

func fileName(id string) (string, error) {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, `/\.`) || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return "", fmt.Errorf("quarantine: invalid ID %q", id)
	}
	return id + ".eml", nil
}

// PutHeld stores data under id durably; an existing id is store.ErrConflict.
func (h *files) PutHeld(_ context.Context, id string, data []byte) error {
	name, err := fileName(id)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(filepath.Join(h.dir, name)); err == nil {
		return fmt.Errorf("quarantine: %s already held: %w", id, store.ErrConflict)
	}
	return queue.WriteFileDurably(filepath.Join(h.dir, "tmp"), h.dir, name, data)
}

// GetHeld returns the bytes held under id; an error wrapping store.ErrNotFound (and
// os.ErrNotExist) when there are none.
func (h *files) GetHeld(_ context.Context, id string) ([]byte, error) {
	name, err := fileName(id)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(h.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	return b, err
}

// RemoveHeld deletes the bytes held under id durably; removing what is not there is not an error.
func (h *files) RemoveHeld(_ context.Context, id string) error {
	name, err := fileName(id)
	if err != nil {
		return err
	}
	err = queue.RemoveDurably(h.dir, filepath.Join(h.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
