package pgp

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/tsa"
)

// replyEntity is the MIME entity a customer's client signs and encrypts; replyHeader goes around
// the protected result, as clients do.
const replyEntity = "Content-Type: text/plain; charset=us-ascii\r\n" +
	"\r\n" +
	"Hello support,\r\n" +
	"please call me about my November statement.\r\n" +
	"Alice\r\n"

const replyHeader = "From: Alice <alice@example.com>\r\n" +
	"To: support@bank.example\r\n" +
	"Subject: Re: Your November statement\r\n" +
	"Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n" +
	"Message-ID: <pgp-reply-1@example.com>\r\n" +
	"MIME-Version: 1.0\r\n"

func reply(entity []byte) []byte { return append([]byte(replyHeader), entity...) }

// signedEntity frames content and an armored detached signature as RFC 3156 multipart/signed, the
// way Thunderbird does.
func signedEntity(content, sig []byte, micalg string) []byte {
	return []byte("Content-Type: multipart/signed; micalg=" + micalg + ";\r\n" +
		" protocol=\"application/pgp-signature\"; boundary=\"sig-b1\"\r\n\r\n" +
		"This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n" +
		"--sig-b1\r\n" + string(content) + "\r\n" +
		"--sig-b1\r\n" +
		"Content-Type: application/pgp-signature; name=\"OpenPGP_signature.asc\"\r\n" +
		"Content-Description: OpenPGP digital signature\r\n" +
		"Content-Disposition: attachment; filename=\"OpenPGP_signature.asc\"\r\n\r\n" +
		string(sig) + "\r\n--sig-b1--\r\n")
}

// encryptedEntity frames an armored OpenPGP message as RFC 3156 multipart/encrypted.
func encryptedEntity(armored []byte) []byte {
	return []byte("Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n" +
		" boundary=\"enc-b1\"\r\n\r\n" +
		"This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n" +
		"--enc-b1\r\n" +
		"Content-Type: application/pgp-encrypted\r\n" +
		"Content-Description: PGP/MIME version identification\r\n\r\n" +
		"Version: 1\r\n\r\n" +
		"--enc-b1\r\n" +
		"Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n" +
		"Content-Description: OpenPGP encrypted message\r\n" +
		"Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n" +
		string(armored) + "\r\n--enc-b1--\r\n")
}

// mixed puts part after a text part in an unsigned multipart/mixed.
func mixed(part []byte) []byte {
	return []byte("Content-Type: multipart/mixed; boundary=\"mix-b1\"\r\n\r\n" +
		"--mix-b1\r\nContent-Type: text/plain\r\n\r\nUnsigned text a relay added.\r\n" +
		"--mix-b1\r\n" + string(part) + "\r\n--mix-b1--\r\n")
}

// inboundEnv: Alice (customers[0]) replies to the bank, which decrypts with its own key and knows
// Alice's public key. GnuPG holds the bank's public key and Alice's and Carol's secret keys.
type inboundEnv struct {
	f     *fixture
	g     *gnupg
	alice *openpgp.Entity
	opts  InboundOptions
}

func newInboundEnv(t *testing.T) *inboundEnv {
	t.Helper()
	f := getFixture(t)
	g := newGnuPG(t, armoredKey(t, f.bank, false), armoredKey(t, f.customers[0], true), armoredKey(t, f.customers[2], true))
	return &inboundEnv{f: f, g: g, alice: f.customers[0], opts: InboundOptions{
		Decrypt:  openpgp.EntityList{f.bank},
		Signers:  openpgp.EntityList{f.customers[0]},
		TSARoots: f.roots,
		Arrival:  time.Now().Truncate(time.Second),
	}}
}

var gpgTrust = []string{"--trust-model", "always", "--armor"}

// gpgSignEncrypt: gpg --sign --encrypt, as signer, to the bank.
func (e *inboundEnv) gpgSignEncrypt(t *testing.T, signer *openpgp.Entity, content []byte, extra ...string) []byte {
	t.Helper()
	out, _ := e.g.run(content, append(append(gpgTrust, extra...), "--local-user", keyID(signer), "--recipient", keyID(e.f.bank), "--sign", "--encrypt")...)
	return out
}

// gpgEncrypt: gpg --encrypt to the given key (the bank's by default), unsigned.
func (e *inboundEnv) gpgEncrypt(t *testing.T, to *openpgp.Entity, content []byte, extra ...string) []byte {
	t.Helper()
	out, _ := e.g.run(content, append(append(gpgTrust, extra...), "--recipient", keyID(to), "--encrypt")...)
	return out
}

// gpgDetachSign: gpg --detach-sign --armor with the signer named by user.
func (e *inboundEnv) gpgDetachSign(t *testing.T, user string, content []byte, extra ...string) []byte {
	t.Helper()
	out, _ := e.g.run(content, append(append(gpgTrust, extra...), "--local-user", user, "--detach-sign")...)
	return out
}

func (e *inboundEnv) inspect(t *testing.T, msg []byte) *Inbound {
	t.Helper()
	in, err := Inspect(msg, e.opts)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	return in
}

func fingerprint(e *openpgp.Entity) string { return fmt.Sprintf("%X", e.PrimaryKey.Fingerprint) }

// assertClean checks every fact of a good reply signed by signer (Alice unless given), with
// exactly the given layers.
func (e *inboundEnv) assertClean(t *testing.T, in *Inbound, layers ...string) {
	t.Helper()
	e.assertSignedBy(t, in, e.alice, layers...)
}

func (e *inboundEnv) assertSignedBy(t *testing.T, in *Inbound, signer *openpgp.Entity, layers ...string) {
	t.Helper()
	if !in.Signed || in.SignatureErr != nil || in.KeyErr != nil || in.WeakAlgorithm != nil || in.TimestampErr != nil {
		t.Fatalf("not clean: signed=%v sig=%v key=%v weak=%v ts=%v", in.Signed, in.SignatureErr, in.KeyErr, in.WeakAlgorithm, in.TimestampErr)
	}
	if in.Signer != signer || in.Fingerprint != fingerprint(signer) {
		t.Fatalf("signer %v / %s, want %s", in.Signer, in.Fingerprint, fingerprint(signer))
	}
	if in.IssuerKeyID != signer.PrimaryKey.KeyId || !bytes.Equal(in.IssuerFingerprint, signer.PrimaryKey.Fingerprint) {
		t.Fatalf("issuer %016X / %X, want the primary key's", in.IssuerKeyID, in.IssuerFingerprint)
	}
	if in.Signature == nil || !strongHash(in.Signature.Hash) {
		t.Fatalf("signature %v, want SHA-256 or better", in.Signature)
	}
	if !in.CoversRoot {
		t.Fatal("CoversRoot false")
	}
	if !bytes.Equal(in.Content, []byte(replyEntity)) {
		t.Fatalf("content %q, want %q", in.Content, replyEntity)
	}
	if strings.Join(in.Layers, ",") != strings.Join(layers, ",") {
		t.Fatalf("layers %q, want %q", in.Layers, layers)
	}
	encrypted := strings.Contains(strings.Join(layers, ","), "pgp-encrypted")
	if in.Encrypted != encrypted || in.AEAD || (in.Cipher == "aes256") != encrypted {
		t.Fatalf("Encrypted %v AEAD %v Cipher %q, want encrypted=%v with aes256 and MDC", in.Encrypted, in.AEAD, in.Cipher, encrypted)
	}
	if in.Timestamp != nil || !in.SignedAt.Equal(e.opts.Arrival) {
		t.Fatalf("timestamp %v / SignedAt %v without a token", in.Timestamp, in.SignedAt)
	}
}

const (
	layerSEIPD1  = "pgp-encrypted seipd-v1 aes256"
	layerOnePass = "pgp-onepass-signed"
	layerSigned  = "pgp-signed"
)

// TestInspectGnuPG: the forms GnuPG (and Enigmail, which drives it) sends.
func TestInspectGnuPG(t *testing.T) {
	e := newInboundEnv(t)
	entity := []byte(replyEntity)
	detached := signedEntity(entity, e.gpgDetachSign(t, keyID(e.alice), entity), "pgp-sha256")
	tests := []struct {
		name   string
		msg    []byte
		layers []string
	}{
		{"SignAndEncrypt", reply(encryptedEntity(e.gpgSignEncrypt(t, e.alice, entity))), []string{layerSEIPD1, layerOnePass}},
		{"SignAndEncryptTextMode", reply(encryptedEntity(e.gpgSignEncrypt(t, e.alice, entity, "--textmode"))), []string{layerSEIPD1, layerOnePass}},
		{"SignAndEncryptUncompressed", reply(encryptedEntity(e.gpgSignEncrypt(t, e.alice, entity, "--compress-algo", "none"))), []string{layerSEIPD1, layerOnePass}},
		{"SignThenEncrypt", reply(encryptedEntity(e.gpgEncrypt(t, e.f.bank, detached))), []string{layerSEIPD1, layerSigned}},
		{"Signed", reply(detached), []string{layerSigned}},
		{"SignedLF", bytes.ReplaceAll(reply(detached), []byte("\r\n"), []byte("\n")), []string{layerSigned}},
		{"TripleWrap", reply(encryptedEntity(e.gpgSignEncrypt(t, e.alice, detached))), []string{layerSEIPD1, layerOnePass, layerSigned}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.assertClean(t, e.inspect(t, tt.msg), tt.layers...)
		})
	}

	t.Run("EncryptOnly", func(t *testing.T) {
		in := e.inspect(t, reply(encryptedEntity(e.gpgEncrypt(t, e.f.bank, entity))))
		if in.Signed || in.SignatureErr != nil || in.Signer != nil || in.Signature != nil || in.IssuerKeyID != 0 || in.Fingerprint != "" {
			t.Fatalf("unsigned message reported signed: %+v", in)
		}
		if !in.Encrypted || in.AEAD || in.Cipher != "aes256" || !in.CoversRoot || !bytes.Equal(in.Content, entity) {
			t.Fatalf("encrypted=%v aead=%v cipher=%q root=%v content %q", in.Encrypted, in.AEAD, in.Cipher, in.CoversRoot, in.Content)
		}
		if strings.Join(in.Layers, ",") != layerSEIPD1 || !in.SignedAt.Equal(e.opts.Arrival) || in.KeyErr != nil || in.WeakAlgorithm != nil {
			t.Fatalf("layers %q SignedAt %v key %v weak %v", in.Layers, in.SignedAt, in.KeyErr, in.WeakAlgorithm)
		}
	})
}

// TestInspectSequoia: sq encrypt --signer-key and sq sign --detached.
func TestInspectSequoia(t *testing.T) {
	e := newInboundEnv(t)
	interop.Tool(t, "sq")
	dir := t.TempDir()
	content := write(t, filepath.Join(dir, "entity"), []byte(replyEntity))
	aliceKey := write(t, filepath.Join(dir, "alice.asc"), armoredKey(t, e.alice, true))
	bankCert := write(t, filepath.Join(dir, "bank.asc"), armoredKey(t, e.f.bank, false))

	enc := interop.Run(t, nil, "sq", "encrypt", "--recipient-cert", bankCert, "--signer-key", aliceKey, content)
	e.assertClean(t, e.inspect(t, reply(encryptedEntity(enc))), layerSEIPD1, layerOnePass)

	sig := interop.Run(t, nil, "sq", "sign", "--detached", "--signer-key", aliceKey, content)
	e.assertClean(t, e.inspect(t, reply(signedEntity([]byte(replyEntity), sig, "pgp-sha256"))), layerSigned)

	plain := interop.Run(t, nil, "sq", "encrypt", "--recipient-cert", bankCert, content)
	if in := e.inspect(t, reply(encryptedEntity(plain))); in.Signed || !in.Encrypted || !bytes.Equal(in.Content, []byte(replyEntity)) {
		t.Fatalf("sq encrypt-only: signed=%v encrypted=%v content %q", in.Signed, in.Encrypted, in.Content)
	}
}

// goCryptoReply builds what a customer's go-crypto (ProtonMail, OpenPGP.js-like) client sends:
// literal encrypted to the bank (SEIPD v1, AES-256), with a one-pass signature by signer over
// signedBytes when signer is not nil. literal and signedBytes differ only in tamper tests.
func goCryptoReply(t testing.TB, to, signer *openpgp.Entity, literal, signedBytes []byte) []byte {
	t.Helper()
	var sig bytes.Buffer
	if signer != nil {
		if err := openpgp.DetachSign(&sig, signer, bytes.NewReader(signedBytes), v4RSA); err != nil {
			t.Fatal(err)
		}
	}
	enc, ok := to.EncryptionKey(time.Now())
	if !ok {
		t.Fatal("no encryption key")
	}
	var b bytes.Buffer
	aw, err := armor.Encode(&b, "PGP MESSAGE", nil)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	if err := packet.SerializeEncryptedKey(aw, enc.PublicKey, packet.CipherAES256, key, nil); err != nil {
		t.Fatal(err)
	}
	w, err := packet.SerializeSymmetricallyEncrypted(aw, packet.CipherAES256, false, packet.CipherSuite{}, key, v4RSA)
	if err != nil {
		t.Fatal(err)
	}
	if signer != nil {
		sk, _ := signer.SigningKey(time.Now())
		ops := &packet.OnePassSignature{Version: 3, SigType: packet.SigTypeBinary, Hash: crypto.SHA256,
			PubKeyAlgo: sk.PublicKey.PubKeyAlgo, KeyId: sk.PublicKey.KeyId, IsLast: true}
		if err := ops.Serialize(w); err != nil {
			t.Fatal(err)
		}
	}
	lit, err := packet.SerializeLiteral(nopCloser{w}, true, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	lit.Write(literal)
	lit.Close()
	w.Write(sig.Bytes())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	aw.Close()
	return reply(encryptedEntity(b.Bytes()))
}

// sedReply builds a reply whose encrypted data is Symmetrically Encrypted Data (tag 9, no MDC):
// OpenPGP CFB with resync (RFC 4880 13.9) around a literal packet, the session key for to.
func sedReply(t testing.TB, to *openpgp.Entity, literal []byte) []byte {
	t.Helper()
	enc, _ := to.EncryptionKey(time.Now())
	key := make([]byte, 32)
	rand.Read(key)
	var bin bytes.Buffer
	if err := packet.SerializeEncryptedKey(&bin, enc.PublicKey, packet.CipherAES256, key, nil); err != nil {
		t.Fatal(err)
	}
	var lit bytes.Buffer
	lw, err := packet.SerializeLiteral(nopCloser{&lit}, true, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	lw.Write(literal)
	lw.Close()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	iv := make([]byte, block.BlockSize())
	rand.Read(iv)
	stream, prefix := packet.NewOCFBEncrypter(block, iv, packet.OCFBResync)
	ct := make([]byte, lit.Len())
	stream.XORKeyStream(ct, lit.Bytes())
	body := append(prefix, ct...)
	bin.Write(newPacketHeader(9, len(body)))
	bin.Write(body)
	return reply(encryptedEntity(armorOf(t, bin.Bytes())))
}

// armoredPart returns the binary OpenPGP message inside a reply built by encryptedEntity.
func armoredPart(t testing.TB, msg []byte) []byte {
	t.Helper()
	i := bytes.Index(msg, []byte("-----BEGIN PGP MESSAGE-----"))
	if i < 0 {
		t.Fatal("no armored message")
	}
	block, err := armor.Decode(bytes.NewReader(msg[i:]))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(block.Body); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestInspectGoCryptoReply: the one-pass form as go-crypto writes it, without GnuPG.
func TestInspectGoCryptoReply(t *testing.T) {
	f := getFixture(t)
	e := &inboundEnv{f: f, alice: f.customers[0], opts: InboundOptions{Decrypt: openpgp.EntityList{f.bank},
		Signers: openpgp.EntityList{f.customers[0]}, Arrival: time.Now()}}
	entity := []byte(replyEntity)
	e.assertClean(t, e.inspect(t, goCryptoReply(t, f.bank, e.alice, entity, entity)), layerSEIPD1, layerOnePass)

	t.Run("TamperedLiteral", func(t *testing.T) {
		// A valid MDC around a literal the signature does not cover: the signer must not be named.
		other := bytes.Replace(entity, []byte("call me"), []byte("wire 9000 EUR"), 1)
		in := e.inspect(t, goCryptoReply(t, f.bank, e.alice, other, entity))
		if !in.Signed || !errors.Is(in.SignatureErr, ErrSignature) || in.Signer != nil || in.Fingerprint != "" || in.KeyErr != nil {
			t.Fatalf("signed=%v sig=%v signer=%v", in.Signed, in.SignatureErr, in.Signer)
		}
		if in.IssuerKeyID != e.alice.PrimaryKey.KeyId || !bytes.Equal(in.Content, other) {
			t.Fatalf("issuer %016X content %q", in.IssuerKeyID, in.Content)
		}
	})
}

// TestInspectConcurrent: Inspect shares the key lists between calls and must not mutate them.
func TestInspectConcurrent(t *testing.T) {
	f := getFixture(t)
	entity := []byte(replyEntity)
	msg := goCryptoReply(t, f.bank, f.customers[0], entity, entity)
	opts := InboundOptions{Decrypt: openpgp.EntityList{f.bank}, Signers: openpgp.EntityList{f.customers[0]}}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			in, err := Inspect(msg, opts)
			if err == nil && (in.SignatureErr != nil || !bytes.Equal(in.Content, entity)) {
				err = fmt.Errorf("signature %v, content %q", in.SignatureErr, in.Content)
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestInspectSEIPDv2: AEAD (OCB) as go-crypto writes it for a key that advertises SEIPDv2, with
// the bank's timestamped signature inside; GnuPG 2.2 cannot produce it.
func TestInspectSEIPDv2(t *testing.T) {
	f := getFixture(t)
	cfg := *v4RSA
	cfg.AEADConfig = &packet.AEADConfig{}
	modern, err := openpgp.NewEntity("modern", "", "support@bank.example", &cfg)
	if err != nil {
		t.Fatal(err)
	}
	authority, err := tsa.NewAuthority(f.tsaID.Signer, f.tsaID.Chain)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProtector(f.bank, WithSEIPDv2(true), WithTimestamper(authority))
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.ProtectMessage(ctx, []byte(statement), []*openpgp.Entity{modern}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := InboundOptions{Decrypt: openpgp.EntityList{modern}, Signers: openpgp.EntityList{f.bank}, TSARoots: f.roots, Arrival: time.Now().Add(time.Hour)}
	in, err := Inspect(out, opts)
	if err != nil {
		t.Fatal(err)
	}
	prep, err := mime.Prepare([]byte(statement), mime.Options{Encrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	if !in.Encrypted || !in.AEAD || in.Cipher != "aes256" || strings.Join(in.Layers, ",") != "pgp-encrypted seipd-v2 aes256 ocb,"+layerOnePass {
		t.Fatalf("encrypted=%v aead=%v cipher=%q layers %q", in.Encrypted, in.AEAD, in.Cipher, in.Layers)
	}
	if in.SignatureErr != nil || in.Signer != f.bank || in.KeyErr != nil || in.TimestampErr != nil || !bytes.Equal(in.Content, prep.Content()) {
		t.Fatalf("sig=%v signer=%v key=%v ts=%v", in.SignatureErr, in.Signer, in.KeyErr, in.TimestampErr)
	}
	if in.Timestamp == nil || !in.SignedAt.Equal(in.Timestamp.Time) || in.SignedAt.Equal(opts.Arrival) {
		t.Fatalf("timestamp %v SignedAt %v", in.Timestamp, in.SignedAt)
	}

	t.Run("Tampered", func(t *testing.T) {
		raw := armoredPart(t, out)
		raw[len(raw)/2] ^= 0x01
		_, _, armored := parts(t, out)
		in, err := Inspect(bytes.Replace(out, armored, armorOf(t, raw), 1), opts)
		if !errors.Is(err, ErrDecrypt) || in != nil {
			t.Fatalf("got %v, %v; want ErrDecrypt and nothing released", in, err)
		}
	})
}

// TestInspectTimestamp: the bank's own timestamped multipart/signed (e.g. a statement forwarded
// back): a verified token dates the signature; an unverifiable one is reported, not fatal.
func TestInspectTimestamp(t *testing.T) {
	f := getFixture(t)
	out, err := f.protector.SignMessage(ctx, []byte(statement), Options{})
	if err != nil {
		t.Fatal(err)
	}
	arrival := time.Now().Add(24 * time.Hour)
	other, err := keys.NewDevCA("other CA")
	if err != nil {
		t.Fatal(err)
	}
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(other.Certificate())
	for _, tc := range []struct {
		name  string
		roots *x509.CertPool
		valid bool
	}{{"Verified", f.roots, true}, {"NoRoots", nil, false}, {"OtherRoots", otherRoots, false}} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := Inspect(out, InboundOptions{Signers: openpgp.EntityList{f.bank}, TSARoots: tc.roots, Arrival: arrival})
			if err != nil {
				t.Fatal(err)
			}
			if in.SignatureErr != nil || in.Signer != f.bank || strings.Join(in.Layers, ",") != layerSigned {
				t.Fatalf("sig=%v signer=%v layers %q", in.SignatureErr, in.Signer, in.Layers)
			}
			if tc.valid {
				if in.TimestampErr != nil || in.Timestamp == nil || !in.SignedAt.Equal(in.Timestamp.Time) || time.Since(in.SignedAt) > time.Minute {
					t.Fatalf("timestamp %v err %v SignedAt %v", in.Timestamp, in.TimestampErr, in.SignedAt)
				}
			} else if in.TimestampErr == nil || in.Timestamp != nil || !in.SignedAt.Equal(arrival) {
				t.Fatalf("unverifiable token: err %v timestamp %v SignedAt %v", in.TimestampErr, in.Timestamp, in.SignedAt)
			}
		})
	}
}

// copyEntity returns a private copy of e (with its secret keys) to add revocations to.
func copyEntity(t *testing.T, e *openpgp.Entity) *openpgp.Entity {
	t.Helper()
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armoredKey(t, e, true)))
	if err != nil || len(el) != 1 {
		t.Fatalf("copy key: %v", err)
	}
	return el[0]
}

// TestInspectKeyValidity: the signer key is judged at SignedAt, revocations whatever their date.
func TestInspectKeyValidity(t *testing.T) {
	e := newInboundEnv(t)
	entity := []byte(replyEntity)
	aliceSigned := reply(signedEntity(entity, e.gpgDetachSign(t, keyID(e.alice), entity), "pgp-sha256"))
	check := func(t *testing.T, msg []byte, signers openpgp.EntityList, arrival time.Time, roots *x509.CertPool, want error) *Inbound {
		t.Helper()
		in, err := Inspect(msg, InboundOptions{Signers: signers, TSARoots: roots, Arrival: arrival})
		if err != nil {
			t.Fatal(err)
		}
		if in.SignatureErr != nil || in.Signer == nil {
			t.Fatalf("signature: %v (signer %v)", in.SignatureErr, in.Signer)
		}
		if want == nil && in.KeyErr != nil || want != nil && !errors.Is(in.KeyErr, want) {
			t.Fatalf("KeyErr %v, want %v", in.KeyErr, want)
		}
		return in
	}
	now := time.Now()

	t.Run("Expired", func(t *testing.T) {
		cfg := *v4RSA
		cfg.KeyLifetimeSecs = 24 * 3600
		dora, err := openpgp.NewEntity("Dora", "", "dora@example.com", &cfg)
		if err != nil {
			t.Fatal(err)
		}
		e.g.run(armoredKey(t, dora, true), "--import")
		msg := reply(signedEntity(entity, e.gpgDetachSign(t, keyID(dora), entity), "pgp-sha256"))
		now := time.Now()
		check(t, msg, openpgp.EntityList{dora}, now, nil, nil)
		check(t, msg, openpgp.EntityList{dora}, now.Add(48*time.Hour), nil, keys.ErrExpired)
		check(t, msg, openpgp.EntityList{dora}, now.Add(-time.Hour), nil, keys.ErrNotYetValid)

		// A sealpost timestamp token dates the signature before the expiry.
		authority, err := tsa.NewAuthority(e.f.tsaID.Signer, e.f.tsaID.Chain)
		if err != nil {
			t.Fatal(err)
		}
		p, err := NewProtector(dora, WithTimestamper(authority))
		if err != nil {
			t.Fatal(err)
		}
		stamped, err := p.SignMessage(ctx, []byte("From: dora@example.com\r\nTo: support@bank.example\r\nSubject: x\r\n\r\nHello\r\n"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if in := check(t, stamped, openpgp.EntityList{dora}, now.Add(48*time.Hour), e.f.roots, nil); in.Timestamp == nil {
			t.Fatal("no timestamp")
		}
		check(t, stamped, openpgp.EntityList{dora}, now.Add(48*time.Hour), nil, keys.ErrExpired)
	})

	t.Run("Revoked", func(t *testing.T) {
		revoked := copyEntity(t, e.alice)
		if err := revoked.RevokeKey(packet.KeyRetired, "retired", nil); err != nil {
			t.Fatal(err)
		}
		check(t, aliceSigned, openpgp.EntityList{revoked}, now.Add(time.Minute), nil, keys.ErrRevoked)
	})

	t.Run("RevokedFutureDated", func(t *testing.T) {
		revoked := copyEntity(t, e.alice)
		later := &packet.Config{Time: func() time.Time { return now.Add(24 * time.Hour) }}
		if err := revoked.RevokeKey(packet.KeySuperseded, "superseded", later); err != nil {
			t.Fatal(err)
		}
		if revoked.Revoked(now) {
			t.Fatal("go-crypto now honours future-dated revocations: the explicit check may be redundant")
		}
		check(t, aliceSigned, openpgp.EntityList{revoked}, now, nil, keys.ErrRevoked)
	})

	t.Run("SigningSubkey", func(t *testing.T) {
		erin, err := openpgp.NewEntity("Erin", "", "erin@example.com", v4RSA)
		if err != nil {
			t.Fatal(err)
		}
		if err := erin.AddSigningSubkey(v4RSA); err != nil {
			t.Fatal(err)
		}
		e.g.run(armoredKey(t, erin, true), "--import")
		msg := reply(signedEntity(entity, e.gpgDetachSign(t, keyID(erin), entity), "pgp-sha256"))
		erin = copyEntity(t, erin) // as gpg saw it: SerializePrivate re-signs the bindings
		now := time.Now()
		in := check(t, msg, openpgp.EntityList{erin}, now, nil, nil)
		sub := erin.Subkeys[len(erin.Subkeys)-1]
		if in.IssuerKeyID != sub.PublicKey.KeyId || in.Fingerprint != fingerprint(erin) || in.Signer != erin {
			t.Fatalf("issuer %016X fingerprint %s, want subkey %016X and primary %s", in.IssuerKeyID, in.Fingerprint, sub.PublicKey.KeyId, fingerprint(erin))
		}
		if err := erin.RevokeSubkey(&erin.Subkeys[len(erin.Subkeys)-1], packet.KeyCompromised, "lost", nil); err != nil {
			t.Fatal(err)
		}
		check(t, msg, openpgp.EntityList{erin}, now.Add(time.Minute), nil, keys.ErrRevoked)
	})

	t.Run("CannotSign", func(t *testing.T) {
		// A signature made with Alice's encryption subkey: the maths holds, the key may not sign.
		sk := e.alice.Subkeys[0]
		sig := &packet.Signature{Version: 4, SigType: packet.SigTypeBinary, PubKeyAlgo: sk.PublicKey.PubKeyAlgo,
			Hash: crypto.SHA256, CreationTime: now, IssuerKeyId: &sk.PublicKey.KeyId, IssuerFingerprint: sk.PublicKey.Fingerprint}
		h, err := sig.PrepareSign(nil)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(entity)
		if err := sig.Sign(h, sk.PrivateKey, nil); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		aw, _ := armor.Encode(&b, "PGP SIGNATURE", nil)
		sig.Serialize(aw)
		aw.Close()
		in := check(t, reply(signedEntity(entity, b.Bytes(), "pgp-sha256")), openpgp.EntityList{e.alice}, now, nil, keys.ErrNoSigningKey)
		if in.Fingerprint != fingerprint(e.alice) {
			t.Fatalf("fingerprint %s", in.Fingerprint)
		}
	})
}

// TestInspectReportsWeakAlgorithms: SHA-1 and RSA-1024 signatures verify but are reported.
func TestInspectReportsWeakAlgorithms(t *testing.T) {
	e := newInboundEnv(t)
	entity := []byte(replyEntity)

	t.Run("SHA1", func(t *testing.T) {
		for _, msg := range [][]byte{
			reply(signedEntity(entity, e.gpgDetachSign(t, keyID(e.alice), entity, "--digest-algo", "SHA1"), "pgp-sha1")),
			reply(encryptedEntity(e.gpgSignEncrypt(t, e.alice, entity, "--digest-algo", "SHA1"))),
		} {
			in := e.inspect(t, msg)
			if in.SignatureErr != nil || in.Signer != e.alice || in.WeakAlgorithm == nil || !strings.Contains(in.WeakAlgorithm.Error(), "SHA-1") {
				t.Fatalf("sig=%v signer=%v weak=%v", in.SignatureErr, in.Signer, in.WeakAlgorithm)
			}
		}
	})

	t.Run("RSA1024", func(t *testing.T) {
		e.g.run(nil, "--quick-generate-key", "Weak <weak@example.com>", "rsa1024", "sign", "never")
		pub, _ := e.g.run(nil, "--armor", "--export", "weak@example.com")
		weak, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(pub))
		if err != nil {
			t.Fatal(err)
		}
		msg := reply(signedEntity(entity, e.gpgDetachSign(t, "weak@example.com", entity), "pgp-sha256"))
		in, err := Inspect(msg, InboundOptions{Signers: weak})
		if err != nil {
			t.Fatal(err)
		}
		if in.SignatureErr != nil || in.Signer != weak[0] || in.WeakAlgorithm == nil || !strings.Contains(in.WeakAlgorithm.Error(), "RSA-1024") {
			t.Fatalf("sig=%v signer=%v weak=%v", in.SignatureErr, in.Signer, in.WeakAlgorithm)
		}
	})
}

// TestInspectSignatureFacts: signatures that do not verify, and where they sit, are facts.
func TestInspectSignatureFacts(t *testing.T) {
	e := newInboundEnv(t)
	entity := []byte(replyEntity)
	detached := signedEntity(entity, e.gpgDetachSign(t, keyID(e.alice), entity), "pgp-sha256")
	carol := e.f.customers[2]

	t.Run("TamperedContent", func(t *testing.T) {
		bad := bytes.Replace(detached, []byte("call me"), []byte("wire 9000 EUR"), 1)
		in := e.inspect(t, reply(bad))
		if !in.Signed || !errors.Is(in.SignatureErr, ErrSignature) || errors.Is(in.SignatureErr, ErrUnknownKey) || in.Signer != nil || in.Fingerprint != "" {
			t.Fatalf("signed=%v sig=%v signer=%v", in.Signed, in.SignatureErr, in.Signer)
		}
		if in.IssuerKeyID != e.alice.PrimaryKey.KeyId || !bytes.Contains(in.Content, []byte("wire 9000 EUR")) {
			t.Fatalf("issuer %016X content %q", in.IssuerKeyID, in.Content)
		}
	})

	t.Run("UnknownKey", func(t *testing.T) {
		for name, msg := range map[string][]byte{
			"Detached": reply(detached),
			"OnePass":  reply(encryptedEntity(e.gpgSignEncrypt(t, e.alice, entity))),
		} {
			in, err := Inspect(msg, InboundOptions{Decrypt: e.opts.Decrypt, Signers: openpgp.EntityList{carol}})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !in.Signed || !errors.Is(in.SignatureErr, ErrUnknownKey) || errors.Is(in.SignatureErr, ErrSignature) || in.Signer != nil || in.Fingerprint != "" {
				t.Fatalf("%s: signed=%v sig=%v signer=%v", name, in.Signed, in.SignatureErr, in.Signer)
			}
			if in.IssuerKeyID != e.alice.PrimaryKey.KeyId || !bytes.Equal(in.IssuerFingerprint, e.alice.PrimaryKey.Fingerprint) || in.KeyErr != nil {
				t.Fatalf("%s: issuer %016X / %X key %v", name, in.IssuerKeyID, in.IssuerFingerprint, in.KeyErr)
			}
		}
	})

	t.Run("InsideMultipartMixed", func(t *testing.T) {
		for name, tc := range map[string]struct {
			part   []byte
			layers []string
		}{
			"Signed":    {detached, []string{layerSigned}},
			"Encrypted": {encryptedEntity(e.gpgSignEncrypt(t, e.alice, entity)), []string{layerSEIPD1, layerOnePass}},
		} {
			in := e.inspect(t, reply(mixed(tc.part)))
			if in.CoversRoot || in.SignatureErr != nil || in.Signer != e.alice || !bytes.Equal(in.Content, entity) {
				t.Fatalf("%s: CoversRoot=%v sig=%v signer=%v content %q", name, in.CoversRoot, in.SignatureErr, in.Signer, in.Content)
			}
			if strings.Join(in.Layers, ",") != strings.Join(tc.layers, ",") {
				t.Fatalf("%s: layers %q", name, in.Layers)
			}
		}
	})

	t.Run("BadOuterGoodInner", func(t *testing.T) {
		// Carol (unknown to the bank) signs around Alice's signed entity: Alice is the signer, but
		// the outer finding stays.
		inner := bytes.ReplaceAll(detached, []byte("sig-b1"), []byte("sig-inner"))
		outer := signedEntity(inner, e.gpgDetachSign(t, keyID(carol), inner), "pgp-sha256")
		in := e.inspect(t, reply(outer))
		if in.Signer != e.alice || !errors.Is(in.SignatureErr, ErrUnknownKey) || strings.Join(in.Layers, ",") != layerSigned+","+layerSigned {
			t.Fatalf("signer %v sig %v layers %q", in.Signer, in.SignatureErr, in.Layers)
		}
	})

	t.Run("NotPGP", func(t *testing.T) {
		msg := reply(entity)
		in := e.inspect(t, msg)
		if in.Signed || in.Encrypted || in.SignatureErr != nil || !in.CoversRoot || len(in.Layers) != 0 || !bytes.Equal(in.Content, msg) || !in.SignedAt.Equal(e.opts.Arrival) {
			t.Fatalf("plain message: %+v", in)
		}
	})
}

// TestInspectRefuses: what cannot be processed at all is an error, and nothing is released.
func TestInspectRefuses(t *testing.T) {
	e := newInboundEnv(t)
	entity := []byte(replyEntity)
	good := reply(encryptedEntity(e.gpgSignEncrypt(t, e.alice, entity)))
	gpgSED := reply(encryptedEntity(e.gpgSignEncrypt(t, e.alice, entity, "--rfc2440", "--cipher-algo", "AES256")))
	handSED := sedReply(t, e.f.bank, entity)

	// Both SED inputs are real: go-crypto decrypts them when told to accept unauthenticated data,
	// and GnuPG does with --ignore-mdc-error, so Inspect refuses them for the missing MDC only.
	insecure := &packet.Config{InsecureAllowUnauthenticatedMessages: true}
	for name, msg := range map[string][]byte{"gpg": gpgSED, "hand-built": handSED} {
		raw := armoredPart(t, msg)
		md, err := openpgp.ReadMessage(bytes.NewReader(raw), openpgp.EntityList{e.f.bank}, nil, insecure)
		if err != nil {
			t.Fatalf("%s SED: go-crypto (insecure) cannot read it: %v", name, err)
		}
		var plain bytes.Buffer
		if _, err := plain.ReadFrom(md.UnverifiedBody); err != nil || !bytes.Equal(plain.Bytes(), entity) {
			t.Fatalf("%s SED: go-crypto (insecure) read %q, %v", name, plain.Bytes(), err)
		}
		if _, err := openpgp.ReadMessage(bytes.NewReader(raw), openpgp.EntityList{e.f.bank}, nil, nil); err == nil {
			t.Fatalf("%s SED: go-crypto's default config accepts it", name)
		}
	}
	gpgBank := newGnuPG(t, armoredKey(t, e.f.bank, true))
	if out, _, err := gpgBank.try(armoredPart(t, handSED), "--ignore-mdc-error", "--decrypt"); err != nil || !bytes.Equal(out, entity) {
		t.Fatalf("gpg does not read the hand-built SED: %v, %q", err, out)
	}

	tamper := func(msg []byte, at func(n int) int) []byte {
		raw := armoredPart(t, msg)
		raw[at(len(raw))] ^= 0x01
		i := bytes.Index(msg, []byte("-----BEGIN PGP MESSAGE-----"))
		j := bytes.Index(msg, []byte("-----END PGP MESSAGE-----")) + len("-----END PGP MESSAGE-----")
		return append(append(append([]byte(nil), msg[:i]...), armorOf(t, raw)...), msg[j:]...)
	}
	aliceSig := e.gpgDetachSign(t, keyID(e.alice), entity)
	signedOnly, _ := e.g.run(entity, "--armor", "--local-user", keyID(e.alice), "--sign")

	tests := []struct {
		name string
		msg  []byte
		opts *InboundOptions
		want error
	}{
		{"SEDFromGnuPG", gpgSED, nil, ErrNoIntegrity},
		{"SEDHandBuilt", handSED, nil, ErrNoIntegrity},
		{"SEDNotForUs", sedReply(t, e.f.customers[1], entity), nil, ErrNoIntegrity},
		{"TamperedCiphertext", tamper(good, func(n int) int { return n / 2 }), nil, ErrDecrypt},
		{"TamperedCiphertextEnd", tamper(good, func(n int) int { return n - 3 }), nil, ErrDecrypt},
		{"TamperedSessionKey", tamper(good, func(int) int { return 100 }), nil, ErrDecrypt},
		{"TamperedGoCrypto", tamper(goCryptoReply(t, e.f.bank, e.alice, entity, entity), func(n int) int { return n / 2 }), nil, ErrDecrypt},
		{"NotForUs", reply(encryptedEntity(e.gpgEncrypt(t, e.f.customers[2], entity))), nil, ErrNotForUs},
		{"NoDecryptionKeys", good, &InboundOptions{Signers: e.opts.Signers}, ErrNotForUs},
		{"NotEncrypted", reply(encryptedEntity(signedOnly)), nil, ErrMalformed},
		{"TooDeep", reply(detachedDepth(8, aliceSig)), nil, ErrUnsupported},
		{"TooDeepMixed", reply(mixedDepth(8, aliceSig)), nil, ErrUnsupported},
		{"SignedOnePart", []byte("Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n"), nil, ErrMalformed},
		{"SignatureNotArmored", reply(signedEntity(entity, []byte("not a signature"), "pgp-sha256")), nil, ErrMalformed},
		{"EncryptedGarbage", reply(encryptedEntity([]byte("-----BEGIN PGP MESSAGE-----\r\n\r\nwcBMA\r\n-----END PGP MESSAGE-----"))), nil, ErrMalformed},
		{"Unterminated", []byte("Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\r\n\r\n--b\r\n"), nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := e.opts
			if tt.opts != nil {
				opts = *tt.opts
			}
			in, err := Inspect(tt.msg, opts)
			if !errors.Is(err, tt.want) || in != nil {
				t.Fatalf("got %v, %v; want %v and nothing released", in, err, tt.want)
			}
			var p *recoveredPanic
			if errors.As(err, &p) {
				t.Fatalf("panic: %v\n%s", p.value, p.stack)
			}
		})
	}

	t.Run("JustUnderTheDepthLimit", func(t *testing.T) {
		for _, msg := range [][]byte{reply(detachedDepth(7, aliceSig)), reply(mixedDepth(6, aliceSig))} {
			in, err := Inspect(msg, e.opts)
			if err != nil || !bytes.Equal(in.Content, entity) || !in.Signed {
				t.Fatalf("%v, %v", in, err)
			}
		}
	})

	t.Run("Truncated", func(t *testing.T) {
		for _, msg := range [][]byte{good, gpgSED, reply(signedEntity(entity, aliceSig, "pgp-sha256"))} {
			for n := 0; n < len(msg); n += 1 + n/8 {
				if in, err := Inspect(msg[:n], e.opts); err != nil {
					var p *recoveredPanic
					if errors.As(err, &p) {
						t.Fatalf("panic at %d bytes: %v\n%s", n, p.value, p.stack)
					}
				} else if in.Signed && in.SignatureErr == nil && in.Encrypted {
					t.Fatalf("a message cut at %d of %d bytes came out decrypted and verified", n, len(msg))
				}
			}
		}
	})
}

// detachedDepth nests n multipart/signed layers, each with sig (which need not verify to count).
func detachedDepth(n int, sig []byte) []byte {
	entity := []byte(replyEntity)
	for i := 0; i < n; i++ {
		entity = bytes.ReplaceAll(signedEntity(entity, sig, "pgp-sha256"), []byte("sig-b1"), []byte(fmt.Sprintf("sig-b%d", i+2)))
	}
	return entity
}

// mixedDepth nests n plain multiparts around a multipart/signed part.
func mixedDepth(n int, sig []byte) []byte {
	entity := detachedDepth(1, sig)
	for i := 0; i < n; i++ {
		entity = []byte(fmt.Sprintf("Content-Type: multipart/mixed; boundary=\"m%d\"\r\n\r\n--m%d\r\n%s\r\n--m%d--\r\n", i, i, entity, i))
	}
	return entity
}

// BenchmarkInspect2KB: decrypt and verify a 2 KB reply signed by a customer and encrypted to the
// bank (one RSA-2048 private-key decryption and one public-key verification). Compare with
// BenchmarkRSA2048Decrypt and BenchmarkRSA2048Sign from the same run.
func BenchmarkInspect2KB(b *testing.B) {
	f := getFixture(b)
	body := message(2 << 10)
	msg := goCryptoReply(b, f.bank, f.customers[0], body, body)
	opts := InboundOptions{Decrypt: openpgp.EntityList{f.bank}, Signers: openpgp.EntityList{f.customers[0]}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		in, err := Inspect(msg, opts)
		if err != nil || in.SignatureErr != nil {
			b.Fatal(err, in.SignatureErr)
		}
	}
}

// BenchmarkRSA2048Decrypt: the RSA-2048 PKCS #1 v1.5 private-key operation that opens a session key.
func BenchmarkRSA2048Decrypt(b *testing.B) {
	f := getFixture(b)
	enc, _ := f.bank.EncryptionKey(time.Now())
	key := enc.PrivateKey.PrivateKey.(*rsa.PrivateKey)
	// The ciphertext is the MPI of a real session-key packet (version, key ID, algorithm, MPI).
	var pkesk bytes.Buffer
	if err := packet.SerializeEncryptedKey(&pkesk, enc.PublicKey, packet.CipherAES256, make([]byte, 32), nil); err != nil {
		b.Fatal(err)
	}
	_, hdrLen, _, err := packetHeader(pkesk.Bytes())
	if err != nil {
		b.Fatal(err)
	}
	mpi := pkesk.Bytes()[hdrLen+12:]
	ct := append(make([]byte, key.Size()-len(mpi)), mpi...)
	if _, err := key.Decrypt(nil, ct, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := key.Decrypt(nil, ct, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// inspectVerified verifies a message through Inspect, the verifier customers' mail goes through,
// and returns its findings as one error (Inbound.Err): how tests and the demo check sealpost's own
// output from the customer's side.
func inspectVerified(msg []byte, opts InboundOptions) (*Inbound, error) {
	in, err := Inspect(msg, opts)
	if err != nil {
		return nil, err
	}
	return in, in.Err()
}
