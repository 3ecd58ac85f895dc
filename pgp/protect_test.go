package pgp

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/tsa"
)

func TestProtectRefusesRecipientKeys(t *testing.T) {
	f := getFixture(t)
	t.Run("Expired", func(t *testing.T) {
		past := func() time.Time { return time.Now().Add(-48 * time.Hour) }
		cfg := *v4RSA
		cfg.Time, cfg.KeyLifetimeSecs = past, 3600
		e, err := openpgp.NewEntity("old", "", "old@example.com", &cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.protector.ProtectMessage(ctx, []byte(statement), []*openpgp.Entity{e}, Options{}); !errors.Is(err, ErrRecipientKey) {
			t.Fatalf("got %v, want ErrRecipientKey", err)
		}
	})
	t.Run("Revoked", func(t *testing.T) {
		e := newKey(t, "revoked", "revoked@example.com")
		if err := e.RevokeKey(packet.KeyCompromised, "lost", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := f.protector.ProtectMessage(ctx, []byte(statement), []*openpgp.Entity{e}, Options{}); !errors.Is(err, ErrRecipientKey) {
			t.Fatalf("got %v, want ErrRecipientKey", err)
		}
	})
	t.Run("NoEncryptionSubkey", func(t *testing.T) {
		e := newKey(t, "signonly", "signonly@example.com")
		e.Subkeys = nil
		e.PrimaryKey.PubKeyAlgo = packet.PubKeyAlgoRSASignOnly
		if _, err := f.protector.ProtectMessage(ctx, []byte(statement), []*openpgp.Entity{e}, Options{}); !errors.Is(err, ErrRecipientKey) {
			t.Fatalf("got %v, want ErrRecipientKey", err)
		}
	})
}

func TestProtectRefusesMessages(t *testing.T) {
	f := getFixture(t)
	tests := []struct {
		name string
		msg  string
		to   []*openpgp.Entity
		want error
	}{
		{"SenderNotAUserIDOfTheBankKey", "From: otp@elsewhere.example\r\n\r\nx\r\n", f.customers[:1], ErrSenderNotCovered},
		{"NoFrom", "Subject: x\r\n\r\nx\r\n", f.customers[:1], ErrNoFrom},
		{"NoRecipients", statement, nil, ErrNoRecipients},
		{"MalformedMIME", "From: statements@bank.example\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n", f.customers[:1], ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out, err := f.protector.ProtectMessage(ctx, []byte(tt.msg), tt.to, Options{}); !errors.Is(err, tt.want) || out != nil {
				t.Fatalf("got %v, want %v and no output", err, tt.want)
			}
		})
	}
}

func TestHeaderProtectionHidesOTPSubject(t *testing.T) {
	f := getFixture(t)
	otp := "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: Your code is 730921\r\n\r\nCode: 730921\r\n"
	out, err := f.protector.ProtectMessage(ctx, []byte(otp), f.customers[:1], Options{HeaderProtection: true})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("730921")) || !bytes.Contains(out, []byte("Subject: [...]\r\n")) {
		t.Fatal("the code travels in clear, or the outer Subject is not obscured")
	}
	o, err := inspectVerified(out, InboundOptions{Decrypt: openpgp.EntityList{f.bank, f.customers[0]}, Signers: openpgp.EntityList{f.bank, f.customers[0]}, TSARoots: f.roots})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hp=cipher", "Subject: Your code is 730921\r\n", "HP-Outer: Subject: [...]\r\n"} {
		if !bytes.Contains(o.Content, []byte(want)) {
			t.Errorf("protected payload lacks %q", want)
		}
	}
}

// seipdVersion returns the version octet of the SEIPD packet in a Protect output.
func seipdVersion(t *testing.T, out []byte) byte {
	t.Helper()
	_, _, armored := parts(t, out)
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		t.Fatal(err)
	}
	r := packet.NewReader(block.Body)
	for {
		p, err := r.Next()
		if err != nil {
			t.Fatalf("no SEIPD packet: %v", err)
		}
		switch p := p.(type) {
		case *packet.SymmetricallyEncrypted:
			return byte(p.Version)
		case *packet.AEADEncrypted:
			t.Fatal("legacy AEAD packet")
		}
	}
}

// TestSEIPDVersionPolicy: v1 (MDC) unless every recipient advertises SEIPDv2 and the Protector
// allows it, because GnuPG 2.2 cannot read v2.
func TestSEIPDVersionPolicy(t *testing.T) {
	f := getFixture(t)
	cfg := *v4RSA
	cfg.AEADConfig = &packet.AEADConfig{}
	modern, err := openpgp.NewEntity("modern", "", "modern@example.com", &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if self, _ := modern.PrimarySelfSignature(); !self.SEIPDv2 {
		t.Fatal("test key does not advertise SEIPDv2")
	}
	out, err := f.protector.ProtectMessage(ctx, []byte(statement), []*openpgp.Entity{modern}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v := seipdVersion(t, out); v != 1 {
		t.Fatalf("default policy produced SEIPD v%d, want v1", v)
	}
	allowing, err := NewProtector(f.bank, WithSEIPDv2(true))
	if err != nil {
		t.Fatal(err)
	}
	out, err = allowing.ProtectMessage(ctx, []byte(statement), []*openpgp.Entity{modern}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v := seipdVersion(t, out); v != 2 {
		t.Fatalf("SEIPDv2 allowed and advertised, got v%d", v)
	}
	if _, err := inspectVerified(out, InboundOptions{Decrypt: openpgp.EntityList{f.bank, modern}, Signers: openpgp.EntityList{f.bank, modern}}); err != nil {
		t.Fatalf("SEIPDv2 output does not open: %v", err)
	}
	out, err = allowing.ProtectMessage(ctx, []byte(statement), []*openpgp.Entity{modern, f.customers[0]}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v := seipdVersion(t, out); v != 1 {
		t.Fatalf("one recipient without SEIPDv2 must give v1, got v%d", v)
	}
}

func TestOpenRefuses(t *testing.T) {
	f := getFixture(t)
	keyring := openpgp.EntityList{f.bank}
	signed, err := f.protector.SignMessage(ctx, []byte(statement), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o, err := inspectVerified(signed, InboundOptions{Decrypt: keyring, Signers: keyring, TSARoots: f.roots}); err != nil || o.Timestamp == nil || o.Encrypted {
		t.Fatalf("sign-only output: %v", err)
	}
	t.Run("TamperedContent", func(t *testing.T) {
		bad := bytes.Replace(signed, []byte("Dear Alice"), []byte("Dear Mallory"), 1)
		if _, err := inspectVerified(bad, InboundOptions{Decrypt: keyring, Signers: keyring, TSARoots: f.roots}); !errors.Is(err, ErrSignature) {
			t.Fatalf("got %v, want ErrSignature", err)
		}
	})
	t.Run("UnknownSigner", func(t *testing.T) {
		if _, err := inspectVerified(signed, InboundOptions{Decrypt: openpgp.EntityList{f.customers[0]}, Signers: openpgp.EntityList{f.customers[0]}, TSARoots: f.roots}); !errors.Is(err, ErrSignature) {
			t.Fatalf("got %v, want ErrSignature", err)
		}
	})
	t.Run("TimestampForAnotherSignature", func(t *testing.T) {
		// Move the token of one message onto the signature of another: the signature stays good,
		// the token must not verify.
		other, err := f.protector.SignMessage(ctx, []byte(strings.Replace(statement, "Alice", "Bob", -1)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, _, sigA := parts(t, signed)
		_, _, sigB := parts(t, other)
		tokB := tokenOfArmored(t, sigB)
		swapped := bytes.Replace(signed, sigA, mime.ToCRLF(armorSignature(t, withToken(t, sigA, tokB))), 1)
		if _, err := inspectVerified(swapped, InboundOptions{Decrypt: keyring, Signers: keyring, TSARoots: f.roots}); !errors.Is(err, ErrSignature) || !errors.Is(err, tsa.ErrImprintMismatch) {
			t.Fatalf("got %v, want ErrSignature from tsa.ErrImprintMismatch", err)
		}
	})
	t.Run("NotPGPMIME", func(t *testing.T) {
		if _, err := inspectVerified([]byte(statement), InboundOptions{Decrypt: keyring, Signers: keyring}); err == nil {
			t.Fatal("plain message opened")
		}
	})
}

func tokenOfArmored(t *testing.T, armored []byte) []byte {
	t.Helper()
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		t.Fatal(err)
	}
	p, err := packet.Read(block.Body)
	if err != nil {
		t.Fatal(err)
	}
	return TimestampToken(p.(*packet.Signature))
}

// withToken returns the signature packet of an armored signature with its unhashed area replaced
// by a single timestamp notation holding tok.
func withToken(t *testing.T, armored, tok []byte) []byte {
	t.Helper()
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	raw.ReadFrom(block.Body)
	// Rebuild: drop the unhashed area (our notation; go-crypto puts the issuer in the hashed area)
	// and add a notation holding tok.
	body := raw.Bytes()
	_, hl, _, err := packetHeader(body)
	if err != nil {
		t.Fatal(err)
	}
	b := body[hl:]
	uOff := 6 + int(b[4])<<8 + int(b[5])
	uLen := int(b[uOff])<<8 + int(b[uOff+1])
	stripped := append(append(append([]byte{}, b[:uOff]...), 0, 0), b[uOff+2+uLen:]...)
	pkt := append(newPacketHeader(2, len(stripped)), stripped...)
	out, err := addUnhashedNotation(pkt, TimestampNotation, tok)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func armorSignature(t *testing.T, pkt []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := armor.Encode(&b, "PGP SIGNATURE", nil)
	w.Write(pkt)
	w.Close()
	return b.Bytes()
}

func TestCRLFWriter(t *testing.T) {
	var b bytes.Buffer
	w := crlfWriter{&b}
	for _, chunk := range []string{"ab\ncd", "\n", "", "e\n\nf"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	if got := b.String(); got != "ab\r\ncd\r\ne\r\n\r\nf" {
		t.Fatalf("got %q", got)
	}
}

// hpOTP carries its code in every header field a sender might put it in, and in display names.
const hpOTP = "From: Example Bank <statements@bank.example>\r\n" +
	"To: Alice 730921 <alice@example.com>\r\n" +
	"Subject: Your code is 730921\r\n" +
	"X-OTP: 730921\r\n" +
	"Thread-Topic: code 730921\r\n" +
	"Reply-To: Codes 730921 <noreply@bank.example>\r\n" +
	"Keywords: otp, 730921\r\n" +
	"Comments: code 730921\r\n" +
	"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <otp-7@bank.example>\r\n" +
	"Content-Type: text/plain; charset=us-ascii\r\n\r\n" +
	"Your one-time code is 730921.\r\n"

// TestHeaderProtectionInnerPartWithGnuPGAndSequoia (issue 11 items 3 and 10): the outer header of
// an encrypted OTP holds only From/To as bare addresses, Date, Message-ID and Subject "[...]"; what
// gpg and sq decrypt holds every field (X-OTP, Thread-Topic, Reply-To, Keywords, Comments, the
// display names), hp="cipher" and protected-headers="v1" on the payload root, and the legacy
// display at the top of the text. Before, only Subject was obscured and neither
// protected-headers nor a legacy display was written.
func TestHeaderProtectionInnerPartWithGnuPGAndSequoia(t *testing.T) {
	interop.Tool(t, "sq")
	f := getFixture(t)
	out, err := f.protector.ProtectMessage(ctx, []byte(hpOTP), f.customers[:1], Options{HeaderProtection: true})
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := mime.SplitEntity(out)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"from": true, "to": true, "date": true, "message-id": true, "subject": true, "mime-version": true, "content-type": true}
	for _, fld := range h {
		if !allowed[strings.ToLower(fld.Name)] {
			t.Errorf("outer header keeps %q", fld.Raw)
		}
	}
	if got := h.Get("From") + "|" + h.Get("To") + "|" + h.Get("Subject"); got != "statements@bank.example|alice@example.com|[...]" {
		t.Errorf("outer From|To|Subject = %q", got)
	}
	if bytes.Contains(out, []byte("730921")) {
		t.Fatal("the code appears outside the encryption")
	}

	_, _, armored := parts(t, out)
	g := newGnuPG(t, armoredKey(t, f.bank, false), armoredKey(t, f.customers[0], true))
	plain, status := g.run(armored, "--decrypt")
	if !bytes.Contains(status, []byte("[GNUPG:] GOODSIG "+keyID(f.bank))) || !bytes.Contains(status, []byte("[GNUPG:] GOODMDC")) {
		t.Fatalf("gpg did not verify:\n%s", status)
	}
	dir := t.TempDir()
	msgFile := write(t, filepath.Join(dir, "msg.asc"), armored)
	recip := write(t, filepath.Join(dir, "recip.asc"), armoredKey(t, f.customers[0], true))
	signer := write(t, filepath.Join(dir, "bank.asc"), armoredKey(t, f.bank, false))
	if sqOut := interop.Run(t, nil, "sq", "decrypt", "--recipient-key", recip, "--signer-cert", signer, msgFile); !bytes.Equal(sqOut, plain) {
		t.Fatal("sq decrypted other bytes than gpg")
	}

	ih, body, err := mime.SplitEntity(plain)
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	ih.WriteTo(&raw)
	for _, want := range []string{"X-OTP: 730921\r\n", "Thread-Topic: code 730921\r\n", "Reply-To: Codes 730921 <noreply@bank.example>\r\n",
		"Keywords: otp, 730921\r\n", "Comments: code 730921\r\n", "To: Alice 730921 <alice@example.com>\r\n", "Subject: Your code is 730921\r\n",
		"HP-Outer: Subject: [...]\r\n", "HP-Outer: To: alice@example.com\r\n", `protected-headers="v1"`} {
		if !bytes.Contains(raw.Bytes(), []byte(want)) {
			t.Errorf("decrypted header lacks %q:\n%s", want, raw.Bytes())
		}
	}
	if _, params, err := mime.MediaType(ih); err != nil || params["hp"] != "cipher" || params["protected-headers"] != "v1" || params["hp-legacy-display"] != "1" {
		t.Errorf("payload root Content-Type %q", ih.Get("Content-Type"))
	}
	if !bytes.HasPrefix(body, []byte("From: Example Bank <statements@bank.example>\r\nTo: Alice 730921 <alice@example.com>\r\nSubject: Your code is 730921\r\n")) {
		t.Errorf("text does not begin with the legacy display:\n%s", body)
	}
}

// TestEightBitHeadersSevenBitOnTheWire (issue 11 item 14): PGP/MIME output is 7-bit throughout,
// signed or encrypted, with or without header protection, and gpg verifies the signed form.
func TestEightBitHeadersSevenBitOnTheWire(t *testing.T) {
	f := getFixture(t)
	msg := "From: Bänk <statements@bank.example>\r\nTo: Jörg Müller <alice@example.com>\r\nSubject: Ihr Code für heute\r\n" +
		"X-Bank-Note: geprüft\r\n\r\nHallo\r\n"
	g := newGnuPG(t, armoredKey(t, f.bank, false))
	for _, hp := range []bool{false, true} {
		enc, err := f.protector.ProtectMessage(ctx, []byte(msg), f.customers[:1], Options{HeaderProtection: hp})
		if err != nil {
			t.Fatal(err)
		}
		signed, err := f.protector.SignMessage(ctx, []byte(msg), Options{HeaderProtection: hp})
		if err != nil {
			t.Fatal(err)
		}
		for name, m := range map[string][]byte{"encrypted": enc, "signed": signed} {
			if !mime.IsASCII(m) || !mime.SignatureSafe(m) {
				t.Errorf("hp=%v %s message is not 7-bit:\n%s", hp, name, m[:bytes.Index(m, []byte("\r\n\r\n"))])
			}
		}
		if got := mime.HeaderValue(signed, "Subject"); got != "Ihr Code für heute" {
			t.Errorf("hp=%v signed Subject decodes to %q", hp, got)
		}
		content, _, sig := parts(t, signed)
		dir := t.TempDir()
		if _, status := g.run(nil, "--verify", write(t, filepath.Join(dir, "sig.asc"), sig), write(t, filepath.Join(dir, "c"), content)); !bytes.Contains(status, []byte("[GNUPG:] GOODSIG")) {
			t.Fatalf("hp=%v gpg --verify: %s", hp, status)
		}
	}
}

// chunkWriter records the size of each write, and fails after failAfter bytes when set.
type chunkWriter struct {
	bytes.Buffer
	writes    []int
	failAfter int
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	if w.failAfter > 0 && w.Len()+len(p) > w.failAfter {
		return 0, errors.New("disk full")
	}
	w.writes = append(w.writes, len(p))
	return w.Buffer.Write(p)
}

// TestProtectToStreams: ProtectTo writes a large statement as it encrypts it, 64 KB and a line at a
// time, and what it wrote is a message that decrypts and verifies; a failing writer stops it with
// its error.
func TestProtectToStreams(t *testing.T) {
	f := getFixture(t)
	statement := "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: Statement\r\n\r\n" +
		strings.Repeat("0123456789 balance line of the statement, one of many lines\r\n", 40000)
	prep, err := mime.Prepare([]byte(statement), f.protector.prepareOptions(Options{}, true))
	if err != nil {
		t.Fatal(err)
	}
	var w chunkWriter
	if err := f.protector.ProtectTo(ctx, &w, prep, f.customers[:1]); err != nil {
		t.Fatal(err)
	}
	if len(w.writes) < 20 || slices.Max(w.writes) > armorSpill+armorSpill/10 {
		t.Fatalf("%d writes of at most %d bytes for %d: not streamed", len(w.writes), slices.Max(w.writes), w.Len())
	}
	o, err := inspectVerified(w.Bytes(), InboundOptions{Decrypt: openpgp.EntityList{f.bank, f.customers[0]}, Signers: openpgp.EntityList{f.bank, f.customers[0]}, TSARoots: f.roots})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(o.Content, []byte("one of many lines")) || len(o.Content) < len(statement)-200 {
		t.Fatalf("decrypted %d bytes, want the %d-byte statement", len(o.Content), len(statement))
	}
	failing := chunkWriter{failAfter: 300 << 10}
	if err := f.protector.ProtectTo(ctx, &failing, prep, f.customers[:1]); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("a failing writer: %v", err)
	}
}
