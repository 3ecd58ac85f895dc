package keys

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseImportRefusesCustomersCertificates(t *testing.T) {
	ca, _, key := fixtures(t)
	keys := testKeys()
	customer := func(edit func(*x509.Certificate), pub any) *x509.Certificate {
		tmpl := emailTemplate("customer@example.com")
		if edit != nil {
			edit(tmpl)
		}
		c, err := ca.Issue(tmpl, pub)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good := customer(nil, &key.PublicKey)
	for _, tt := range []struct {
		name  string
		input []byte
		want  []error
	}{
		{"NoEmailAddress", EncodeCertificates(customer(func(c *x509.Certificate) { c.EmailAddresses = nil }, &key.PublicKey)), []error{ErrNoEmailAddress}},
		{"Expired", EncodeCertificates(customer(func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
		}, &key.PublicKey)), []error{ErrExpired}},
		{"NotYetValid", EncodeCertificates(customer(func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(time.Hour), time.Now().Add(48*time.Hour)
		}, &key.PublicKey)), []error{ErrNotYetValid}},
		{"RSA1024", EncodeCertificates(customer(nil, keys["rsa1024"].Public())), []error{ErrUnsupportedKey}},
		{"ECDSA", EncodeCertificates(customer(nil, keys["p256"].Public())), []error{ErrUnsupportedKey}},
		{"CAAlone", EncodeCertificates(ca.Certificate()), []error{ErrCACertificate}},
		{"CAAloneDER", ca.Certificate().Raw, []error{ErrCACertificate}},
		{"EveryProblem", EncodeCertificates(customer(func(c *x509.Certificate) {
			c.EmailAddresses = nil
			c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
		}, keys["rsa1024"].Public())), []error{ErrNoEmailAddress, ErrExpired, ErrUnsupportedKey}},
		{"OneBadAmongGood", EncodeCertificates(good, customer(func(c *x509.Certificate) { c.EmailAddresses = nil }, &key.PublicKey)), []error{ErrNoEmailAddress}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseImport(tt.input, ImportOptions{})
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("got %v, want %v", err, w)
				}
			}
			var kerr *KeyError
			if !errors.As(err, &kerr) || kerr.Serial == "" {
				t.Fatalf("want a *KeyError naming the certificate, got %#v", err)
			}
			t.Log(err)
			dir := DataDir(t.TempDir())
			if _, err := dir.Import(tt.input, ImportOptions{}); err == nil {
				t.Fatal("Import stored what ParseImport refuses")
			}
			if ents, _ := os.ReadDir(filepath.Join(string(dir), "recipients")); len(ents) != 0 {
				t.Fatalf("a refused import stored %v", ents)
			}
			imp, err := dir.Import(tt.input, ImportOptions{Force: true})
			if err != nil || len(imp.Certificates) == 0 {
				t.Fatalf("forced import: %v", err)
			}
		})
	}
}

func TestParseImportIntermediateBesideLeaf(t *testing.T) {
	ca, _, key := fixtures(t)
	leaf, err := ca.Issue(emailTemplate("customer@example.com"), &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	imp, err := ParseImport(EncodeCertificates(leaf, ca.Certificate()), ImportOptions{})
	if err != nil || len(imp.Certificates) != 2 {
		t.Fatalf("leaf with its CA: %v", err)
	}
	if imp, err := ParseImport(EncodeCertificates(ca.Certificate()), ImportOptions{Root: true}); err != nil || len(imp.Certificates) != 1 {
		t.Fatalf("CA as root: %v", err)
	}
	if _, err := ParseImport(EncodeCertificates(leaf), ImportOptions{Root: true, Force: true}); err == nil {
		t.Fatal("Force made a leaf a trusted root")
	}
}

func TestParseImportSaysWhatInputIsNot(t *testing.T) {
	ca, _, key := fixtures(t)
	secret := "password=correct-horse-battery-staple-and-a-great-deal-more-secret-text"
	for _, tt := range []struct {
		name  string
		input []byte
	}{
		{"Empty", nil},
		{"Whitespace", []byte(" \r\n\t")},
		{"Text", []byte("not a certificate")},
		{"SecretText", []byte(secret + "\n" + secret)},
		{"PrivateKeyOnly", keyPEM(t, key)},
		{"CertificateRequestOnly", []byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n")},
		{"BrokenPEM", []byte("-----BEGIN CERTIFICATE\n" + secret + "\n")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseImport(tt.input, ImportOptions{})
			if !errors.Is(err, ErrNoKeyMaterial) {
				t.Fatalf("got %v, want ErrNoKeyMaterial", err)
			}
			t.Log(err)
			if strings.Contains(err.Error(), secret[maxExcerpt:]) || strings.Contains(err.Error(), "MII") {
				t.Fatalf("error echoes the input: %v", err)
			}
		})
	}
	// A real certificate after text is still found.
	withText := append([]byte("Alice's certificate, as her mail client exported it:\n"), EncodeCertificates(ca.Certificate())...)
	if _, err := ParseImport(withText, ImportOptions{Root: true}); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseImport: what operators import comes from customers. Parsing and checking must never
// panic, and an error never carries the raw input.
func FuzzParseImport(f *testing.F) {
	ca, _, key := fixtures(&testing.T{})
	leaf, _ := ca.Issue(emailTemplate("fuzz@example.org"), &key.PublicKey)
	f.Add(EncodeCertificates(leaf, ca.Certificate()))
	f.Add(leaf.Raw)
	f.Add(ca.Certificate().Raw)
	f.Add([]byte("not a certificate, and a long enough line to notice if it is echoed back"))
	f.Add(keyPEM(f, key))
	f.Add([]byte{0x30, 0x82, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, opts := range []ImportOptions{{}, {Root: true}, {Force: true}} {
			imp, err := ParseImport(data, opts)
			if err != nil {
				// Only an input long enough to be cut to an excerpt can show that it was not
				// (an all-blank input trims to "", which every message contains).
				if in := bytes.TrimSpace(data); len(in) > 2*maxExcerpt && strings.Contains(err.Error(), string(in)) {
					t.Fatalf("error echoes the input: %v", err)
				}
				continue
			}
			_ = NewDirectory(imp.Certificates, imp.Certificates).Entries()
		}
	})
}
