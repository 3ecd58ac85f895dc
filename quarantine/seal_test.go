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

// TestWithBlobsKeepsSealedBytesInTheStore: with the store as the byte store, Hold writes no file,
// the store's bytes are sealed (no phrase of the message, no envelope), another quarantine on the
// same store and key reads and delivers the message, and delivery removes the bytes.
func TestWithBlobsKeepsSealedBytesInTheStore(t *testing.T) {
	_, st, dir := openTest(t)
	key := sealKey(t)
	ctx := context.Background()
	a := mustOpen(Open(dir, st, WithSealKey(key), WithBlobs(st)))
	id, err := a.Hold(ctx, heldMsg, store.Held{Received: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.eml")); len(left) != 0 {
		t.Fatalf("held files written with the store as the byte store: %v", left)
	}
	raw, err := st.GetHeld(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"IBAN", "new payee", "alice@example.com", "support@bank.example", magic} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("the store's held bytes carry %q in clear", secret)
		}
	}
	if !bytes.HasPrefix(raw, []byte(sealedMagic)) {
		t.Fatal("the store's held bytes are not in the sealed format")
	}
	elsewhere := filepath.Join(t.TempDir(), "elsewhere")
	b := mustOpen(Open(elsewhere, st, WithSealKey(key), WithBlobs(st)))
	if _, err := os.Stat(elsewhere); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open with WithBlobs made the quarantine directory: %v", err)
	}
	if err := b.Release(ctx, id, testDecision()); err != nil {
		t.Fatal(err)
	}
	var got *Message
	n, err := b.DeliverReleased(ctx, func(_ context.Context, _ store.Held, m *Message) error { got = m; return nil })
	if n != 1 || err != nil || got == nil || !bytes.Equal(got.Data, heldMsg.Data) {
		t.Fatalf("DeliverReleased from another quarantine: %d, %v, %+v", n, err, got)
	}
	if _, err := st.GetHeld(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("held bytes after delivery: %v; want store.ErrNotFound", err)
	}
	if h, m, err := a.Get(ctx, id); err != nil || m != nil || !h.Released {
		t.Fatalf("after delivery: %+v %v %v; want released and no bytes", h, m, err)
	}
}
