package smime

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/tsa"
)

// envelopeDER returns the DER CMS inside a Protect output.
func envelopeDER(t testing.TB, out []byte) []byte {
	t.Helper()
	i := bytes.Index(out, []byte("\r\n\r\n"))
	der, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(out[i+4:])))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// verifyGo checks the detached signature with the pkcs7 library against the CA.
func verifyGo(t testing.TB, f *fixture, signedEntity []byte) []byte {
	t.Helper()
	content, sig := splitSigned(t, signedEntity)
	p7, err := pkcs7.Parse(sig)
	if err != nil {
		t.Fatal(err)
	}
	p7.Content = content
	pool := x509.NewCertPool()
	pool.AddCert(f.ca.Certificate())
	if err := p7.VerifyWithChain(pool); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	return content
}

func TestProtectRoundTrip(t *testing.T) {
	f := getFixture(t)
	for _, gcm := range []bool{false, true} {
		out, err := f.protector.ProtectMessage(ctx, []byte(statement), recipients(f.customers, gcm, false), Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range f.customers {
			d, err := Decrypt(envelopeDER(t, out), c)
			if err != nil {
				t.Fatalf("gcm=%v %s: %v", gcm, c.Certificate().EmailAddresses[0], err)
			}
			if d.Authenticated != gcm {
				t.Fatalf("Authenticated = %v for gcm=%v", d.Authenticated, gcm)
			}
			content := verifyGo(t, f, d.Content)
			prep, err := mime.Prepare([]byte(statement), mime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			want := prep.Content()
			if !bytes.Equal(content, want) {
				t.Fatalf("signed content differs from the canonical message:\n%q\n%q", content, want)
			}
		}
		outer := string(head(out)) + "\r\n"
		for _, h := range []string{"From: Example Bank <statements@bank.example>", "Subject: Your November statement", "Message-ID: <stmt-1@bank.example>"} {
			if !strings.Contains(outer, h) {
				t.Errorf("outer header lacks %q", h)
			}
		}
	}
}

// TestHeaderProtectionHidesOTPSubject: an OTP in the Subject must not appear anywhere outside the
// encryption, and the protected copy must follow RFC 9788.
func TestHeaderProtectionHidesOTPSubject(t *testing.T) {
	f := getFixture(t)
	otp := "From: otp@bank.example\r\nTo: alice@example.com\r\nSubject: Your code is 493817\r\nKeywords: otp\r\n" +
		"Message-ID: <otp-1@bank.example>\r\n\r\nYour one-time code is 493817. It expires in 5 minutes.\r\n"
	out, err := f.protector.ProtectMessage(ctx, []byte(otp), recipients(f.customers[:1], false, false), Options{HeaderProtection: true})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("493817")) {
		t.Fatal("the code appears in clear in the protected message")
	}
	outer := string(head(out)) + "\r\n"
	if !strings.Contains(outer, "Subject: [...]\r\n") || strings.Contains(outer, "Keywords") {
		t.Fatalf("outer header not obscured per hcp_baseline:\n%s", outer)
	}
	d, err := Decrypt(envelopeDER(t, out), f.customers[0])
	if err != nil {
		t.Fatal(err)
	}
	content := verifyGo(t, f, d.Content)
	inner := string(head(content)) + "\r\n"
	for _, want := range []string{"hp=cipher", "Subject: Your code is 493817\r\n", "Keywords: otp\r\n",
		"HP-Outer: Subject: [...]\r\n", "HP-Outer: Message-ID: <otp-1@bank.example>\r\n", "From: otp@bank.example\r\n"} {
		if !strings.Contains(inner, want) {
			t.Errorf("protected header lacks %q:\n%s", want, inner)
		}
	}
	if strings.Contains(inner, "HP-Outer: Keywords") {
		t.Error("HP-Outer records a field that was removed from the outer header")
	}

	signed, err := f.protector.SignMessage(ctx, []byte(otp), Options{HeaderProtection: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(signed, []byte("hp=clear")) || bytes.Contains(signed, []byte("HP-Outer")) {
		t.Fatal("sign-only header protection must be hp=clear without HP-Outer")
	}
}

func TestHeaderProtectionEncodesEightBitHeaders(t *testing.T) {
	f := getFixture(t)
	msg := "From: Bänk <statements@bank.example>\r\nTo: alice@example.com\r\nSubject: Kontoauszug für Sie\r\n\r\nHallo\r\n"
	out, err := f.protector.SignMessage(ctx, []byte(msg), Options{HeaderProtection: true})
	if err != nil {
		t.Fatal(err)
	}
	content := verifyGo(t, f, out[bytes.Index(out, []byte("Content-Type: multipart/signed")):])
	if !mime.IsASCII(content) || !bytes.Contains(content, []byte("Subject: =?utf-8?q?Kontoauszug_f=C3=BCr_Sie?=")) {
		t.Fatalf("protected copy of 8-bit headers must be RFC 2047 encoded:\n%s", head(content))
	}
}

func TestProtectRefuses(t *testing.T) {
	f := getFixture(t)
	to := recipients(f.customers[:1], false, false)
	tests := []struct {
		name string
		msg  string
		to   []Recipient
		want error
	}{
		{"SenderNotInSigningCertificate", "From: someone@elsewhere.example\r\n\r\nhi\r\n", to, ErrSenderNotCovered},
		{"NoFrom", "To: alice@example.com\r\n\r\nhi\r\n", to, ErrNoFrom},
		{"TwoFromAddresses", "From: statements@bank.example, otp@bank.example\r\n\r\nhi\r\n", to, ErrNoFrom},
		{"TwoFromFields", "From: statements@bank.example\r\nFrom: otp@bank.example\r\n\r\nhi\r\n", to, ErrNoFrom},
		{"NoRecipients", statement, nil, ErrNoRecipients},
		{"MalformedMIME", "From: statements@bank.example\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nno end\r\n", to, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := f.protector.ProtectMessage(ctx, []byte(tt.msg), tt.to, Options{})
			if !errors.Is(err, tt.want) || out != nil {
				t.Fatalf("got %v (output %d bytes), want %v and no output", err, len(out), tt.want)
			}
		})
	}
}

func TestProtectSenderDomainIsCaseInsensitive(t *testing.T) {
	f := getFixture(t)
	if _, err := f.protector.SignMessage(ctx, []byte("From: statements@BANK.example\r\n\r\nhi\r\n"), Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestDecryptRefuses(t *testing.T) {
	f := getFixture(t)
	out, err := f.protector.ProtectMessage(ctx, []byte(statement), recipients(f.customers[:1], false, false), Options{})
	if err != nil {
		t.Fatal(err)
	}
	der := envelopeDER(t, out)
	t.Run("NotForThisKey", func(t *testing.T) {
		if _, err := Decrypt(der, f.customers[1]); !errors.Is(err, ErrNotForUs) {
			t.Fatalf("got %v, want ErrNotForUs", err)
		}
	})
	t.Run("CraftedCBCPaddingDoesNotPanic", func(t *testing.T) {
		// pkcs7's Decrypt panics on crafted padding (LIBRARIES.md); ours must return an error.
		bad := bytes.Clone(der)
		bad[len(bad)-17] ^= 0xff // the last ciphertext block's predecessor controls the padding byte
		if _, err := Decrypt(bad, f.customers[0]); err == nil {
			t.Log("padding happened to stay valid; content integrity is the signature's job")
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		if _, err := Decrypt(der[:len(der)/2], f.customers[0]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("got %v, want ErrMalformed", err)
		}
	})
	t.Run("SignedDataIsNotEnveloped", func(t *testing.T) {
		inner, _ := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true})
		ci, _ := marshalContentInfo(oidSignedData, inner)
		if _, err := Decrypt(ci, f.customers[0]); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("got %v, want ErrUnsupported", err)
		}
	})
	t.Run("GCMTagTampered", func(t *testing.T) {
		out, err := f.protector.ProtectMessage(ctx, []byte(statement), recipients(f.customers[:1], true, false), Options{})
		if err != nil {
			t.Fatal(err)
		}
		der := envelopeDER(t, out)
		der[len(der)-1] ^= 1
		if _, err := Decrypt(der, f.customers[0]); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("got %v, want ErrDecrypt", err)
		}
	})
}

func TestNewProtectorRequiresRSA2048(t *testing.T) {
	f := getFixture(t)
	if _, err := NewProtector(&keys.Identity{Signer: f.tsaID.Signer, Chain: f.tsaID.Chain}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("an ECDSA signer must be refused for S/MIME signing, got %v", err)
	}
}

func TestOpenVerifiesOwnOutput(t *testing.T) {
	f := getFixture(t)
	roots := x509.NewCertPool()
	roots.AddCert(f.ca.Certificate())
	otp := "From: otp@bank.example\r\nTo: alice@example.com\r\nSubject: Your code is 111222\r\n\r\ncode 111222\r\n"
	out, err := f.protector.ProtectMessage(ctx, []byte(otp), recipients(f.customers[:1], true, false), Options{HeaderProtection: true})
	if err != nil {
		t.Fatal(err)
	}
	o, err := inspectVerified(out, InboundOptions{Roots: roots, TSARoots: roots, Identities: []*keys.Identity{f.customers[0]}})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Encrypted || !o.Authenticated || o.Timestamp == nil || !o.Signer.Equal(f.signer.Certificate()) {
		t.Fatalf("Inspect result %+v", o)
	}
	if got := mime.HeaderValue(o.Content, "Subject"); got != "Your code is 111222" {
		t.Fatalf("protected Subject = %q", got)
	}

	t.Run("UntrustedSignerRoot", func(t *testing.T) {
		other, err := keys.NewDevCA("other")
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(other.Certificate())
		if _, err := inspectVerified(out, InboundOptions{Roots: pool, TSARoots: roots, Identities: []*keys.Identity{f.customers[0]}}); !errors.Is(err, ErrSignature) {
			t.Fatalf("got %v, want ErrSignature", err)
		}
	})
	t.Run("TamperedSignedContent", func(t *testing.T) {
		signed, err := f.protector.SignMessage(ctx, []byte(otp), Options{})
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Replace(signed, []byte("code 111222"), []byte("code 999222"), 1)
		if _, err := inspectVerified(bad, InboundOptions{Roots: roots, TSARoots: roots}); !errors.Is(err, ErrSignature) {
			t.Fatalf("got %v, want ErrSignature", err)
		}
	})
	t.Run("UnsignedIsNotVerified", func(t *testing.T) {
		if _, err := inspectVerified([]byte(otp), InboundOptions{Roots: roots, TSARoots: roots}); !errors.Is(err, ErrSignature) {
			t.Fatalf("got %v, want ErrSignature", err)
		}
	})
}

// TestNoTimestampNoOutput: when no TSA answers, nothing is produced, and the error says the failure
// is transient so the relay can answer 451.
func TestNoTimestampNoOutput(t *testing.T) {
	f := getFixture(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/"
	l.Close()
	roots := x509.NewCertPool()
	roots.AddCert(f.ca.Certificate())
	client, err := tsa.NewClient([]string{dead}, roots, tsa.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProtector(f.signer, WithTimestamper(client))
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.ProtectMessage(ctx, []byte(statement), recipients(f.customers[:1], false, false), Options{})
	if out != nil || !errors.Is(err, ErrTimestamp) || !errors.Is(err, tsa.ErrUnavailable) {
		t.Fatalf("got %d bytes and %v; want no output, ErrTimestamp and tsa.ErrUnavailable", len(out), err)
	}
}

// hpOTP carries its code in every header field a sender might put it in, and in display names.
const hpOTP = "From: Example Bank <otp@bank.example>\r\n" +
	"To: Alice 493817 <alice@example.com>\r\n" +
	"Subject: Your code is 493817\r\n" +
	"X-OTP: 493817\r\n" +
	"Thread-Topic: code 493817\r\n" +
	"Reply-To: Codes 493817 <noreply@bank.example>\r\n" +
	"Keywords: otp, 493817\r\n" +
	"Comments: code 493817\r\n" +
	"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <otp-7@bank.example>\r\n" +
	"Content-Type: text/plain; charset=us-ascii\r\n\r\n" +
	"Your one-time code is 493817.\r\n"

// hpHidden are the fields of hpOTP that must travel only inside.
var hpHidden = []string{"X-OTP: 493817\r\n", "Thread-Topic: code 493817\r\n", "Reply-To: Codes 493817 <noreply@bank.example>\r\n",
	"Keywords: otp, 493817\r\n", "Comments: code 493817\r\n", "To: Alice 493817 <alice@example.com>\r\n",
	"From: Example Bank <otp@bank.example>\r\n", "Subject: Your code is 493817\r\n"}

// checkHPOuter fails unless the outer header of an encrypted protected message holds only the
// allow-listed fields, with bare addresses, and nothing of the code.
func checkHPOuter(t *testing.T, out []byte) {
	t.Helper()
	h, _, err := mime.SplitEntity(out)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"from": true, "to": true, "cc": true, "date": true, "message-id": true, "subject": true, "mime-version": true}
	for _, f := range h {
		if !allowed[strings.ToLower(f.Name)] && !mime.IsContentField(f.Name) {
			t.Errorf("outer header keeps %q", f.Raw)
		}
	}
	if got := h.Get("From") + "|" + h.Get("To") + "|" + h.Get("Subject"); got != "otp@bank.example|alice@example.com|[...]" {
		t.Errorf("outer From|To|Subject = %q", got)
	}
	if bytes.Contains(out, []byte("493817")) {
		t.Error("the code appears in the protected message outside the encryption")
	}
}

// checkHPInner fails unless the signed payload holds every header field, both markers and the
// legacy display at the top of its text.
func checkHPInner(t *testing.T, content []byte) {
	t.Helper()
	h, body, err := mime.SplitEntity(content)
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	h.WriteTo(&raw)
	for _, want := range append(hpHidden, "HP-Outer: Subject: [...]\r\n", "HP-Outer: To: alice@example.com\r\n", `protected-headers="v1"`) {
		if !bytes.Contains(raw.Bytes(), []byte(want)) {
			t.Errorf("inner header lacks %q:\n%s", want, raw.Bytes())
		}
	}
	_, params, err := mime.MediaType(h)
	if err != nil || params["hp"] != "cipher" || params["protected-headers"] != "v1" || params["hp-legacy-display"] != "1" {
		t.Errorf("payload root Content-Type %q: want hp=cipher, protected-headers=v1, hp-legacy-display=1", h.Get("Content-Type"))
	}
	display := "From: Example Bank <otp@bank.example>\r\nTo: Alice 493817 <alice@example.com>\r\nSubject: Your code is 493817\r\n" +
		"Reply-To: Codes 493817 <noreply@bank.example>\r\n\r\nYour one-time code is 493817.\r\n"
	if string(body) != display {
		t.Errorf("text does not begin with the legacy display:\n%s", body)
	}
}

// TestHeaderProtectionOuterHeaderIsAnAllowList (issue 11 item 3): an OTP whose code is in X-OTP,
// Thread-Topic, Reply-To, Keywords, Comments and the To display name leaves with none of them
// outside; inside they are all there. Before, only Subject was obscured.
func TestHeaderProtectionOuterHeaderIsAnAllowList(t *testing.T) {
	f := getFixture(t)
	out, err := f.protector.ProtectMessage(ctx, []byte(hpOTP), recipients(f.customers[:1], false, false), Options{HeaderProtection: true})
	if err != nil {
		t.Fatal(err)
	}
	checkHPOuter(t, out)
	d, err := Decrypt(envelopeDER(t, out), f.customers[0])
	if err != nil {
		t.Fatal(err)
	}
	checkHPInner(t, verifyGo(t, f, d.Content))
}

// TestHeaderProtectionInnerPartWithOpenSSLAndNSS (items 3 and 10): what openssl cms and NSS's
// cmsutil (Thunderbird's library) decrypt holds the whole header, hp="cipher" and
// protected-headers="v1" on the payload root and the legacy display; both verify the signature over
// it.
func TestHeaderProtectionInnerPartWithOpenSSLAndNSS(t *testing.T) {
	for _, tool := range []string{"openssl", "certutil", "pk12util", "cmsutil"} {
		interop.Tool(t, tool)
	}
	f := getFixture(t)
	peer := newNSSPeer(t, f)
	files := peer.files
	out, err := f.protector.ProtectMessage(ctx, []byte(hpOTP), recipients(f.customers[:1], false, false), Options{HeaderProtection: true})
	if err != nil {
		t.Fatal(err)
	}
	checkHPOuter(t, out)
	eml := filepath.Join(files.dir, "otp.eml")
	write(t, eml, out)
	dec := interop.Run(t, nil, "openssl", "cms", "-decrypt", "-in", eml, "-recip", files.certs[0], "-inkey", files.keys[0])
	decFile := filepath.Join(files.dir, "otp-dec.eml")
	write(t, decFile, dec)
	verified := interop.Run(t, nil, "openssl", "cms", "-verify", "-purpose", "smimesign", "-CAfile", files.ca, "-in", decFile)
	content, sig := splitSigned(t, dec)
	if !bytes.Equal(normalizeLF(verified), normalizeLF(content)) {
		t.Fatal("openssl verified other bytes than the signed part")
	}
	checkHPInner(t, content)

	der := filepath.Join(files.dir, "otp.der")
	write(t, der, envelopeDER(t, out))
	db := peer.db(t, true, 0)
	nssDec := interop.Run(t, nil, "cmsutil", "-D", "-i", der, "-d", db)
	if !bytes.Equal(nssDec, dec) {
		t.Fatalf("NSS decrypted other bytes than openssl:\n%s", head(nssDec))
	}
	sigFile, contentFile := filepath.Join(files.dir, "otp.p7s"), filepath.Join(files.dir, "otp.content")
	write(t, sigFile, sig)
	write(t, contentFile, content)
	report := interop.Run(t, nil, "cmsutil", "-D", "-i", sigFile, "-c", contentFile, "-d", db, "-u", "4", "-n", "-h", "1")
	if !bytes.Contains(report, []byte("signer0.status=GoodSignature;")) {
		t.Fatalf("cmsutil does not report a good signature over the protected payload:\n%s", report)
	}
}

// eightBitOTP is submitted without SMTPUTF8 but with raw UTF-8 in its header fields.
const eightBitOTP = "From: Bänk <otp@bank.example>\r\nTo: Jörg Müller <alice@example.com>\r\nSubject: Ihr Code für heute\r\n" +
	"X-Bank-Note: geprüft\r\nMessage-ID: <u8@bank.example>\r\n\r\nHallo\r\n"

// TestEightBitHeadersSevenBitOnTheWire (issue 11 item 14): whatever the method and header
// protection, the message that leaves is 7-bit throughout, its 8-bit fields RFC 2047 encoded, and
// openssl verifies the signature over the encoded form. Before, the outer header went out as
// submitted.
func TestEightBitHeadersSevenBitOnTheWire(t *testing.T) {
	interop.Tool(t, "openssl")
	f := getFixture(t)
	files := f.files(t)
	for _, hp := range []bool{false, true} {
		enc, err := f.protector.ProtectMessage(ctx, []byte(eightBitOTP), recipients(f.customers[:1], false, false), Options{HeaderProtection: hp})
		if err != nil {
			t.Fatal(err)
		}
		signed, err := f.protector.SignMessage(ctx, []byte(eightBitOTP), Options{HeaderProtection: hp})
		if err != nil {
			t.Fatal(err)
		}
		d, err := Decrypt(envelopeDER(t, enc), f.customers[0])
		if err != nil {
			t.Fatal(err)
		}
		inner := verifyGo(t, f, d.Content)
		for name, m := range map[string][]byte{"encrypted": enc, "signed": signed, "encrypted payload": inner} {
			if !mime.IsASCII(m) || !mime.SignatureSafe(m) {
				t.Errorf("hp=%v %s message is not 7-bit:\n%s", hp, name, head(m))
			}
		}
		wantSubject := "Ihr Code für heute"
		if hp {
			if got := mime.HeaderValue(enc, "Subject"); got != "[...]" {
				t.Errorf("hp=%v encrypted outer Subject %q", hp, got)
			}
		} else if got := mime.HeaderValue(enc, "Subject"); got != wantSubject {
			t.Errorf("encrypted outer Subject decodes to %q", got)
		}
		if got := mime.HeaderValue(signed, "Subject"); got != wantSubject {
			t.Errorf("hp=%v signed outer Subject decodes to %q", hp, got)
		}
		if got := mime.HeaderValue(signed, "X-Bank-Note"); got != "geprüft" {
			t.Errorf("hp=%v signed X-Bank-Note decodes to %q", hp, got)
		}
		eml := filepath.Join(files.dir, "u8.eml")
		write(t, eml, signed)
		interop.Run(t, nil, "openssl", "cms", "-verify", "-purpose", "smimesign", "-CAfile", files.ca, "-in", eml)
	}
}

// TestProtectToStreamsTheSameMessage: ProtectTo writes what Protect returns (the same header, the
// length give or take a token's, an envelope that opens to the same signed statement) through a small buffer, and
// stops at its writer's error.
func TestProtectToStreamsTheSameMessage(t *testing.T) {
	f := getFixture(t)
	big := strings.Replace(statement, "1 234,56", strings.Repeat("1 234,56 ", 40000), 1) // > mime.FlushAt
	prep, err := mime.Prepare([]byte(big), mime.Options{Encrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	to := recipients(f.customers[:1], false, false)
	whole, err := f.protector.Protect(ctx, prep, to)
	if err != nil {
		t.Fatal(err)
	}
	var w countingWriter
	if err := f.protector.ProtectTo(ctx, &w, prep, to); err != nil {
		t.Fatal(err)
	}
	streamed := w.Bytes()
	// (The lengths differ by the timestamp tokens' own: their serial numbers and times vary.)
	if d := len(streamed) - len(whole); d < -200 || d > 200 || !bytes.Equal(head(streamed), head(whole)) {
		t.Fatalf("streamed %d bytes, header\n%s\nProtect %d bytes, header\n%s", len(streamed), head(streamed), len(whole), head(whole))
	}
	if w.writes < 2 || w.largest > mime.FlushAt+4096 {
		t.Errorf("%d writes, the largest %d bytes: not streamed through a buffer of about %d", w.writes, w.largest, mime.FlushAt)
	}
	d, err := Decrypt(envelopeDER(t, streamed), f.customers[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(verifyGo(t, f, d.Content), prep.Content()) {
		t.Error("the streamed envelope does not hold the signed statement")
	}
	broken := errors.New("disk full")
	if err := f.protector.ProtectTo(ctx, failingWriter{broken}, prep, to); !errors.Is(err, broken) {
		t.Errorf("ProtectTo with a failing writer: %v; want its error", err)
	}
}

type countingWriter struct {
	bytes.Buffer
	writes, largest int
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.writes++
	w.largest = max(w.largest, len(b))
	return w.Buffer.Write(b)
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }
