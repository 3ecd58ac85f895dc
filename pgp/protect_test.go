package pgp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/internal/payload"
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
		if _, err := f.protector.Protect(ctx, []byte(statement), []*openpgp.Entity{e}, Options{}); !errors.Is(err, ErrRecipientKey) {
			t.Fatalf("got %v, want ErrRecipientKey", err)
		}
	})
	t.Run("Revoked", func(t *testing.T) {
		e := newKey(t, "revoked", "revoked@example.com")
		if err := e.RevokeKey(packet.KeyCompromised, "lost", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := f.protector.Protect(ctx, []byte(statement), []*openpgp.Entity{e}, Options{}); !errors.Is(err, ErrRecipientKey) {
			t.Fatalf("got %v, want ErrRecipientKey", err)
		}
	})
	t.Run("NoEncryptionSubkey", func(t *testing.T) {
		e := newKey(t, "signonly", "signonly@example.com")
		e.Subkeys = nil
		e.PrimaryKey.PubKeyAlgo = packet.PubKeyAlgoRSASignOnly
		if _, err := f.protector.Protect(ctx, []byte(statement), []*openpgp.Entity{e}, Options{}); !errors.Is(err, ErrRecipientKey) {
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
			if out, err := f.protector.Protect(ctx, []byte(tt.msg), tt.to, Options{}); !errors.Is(err, tt.want) || out != nil {
				t.Fatalf("got %v, want %v and no output", err, tt.want)
			}
		})
	}
}

func TestHeaderProtectionHidesOTPSubject(t *testing.T) {
	f := getFixture(t)
	otp := "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: Your code is 730921\r\n\r\nCode: 730921\r\n"
	out, err := f.protector.Protect(ctx, []byte(otp), f.customers[:1], Options{HeaderProtection: true})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("730921")) || !bytes.Contains(out, []byte("Subject: [...]\r\n")) {
		t.Fatal("the code travels in clear, or the outer Subject is not obscured")
	}
	o, err := Open(out, OpenOptions{Keyring: openpgp.EntityList{f.bank, f.customers[0]}, TSARoots: f.roots})
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
	out, err := f.protector.Protect(ctx, []byte(statement), []*openpgp.Entity{modern}, Options{})
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
	out, err = allowing.Protect(ctx, []byte(statement), []*openpgp.Entity{modern}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v := seipdVersion(t, out); v != 2 {
		t.Fatalf("SEIPDv2 allowed and advertised, got v%d", v)
	}
	if _, err := Open(out, OpenOptions{Keyring: openpgp.EntityList{f.bank, modern}}); err != nil {
		t.Fatalf("SEIPDv2 output does not open: %v", err)
	}
	out, err = allowing.Protect(ctx, []byte(statement), []*openpgp.Entity{modern, f.customers[0]}, Options{})
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
	signed, err := f.protector.Sign(ctx, []byte(statement), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o, err := Open(signed, OpenOptions{Keyring: keyring, TSARoots: f.roots}); err != nil || o.Timestamp == nil || o.Encrypted {
		t.Fatalf("sign-only output: %v", err)
	}
	t.Run("TamperedContent", func(t *testing.T) {
		bad := bytes.Replace(signed, []byte("Dear Alice"), []byte("Dear Mallory"), 1)
		if _, err := Open(bad, OpenOptions{Keyring: keyring, TSARoots: f.roots}); !errors.Is(err, ErrSignature) {
			t.Fatalf("got %v, want ErrSignature", err)
		}
	})
	t.Run("UnknownSigner", func(t *testing.T) {
		if _, err := Open(signed, OpenOptions{Keyring: openpgp.EntityList{f.customers[0]}, TSARoots: f.roots}); !errors.Is(err, ErrSignature) {
			t.Fatalf("got %v, want ErrSignature", err)
		}
	})
	t.Run("TimestampForAnotherSignature", func(t *testing.T) {
		// Move the token of one message onto the signature of another: the signature stays good,
		// the token must not verify.
		other, err := f.protector.Sign(ctx, []byte(strings.Replace(statement, "Alice", "Bob", -1)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, _, sigA := parts(t, signed)
		_, _, sigB := parts(t, other)
		tokB := tokenOfArmored(t, sigB)
		swapped := bytes.Replace(signed, sigA, payload.ToCRLF(armorSignature(t, withToken(t, sigA, tokB))), 1)
		if _, err := Open(swapped, OpenOptions{Keyring: keyring, TSARoots: f.roots}); !errors.Is(err, ErrSignature) || !errors.Is(err, tsa.ErrImprintMismatch) {
			t.Fatalf("got %v, want ErrSignature from tsa.ErrImprintMismatch", err)
		}
	})
	t.Run("NotPGPMIME", func(t *testing.T) {
		if _, err := Open([]byte(statement), OpenOptions{Keyring: keyring}); err == nil {
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
