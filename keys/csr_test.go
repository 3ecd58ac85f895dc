package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestNewCSR(t *testing.T) {
	for _, tt := range []struct {
		role   Role
		kt     KeyType
		emails []string
		check  func(pub any) bool
	}{
		{RoleSupport, "", []string{"support@bank.example"}, func(p any) bool { k, ok := p.(*rsa.PublicKey); return ok && k.N.BitLen() == 2048 }},
		{RoleSigner, KeyRSA3072, []string{"statements@bank.example", "otp@bank.example"}, func(p any) bool { k, ok := p.(*rsa.PublicKey); return ok && k.N.BitLen() == 3072 }},
		{RoleTSA, KeyP256, nil, func(p any) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P256() }},
		{RoleSigner, KeyP384, []string{"statements@bank.example"}, func(p any) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P384() }},
	} {
		t.Run(string(tt.role)+"-"+string(tt.kt), func(t *testing.T) {
			dir := DataDir(filepath.Join(t.TempDir(), "data"))
			out, err := dir.NewCSR(tt.role, "/CN=Example Bank/O=Example Bank AG/C=DE", tt.emails, tt.kt)
			if err != nil {
				t.Fatal(err)
			}
			block, rest := pem.Decode(out)
			if block == nil || block.Type != "CERTIFICATE REQUEST" || len(rest) != 0 {
				t.Fatalf("not one PEM certificate request: %q", out)
			}
			csr, err := x509.ParseCertificateRequest(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Fatal(err)
			}
			if csr.Subject.CommonName != "Example Bank" || !slices.Equal(csr.Subject.Country, []string{"DE"}) || !slices.Equal(csr.EmailAddresses, tt.emails) {
				t.Fatalf("request names %s %v", csr.Subject, csr.EmailAddresses)
			}
			if !tt.check(csr.PublicKey) {
				t.Fatalf("wrong key %T", csr.PublicKey)
			}
			file := filepath.Join(string(dir), string(tt.role)+".pending.key")
			st, err := os.Stat(file)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("pending key: %v %v", st, err)
			}
			data, _ := os.ReadFile(file)
			key, err := ParsePrivateKeyPEM(data)
			if err != nil || !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
				t.Fatalf("pending key is not the request's: %v", err)
			}
			if _, err := dir.NewCSR(tt.role, "/CN=again", tt.emails, tt.kt); !errors.Is(err, ErrPendingKey) {
				t.Fatalf("second request: got %v, want ErrPendingKey", err)
			}
			if again, _ := os.ReadFile(file); string(again) != string(data) {
				t.Fatal("a refused request replaced the pending key")
			}
		})
	}
}

func TestNewCSRRefuses(t *testing.T) {
	dir := DataDir(t.TempDir())
	for _, tt := range []struct {
		name    string
		role    Role
		subject string
		emails  []string
		kt      KeyType
		want    error
	}{
		{"SupportECDSA", RoleSupport, "/CN=x", []string{"support@bank.example"}, KeyP256, ErrUnsupportedKey},
		{"SignerWithoutAddress", RoleSigner, "/CN=x", nil, "", ErrNoEmailAddress},
		{"SupportWithoutAddress", RoleSupport, "/CN=x", nil, "", ErrNoEmailAddress},
		{"BadAddress", RoleSigner, "/CN=x", []string{"not an address"}, "", ErrBadAddress},
		{"BadSubject", RoleSigner, "/O=no common name", []string{"a@bank.example"}, "", ErrBadSubject},
		{"UnknownRole", "ca", "/CN=x", nil, "", ErrUnknownRole},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := dir.NewCSR(tt.role, tt.subject, tt.emails, tt.kt); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := dir.NewCSR(RoleSigner, "/CN=x", []string{"a@bank.example"}, "ed25519"); err == nil {
		t.Fatal("unknown key type accepted")
	}
	if ents, _ := os.ReadDir(string(dir)); len(ents) != 0 {
		t.Fatalf("refused requests left files: %v", ents)
	}
}

func TestParseKeyType(t *testing.T) {
	for in, want := range map[string]KeyType{"": KeyRSA2048, "RSA2048": KeyRSA2048, "rsa3072": KeyRSA3072, " p256": KeyP256, "P384": KeyP384} {
		if got, err := ParseKeyType(in); err != nil || got != want {
			t.Fatalf("ParseKeyType(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseKeyType("rsa1024"); err == nil {
		t.Fatal("rsa1024 accepted")
	}
}
