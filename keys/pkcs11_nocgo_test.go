//go:build !cgo

package keys_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/keys"
)

// TestLoadPKCS11WithoutCgo: a CGO_ENABLED=0 build refuses PKCS#11 with ErrPKCS11Module instead of
// failing to build.
func TestLoadPKCS11WithoutCgo(t *testing.T) {
	ca, err := keys.NewDevCA("no-cgo test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := keys.PKCS11Config{
		Module:      filepath.Join(dir, "libhsm.so"),
		TokenLabel:  "bank",
		KeyLabel:    "signer",
		PINFile:     filepath.Join(dir, "pin"),
		Certificate: filepath.Join(dir, "cert.pem"),
	}
	for name, data := range map[string][]byte{cfg.Module: []byte("module"), cfg.PINFile: []byte("1234"), cfg.Certificate: keys.EncodeCertificates(ca.Certificate())} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := keys.LoadPKCS11(cfg); !errors.Is(err, keys.ErrPKCS11Module) {
		t.Fatalf("got %v, want ErrPKCS11Module", err)
	}
}

// TestNewPKCS11CSRWithoutCgo: the same for generating a key pair on a token.
func TestNewPKCS11CSRWithoutCgo(t *testing.T) {
	dir := t.TempDir()
	cfg := keys.PKCS11Config{Module: filepath.Join(dir, "libhsm.so"), TokenLabel: "bank", KeyLabel: "support", PINFile: filepath.Join(dir, "pin")}
	for _, name := range []string{cfg.Module, cfg.PINFile} {
		if err := os.WriteFile(name, []byte("1234"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := keys.NewPKCS11CSR(cfg, keys.RoleSupport, "/CN=x", []string{"support@bank.example"}, ""); !errors.Is(err, keys.ErrPKCS11Module) {
		t.Fatalf("got %v, want ErrPKCS11Module", err)
	}
}
