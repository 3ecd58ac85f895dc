package pgp

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/mime"
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

	out, err := f.protector.ProtectMessage(ctx, []byte(statement), f.customers[:1], Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, armored := parts(t, out)
	msg := write(t, filepath.Join(dir, "msg.asc"), armored)
	plainFile := filepath.Join(dir, "plain")
	if _, stderr, err := rnp("--decrypt", msg, "--output", plainFile); err != nil || !bytes.Contains(stderr, []byte("Good signature")) {
		t.Fatalf("rnp --decrypt: %v\n%s", err, stderr)
	}
	prep, err := mime.Prepare([]byte(statement), mime.Options{Encrypted: true})
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

	signed, err := f.protector.SignMessage(ctx, []byte(statement), Options{})
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

// TestInspectRNP: what Thunderbird's RNP writes as the customer's reply — signed and encrypted to the
// bank, detached-signed, encrypted only — is taken apart with the signature found and the content
// intact.
func TestInspectRNP(t *testing.T) {
	e := newInboundEnv(t)
	interop.Tool(t, "rnp")
	dir := t.TempDir()
	content := write(t, filepath.Join(dir, "entity"), []byte(replyEntity))
	ring := write(t, filepath.Join(dir, "ring.asc"), append(armoredKey(t, e.alice, true), armoredKey(t, e.f.bank, false)...))
	bankFP := fmt.Sprintf("%X", e.f.bank.PrimaryKey.Fingerprint)
	aliceFP := fmt.Sprintf("%X", e.alice.PrimaryKey.Fingerprint)
	rnp := func(out string, args ...string) []byte {
		t.Helper()
		interop.Run(t, nil, "rnp", append([]string{"--homedir", dir, "--keyfile", ring, "--password", "", "--armor", "--output", out, "--overwrite"}, args...)...)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	enc := rnp(filepath.Join(dir, "enc.asc"), "--encrypt", "--sign", "-r", bankFP, "-u", aliceFP, content)
	e.assertClean(t, e.inspect(t, reply(encryptedEntity(enc))), layerSEIPD1, layerOnePass)

	sig := rnp(filepath.Join(dir, "entity.asc"), "--sign", "--detach", "-u", aliceFP, content)
	e.assertClean(t, e.inspect(t, reply(signedEntity([]byte(replyEntity), sig, "pgp-sha256"))), layerSigned)

	plain := rnp(filepath.Join(dir, "plain.asc"), "--encrypt", "-r", bankFP, content)
	if in := e.inspect(t, reply(encryptedEntity(plain))); in.Signed || !in.Encrypted || !bytes.Equal(in.Content, []byte(replyEntity)) {
		t.Fatalf("rnp encrypt-only: signed=%v encrypted=%v content %q", in.Signed, in.Encrypted, in.Content)
	}
}

// TestRNPReadsHeaderProtection: what Thunderbird's RNP decrypts of an OTP with header protection is
// the payload with the real Subject, marked both ways (hp=cipher, protected-headers="v1") and
// with the legacy display, while the outer header shows only "[...]".
func TestRNPReadsHeaderProtection(t *testing.T) {
	interop.Tool(t, "rnp")
	f := getFixture(t)
	dir := t.TempDir()
	ring := write(t, filepath.Join(dir, "ring.asc"), append(armoredKey(t, f.customers[0], true), armoredKey(t, f.bank, false)...))
	otp := "From: statements@bank.example\r\nTo: Alice <alice@example.com>\r\nSubject: Your code is 493817\r\nX-OTP: 493817\r\n\r\nCode 493817\r\n"
	out, err := f.protector.ProtectMessage(ctx, []byte(otp), f.customers[:1], Options{HeaderProtection: true})
	if err != nil {
		t.Fatal(err)
	}
	outer := out[:bytes.Index(out, []byte("\r\n\r\n"))]
	if bytes.Contains(outer, []byte("493817")) || !bytes.Contains(outer, []byte("Subject: [...]")) {
		t.Fatalf("outer header:\n%s", outer)
	}
	_, _, armored := parts(t, out)
	msg := write(t, filepath.Join(dir, "otp.asc"), armored)
	plainFile := filepath.Join(dir, "otp")
	if _, stderr, err := interop.Try(t, nil, "rnp", "--homedir", dir, "--keyfile", ring, "--password", "", "--decrypt", msg, "--output", plainFile); err != nil {
		t.Fatalf("rnp --decrypt: %v\n%s", err, stderr)
	}
	plain, err := os.ReadFile(plainFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hp=cipher", `protected-headers="v1"`, "Subject: Your code is 493817\r\n", "X-OTP: 493817\r\n", "hp-legacy-display"} {
		if !bytes.Contains(plain, []byte(want)) {
			t.Errorf("rnp's plaintext lacks %q:\n%s", want, plain)
		}
	}
}
