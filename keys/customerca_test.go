package keys

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"
)

// TestCheckIdentityCustomerCA: the customer CA must be a CA that signs certificates and CRLs; a
// customer's or the signer's certificate is refused, and so is a CA that may not sign CRLs.
func TestCheckIdentityCustomerCA(t *testing.T) {
	bank := newBankCA(t)
	_, _, key := fixtures(t)
	issue := func(t *testing.T, edit func(*x509.Certificate)) *Identity {
		t.Helper()
		tmpl := roleTemplate(RoleCustomerCA)
		edit(tmpl)
		cert, err := bank.Issue(tmpl, key.Public())
		if err != nil {
			t.Fatal(err)
		}
		return &Identity{Signer: key, Chain: []*x509.Certificate{cert, bank.Certificate()}}
	}
	if err := CheckIdentity(RoleCustomerCA, issue(t, func(*x509.Certificate) {}), time.Now()); err != nil {
		t.Fatalf("a CA with keyCertSign and cRLSign: %v", err)
	}
	for name, edit := range map[string]func(*x509.Certificate){
		"NotACA":     func(c *x509.Certificate) { *c = *roleTemplate(RoleSigner) },
		"NoCRLSign":  func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageCertSign },
		"NoKeyUsage": func(c *x509.Certificate) { c.KeyUsage = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			if err := CheckIdentity(RoleCustomerCA, issue(t, edit), time.Now()); !errors.Is(err, ErrNotCA) {
				t.Fatalf("got %v, want ErrNotCA", err)
			}
		})
	}
}

// TestInitCustomerCA: keys init makes the customer CA under the development CA, so what it issues
// chains to a root the directory trusts; a directory initialised before it gets it added.
func TestInitCustomerCA(t *testing.T) {
	dir := DataDir(t.TempDir())
	if err := dir.Init([]string{"statements@bank.example"}); err != nil {
		t.Fatal(err)
	}
	id, err := dir.Identity(string(RoleCustomerCA))
	if err != nil {
		t.Fatal(err)
	}
	roots, err := dir.Roots()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	c := id.Certificate()
	if !c.IsCA || !c.MaxPathLenZero || c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Fatalf("customer CA: CA %v, path length zero %v, key usage %v", c.IsCA, c.MaxPathLenZero, c.KeyUsage)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("customer CA does not chain to the directory's roots: %v", err)
	}
	if err := removeSynced(dir.path("customer-ca.pem")); err != nil {
		t.Fatal(err)
	}
	if err := dir.Init([]string{"statements@bank.example"}); err != nil {
		t.Fatalf("Init on a directory without the customer CA: %v", err)
	}
	again, err := dir.Identity(string(RoleCustomerCA))
	if err != nil || again.Certificate().CheckSignatureFrom(mustIdentity(t, dir, "ca").Certificate()) != nil {
		t.Fatalf("customer CA added later is not issued by the directory's CA: %v", err)
	}
}

func mustIdentity(t *testing.T, dir DataDir, name string) *Identity {
	t.Helper()
	id, err := dir.Identity(name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
