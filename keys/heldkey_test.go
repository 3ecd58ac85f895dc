package keys

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestHeldKeyMadeOnceAndKept: the first call makes a 0600 key; later calls, also concurrent
// ones, return the same key.
func TestHeldKeyMadeOnceAndKept(t *testing.T) {
	d := DataDir(t.TempDir())
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	errs := make([]error, 8)
	for i := range keys {
		wg.Add(1)
		go func() { defer wg.Done(); keys[i], errs[i] = d.HeldKey() }()
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil || len(keys[i]) != 32 || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("call %d: %x, %v; want the one key of call 0", i, keys[i], errs[i])
		}
	}
	fi, err := os.Stat(filepath.Join(string(d), HeldKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

// TestHeldKeyRefusesExposedOrShortFile: a key others can read, or of the wrong size, is refused.
func TestHeldKeyRefusesExposedOrShortFile(t *testing.T) {
	d := DataDir(t.TempDir())
	p := filepath.Join(string(d), HeldKeyFile)
	if err := os.WriteFile(p, make([]byte, 32), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.HeldKey(); err == nil {
		t.Fatal("a world-readable key was accepted")
	}
	if err := os.WriteFile(p, make([]byte, 16), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.HeldKey(); err == nil {
		t.Fatal("a 16-byte key was accepted")
	}
}
