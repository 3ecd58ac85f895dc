package pgp

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/payload"
)

// TestRNPDecryptsAndVerifies: RNP, the OpenPGP library inside Thunderbird, decrypts sealpost's
// PGP/MIME with the customer's key, finds the bank's signature good, and gets the exact signed payload;
// it verifies sign-only mail too, and refuses a tampered one.
func TestRNPDecryptsAndVerifies(t *testing.T) {
	interop.Tool(t, "rnp")
	f := getFixture(t)
	dir := t.TempDir()
	// One key file holds what the customer's Thunderbird holds: their secret key and the bank's
	// public key.
	ring := write(t, filepath.Join(dir, "ring.asc"), append(armoredKey(t, f.customers[0], true), armoredKey(t, f.bank, false)...))
	rnp := func(args ...string) ([]byte, []byte, error) {
		return interop.Try(t, nil, "rnp", append([]string{"--homedir", dir, "--keyfile", ring, "--password", ""}, args...)...)
	}

	out, err := f.protector.Protect(ctx, []byte(statement), f.customers[:1], Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, armored := parts(t, out)
	msg := write(t, filepath.Join(dir, "msg.asc"), armored)
	plainFile := filepath.Join(dir, "plain")
	if _, stderr, err := rnp("--decrypt", msg, "--output", plainFile); err != nil || !bytes.Contains(stderr, []byte("Good signature")) {
		t.Fatalf("rnp --decrypt: %v\n%s", err, stderr)
	}
	prep, err := payload.Prepare([]byte(statement), payload.Options{Encrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(plainFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, prep.Content()) {
		t.Fatalf("rnp plaintext differs from the signed payload:\n%q\n%q", got, prep.Content())
	}

	signed, err := f.protector.Sign(ctx, []byte(statement), Options{})
	if err != nil {
		t.Fatal(err)
	}
	content, _, sig := parts(t, signed)
	contentFile, sigFile := write(t, filepath.Join(dir, "content"), content), write(t, filepath.Join(dir, "content.asc"), sig)
	if _, stderr, err := rnp("--verify", sigFile, "--source", contentFile); err != nil || !bytes.Contains(stderr, []byte("Good signature")) {
		t.Fatalf("rnp --verify: %v\n%s", err, stderr)
	}
	write(t, contentFile, bytes.Replace(content, []byte("1 234,56"), []byte("9 234,56"), 1))
	if _, stderr, err := rnp("--verify", sigFile, "--source", contentFile); err == nil || bytes.Contains(stderr, []byte("Good signature")) {
		t.Fatalf("rnp accepted tampered content: %v\n%s", err, stderr)
	}
}
