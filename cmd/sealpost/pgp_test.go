package main

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/smime"
)

// TestCLIOpenPGPRecipients: an OpenPGP key imported with keys import is used by protect; a message
// to an S/MIME and an OpenPGP customer becomes one message per method; timestamp extract hands
// openssl ts -verify the token and the signature value of each.
func TestCLIOpenPGPRecipients(t *testing.T) {
	data := t.TempDir()
	dir := keys.DataDir(data)
	if code, _, stderr := runCLI(t, "", "keys", "init", "-data", data); code != 0 {
		t.Fatal(stderr)
	}
	ca, _ := dir.Identity("ca")
	alice, err := ca.NewDevCustomer("alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	carol, err := keys.NewDevPGPKey("Carol", []string{"carol@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	carolPub, err := keys.EncodePGPPublicKeys(carol)
	if err != nil {
		t.Fatal(err)
	}
	files := t.TempDir()
	alicePEM := filepath.Join(files, "alice.pem")
	carolASC := filepath.Join(files, "carol.asc")
	os.WriteFile(alicePEM, keys.EncodeCertificates(alice.Certificate()), 0o644)
	os.WriteFile(carolASC, carolPub, 0o644)
	code, stdout, stderr := runCLI(t, "", "keys", "import", "-data", data, alicePEM, carolASC)
	if code != 0 || !strings.Contains(stdout, "OpenPGP key") || !strings.Contains(stdout, "usable") {
		t.Fatalf("import: %d %q %q", code, stdout, stderr)
	}
	if _, stdout, _ := runCLI(t, "", "keys", "list", "-data", data); !strings.Contains(stdout, "carol@example.org") || !strings.Contains(stdout, "OpenPGP") {
		t.Fatalf("list does not show the OpenPGP key:\n%s", stdout)
	}
	if code, stdout, _ := runCLI(t, "", "keys", "export", "-data", data, "pgp"); code != 0 || !strings.Contains(stdout, "BEGIN PGP PUBLIC KEY BLOCK") || strings.Contains(stdout, "PRIVATE") {
		t.Fatalf("export pgp: %d %q", code, stdout)
	}

	msg := "From: statements@bank.example\r\nTo: alice@example.com, carol@example.org\r\nSubject: Statement\r\n\r\nHello\r\n"
	base := []string{"protect", "-data", data, "-from", "statements@bank.example"}
	if code, stdout, stderr := runCLI(t, msg, append(base, "-to", "alice@example.com,carol@example.org")...); code != 2 || stdout != "" || !strings.Contains(stderr, "-outdir") {
		t.Fatalf("mixed recipients without -outdir: %d %q %q", code, stdout, stderr)
	}
	out := t.TempDir()
	if code, _, stderr := runCLI(t, msg, append(base, "-to", "alice@example.com,carol@example.org", "-outdir", out)...); code != 0 {
		t.Fatalf("mixed recipients: %s", stderr)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	smimeOut, _ := os.ReadFile(filepath.Join(out, "smime.eml"))
	if _, err := pipelinetest.InspectSMIME(smimeOut, smime.InboundOptions{Roots: roots, TSARoots: roots, Identities: []*keys.Identity{alice}}); err != nil {
		t.Fatalf("smime.eml: %v", err)
	}
	bank, err := dir.PGPKey()
	if err != nil {
		t.Fatal(err)
	}
	pgpOut, _ := os.ReadFile(filepath.Join(out, "pgp.eml"))
	o, err := pipelinetest.InspectPGP(pgpOut, pgp.InboundOptions{Decrypt: openpgp.EntityList{carol}, Signers: openpgp.EntityList{bank}, TSARoots: roots})
	if err != nil || o.Timestamp == nil {
		t.Fatalf("pgp.eml: %v", err)
	}

	// The bank's key from a file, its passphrase from the environment.
	t.Setenv("SEALPOST_TEST_PGP_PASS", strings.TrimSpace(string(must(os.ReadFile(filepath.Join(data, "pgp.pass"))))))
	if code, _, stderr := runCLI(t, msg, append(base, "-to", "carol@example.org", "-pgp-key", filepath.Join(data, "pgp.key"), "-pgp-pass-env", "SEALPOST_TEST_PGP_PASS")...); code != 0 {
		t.Fatalf("-pgp-key with -pgp-pass-env: %s", stderr)
	}
	t.Setenv("SEALPOST_TEST_PGP_PASS", "wrong")
	if code, stdout, stderr := runCLI(t, msg, append(base, "-to", "carol@example.org", "-pgp-key", filepath.Join(data, "pgp.key"), "-pgp-pass-env", "SEALPOST_TEST_PGP_PASS")...); code != 1 || stdout != "" || !strings.Contains(stderr, "passphrase") {
		t.Fatalf("wrong passphrase: %d, %d bytes, %q", code, len(stdout), stderr)
	}

	interop.Tool(t, "openssl")
	caFile := filepath.Join(files, "ca.pem")
	os.WriteFile(caFile, keys.EncodeCertificates(ca.Certificate()), 0o644)
	for _, prefer := range []string{"smime", "pgp"} {
		code, signed, stderr := runCLI(t, msg, append(base, "-sign-only", "-prefer", prefer)...)
		if code != 0 {
			t.Fatalf("sign-only %s: %s", prefer, stderr)
		}
		signedFile := filepath.Join(files, prefer+"-signed.eml")
		os.WriteFile(signedFile, []byte(signed), 0o644)
		exDir := t.TempDir()
		if code, stdout, stderr := runCLI(t, "", "timestamp", "extract", "-out", exDir, signedFile); code != 0 || !strings.Contains(stdout, "openssl ts -verify") {
			t.Fatalf("extract %s: %d %q %q", prefer, code, stdout, stderr)
		}
		interop.Run(t, nil, "openssl", "ts", "-verify", "-data", filepath.Join(exDir, "sigvalue.bin"), "-in", filepath.Join(exDir, "token.der"), "-token_in", "-CAfile", caFile)
	}
	if code, _, stderr := runCLI(t, "", "timestamp", "extract", "-out", t.TempDir(), filepath.Join(out, "pgp.eml")); code != 1 || !strings.Contains(stderr, "decrypt it first") {
		t.Fatalf("extract from an encrypted message should say to decrypt first: %d %q", code, stderr)
	}

	// The documented path for encrypted PGP/MIME: the customer's gpg unwraps the encryption layer,
	// sealpost extracts, openssl verifies.
	gpg := gnupgHome(t, carol)
	armored := armoredMessage(pgpOut)
	inner := filepath.Join(files, "inner.pgp")
	interop.Run(t, armored, "gpg", append(gpg, "--decrypt", "--unwrap", "-o", inner)...)
	exDir := t.TempDir()
	if code, _, stderr := runCLI(t, "", "timestamp", "extract", "-out", exDir, inner); code != 0 {
		t.Fatalf("extract from gpg --unwrap output: %s", stderr)
	}
	interop.Run(t, nil, "openssl", "ts", "-verify", "-data", filepath.Join(exDir, "sigvalue.bin"), "-in", filepath.Join(exDir, "token.der"), "-token_in", "-CAfile", caFile)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// gnupgHome makes a throw-away GnuPG home holding secret's secret key and the given public key
// blocks, and returns gpg's arguments for it; the agent is stopped at cleanup.
func gnupgHome(t *testing.T, secret *openpgp.Entity, public ...[]byte) []string {
	t.Helper()
	interop.Tool(t, "gpg")
	home, err := os.MkdirTemp("", "gpg") // short: the agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		interop.Try(t, nil, "gpgconf", "--homedir", home, "--kill", "all")
		os.RemoveAll(home)
	})
	args := []string{"--homedir", home, "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", "", "--status-fd", "2"}
	var sec bytes.Buffer
	w, _ := armor.Encode(&sec, openpgp.PrivateKeyType, nil)
	if err := secret.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for _, block := range append([][]byte{sec.Bytes()}, public...) {
		interop.Run(t, block, "gpg", append(args, "--import")...)
	}
	return args
}

// armoredMessage returns the armored OpenPGP message inside a PGP/MIME message.
func armoredMessage(msg []byte) []byte {
	start := bytes.Index(msg, []byte("-----BEGIN PGP MESSAGE-----"))
	end := bytes.Index(msg, []byte("-----END PGP MESSAGE-----"))
	if start < 0 || end < start {
		return nil
	}
	return msg[start : end+len("-----END PGP MESSAGE-----")]
}
