package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/interop"
)

var (
	fixtureOnce sync.Once
	fixtureCA   *Identity
	otherCA     *Identity
	sharedKey   *rsa.PrivateKey
)

// fixtures makes two CAs and one RSA key once: key generation dominates these tests' time.
func fixtures(t *testing.T) (*Identity, *Identity, *rsa.PrivateKey) {
	t.Helper()
	fixtureOnce.Do(func() {
		var err error
		if fixtureCA, err = NewDevCA("test CA"); err != nil {
			panic(err)
		}
		if otherCA, err = NewDevCA("untrusted CA"); err != nil {
			panic(err)
		}
		if sharedKey, err = NewRSAKey(); err != nil {
			panic(err)
		}
	})
	return fixtureCA, otherCA, sharedKey
}

func emailTemplate(addr string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: addr},
		EmailAddresses:        []string{addr},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		BasicConstraintsValid: true,
	}
}

func TestDirectoryRefusesUnusableCertificates(t *testing.T) {
	ca, other, key := fixtures(t)
	smallKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tests := []struct {
		name   string
		issuer *Identity
		pub    any
		edit   func(*x509.Certificate)
		want   error
	}{
		{"Expired", ca, &key.PublicKey, func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
		}, ErrExpired},
		{"NotYetValid", ca, &key.PublicKey, func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour)
		}, ErrNotYetValid},
		{"Untrusted", other, &key.PublicKey, func(*x509.Certificate) {}, ErrUntrusted},
		{"NoEmailProtection", ca, &key.PublicKey, func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		}, ErrNoEmailProtection},
		{"NoKeyEncipherment", ca, &key.PublicKey, func(c *x509.Certificate) {
			c.KeyUsage = x509.KeyUsageDigitalSignature
		}, ErrNoKeyEncipherment},
		{"RSA1024", ca, &smallKey.PublicKey, func(*x509.Certificate) {}, ErrUnsupportedKey},
		{"ECDSA", ca, &ecKey.PublicKey, func(c *x509.Certificate) {
			c.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement
		}, ErrUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := "customer@example.com"
			tmpl := emailTemplate(addr)
			tt.edit(tmpl)
			cert, err := tt.issuer.Issue(tmpl, tt.pub)
			if err != nil {
				t.Fatal(err)
			}
			d := NewDirectory([]*x509.Certificate{ca.Certificate()}, []*x509.Certificate{cert})
			_, err = d.Lookup(addr)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Lookup error = %v, want %v", err, tt.want)
			}
			var rerr *RecipientError
			if !errors.As(err, &rerr) || rerr.Address != addr || len(rerr.Causes) != 1 {
				t.Fatalf("want a *RecipientError for %s with one cause, got %#v", addr, err)
			}
			if entries := d.Entries(); len(entries) != 1 || !errors.Is(entries[0].Problem, tt.want) {
				t.Fatalf("Entries should report the problem %v, got %+v", tt.want, entries)
			}
		})
	}
}

func TestDirectoryUnknownAddress(t *testing.T) {
	ca, _, _ := fixtures(t)
	d := NewDirectory([]*x509.Certificate{ca.Certificate()}, nil)
	if _, err := d.Lookup("nobody@example.com"); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("got %v, want ErrNoCertificate", err)
	}
	if _, err := d.Lookup("not an address"); !errors.Is(err, ErrBadAddress) {
		t.Fatalf("got %v, want ErrBadAddress", err)
	}
}

func TestDirectoryPicksUsableCertificateExpiringLast(t *testing.T) {
	ca, _, key := fixtures(t)
	addr := "alice@example.com"
	mk := func(notAfter time.Duration, edit func(*x509.Certificate)) *x509.Certificate {
		tmpl := emailTemplate(addr)
		tmpl.NotAfter = time.Now().Add(notAfter)
		if edit != nil {
			edit(tmpl)
		}
		c, err := ca.Issue(tmpl, &key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	short := mk(24*time.Hour, nil)
	long := mk(72*time.Hour, nil)
	longestButUnusable := mk(96*time.Hour, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} })
	d := NewDirectory([]*x509.Certificate{ca.Certificate()}, []*x509.Certificate{short, longestButUnusable, long})
	got, err := d.Lookup(addr)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(long) {
		t.Fatalf("picked certificate expiring %v, want the usable one expiring %v", got.NotAfter, long.NotAfter)
	}
}

func TestDirectoryDomainIsCaseInsensitive(t *testing.T) {
	ca, _, key := fixtures(t)
	cert, err := ca.Issue(emailTemplate("Bob@Example.COM"), &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDirectory([]*x509.Certificate{ca.Certificate()}, []*x509.Certificate{cert})
	if _, err := d.Lookup("Bob@example.com"); err != nil {
		t.Fatalf("domain should match case-insensitively: %v", err)
	}
	if _, err := d.Lookup("bob@example.com"); err != nil {
		t.Fatalf("the local part matches without case too (AddressKey); got %v", err)
	}
}

func TestDataDirInitImportAndLoad(t *testing.T) {
	dir := DataDir(t.TempDir())
	if err := dir.Init([]string{"statements@bank.example"}); err != nil {
		t.Fatal(err)
	}
	if err := dir.Init(nil); !errors.Is(err, ErrInitialised) {
		t.Fatalf("second Init: got %v, want ErrInitialised", err)
	}
	for _, name := range []string{"ca", "signer", "tsa"} {
		id, err := dir.Identity(name)
		if err != nil {
			t.Fatalf("load %s: %v", name, err)
		}
		st, err := os.Stat(filepath.Join(string(dir), name+".key"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s.key mode %v, want 0600 (%v)", name, st.Mode().Perm(), err)
		}
		if name == "tsa" {
			ext := id.Certificate().Extensions
			found := false
			for _, e := range ext {
				found = found || (e.Id.Equal(oidExtKeyUsage) && e.Critical)
			}
			if !found {
				t.Fatal("TSA certificate must carry a critical extendedKeyUsage")
			}
		}
	}
	ca, err := dir.Identity("ca")
	if err != nil {
		t.Fatal(err)
	}
	cust, err := ca.NewDevCustomer("carol@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dir.Import(EncodeCertificates(cust.Certificate()), ImportOptions{Root: true}); err == nil {
		t.Fatal("a leaf certificate must not be importable as a trusted root")
	}
	if _, err := dir.Import(cust.Certificate().Raw, ImportOptions{}); err != nil { // DER is accepted too
		t.Fatal(err)
	}
	if _, err := dir.Import(cust.Certificate().Raw, ImportOptions{}); err != nil {
		t.Fatalf("re-import must be harmless: %v", err)
	}
	d, err := dir.Directory()
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Lookup("carol@example.org")
	if err != nil || !got.Equal(cust.Certificate()) {
		t.Fatalf("lookup after import: %v", err)
	}
	if n := len(d.Entries()); n != 1 {
		t.Fatalf("%d entries after importing one certificate twice, want 1", n)
	}
}

func TestIdentityKeyMismatch(t *testing.T) {
	ca, _, key := fixtures(t)
	cust, err := ca.NewDevCustomer("dave@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewIdentity(key, cust.Chain); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("got %v, want ErrKeyMismatch", err)
	}
}

func TestSecretSources(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := (Secret{File: f}).Read(); err != nil || v != "s3cret" {
		t.Fatalf("file secret = %q, %v", v, err)
	}
	t.Setenv("SEALPOST_TEST_PW", "from-env")
	if v, err := (Secret{Env: "SEALPOST_TEST_PW"}).Read(); err != nil || v != "from-env" {
		t.Fatalf("env secret = %q, %v", v, err)
	}
	if _, err := (Secret{Env: "SEALPOST_TEST_UNSET_VARIABLE"}).Read(); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("unset env: got %v, want ErrNoSecret", err)
	}
	if _, err := (Secret{}).Read(); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("empty secret: got %v", err)
	}
}

// TestLoadPKCS12FromOpenSSL loads a PKCS#12 file written by the real openssl (AES-256/PBKDF2 by
// default in OpenSSL 3, and the legacy 3DES format) with the password from a file.
func TestLoadPKCS12FromOpenSSL(t *testing.T) {
	interop.Tool(t, "openssl")
	ca, _, _ := fixtures(t)
	id, err := ca.NewDevSigner([]string{"statements@bank.example"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	der, _ := x509.MarshalPKCS8PrivateKey(id.Signer)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	os.WriteFile(certFile, EncodeCertificates(id.Certificate(), ca.Certificate()), 0o644)
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("correct horse\n"), 0o600)
	for _, variant := range [][]string{nil, {"-legacy"}} {
		p12 := filepath.Join(dir, "id.p12")
		args := append([]string{"pkcs12", "-export", "-in", certFile, "-inkey", keyFile, "-out", p12, "-passout", "file:" + pwFile}, variant...)
		if _, stderr, err := interop.Try(t, nil, "openssl", args...); err != nil {
			if len(variant) > 0 {
				t.Logf("openssl %v unavailable here: %s", variant, stderr)
				continue
			}
			t.Fatalf("openssl pkcs12: %v: %s", err, stderr)
		}
		pw, err := (Secret{File: pwFile}).Read()
		if err != nil {
			t.Fatal(err)
		}
		got, err := LoadPKCS12(p12, pw)
		if err != nil {
			t.Fatalf("LoadPKCS12 %v: %v", variant, err)
		}
		if !got.Certificate().Equal(id.Certificate()) || len(got.Chain) != 2 {
			t.Fatalf("PKCS#12 %v: wrong chain (%d certs)", variant, len(got.Chain))
		}
		if _, err := LoadPKCS12(p12, "wrong"); err == nil {
			t.Fatalf("PKCS#12 %v: wrong password accepted", variant)
		}
	}
}

// FuzzParseCertificates: certificate files from operators and customers are untrusted input.
func FuzzParseCertificates(f *testing.F) {
	ca, _, _ := fixtures(&testing.T{})
	f.Add(EncodeCertificates(ca.Certificate()))
	f.Add(ca.Certificate().Raw)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseCertificates(data)
		if err != nil {
			return
		}
		d := NewDirectory(certs, certs)
		for _, c := range certs {
			for _, a := range c.EmailAddresses {
				_, _ = d.Lookup(a)
			}
		}
		_ = d.Entries()
	})
}
