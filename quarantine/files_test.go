package quarantine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/queue"
)

func TestHeldPutGetRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "quarantine")
	h, err := openFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	id := queue.NewID()
	msg := []byte("From: a@example.com\r\n\r\nheld\r\n")
	if err := h.put(id, msg); err != nil {
		t.Fatal(err)
	}
	if err := h.put(id, msg); err == nil {
		t.Fatal("a second Put under the same ID overwrote the held message")
	}
	got, err := h.get(id)
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
	if err := h.remove(id); err != nil {
		t.Fatal(err)
	}
	if _, err := h.get(id); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after Remove: %v, want not exist", err)
	}
	if err := h.remove(id); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
}

// TestHeldRefusesPathIDs: an ID cannot name a file outside the quarantine directory.
func TestHeldRefusesPathIDs(t *testing.T) {
	h, err := openFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "../x", "a/b", `a\b`, "x.eml", "a\nb", "..", string(make([]byte, 65))} {
		if err := h.put(id, []byte("x")); err == nil {
			t.Errorf("Put(%q) accepted", id)
		}
		if _, err := h.get(id); err == nil {
			t.Errorf("Get(%q) accepted", id)
		}
	}
}
