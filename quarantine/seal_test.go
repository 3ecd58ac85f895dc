package quarantine

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealpost/sealpost/store"
)

func sealKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, SealKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func openSealed(t *testing.T, st *store.SQLite, dir string, key []byte) *Quarantine {
	t.Helper()
	q, err := Open(dir, st, WithSealKey(key))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestSealedHeldFileHoldsNoPlaintext: with a seal key, the file on disk carries neither the
// envelope nor a byte of the message, and the message comes back whole.
func TestSealedHeldFileHoldsNoPlaintext(t *testing.T) {
	_, st, dir := openTest(t)
	q := openSealed(t, st, dir, sealKey(t))
	ctx := context.Background()
	id, err := q.Hold(ctx, heldMsg, store.Held{Received: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, id+".eml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"IBAN", "new payee", "alice@example.com", "support@bank.example", magic} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("held file carries %q in clear", secret)
		}
	}
	if !bytes.HasPrefix(raw, []byte(sealedMagic)) {
		t.Fatalf("held file does not start with the sealed format's magic")
	}
	_, m, err := q.Get(ctx, id)
	if err != nil || m == nil || !bytes.Equal(m.Data, heldMsg.Data) || m.From != heldMsg.From {
		t.Fatalf("Get: %+v, %v", m, err)
	}
}

// TestSealedHeldFileRefusesWrongKeyRenameAndTamper: a sealed file opens only with its key and
// under its own ID; one flipped byte is ErrSealed, never a wrong message.
func TestSealedHeldFileRefusesWrongKeyRenameAndTamper(t *testing.T) {
	_, st, dir := openTest(t)
	key := sealKey(t)
	q := openSealed(t, st, dir, key)
	ctx := context.Background()
	a, err := q.Hold(ctx, heldMsg, store.Held{Received: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := q.Hold(ctx, heldMsg, store.Held{Received: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := openSealed(t, st, dir, sealKey(t)).Get(ctx, a); !errors.Is(err, ErrSealed) {
		t.Fatalf("another key: %v, want ErrSealed", err)
	}
	if _, _, err := mustOpen(Open(dir, st)).Get(ctx, a); !errors.Is(err, ErrSealed) {
		t.Fatalf("no key: %v, want ErrSealed", err)
	}
	// b's file put under a's name: the ID is authenticated, so it does not open as a.
	fb, _ := os.ReadFile(filepath.Join(dir, b+".eml"))
	if err := os.WriteFile(filepath.Join(dir, a+".eml"), fb, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.Get(ctx, a); !errors.Is(err, ErrSealed) {
		t.Fatalf("renamed file: %v, want ErrSealed", err)
	}
	fb[len(fb)-1] ^= 1
	if err := os.WriteFile(filepath.Join(dir, b+".eml"), fb, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.Get(ctx, b); !errors.Is(err, ErrSealed) {
		t.Fatalf("tampered file: %v, want ErrSealed", err)
	}
}

// TestSealedQuarantineReadsClearFiles: files held before the key was configured (the clear v1
// format) are still listed, shown and delivered.
func TestSealedQuarantineReadsClearFiles(t *testing.T) {
	q, st, dir := openTest(t)
	ctx := context.Background()
	id, err := q.Hold(ctx, heldMsg, store.Held{Received: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	sealed := openSealed(t, st, dir, sealKey(t))
	if _, m, err := sealed.Get(ctx, id); err != nil || m == nil || !bytes.Equal(m.Data, heldMsg.Data) {
		t.Fatalf("clear file through a sealed quarantine: %+v, %v", m, err)
	}
}

// TestSealKeyMustBe256Bits: a key of another length is refused at Open, not at the first Hold.
func TestSealKeyMustBe256Bits(t *testing.T) {
	_, st, dir := openTest(t)
	if _, err := Open(dir, st, WithSealKey(make([]byte, 16))); err == nil {
		t.Fatal("a 16-byte seal key was accepted")
	}
}

// mustOpen returns q, panicking on err; for one-line opens in tests.
func mustOpen(q *Quarantine, err error) *Quarantine {
	if err != nil {
		panic(err)
	}
	return q
}
