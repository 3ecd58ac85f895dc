package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/store"
)

// failingStore is a real store whose PutRecipientKey fails while failPut is set: the way to an
// answer of 500 after the call began.
type failingStore struct {
	Store
	failPut atomic.Bool
}

func (s *failingStore) PutRecipientKey(ctx context.Context, k store.RecipientKey) error {
	if s.failPut.Load() {
		return errors.New("disk on fire")
	}
	return s.Store.PutRecipientKey(ctx, k)
}

// AuditLog passes through, for the fixture's audit().
func (s *failingStore) AuditLog(ctx context.Context, after int64, limit int) ([]store.AuditRecord, error) {
	return s.Store.(interface {
		AuditLog(ctx context.Context, after int64, limit int) ([]store.AuditRecord, error)
	}).AuditLog(ctx, after, limit)
}

// x509MarshalPKCS8 is the shared RSA key as PKCS#8 DER.
func x509MarshalPKCS8(m material) ([]byte, error) { return x509.MarshalPKCS8PrivateKey(m.rsa) }

// clientCert is a client certificate and the CA file that trusts it.
type clientCert struct {
	certs  []tls.Certificate
	caFile string
}

// tlstestClient makes a self-signed client certificate and writes it as the CA file.
func tlstestClient(t testing.TB) clientCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "online banking"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "client-ca.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return clientCert{certs: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, caFile: f}
}
