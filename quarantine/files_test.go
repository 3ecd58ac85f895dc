package quarantine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/store"
)

func TestHeldPutGetRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "quarantine")
	h, err := openFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := queue.NewID()
	msg := []byte("From: a@example.com\r\n\r\nheld\r\n")
	if err := h.PutHeld(ctx, id, msg); err != nil {
		t.Fatal(err)
	}
	if err := h.PutHeld(ctx, id, msg); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second Put under the same ID: %v, want store.ErrConflict", err)
	}
	got, err := h.GetHeld(ctx, id)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Get: %q, %v", got, err)
	}
	fi, err := os.Stat(filepath.Join(dir, id+".eml"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("held file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "tmp", "*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if err := h.RemoveHeld(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := h.GetHeld(ctx, id); !errors.Is(err, os.ErrNotExist) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after Remove: %v, want not exist and store.ErrNotFound", err)
	}
	if err := h.RemoveHeld(ctx, id); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
}

// TestHeldRefusesPathIDs: an ID cannot name a file outside the quarantine directory.
func TestHeldRefusesPathIDs(t *testing.T) {
	h, err := openFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"", "../x", "a/b", `a\b`, "x.eml", "a\nb", "..", string(make([]byte, 65))} {
		if err := h.PutHeld(ctx, id, []byte("x")); err == nil {
			t.Errorf("Put(%q) accepted", id)
		}
		if _, err := h.GetHeld(ctx, id); err == nil {
			t.Errorf("Get(%q) accepted", id)
		}
	}
}
