package inbound

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/pgp"
)

// These replies nest one protocol's layers inside the other's, made by the customer's tooling
// (openssl cms, gpg, sealpost's own PGP/MIME protector as a customer's client): the pipeline walks
// them once and verifies the inner layer whatever its protocol.

const nestedText = "From: alice@customer.example\r\nTo: support@bank.example\r\nSubject: Re: Your card\r\n" +
	"Date: Sun, 22 Nov 2026 12:00:00 +0000\r\nMessage-ID: <nested@customer.example>\r\n\r\nPlease block my card ending 4821.\r\n"

// pgpSigned is nestedText as alice's OpenPGP client signs it (multipart/signed, RFC 3156).
func pgpSigned(t *testing.T) []byte {
	t.Helper()
	p, err := pgp.NewProtector(corpusPGP(t, "alice-pgp.asc"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.SignMessage(context.Background(), []byte(nestedText), pgp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// gpgEncrypted frames entity as gpg encrypts it to the bank's OpenPGP key: multipart/encrypted,
// not signed.
func gpgEncrypted(t *testing.T, entity []byte) []byte {
	t.Helper()
	interop.Tool(t, "gpg")
	home := t.TempDir()
	gpg := func(stdin []byte, args ...string) []byte {
		return interop.Run(t, stdin, "gpg", append([]string{"--homedir", home, "--batch", "--quiet", "--trust-model", "always"}, args...)...)
	}
	gpg(nil, "--import", filepath.Clean(corpusKey(t, "bank-pgp.pub.asc")))
	bank := corpusPGP(t, "bank-pgp.pub.asc")
	armored := gpg(mime.ToCRLF(entity), "--encrypt", "--armor", "-r", strings.ToUpper(keyHex(bank)))
	return []byte("Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"gpg-b\"\r\n\r\n" +
		"--gpg-b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n" +
		"--gpg-b\r\nContent-Type: application/octet-stream\r\n\r\n" + string(mime.ToCRLF(armored)) + "\r\n--gpg-b--\r\n")
}

func keyHex(e *openpgp.Entity) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for _, c := range e.PrimaryKey.Fingerprint {
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func nestedReply(entity []byte) []byte {
	h, _, _ := strings.Cut(nestedText, "\r\n\r\n")
	return append([]byte(h+"\r\n"), mime.ToCRLF(entity)...)
}

func wantNested(t *testing.T, res *Result, method string, layers ...string) {
	t.Helper()
	v := res.Verdict
	if v.Status != StatusVerified || v.Method != method || v.Signer != "alice@customer.example" || res.Action != ActionDeliver {
		t.Fatalf("verdict %s, action %s, want verified by %s and delivered\n%s", v.Header(), res.Action, method, strings.Join(v.Details, "\n"))
	}
	if !slices.Equal(v.Layers, layers) {
		t.Fatalf("layers %q, want %q", v.Layers, layers)
	}
	if !strings.Contains(string(res.Message), "Please block my card ending 4821.") {
		t.Fatalf("the desk's message lost the text:\n%s", res.Message)
	}
}

// TestInboundSMIMEEnvelopedPGPSigned: openssl cms -encrypt (AES-256-CBC) around a PGP/MIME signed
// entity. The signature inside the CBC envelope is valid, so the reply is verified.
func TestInboundSMIMEEnvelopedPGPSigned(t *testing.T) {
	env := newCorpusEnv(t, Config{})
	interop.Tool(t, "openssl")
	enc := opensslEncrypt(t, pgpSigned(t), "bank", "-aes-256-cbc")
	res := env.evaluate(t, nestedReply(enc))
	wantNested(t, res, "pgp", "enveloped-data aes256-CBC", "pgp-signed")
	if v := res.Verdict; v.Encryption != "aes256-cbc" || v.Authenticated {
		t.Fatalf("encryption %q authenticated %v, want aes256-cbc unauthenticated", v.Encryption, v.Authenticated)
	}
}

// TestInboundPGPEncryptedSMIMESigned: gpg --encrypt around an openssl cms -sign entity.
func TestInboundPGPEncryptedSMIMESigned(t *testing.T) {
	env := newCorpusEnv(t, Config{})
	res := env.evaluate(t, nestedReply(gpgEncrypted(t, opensslSign(t, "alice"))))
	v := res.Verdict
	if len(v.Layers) != 2 || !strings.HasPrefix(v.Layers[0], "pgp-encrypted ") || v.Layers[1] != "signed-detached" {
		t.Fatalf("layers %q", v.Layers)
	}
	wantNested(t, res, "smime", v.Layers...)
	if !v.Authenticated || !strings.HasPrefix(v.Encryption, "seipd-") {
		t.Fatalf("encryption %q authenticated %v, want SEIPD", v.Encryption, v.Authenticated)
	}
	if ar := authResult(t, res); !strings.Contains(ar, "smime=pass") {
		t.Fatalf("Authentication-Results %q", ar)
	}
}

// TestInboundPGPSignedEncryptedAroundSMIMESigned: a triple wrap across protocols: alice's OpenPGP
// client signs and encrypts an S/MIME signed entity. Both signatures verify; the inner (S/MIME)
// one is the author's.
func TestInboundPGPSignedEncryptedAroundSMIMESigned(t *testing.T) {
	env := newCorpusEnv(t, Config{})
	p, err := pgp.NewProtector(corpusPGP(t, "alice-pgp.asc"))
	if err != nil {
		t.Fatal(err)
	}
	signed := nestedReply(opensslSign(t, "alice"))
	msg, err := p.ProtectMessage(context.Background(), signed, []*openpgp.Entity{corpusPGP(t, "bank-pgp.pub.asc")}, pgp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := env.evaluate(t, msg)
	v := res.Verdict
	if len(v.Layers) != 3 || v.Layers[1] != "pgp-onepass-signed" || v.Layers[2] != "signed-detached" {
		t.Fatalf("layers %q", v.Layers)
	}
	wantNested(t, res, "smime", v.Layers...)
}

// TestInboundNestedBadOuterSignature: gpg signs, with a key the bank does not know, a PGP/MIME
// multipart/signed around a good S/MIME signature: the unknown outer signer is not hidden behind
// the good inner one.
func TestInboundNestedBadOuterSignature(t *testing.T) {
	env := newCorpusEnv(t, Config{})
	interop.Tool(t, "gpg")
	home := t.TempDir()
	gpg := func(stdin []byte, args ...string) []byte {
		return interop.Run(t, stdin, "gpg", append([]string{"--homedir", home, "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	}
	gpg(nil, "--import", corpusKey(t, "mallory-pgp.asc"))
	signedPart := mime.ToCRLF(opensslSign(t, "alice"))
	sig := gpg(signedPart, "--detach-sign", "--armor", "--digest-algo", "SHA256")
	msg := nestedReply([]byte("Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; micalg=pgp-sha256; boundary=\"gpg-s\"\r\n\r\n" +
		"--gpg-s\r\n" + string(signedPart) + "\r\n--gpg-s\r\nContent-Type: application/pgp-signature\r\n\r\n" +
		string(mime.ToCRLF(sig)) + "\r\n--gpg-s--\r\n"))
	res := env.evaluate(t, msg)
	v := res.Verdict
	if v.Status != StatusFailed || !slices.Contains(v.Failures, FailUnknownKey) || res.Action != ActionQuarantine {
		t.Fatalf("verdict %s, action %s, want failed (unknown-key) and held", v.Header(), res.Action)
	}
	if v.Method != "smime" || !slices.Equal(v.Layers, []string{"pgp-signed", "signed-detached"}) {
		t.Fatalf("method %s layers %q, want the inner S/MIME signer under a pgp-signed layer", v.Method, v.Layers)
	}
}
