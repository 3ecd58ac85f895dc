package keys

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// newBankCA makes a CA that is not a development one, as the bank's real CA would be.
func newBankCA(t *testing.T) *Identity {
	t.Helper()
	_, _, key := fixtures(t)
	ca := &Identity{Signer: key}
	cert, err := ca.Issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "Example Bank Issuing CA", Organization: []string{"Example Bank AG"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	ca.Chain = []*x509.Certificate{cert}
	return ca
}

func TestInitSupportIdentity(t *testing.T) {
	dir := DataDir(t.TempDir())
	if err := dir.Init([]string{"statements@bank.example"}); err != nil {
		t.Fatal(err)
	}
	ca, err := dir.Identity("ca")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Roles() {
		id, err := dir.Identity(string(r))
		if err != nil {
			t.Fatal(err)
		}
		// The development identities pass the checks a real one must pass, with their CA.
		if err := CheckIdentity(r, &Identity{Signer: id.Signer, Chain: append(id.Chain, ca.Certificate())}, time.Now()); err != nil {
			t.Errorf("development %s: %v", r, err)
		}
	}
	support, _ := dir.Identity("support")
	c := support.Certificate()
	if !slices.Equal(c.EmailAddresses, []string{DefaultSupportAddress}) || c.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment ||
		!slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}) || support.Decrypter() == nil {
		t.Fatalf("support certificate: %v %v %v", c.EmailAddresses, c.KeyUsage, c.ExtKeyUsage)
	}
	if err := c.CheckSignatureFrom(ca.Certificate()); err != nil {
		t.Fatalf("support not issued by the development CA: %v", err)
	}
	signer, _ := dir.Identity("signer")
	if signer.Certificate().KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment {
		t.Fatal("the signer's key usage changed")
	}
	for _, export := range []func(string) ([]byte, error){dir.Export, dir.ChainPEM} {
		b, err := export("support")
		if err != nil || !bytes.Equal(b, EncodeCertificates(c)) {
			t.Fatalf("export support: %v", err)
		}
	}
	st, err := os.Stat(filepath.Join(string(dir), "support.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("support.key: %v %v", st, err)
	}
}

func TestInitSupportAddresses(t *testing.T) {
	dir := DataDir(t.TempDir())
	if err := dir.Init(nil, WithSupportAddresses()); !errors.Is(err, ErrNoEmailAddress) {
		t.Fatalf("no support address: got %v", err)
	}
	addrs := []string{"help@bank.example", "desk@bank.example"}
	if err := dir.Init([]string{"statements@bank.example"}, WithSupportAddresses(addrs...)); err != nil {
		t.Fatal(err)
	}
	id, err := dir.Identity("support")
	if err != nil || !slices.Equal(id.Certificate().EmailAddresses, addrs) {
		t.Fatalf("support names %v (%v), want %v", id.Certificate().EmailAddresses, err, addrs)
	}
}

// TestInitAddsSupportToOldDirectory: a directory initialised before the support identity existed
// gets one from its own CA, and keeps everything else.
func TestInitAddsSupportToOldDirectory(t *testing.T) {
	dir := DataDir(t.TempDir())
	if err := dir.Init([]string{"statements@bank.example"}); err != nil {
		t.Fatal(err)
	}
	before := map[string][]byte{}
	for _, f := range []string{"ca.pem", "ca.key", "signer.pem", "signer.key", "tsa.pem", "tsa.key", "pgp.key"} {
		before[f], _ = os.ReadFile(filepath.Join(string(dir), f))
	}
	os.Remove(filepath.Join(string(dir), "support.pem"))
	os.Remove(filepath.Join(string(dir), "support.key"))
	if _, err := dir.Export("support"); !errors.Is(err, ErrNotInitialised) {
		t.Fatalf("export missing support: got %v", err)
	}
	if err := dir.Init([]string{"statements@bank.example"}); err != nil {
		t.Fatal(err)
	}
	for f, b := range before {
		if after, _ := os.ReadFile(filepath.Join(string(dir), f)); !bytes.Equal(after, b) {
			t.Fatalf("adding the support identity changed %s", f)
		}
	}
	ca, _ := dir.Identity("ca")
	support, err := dir.Identity("support")
	if err != nil {
		t.Fatal(err)
	}
	if err := support.Certificate().CheckSignatureFrom(ca.Certificate()); err != nil {
		t.Fatalf("support not issued by the directory's CA: %v", err)
	}
	if err := dir.Init(nil); !errors.Is(err, ErrInitialised) {
		t.Fatalf("Init of a complete directory: got %v", err)
	}
}

// TestInitKeepsImportedIdentity: Init never replaces the bank's own identity with a development
// one, and adds no development CA (a new trusted root) beside the bank's identities.
func TestInitKeepsImportedIdentity(t *testing.T) {
	_, _, key := fixtures(t)
	bank := newBankCA(t)
	cert, err := bank.Issue(roleTemplate(RoleSupport), key.Public())
	if err != nil {
		t.Fatal(err)
	}
	real := &Identity{Signer: key, Chain: []*x509.Certificate{cert, bank.Certificate()}}

	t.Run("BesideTheDevelopmentCA", func(t *testing.T) {
		dir := DataDir(t.TempDir())
		if err := dir.Init([]string{"statements@bank.example"}); err != nil {
			t.Fatal(err)
		}
		if _, err := dir.ImportIdentity(RoleSupport, real); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(string(dir), "signer.pem"))
		if err := dir.Init([]string{"statements@bank.example"}); err != nil {
			t.Fatal(err)
		}
		if got, err := dir.Identity("support"); err != nil || !got.Certificate().Equal(cert) {
			t.Fatalf("Init replaced the imported support identity (%v)", err)
		}
		if _, err := dir.Identity("signer"); err != nil {
			t.Fatalf("Init did not add the signer: %v", err)
		}
	})
	t.Run("WithoutDevelopmentCA", func(t *testing.T) {
		dir := DataDir(t.TempDir())
		if _, err := dir.ImportIdentity(RoleSupport, real); err != nil {
			t.Fatal(err)
		}
		err := dir.Init([]string{"statements@bank.example"})
		if !errors.Is(err, ErrInitialised) {
			t.Fatalf("got %v, want ErrInitialised", err)
		}
		t.Log(err)
		for _, f := range []string{"ca.pem", "signer.pem", "roots"} {
			if _, err := os.Stat(filepath.Join(string(dir), f)); err == nil {
				t.Fatalf("refused Init created %s", f)
			}
		}
	})
}

func TestDevelopmentIdentities(t *testing.T) {
	_, _, key := fixtures(t)
	dir := DataDir(t.TempDir())
	if dev, err := dir.DevelopmentIdentities(); err != nil || len(dev) != 0 {
		t.Fatalf("empty directory: %v %v", dev, err)
	}
	if _, err := dir.IsDevelopment(RoleSigner); !errors.Is(err, ErrNotInitialised) {
		t.Fatalf("missing signer: got %v", err)
	}
	if err := dir.Init([]string{"statements@bank.example"}); err != nil {
		t.Fatal(err)
	}
	if dev, err := dir.DevelopmentIdentities(); err != nil || !slices.Equal(dev, Roles()) {
		t.Fatalf("after Init: %v %v, want every role", dev, err)
	}

	t.Run("RealIdentityIsNot", func(t *testing.T) {
		bank := newBankCA(t)
		cert, err := bank.Issue(roleTemplate(RoleSupport), key.Public())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dir.ImportIdentity(RoleSupport, &Identity{Signer: key, Chain: []*x509.Certificate{cert, bank.Certificate()}}); err != nil {
			t.Fatal(err)
		}
		if dev, err := dir.IsDevelopment(RoleSupport); err != nil || dev {
			t.Fatalf("real support: development %v (%v)", dev, err)
		}
		if dev, _ := dir.DevelopmentIdentities(); !slices.Equal(dev, []Role{RoleSigner, RoleTSA, RoleCustomerCA}) {
			t.Fatalf("got %v, want signer, tsa and customer-ca", dev)
		}
	})
	t.Run("IssuedByTheDirectoryCA", func(t *testing.T) {
		// Neither it nor its issuer is named as development, but ca.pem issued it.
		other := newBankCA(t)
		cert, err := other.Issue(roleTemplate(RoleSigner), key.Public())
		if err != nil {
			t.Fatal(err)
		}
		if isDevelopment(cert, nil) || !isDevelopment(cert, other.Certificate()) {
			t.Fatal("only a certificate issued by the directory's CA is development")
		}
	})
	t.Run("NamedWithoutCA", func(t *testing.T) {
		os.Remove(filepath.Join(string(dir), "ca.pem"))
		if dev, err := dir.IsDevelopment(RoleSigner); err != nil || !dev {
			t.Fatalf("development signer without ca.pem: %v (%v)", dev, err)
		}
	})
	if _, err := dir.IsDevelopment("ca"); !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("role ca: got %v", err)
	}
}
