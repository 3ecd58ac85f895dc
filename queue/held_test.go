package queue

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestHeldPutGetRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "quarantine")
	h, err := OpenHeld(dir)
	if err != nil {
		t.Fatal(err)
	}
	id := NewHeldID()
	msg := []byte("From: a@example.com\r\n\r\nheld\r\n")
	if err := h.Put(id, msg); err != nil {
		t.Fatal(err)
	}
	if err := h.Put(id, msg); err == nil {
		t.Fatal("a second Put under the same ID overwrote the held message")
	}
	got, err := h.Get(id)
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
	if err := h.Remove(id); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Get(id); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after Remove: %v, want not exist", err)
	}
	if err := h.Remove(id); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
}

// TestHeldRefusesPathIDs: an ID cannot name a file outside the quarantine directory.
func TestHeldRefusesPathIDs(t *testing.T) {
	h, err := OpenHeld(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "../x", "a/b", `a\b`, "x.eml", "a\nb", "..", string(make([]byte, 65))} {
		if err := h.Put(id, []byte("x")); err == nil {
			t.Errorf("Put(%q) accepted", id)
		}
		if _, err := h.Get(id); err == nil {
			t.Errorf("Get(%q) accepted", id)
		}
	}
}
