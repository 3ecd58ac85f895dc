package pgp

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
)

// gnupg is a throw-away GnuPG home with the given keys imported.
type gnupg struct {
	t    testing.TB
	home string
}

func newGnuPG(t testing.TB, keyBlocks ...[]byte) *gnupg {
	t.Helper()
	interop.Tool(t, "gpg")
	home, err := os.MkdirTemp("", "gpg") // short: the agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	g := &gnupg{t: t, home: home}
	t.Cleanup(func() {
		interop.Try(t, nil, "gpgconf", "--homedir", home, "--kill", "all")
		os.RemoveAll(home)
	})
	for _, k := range keyBlocks {
		g.run(k, "--import")
	}
	return g
}

// run runs gpg and fails the test on a non-zero exit.
func (g *gnupg) run(stdin []byte, args ...string) (stdout, stderr []byte) {
	g.t.Helper()
	out, errOut, err := g.try(stdin, args...)
	if err != nil {
		g.t.Fatalf("gpg %v: %v\n%s", args, err, errOut)
	}
	return out, errOut
}

func (g *gnupg) try(stdin []byte, args ...string) ([]byte, []byte, error) {
	g.t.Helper()
	base := []string{"--homedir", g.home, "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", "", "--status-fd", "2"}
	return interop.Try(g.t, stdin, "gpg", append(base, args...)...)
}

func keyID(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint[12:]))
}

func TestGnuPGAndSequoiaDecryptAndVerify(t *testing.T) {
	f := getFixture(t)
	for _, n := range []int{1, 3} {
		t.Run(map[int]string{1: "OneRecipient", 3: "ThreeRecipients"}[n], func(t *testing.T) {
			out, err := f.protector.ProtectMessage(ctx, []byte(statement), f.customers[:n], Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !mime.SignatureSafe(out) {
				t.Fatal("output is not 7-bit signature-safe")
			}
			first, firstBody, armored := parts(t, out)
			if !bytes.Contains(first, []byte("Content-Type: application/pgp-encrypted")) || !bytes.Equal(firstBody, []byte("Version: 1\r\n")) {
				t.Fatalf("first part is not the RFC 3156 version part: %q", first)
			}
			prep, err := mime.Prepare([]byte(statement), mime.Options{Encrypted: true})
			if err != nil {
				t.Fatal(err)
			}
			want := prep.Content()
			for i := 0; i < n; i++ {
				g := newGnuPG(t, armoredKey(t, f.bank, false), armoredKey(t, f.customers[i], true))
				plain, status := g.run(armored, "--decrypt")
				for _, s := range []string{"[GNUPG:] GOODSIG " + keyID(f.bank), "[GNUPG:] DECRYPTION_OKAY", "[GNUPG:] GOODMDC"} {
					if !bytes.Contains(status, []byte(s)) {
						t.Fatalf("gpg (recipient %d) did not report %q:\n%s", i, s, status)
					}
				}
				if !bytes.Equal(plain, want) {
					t.Fatalf("gpg plaintext differs from the signed payload:\n%q\n%q", plain, want)
				}

				dir := t.TempDir()
				msgFile := write(t, filepath.Join(dir, "msg.asc"), armored)
				recip := write(t, filepath.Join(dir, "recip.asc"), armoredKey(t, f.customers[i], true))
				signer := write(t, filepath.Join(dir, "bank.asc"), armoredKey(t, f.bank, false))
				sqOut := interop.Run(t, nil, "sq", "decrypt", "--recipient-key", recip, "--signer-cert", signer, msgFile)
				if !bytes.Equal(sqOut, want) {
					t.Fatalf("sq plaintext differs from the signed payload")
				}
			}
		})
	}
}

func TestGnuPGAndSequoiaVerifySignOnly(t *testing.T) {
	f := getFixture(t)
	out, err := f.protector.SignMessage(ctx, []byte(statement), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`micalg=pgp-sha256; protocol="application/pgp-signature"`)) {
		t.Fatalf("not RFC 3156 multipart/signed:\n%s", out[:400])
	}
	content, _, sig := parts(t, out)
	dir := t.TempDir()
	contentFile, sigFile := write(t, filepath.Join(dir, "content"), content), write(t, filepath.Join(dir, "sig.asc"), sig)
	g := newGnuPG(t, armoredKey(t, f.bank, false))
	if _, status := g.run(nil, "--verify", sigFile, contentFile); !bytes.Contains(status, []byte("[GNUPG:] GOODSIG "+keyID(f.bank))) {
		t.Fatalf("gpg --verify: %s", status)
	}
	signer := write(t, filepath.Join(dir, "bank.asc"), armoredKey(t, f.bank, false))
	interop.Run(t, nil, "sq", "verify", "--signer-cert", signer, "--detached", sigFile, contentFile)

	t.Run("TamperedContent", func(t *testing.T) {
		bad := bytes.Replace(content, []byte("1 234,56"), []byte("9 234,56"), 1)
		write(t, contentFile, bad)
		if _, status, err := g.try(nil, "--verify", sigFile, contentFile); err == nil || !bytes.Contains(status, []byte("[GNUPG:] BADSIG")) {
			t.Fatalf("gpg accepted tampered content: %v\n%s", err, status)
		}
		if _, _, err := interop.Try(t, nil, "sq", "verify", "--signer-cert", signer, "--detached", sigFile, contentFile); err == nil {
			t.Fatal("sq accepted tampered content")
		}
	})
}

// TestTamperedCiphertextFails flips one byte inside the encrypted data: GnuPG and Sequoia must both
// refuse (MDC), and release nothing as verified.
func TestTamperedCiphertextFails(t *testing.T) {
	f := getFixture(t)
	out, err := f.protector.ProtectMessage(ctx, []byte(statement), f.customers[:1], Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, armored := parts(t, out)
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		t.Fatal(err)
	}
	var bin bytes.Buffer
	bin.ReadFrom(block.Body)
	raw := bin.Bytes()
	// The middle of the message is ciphertext inside SEIPD's first chunk. (Bytes near the end can be
	// partial-length chunk headers: framing, outside what is encrypted and MDC-protected.)
	raw[len(raw)/2] ^= 0x01
	dir := t.TempDir()
	msgFile := write(t, filepath.Join(dir, "msg.pgp"), raw)
	g := newGnuPG(t, armoredKey(t, f.bank, false), armoredKey(t, f.customers[0], true))
	// gpg may still print GOODSIG when the flipped byte is outside the signed data (e.g. in the
	// unhashed timestamp notation); what counts is that the MDC fails and gpg fails the decryption.
	if gout, status, err := g.try(nil, "--decrypt", msgFile); err == nil || !bytes.Contains(status, []byte("[GNUPG:] DECRYPTION_FAILED")) {
		t.Fatalf("gpg accepted tampered ciphertext: %v\n%s\nstdout: %q", err, status, gout)
	}
	recip := write(t, filepath.Join(dir, "recip.asc"), armoredKey(t, f.customers[0], true))
	signer := write(t, filepath.Join(dir, "bank.asc"), armoredKey(t, f.bank, false))
	if out, _, err := interop.Try(t, nil, "sq", "decrypt", "--recipient-key", recip, "--signer-cert", signer, msgFile); err == nil || len(out) > 0 {
		t.Fatalf("sq accepted tampered ciphertext (%d bytes out)", len(out))
	}
	keyring := openpgp.EntityList{f.bank, f.customers[0]}
	if _, err := inspectVerified(bytes.Replace(out, armored, armorOf(t, raw), 1), InboundOptions{Decrypt: keyring, Signers: keyring, TSARoots: f.roots}); err == nil {
		t.Fatal("Open accepted tampered ciphertext")
	}
}

func armorOf(t testing.TB, raw []byte) []byte {
	var b bytes.Buffer
	w, _ := armor.Encode(&b, "PGP MESSAGE", nil)
	w.Write(raw)
	w.Close()
	return mime.ToCRLF(b.Bytes())
}

// TestTimestampTokenVerifiesWithOpenSSL extracts the token from the signature inside the encrypted
// part and has openssl ts -verify check it against the signature value.
func TestTimestampTokenVerifiesWithOpenSSL(t *testing.T) {
	interop.Tool(t, "openssl")
	f := getFixture(t)
	out, err := f.protector.ProtectMessage(ctx, []byte(statement), f.customers[:1], Options{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := inspectVerified(out, InboundOptions{Decrypt: openpgp.EntityList{f.bank, f.customers[0]}, Signers: openpgp.EntityList{f.bank, f.customers[0]}, TSARoots: f.roots})
	if err != nil {
		t.Fatal(err)
	}
	if o.Timestamp == nil || !o.Encrypted {
		t.Fatalf("Open: timestamp %v, encrypted %v", o.Timestamp, o.Encrypted)
	}
	value, _ := SignatureValue(o.Signature)
	dir := t.TempDir()
	data := write(t, filepath.Join(dir, "sigvalue.bin"), value)
	tok := write(t, filepath.Join(dir, "token.der"), TimestampToken(o.Signature))
	ca := write(t, filepath.Join(dir, "ca.pem"), keys.EncodeCertificates(f.ca.Certificate()))
	tsaPEM := write(t, filepath.Join(dir, "tsa.pem"), keys.EncodeCertificates(f.tsaID.Chain...))
	interop.Run(t, nil, "openssl", "ts", "-verify", "-data", data, "-in", tok, "-token_in", "-CAfile", ca, "-untrusted", tsaPEM)
	value[0] ^= 1
	write(t, data, value)
	if _, _, err := interop.Try(t, nil, "openssl", "ts", "-verify", "-data", data, "-in", tok, "-token_in", "-CAfile", ca, "-untrusted", tsaPEM); err == nil {
		t.Fatal("openssl accepted the token for another signature value")
	}
}
