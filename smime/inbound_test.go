package smime

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
)

// customerEntity is the MIME entity a customer's client signs (the header fields From/To/Subject are
// added around the protected result, as clients do).
const customerEntity = "Content-Type: text/plain; charset=us-ascii\r\n" +
	"\r\n" +
	"Hello support,\r\n" +
	"please call me about my November statement.\r\n" +
	"Alice\r\n"

const customerHeader = "From: Alice <alice@example.com>\r\n" +
	"To: support@bank.example\r\n" +
	"Subject: Re: Your November statement\r\n" +
	"Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n" +
	"Message-ID: <reply-1@example.com>\r\n"

// inboundEnv: Alice (customers[0]) writes to the bank; the bank's support identity for decryption is
// customers[1]'s key pair (any RSA identity of the fixture CA will do).
type inboundEnv struct {
	f      *fixture
	files  pemFiles
	opts   InboundOptions
	noCaps bool // the signing peer does not send SMIMECapabilities (gpgsm)
}

func newInboundEnv(t *testing.T) *inboundEnv {
	t.Helper()
	interop.Tool(t, "openssl")
	f := getFixture(t)
	roots := x509.NewCertPool()
	roots.AddCert(f.ca.Certificate())
	return &inboundEnv{f: f, files: f.files(t), opts: InboundOptions{
		Identities: []*keys.Identity{f.customers[1]},
		Roots:      roots,
		TSARoots:   roots,
		Arrival:    time.Now(),
	}}
}

func (e *inboundEnv) dir() string { return e.files.dir }

// sign runs openssl cms -sign over entity with the given certificate and key files.
func (e *inboundEnv) sign(t *testing.T, entity []byte, cert, key string, extra ...string) []byte {
	t.Helper()
	args := append([]string{"cms", "-sign", "-signer", cert, "-inkey", key}, extra...)
	return interop.Run(t, entity, "openssl", args...)
}

// aliceSigns signs entity as Alice with SHA-256.
func (e *inboundEnv) aliceSigns(t *testing.T, entity []byte, extra ...string) []byte {
	t.Helper()
	return e.sign(t, entity, e.files.certs[0], e.files.keys[0], append([]string{"-md", "sha256"}, extra...)...)
}

// encrypt runs openssl cms -encrypt of entity to the support identity (customers[1]).
func (e *inboundEnv) encrypt(t *testing.T, entity []byte, extra ...string) []byte {
	t.Helper()
	args := append(append([]string{"cms", "-encrypt"}, extra...), "-recip", e.files.certs[1])
	return interop.Run(t, entity, "openssl", args...)
}

func reply(entity []byte) []byte { return append([]byte(customerHeader), entity...) }

func (e *inboundEnv) inspect(t *testing.T, msg []byte) *Inbound {
	t.Helper()
	in, err := Inspect(msg, e.opts)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	return in
}

// assertClean checks every fact of a good message signed by Alice.
func (e *inboundEnv) assertClean(t *testing.T, in *Inbound, layers ...string) {
	t.Helper()
	if !in.Signed || in.SignatureErr != nil || in.Unsupported != nil || in.ChainErr != nil || in.WeakAlgorithm != nil || in.TimestampErr != nil {
		t.Fatalf("not clean: signed=%v sig=%v unsupported=%v chain=%v weak=%v ts=%v", in.Signed, in.SignatureErr, in.Unsupported, in.ChainErr, in.WeakAlgorithm, in.TimestampErr)
	}
	if in.Signer == nil || !in.Signer.Equal(e.f.customers[0].Certificate()) {
		t.Fatalf("signer %v, want Alice's certificate", in.Signer)
	}
	if len(in.SignerChain) == 0 || !in.SignerChain[0][len(in.SignerChain[0])-1].Equal(e.f.ca.Certificate()) {
		t.Fatalf("signer chain %v does not end at the CA", in.SignerChain)
	}
	if !in.CoversRoot {
		t.Fatal("CoversRoot false")
	}
	if len(in.Capabilities) == 0 && !e.noCaps {
		t.Fatal("no SMIMECapabilities from openssl's signature")
	}
	if !bytes.Equal(in.Content, []byte(customerEntity)) {
		t.Fatalf("content %q, want %q", in.Content, customerEntity)
	}
	if strings.Join(in.Layers, ",") != strings.Join(layers, ",") {
		t.Fatalf("layers %q, want %q", in.Layers, layers)
	}
	encrypted := strings.Contains(strings.Join(layers, ","), "enveloped")
	if in.Encrypted != encrypted {
		t.Fatalf("Encrypted %v, want %v", in.Encrypted, encrypted)
	}
	if in.Timestamp != nil || !in.SignedAt.Equal(e.opts.Arrival) {
		t.Fatalf("timestamp %v / SignedAt %v without a token", in.Timestamp, in.SignedAt)
	}
}

// relabel replaces old in msg once, failing if it is not there (so a changed openssl output format is
// noticed rather than silently untested).
func relabel(t *testing.T, msg []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(msg, []byte(old)) {
		t.Fatalf("%q not in openssl output:\n%s", old, msg)
	}
	return bytes.Replace(msg, []byte(old), []byte(new), 1)
}

func TestInspectOpenSSLDetached(t *testing.T) {
	e := newInboundEnv(t)
	signed := e.aliceSigns(t, []byte(customerEntity))
	const sigType = `Content-Type: application/pkcs7-signature; name="smime.p7s"`
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"pkcs7-signature", func(b []byte) []byte { return b }},
		{"x-pkcs7-signature", func(b []byte) []byte {
			b = relabel(t, b, `protocol="application/pkcs7-signature"`, `protocol="application/x-pkcs7-signature"`)
			return relabel(t, b, sigType, `Content-Type: application/x-pkcs7-signature; name="smime.p7s"`)
		}},
		{"octet-stream name", func(b []byte) []byte {
			b = relabel(t, b, sigType, `Content-Type: application/octet-stream; name="smime.p7s"`)
			return relabel(t, b, `Content-Disposition: attachment; filename="smime.p7s"`, `Content-Disposition: attachment`)
		}},
		{"octet-stream filename", func(b []byte) []byte {
			return relabel(t, b, sigType, `Content-Type: application/octet-stream`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := e.inspect(t, reply(tc.edit(bytes.Clone(signed))))
			e.assertClean(t, in, "signed-detached")
			if in.Encrypted || in.Authenticated {
				t.Fatal("unencrypted message reported as encrypted")
			}
		})
	}
	t.Run("octet-stream without .p7s", func(t *testing.T) {
		b := relabel(t, bytes.Clone(signed), sigType, `Content-Type: application/octet-stream; name="sig.bin"`)
		b = relabel(t, b, `filename="smime.p7s"`, `filename="sig.bin"`)
		if _, err := Inspect(reply(b), e.opts); !errors.Is(err, ErrMalformed) {
			t.Fatalf("signature part without a .p7s name: err %v, want ErrMalformed", err)
		}
	})
}

func TestInspectOpenSSLOpaque(t *testing.T) {
	e := newInboundEnv(t)
	signed := e.aliceSigns(t, []byte(customerEntity), "-nodetach", "-stream")
	const ct = `Content-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"`
	for _, tc := range []struct{ name, label string }{
		{"pkcs7-mime", ct},
		{"x-pkcs7-mime", `Content-Type: application/x-pkcs7-mime; smime-type=signed-data; name="smime.p7m"`},
		{"octet-stream p7m", `Content-Type: application/octet-stream; name="smime.p7m"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := e.inspect(t, reply(relabel(t, bytes.Clone(signed), ct, tc.label)))
			e.assertClean(t, in, "signed-opaque")
		})
	}
}

// TestInspectOpenSSLEncrypted: sign, then encrypt, as clients do, with each envelope openssl writes.
func TestInspectOpenSSLEncrypted(t *testing.T) {
	e := newInboundEnv(t)
	signed := e.aliceSigns(t, []byte(customerEntity))
	for _, tc := range []struct {
		name  string
		args  []string
		layer string
		gcm   bool
	}{
		{"aes256-cbc", []string{"-aes256"}, "enveloped-data aes256-CBC", false},
		{"aes256-cbc BER stream", []string{"-aes256", "-stream"}, "enveloped-data aes256-CBC", false},
		{"aes128-cbc", []string{"-aes128"}, "enveloped-data aes128-CBC", false},
		{"aes256-gcm", []string{"-aes-256-gcm"}, "authenveloped-data aes256-GCM", true},
		{"aes128-gcm BER stream", []string{"-aes-128-gcm", "-stream"}, "authenveloped-data aes128-GCM", true},
		{"keyid", []string{"-aes256", "-keyid"}, "enveloped-data aes256-CBC", false},
		{"oaep", []string{"-aes256", "-keyopt", "rsa_padding_mode:oaep"}, "enveloped-data aes256-CBC", false},
		{"gcm keyid oaep stream", []string{"-aes-256-gcm", "-keyid", "-stream", "-keyopt", "rsa_padding_mode:oaep"}, "authenveloped-data aes256-GCM", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if i := indexOf(args, "-keyopt"); i >= 0 { // -keyopt applies to the -recip before it
				args = append(append([]string{}, args[:i]...), "-recip", e.files.certs[1], args[i], args[i+1])
				args = append(args, tc.args[i+2:]...)
				msg := interop.Run(t, signed, "openssl", append([]string{"cms", "-encrypt"}, args...)...)
				e.checkEncrypted(t, msg, tc.layer, tc.gcm)
				return
			}
			e.checkEncrypted(t, e.encrypt(t, signed, args...), tc.layer, tc.gcm)
		})
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func (e *inboundEnv) checkEncrypted(t *testing.T, enveloped []byte, layer string, gcm bool) {
	t.Helper()
	in := e.inspect(t, reply(enveloped))
	e.assertClean(t, in, layer, "signed-detached")
	if !in.Encrypted || in.Authenticated != gcm {
		t.Fatalf("Encrypted %v Authenticated %v, want true %v", in.Encrypted, in.Authenticated, gcm)
	}
}

func TestInspectEncryptedInsideSigned(t *testing.T) {
	e := newInboundEnv(t)
	enveloped := e.encrypt(t, []byte(customerEntity), "-aes256")
	msg := reply(e.aliceSigns(t, enveloped))
	in := e.inspect(t, msg)
	e.assertClean(t, in, "signed-detached", "enveloped-data aes256-CBC")
	if !in.Encrypted || in.Authenticated {
		t.Fatalf("Encrypted %v Authenticated %v", in.Encrypted, in.Authenticated)
	}
}

func TestInspectTripleWrap(t *testing.T) {
	e := newInboundEnv(t)
	inner := e.aliceSigns(t, []byte(customerEntity))
	enveloped := e.encrypt(t, inner, "-aes-256-gcm", "-stream")
	msg := reply(e.aliceSigns(t, enveloped, "-nodetach"))
	in := e.inspect(t, msg)
	e.assertClean(t, in, "signed-opaque", "authenveloped-data aes256-GCM", "signed-detached")
	if !in.Encrypted || !in.Authenticated {
		t.Fatalf("Encrypted %v Authenticated %v", in.Encrypted, in.Authenticated)
	}
}

// TestInspectSealpostTimestamp: sealpost's own signature carries an RFC 3161 token; SignedAt is its time.
func TestInspectSealpostTimestamp(t *testing.T) {
	f := getFixture(t)
	out, err := f.protector.ProtectMessage(ctx, []byte(statement), recipients(f.customers[:1], true, false), Options{})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(f.ca.Certificate())
	arrival := time.Now().Add(time.Hour)
	in, err := Inspect(out, InboundOptions{Identities: f.customers[:1], Roots: roots, TSARoots: roots, Arrival: arrival})
	if err != nil {
		t.Fatal(err)
	}
	if in.SignatureErr != nil || in.ChainErr != nil || in.TimestampErr != nil || in.WeakAlgorithm != nil || !in.CoversRoot {
		t.Fatalf("not clean: %v %v %v %v %v", in.SignatureErr, in.ChainErr, in.TimestampErr, in.WeakAlgorithm, in.CoversRoot)
	}
	if in.Timestamp == nil || !in.SignedAt.Equal(in.Timestamp.Time) || in.SignedAt.Equal(arrival) {
		t.Fatalf("timestamp %v, SignedAt %v", in.Timestamp, in.SignedAt)
	}
	if !in.Signer.Equal(f.signer.Certificate()) || !in.Authenticated || !in.SupportsGCM() {
		t.Fatalf("signer %v authenticated %v gcm %v", in.Signer.Subject, in.Authenticated, in.SupportsGCM())
	}
	// Without TSA roots the token is reported, not trusted: SignedAt falls back to arrival.
	in, err = Inspect(out, InboundOptions{Identities: f.customers[:1], Roots: roots, Arrival: arrival})
	if err != nil {
		t.Fatal(err)
	}
	if in.TimestampErr == nil || in.Timestamp != nil || !in.SignedAt.Equal(arrival) {
		t.Fatalf("no TSA roots: TimestampErr %v Timestamp %v SignedAt %v", in.TimestampErr, in.Timestamp, in.SignedAt)
	}
}

// --- hostile messages: none may look clean ---

func TestInspectSHA1Signature(t *testing.T) {
	e := newInboundEnv(t)
	signed, stderr, err := interop.Try(t, []byte(customerEntity), "openssl", "cms", "-sign", "-signer", e.files.certs[0], "-inkey", e.files.keys[0], "-md", "sha1")
	if err != nil {
		if interop.Required() {
			t.Fatalf("openssl refuses SHA-1 signing, and SEALPOST_INTEROP=require: %s", stderr)
		}
		t.Skipf("openssl refuses SHA-1 signing: %s", stderr)
	}
	in := e.inspect(t, reply(signed))
	if in.WeakAlgorithm == nil {
		t.Fatal("SHA-1 signature without WeakAlgorithm")
	}
	t.Logf("WeakAlgorithm: %v; SignatureErr: %v", in.WeakAlgorithm, in.SignatureErr)
}

func TestInspectUntrustedSigner(t *testing.T) {
	e := newInboundEnv(t)
	rogueCA, err := keys.NewDevCA("rogue CA")
	if err != nil {
		t.Fatal(err)
	}
	mallory, err := rogueCA.NewDevCustomer("alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	cert, key := writeIdentity(t, e.dir(), "rogue", mallory)
	in := e.inspect(t, reply(e.sign(t, []byte(customerEntity), cert, key, "-md", "sha256")))
	if in.ChainErr == nil {
		t.Fatal("signer from an untrusted CA without ChainErr")
	}
	if in.SignatureErr != nil || !in.Signer.Equal(mallory.Certificate()) {
		t.Fatalf("signature math should hold (%v) and name the signer", in.SignatureErr)
	}
}

func TestInspectExpiredSigner(t *testing.T) {
	e := newInboundEnv(t)
	key, err := keys.NewRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := e.f.ca.Issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "alice@example.com"},
		EmailAddresses:        []string{"alice@example.com"},
		NotBefore:             time.Now().Add(-2 * 365 * 24 * time.Hour),
		NotAfter:              time.Now().Add(-365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		BasicConstraintsValid: true,
	}, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := writeIdentity(t, e.dir(), "expired", &keys.Identity{Signer: key, Chain: []*x509.Certificate{cert}})
	in := e.inspect(t, reply(e.sign(t, []byte(customerEntity), cf, kf, "-md", "sha256")))
	if in.ChainErr == nil {
		t.Fatal("expired signer without ChainErr")
	}
	t.Logf("ChainErr: %v", in.ChainErr)
	if in.SignatureErr != nil {
		t.Fatalf("the signature math itself holds: %v", in.SignatureErr)
	}
}

func writeIdentity(t *testing.T, dir, name string, id *keys.Identity) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	write(t, certFile, keys.EncodeCertificates(id.Certificate()))
	der, err := x509.MarshalPKCS8PrivateKey(id.Signer)
	if err != nil {
		t.Fatal(err)
	}
	write(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return certFile, keyFile
}

func TestInspectTamperedContent(t *testing.T) {
	e := newInboundEnv(t)
	for _, opaque := range []bool{false, true} {
		var signed []byte
		if opaque {
			signed = e.aliceSigns(t, []byte(customerEntity), "-nodetach", "-outform", "DER")
			i := bytes.Index(signed, []byte("November"))
			signed[i] = 'n'
			signed = append([]byte("Content-Type: application/pkcs7-mime; smime-type=signed-data\r\nContent-Transfer-Encoding: base64\r\n\r\n"),
				mime.EncodeBase64(signed)...)
		} else {
			signed = relabel(t, e.aliceSigns(t, []byte(customerEntity)), "November", "november")
		}
		in, err := Inspect(reply(signed), e.opts)
		if err != nil {
			t.Fatalf("opaque=%v: %v", opaque, err)
		}
		if !errors.Is(in.SignatureErr, ErrSignature) {
			t.Fatalf("opaque=%v: tampered content, SignatureErr %v", opaque, in.SignatureErr)
		}
	}
}

func TestInspectSignedPartInsideUnsignedMixed(t *testing.T) {
	e := newInboundEnv(t)
	signed := e.aliceSigns(t, []byte(customerEntity))
	msg := customerHeader + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"wrap\"\r\n\r\n" +
		"--wrap\r\nContent-Type: text/plain\r\n\r\nPlease wire 10,000 EUR to the account below.\r\n" +
		"--wrap\r\n" + string(mime.ToCRLF(signed)) + "\r\n--wrap--\r\n"
	in := e.inspect(t, []byte(msg))
	if !in.Signed || in.SignatureErr != nil {
		t.Fatalf("signed part not found or not verified: %v %v", in.Signed, in.SignatureErr)
	}
	if in.CoversRoot {
		t.Fatal("a signed part inside an unsigned multipart/mixed reported as covering the root")
	}
	if bytes.Contains(in.Content, []byte("wire")) {
		t.Fatal("unsigned part in Content")
	}
}

// TestInspectEFAILModifiedCBC flips bits in the middle of openssl's CBC ciphertext: the result must be
// an error or an unauthenticated message whose signature fails, never a clean one.
func TestInspectEFAILModifiedCBC(t *testing.T) {
	e := newInboundEnv(t)
	signed := e.aliceSigns(t, []byte(customerEntity))
	der := interop.Run(t, signed, "openssl", "cms", "-encrypt", "-aes256", "-outform", "DER", "-recip", e.files.certs[1])
	// The targeted flip is the EFAIL gadget: changing ciphertext block j-1 flips the same bits of
	// plaintext block j ("November" -> "NovEmber") and garbles block j-1 only.
	pt := mime.ToCRLF(signed)
	ctStart := len(der) - (len(pt)/16+1)*16
	at := bytes.Index(pt, []byte("November")) + 3
	targeted := ctStart + (at/16-1)*16 + at%16
	for _, off := range []int{targeted, len(der) / 2, len(der)*2/3 + 5, len(der) - 40} {
		bad := bytes.Clone(der)
		bad[off] ^= 0x20
		msg := reply(append([]byte("Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n"),
			mime.EncodeBase64(bad)...))
		in, err := Inspect(msg, e.opts)
		if off == targeted && (err != nil || !bytes.Contains(in.Content, []byte("NovEmber"))) {
			t.Fatalf("the EFAIL gadget did not produce the modified text (err %v): the test lost its point", err)
		}
		if err != nil {
			t.Logf("offset %d: rejected: %v", off, err)
			continue
		}
		t.Logf("offset %d: Authenticated %v, SignatureErr %v", off, in.Authenticated, in.SignatureErr)
		if in.Authenticated || in.SignatureErr == nil {
			t.Fatalf("offset %d: modified CBC ciphertext looks clean (authenticated %v, SignatureErr %v)", off, in.Authenticated, in.SignatureErr)
		}
	}
}

func TestInspectNotForUs(t *testing.T) {
	e := newInboundEnv(t)
	enveloped := interop.Run(t, []byte(customerEntity), "openssl", "cms", "-encrypt", "-aes256", "-recip", e.files.certs[2])
	if _, err := Inspect(reply(enveloped), e.opts); !errors.Is(err, ErrNotForUs) {
		t.Fatalf("err %v, want ErrNotForUs", err)
	}
	opts := e.opts
	opts.Identities = nil
	if _, err := Inspect(reply(enveloped), opts); !errors.Is(err, ErrNotForUs) {
		t.Fatalf("no identities: err %v, want ErrNotForUs", err)
	}
}

func TestInspectGarbageAndTruncated(t *testing.T) {
	e := newInboundEnv(t)
	signed := reply(e.aliceSigns(t, []byte(customerEntity)))
	enveloped := reply(e.encrypt(t, e.aliceSigns(t, []byte(customerEntity)), "-aes256", "-stream"))
	opaque := reply(e.aliceSigns(t, []byte(customerEntity), "-nodetach"))
	cases := map[string][]byte{
		"garbage":             []byte("\x00\x01garbage without any header\r\n"),
		"bad base64 envelope": []byte("Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\r\n!!!!\r\n"),
		"not CMS":             []byte("Content-Type: application/pkcs7-mime\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"),
		"signed without sig":  []byte("Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n"),
	}
	for _, m := range [][]byte{signed, enveloped, opaque} {
		for _, frac := range []int{3, 2} {
			cases[string(m[:20])+" truncated"+string(rune('0'+frac))] = m[:len(m)*(frac-1)/frac+len(m)/5]
		}
	}
	cases["enveloped truncated"] = enveloped[:len(enveloped)-200]
	cases["opaque truncated"] = opaque[:len(opaque)-200]
	for name, m := range cases {
		if _, err := Inspect(m, e.opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestInspectTooDeep(t *testing.T) {
	f := getFixture(t)
	signed, err := f.protector.SignMessage(ctx, []byte(statement), Options{})
	if err != nil {
		t.Fatal(err)
	}
	msg := mime.ToCRLF(signed)
	for i := 0; i < mime.MaxLayers+1; i++ {
		msg = append([]byte("Content-Type: multipart/mixed; boundary=\"d"+string(rune('a'+i))+"\"\r\n\r\n--d"+string(rune('a'+i))+"\r\n"), msg...)
		msg = append(msg, []byte("\r\n--d"+string(rune('a'+i))+"--\r\n")...)
	}
	if _, err := Inspect(msg, InboundOptions{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err %v, want ErrUnsupported for too deep nesting", err)
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
