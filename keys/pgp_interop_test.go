package keys

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/internal/interop"
)

// gnupg is a GnuPG 2.2 instance with its own home directory; its agent is stopped at cleanup.
type gnupg struct {
	t    *testing.T
	home string
}

func newGnuPG(t *testing.T) *gnupg {
	t.Helper()
	interop.Tool(t, "gpg")
	home := t.TempDir()
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Stop the agent this home started (by its home directory, not by process name).
		if path, err := exec.LookPath("gpgconf"); err == nil {
			_ = exec.Command(path, "--homedir", home, "--kill", "gpg-agent").Run()
		}
	})
	return &gnupg{t: t, home: home}
}

func (g *gnupg) args(args []string) []string {
	return append([]string{"--homedir", g.home, "--batch", "--pinentry-mode", "loopback"}, args...)
}

// run runs gpg and fails the test if it fails.
func (g *gnupg) run(stdin []byte, args ...string) []byte {
	g.t.Helper()
	return interop.Run(g.t, stdin, "gpg", g.args(args)...)
}

// fingerprint returns the fingerprint of the first key gpg lists for uid.
func (g *gnupg) fingerprint(uid string) string {
	g.t.Helper()
	out := g.run(nil, "--with-colons", "--list-keys", uid)
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 {
			return f[9]
		}
	}
	g.t.Fatalf("gpg lists no fingerprint for %s:\n%s", uid, out)
	return ""
}

func importAndLookup(t *testing.T, dir DataDir, armored []byte, addr string, now time.Time) (*openpgp.Entity, error) {
	t.Helper()
	if _, err := dir.Import(armored, ImportOptions{}); err != nil {
		t.Fatalf("import gpg's key: %v", err)
	}
	d, err := dir.Directory(WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	return d.LookupPGP(addr)
}

// TestPGPInteropGnuPGRecipient takes a customer's key through its life in real GnuPG 2.2: created
// sign-only, given an encryption subkey, a second user ID that is then revoked, an expiry, and
// finally revoked with the revocation certificate gpg wrote at creation. After each step the key
// gpg exports is imported and the directory must judge it as gpg does.
func TestPGPInteropGnuPGRecipient(t *testing.T) {
	g := newGnuPG(t)
	dir := DataDir(t.TempDir())
	const addr = "carol@example.org"
	g.run(nil, "--passphrase", "", "--quick-gen-key", "Carol <carol@example.org>", "rsa2048", "default", "never")
	fpr := g.fingerprint(addr)
	export := func() []byte { return g.run(nil, "--export", "--armor", fpr) }
	// gpg dates a signature a second after the one it supersedes, so when steps follow each other
	// within a second its newest signatures lie in the future: judge usability a little later. The
	// revocations below are judged at the present, as they must count whatever their date.
	soon := func() time.Time { return time.Now().Add(3 * time.Second) }

	// gpg 2.2 with an explicit algorithm makes a primary key that signs and certifies, nothing else.
	if _, err := importAndLookup(t, dir, export(), addr, time.Now()); !errors.Is(err, ErrNoEncryptionKey) {
		t.Fatalf("sign-only gpg key: got %v, want ErrNoEncryptionKey", err)
	}

	g.run(nil, "--passphrase", "", "--quick-add-key", fpr, "rsa2048", "encr", "never")
	key, err := importAndLookup(t, dir, export(), addr, soon())
	if err != nil {
		t.Fatalf("gpg key with encryption subkey: %v", err)
	}
	if pgpFingerprint(key) != fpr {
		t.Fatalf("directory fingerprint %s, gpg says %s", pgpFingerprint(key), fpr)
	}

	g.run(nil, "--passphrase", "", "--quick-add-uid", fpr, "Carol at work <carol@work.example>")
	if _, err := importAndLookup(t, dir, export(), "carol@work.example", soon()); err != nil {
		t.Fatalf("user ID added by gpg: %v", err)
	}
	g.run(nil, "--passphrase", "", "--quick-revoke-uid", fpr, "Carol at work <carol@work.example>")
	if _, err := importAndLookup(t, dir, export(), "carol@work.example", time.Now()); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("user ID revoked by gpg: got %v, want it no longer indexed (ErrNoCertificate)", err)
	}
	if _, err := importAndLookup(t, dir, export(), addr, soon()); err != nil {
		t.Fatalf("revoking one user ID must leave the other: %v", err)
	}

	// gpg sets the expiry on the primary key and (with '*') every subkey; judge it two days later.
	g.run(nil, "--passphrase", "", "--quick-set-expire", fpr, "1d")
	g.run(nil, "--passphrase", "", "--quick-set-expire", fpr, "1d", "*")
	if _, err := importAndLookup(t, dir, export(), addr, soon()); err != nil {
		t.Fatalf("key expiring tomorrow is usable today: %v", err)
	}
	if _, err := importAndLookup(t, dir, export(), addr, time.Now().Add(48*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("key set to expire by gpg, two days later: got %v, want ErrExpired", err)
	}

	// gpg 2.2 stores a revocation certificate for every key it creates, defused with a leading ':'.
	rev, err := os.ReadFile(filepath.Join(g.home, "openpgp-revocs.d", fpr+".rev"))
	if err != nil {
		t.Fatal(err)
	}
	rev = bytes.Replace(rev, []byte(":-----BEGIN PGP PUBLIC KEY BLOCK-----"), []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----"), 1)
	g.run(rev, "--import")
	if out := g.run(nil, "--with-colons", "--list-keys", fpr); !bytes.Contains(out, []byte("pub:r:")) {
		t.Fatalf("gpg does not consider the key revoked:\n%s", out)
	}
	_, err = importAndLookup(t, dir, export(), addr, time.Now())
	if !errors.Is(err, ErrRevoked) {
		t.Fatalf("key revoked in gpg: got %v, want ErrRevoked", err)
	}
	var rerr *RecipientError
	if !errors.As(err, &rerr) || len(rerr.Causes) != 1 || rerr.Causes[0].Serial != fpr {
		t.Fatalf("want a *RecipientError naming fingerprint %s: %v", fpr, err)
	}
}

// TestPGPInteropBankKeyIntoGnuPG exports the bank's key as `sealpost keys export pgp` does and
// imports it into GnuPG 2.2, which must list every sender address; gpg also imports the secret key
// with the passphrase from pgp.pass, and verifies a signature made with DataDir.PGPKey.
func TestPGPInteropBankKeyIntoGnuPG(t *testing.T) {
	g := newGnuPG(t)
	dir := DataDir(t.TempDir())
	senders := []string{"statements@bank.example", "otp@bank.example", "support@bank.example"}
	if err := dir.Init(senders); err != nil {
		t.Fatal(err)
	}
	pub, err := dir.Export("pgp")
	if err != nil {
		t.Fatal(err)
	}
	g.run(pub, "--import")
	bank, err := dir.PGPKey()
	if err != nil {
		t.Fatal(err)
	}
	out := string(g.run(nil, "--with-colons", "--list-keys", pgpFingerprint(bank)))
	for _, a := range senders {
		if !strings.Contains(out, "::sealpost bank signer <"+a+">::") {
			t.Fatalf("gpg does not list user ID for %s:\n%s", a, out)
		}
	}
	if !strings.Contains(out, "pub:-:2048:1:") || !strings.Contains(out, ":e::") {
		t.Fatalf("gpg should see an RSA-2048 primary key and an encryption subkey:\n%s", out)
	}
	if strings.Contains(string(g.run(nil, "--with-colons", "--list-secret-keys")), "sec:") {
		t.Fatal("the public export gave gpg a secret key")
	}

	// gpg reads the S2K and cipher sealpost protects the secret key with.
	g.run(nil, "--passphrase-file", filepath.Join(string(dir), "pgp.pass"), "--import", filepath.Join(string(dir), "pgp.key"))
	if !strings.Contains(string(g.run(nil, "--with-colons", "--list-secret-keys")), "sec:") {
		t.Fatal("gpg did not import the bank's secret key")
	}
	// The passphrase is random, so its S2K hashes 65,536 bytes (not go-crypto's 16 MiB), and gpg
	// unlocks the key with it: it signs, and verifies its own signature.
	if packets := string(g.run(nil, "--list-packets", filepath.Join(string(dir), "pgp.key"))); strings.Count(packets, "protect count: 65536") != 2 {
		t.Fatalf("the secret keys' S2K:\n%s", packets)
	}
	signed := g.run([]byte("signed by gpg with the bank's key\n"), "--passphrase-file", filepath.Join(string(dir), "pgp.pass"), "--local-user", "statements@bank.example", "--clearsign")
	if out := string(g.run(signed, "--status-fd", "1", "--verify")); !strings.Contains(out, "[GNUPG:] GOODSIG") {
		t.Fatalf("gpg cannot sign with the bank's secret key:\n%s", out)
	}

	var sig bytes.Buffer
	msg := []byte("Your statement is ready.\r\n")
	if err := openpgp.ArmoredDetachSign(&sig, bank, bytes.NewReader(msg), PGPConfig()); err != nil {
		t.Fatal(err)
	}
	sigFile, msgFile := filepath.Join(t.TempDir(), "sig.asc"), filepath.Join(t.TempDir(), "msg")
	os.WriteFile(sigFile, sig.Bytes(), 0o644)
	os.WriteFile(msgFile, msg, 0o644)
	status := g.run(nil, "--status-fd", "1", "--verify", sigFile, msgFile)
	if !bytes.Contains(status, []byte("[GNUPG:] GOODSIG")) {
		t.Fatalf("gpg does not verify the bank key's signature:\n%s", status)
	}
}

// TestLoadPGPKeyFromGnuPG loads a passphrase-protected secret key exported by GnuPG 2.2, with the
// passphrase from a file and from an environment variable.
func TestLoadPGPKeyFromGnuPG(t *testing.T) {
	g := newGnuPG(t)
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	if err := os.WriteFile(passFile, []byte("correct horse battery\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g.run(nil, "--passphrase-file", passFile, "--quick-gen-key", "Bank <statements@bank.example>", "rsa2048", "sign", "never")
	fpr := g.fingerprint("statements@bank.example")
	armored := g.run(nil, "--passphrase-file", passFile, "--export-secret-keys", "--armor", fpr)
	if !bytes.Contains(armored, []byte("PGP PRIVATE KEY BLOCK")) {
		t.Fatalf("gpg exported no secret key:\n%s", armored)
	}
	keyFile := filepath.Join(dir, "bank.asc")
	if err := os.WriteFile(keyFile, armored, 0o600); err != nil {
		t.Fatal(err)
	}
	ents, err := ParsePGPKeys(armored)
	if err != nil || !ents[0].PrivateKey.Encrypted {
		t.Fatalf("gpg's export should be passphrase-protected (%v)", err)
	}

	t.Setenv("SEALPOST_TEST_PGP_PASS", "correct horse battery")
	for name, secret := range map[string]Secret{"file": {File: passFile}, "env": {Env: "SEALPOST_TEST_PGP_PASS"}} {
		key, err := LoadPGPKey(keyFile, secret)
		if err != nil {
			t.Fatalf("passphrase from %s: %v", name, err)
		}
		if pgpFingerprint(key) != fpr || key.PrivateKey.Encrypted {
			t.Fatalf("passphrase from %s: wrong or still encrypted key", name)
		}
	}
	t.Setenv("SEALPOST_TEST_PGP_PASS", "wrong")
	if _, err := LoadPGPKey(keyFile, Secret{Env: "SEALPOST_TEST_PGP_PASS"}); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: got %v, want ErrWrongPassphrase", err)
	}
}
