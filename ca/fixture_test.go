package ca_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/ca"
	"github.com/sealpost/sealpost/keys"
)

const alice = "alice@customer.example"

// bank is a development CA (the trusted root) and the customer CA it issued, made once.
type bank struct{ root, customerCA *keys.Identity }

var theBank = sync.OnceValues(func() (bank, error) {
	root, err := keys.NewDevCA("test root CA")
	if err != nil {
		return bank{}, err
	}
	sub, err := root.NewDevCustomerCA()
	if err != nil {
		return bank{}, err
	}
	sub.Chain = append(sub.Chain, root.Certificate())
	return bank{root: root, customerCA: sub}, nil
})

func testBank(t testing.TB) bank {
	t.Helper()
	b, err := theBank()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newCA is the bank's customer CA on st.
func newCA(t testing.TB, st ca.Store, opts ...ca.Option) *ca.CA {
	t.Helper()
	c, err := ca.New(ca.DefaultConfig(), testBank(t).customerCA, st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// request is a PKCS#10 request made with crypto/x509 from key, edited by tmpl's fields.
func request(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

var p256Key = sync.OnceValue(func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
})

// aliceCSR is a good request for alice (P-256, her address as SAN).
func aliceCSR(t testing.TB) []byte {
	return request(t, p256Key(), &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Alice"}, EmailAddresses: []string{alice}})
}

// issuedCount is how many certificates st holds.
func issuedCount(t testing.TB, st ca.Store) int {
	t.Helper()
	all, err := st.IssuedCerts(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func certsPEM(certs ...*x509.Certificate) []byte { return keys.EncodeCertificates(certs...) }

func fixedClock(at time.Time) ca.Option { return ca.WithClock(func() time.Time { return at }) }
