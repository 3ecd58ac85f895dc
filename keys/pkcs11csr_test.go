//go:build cgo

//lint:file-ignore SA1019 customers' clients send PKCS#1 v1.5 key transport, which the support key on the token must decrypt

package keys_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/softhsm/softhsmtest"
	"github.com/sealpost/sealpost/keys"
)

// issueForRequest is the bank's CA issuing a certificate for a PEM request, with the role's profile.
func issueForRequest(t *testing.T, ca *keys.Identity, role keys.Role, csrPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("not a PEM certificate request: %q", csrPEM)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("the token's signature on the request: %v", err)
	}
	tmpl := &x509.Certificate{Subject: csr.Subject, EmailAddresses: csr.EmailAddresses,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), BasicConstraintsValid: true}
	switch role {
	case keys.RoleSupport:
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}
	case keys.RoleTSA:
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, keys.TimeStampingExtension())
	}
	c, err := ca.Issue(tmpl, csr.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNewPKCS11CSR: the key pair is made inside the token, the request is signed there, and once
// the CA's certificate is beside it, LoadPKCS11 gives an identity CheckIdentity accepts.
func TestNewPKCS11CSR(t *testing.T) {
	ca, _, _, _ := identities(t)
	tk := softhsmtest.New(t)
	base := keys.PKCS11Config{Module: tk.Module, TokenLabel: tk.Label, PINFile: tk.PINFile}
	for _, tc := range []struct {
		role   keys.Role
		label  string
		id     string
		kt     keys.KeyType
		emails []string
	}{
		{keys.RoleSupport, "bank-support", "5a", "", []string{"support@bank.example"}},
		{keys.RoleTSA, "bank-tsa", "", keys.KeyP256, nil},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			cfg := base
			cfg.KeyLabel, cfg.KeyID = tc.label, tc.id
			csr, err := keys.NewPKCS11CSR(cfg, tc.role, "/CN=Example Bank "+string(tc.role)+"/O=Example Bank AG/C=DE", tc.emails, tc.kt)
			if err != nil {
				t.Fatal(err)
			}
			cert := issueForRequest(t, ca, tc.role, csr)
			cfg.Certificate = filepath.Join(t.TempDir(), "chain.pem")
			if err := os.WriteFile(cfg.Certificate, keys.EncodeCertificates(cert, ca.Certificate()), 0o600); err != nil {
				t.Fatal(err)
			}
			id := tk.Load(cfg)
			if _, isFileKey := id.Signer.(*rsa.PrivateKey); isFileKey {
				t.Fatal("signer is a file key")
			}
			if err := keys.CheckIdentity(tc.role, id, time.Now()); err != nil {
				t.Fatal(err)
			}
			checkSigns(t, id)
			if tc.role == keys.RoleSupport {
				dec := id.Decrypter()
				if dec == nil {
					t.Fatal("the support key on the token cannot decrypt")
				}
				ct, _ := rsa.EncryptPKCS1v15(rand.Reader, cert.PublicKey.(*rsa.PublicKey), []byte("session key 0123456789abcdef0123"))
				if pt, err := dec.Decrypt(rand.Reader, ct, nil); err != nil || !bytes.Equal(pt, []byte("session key 0123456789abcdef0123")) {
					t.Fatalf("decrypt on the token: %q, %v", pt, err)
				}
			}
			if _, err := keys.NewPKCS11CSR(cfg, tc.role, "/CN=again", tc.emails, tc.kt); !errors.Is(err, keys.ErrPKCS11KeyExists) {
				t.Fatalf("second request with label %s: got %v, want ErrPKCS11KeyExists", tc.label, err)
			}
		})
	}
	t.Run("IDTaken", func(t *testing.T) {
		cfg := base
		cfg.KeyLabel, cfg.KeyID = "another-label", "5a"
		if _, err := keys.NewPKCS11CSR(cfg, keys.RoleSigner, "/CN=x", []string{"statements@bank.example"}, ""); !errors.Is(err, keys.ErrPKCS11KeyExists) {
			t.Fatalf("got %v, want ErrPKCS11KeyExists", err)
		}
	})
	for _, tc := range []struct {
		name string
		edit func(*keys.PKCS11Config)
		kt   keys.KeyType
		want error
	}{
		{"SupportECDSA", func(*keys.PKCS11Config) {}, keys.KeyP256, keys.ErrUnsupportedKey},
		{"NoKeyLabel", func(c *keys.PKCS11Config) { c.KeyLabel = "" }, "", keys.ErrPKCS11Config},
		{"NoToken", func(c *keys.PKCS11Config) { c.TokenLabel = "no-such-token" }, "", keys.ErrTokenNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.KeyLabel = "refused"
			tc.edit(&cfg)
			if _, err := keys.NewPKCS11CSR(cfg, keys.RoleSupport, "/CN=x", []string{"support@bank.example"}, tc.kt); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
