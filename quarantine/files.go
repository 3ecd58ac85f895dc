package quarantine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sealpost/sealpost/queue"
)

// files is the quarantine's byte store: inbound messages held for an operator, exactly as they
// were received (still encrypted when they arrived encrypted, so no plaintext sealpost decrypted
// is written). Each message is one file, written with the spool's discipline (queue.WriteFileDurably:
// a temporary file, fsync, rename, directory fsync), so a held message acknowledged with 250
// survives a crash. The index (who, why, released or not) lives in the Index; files only keeps
// the bytes.
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

// put stores data under id durably; an existing id is an error.
func (h *files) put(id string, data []byte) error {
	name, err := fileName(id)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(filepath.Join(h.dir, name)); err == nil {
		return fmt.Errorf("quarantine: %s already held", id)
	}
	return queue.WriteFileDurably(filepath.Join(h.dir, "tmp"), h.dir, name, data)
}

// get returns the bytes held under id; an error wrapping os.ErrNotExist when there are none.
func (h *files) get(id string) ([]byte, error) {
	name, err := fileName(id)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(h.dir, name))
}

// remove deletes the bytes held under id durably; removing what is not there is not an error.
func (h *files) remove(id string) error {
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
