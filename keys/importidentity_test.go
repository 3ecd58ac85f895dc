package keys

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"software.sslmate.com/src/go-pkcs12"
)

func keyPEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// issueRole certifies key for role with the fixture CA.
func issueRole(t testing.TB, role Role, key crypto.Signer) *x509.Certificate {
	t.Helper()
	ca, _, _ := fixtures(&testing.T{})
	c, err := ca.Issue(roleTemplate(role), key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// issueCSR certifies a PEM certificate request for role with the fixture CA, as a CA would.
func issueCSR(t *testing.T, role Role, csrPEM []byte) *x509.Certificate {
	t.Helper()
	ca, _, _ := fixtures(t)
	block, _ := pem.Decode(csrPEM)
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := roleTemplate(role)
	tmpl.Subject, tmpl.EmailAddresses = csr.Subject, csr.EmailAddresses
	c, err := ca.Issue(tmpl, csr.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestImportIdentityPEM(t *testing.T) {
	ca, _, key := fixtures(t)
	dir := DataDir(filepath.Join(t.TempDir(), "data"))
	leaf := issueRole(t, RoleSupport, key)
	// CA first, key in the middle, leaf last: as files are often concatenated.
	input := bytes.Join([][]byte{EncodeCertificates(ca.Certificate()), keyPEM(t, key), EncodeCertificates(leaf)}, nil)
	id, err := ParseIdentityPEM(input)
	if err != nil {
		t.Fatal(err)
	}
	if len(id.Chain) != 2 || !id.Chain[0].Equal(leaf) || !id.Chain[1].Equal(ca.Certificate()) {
		t.Fatal("chain not put in order, leaf first")
	}
	if _, err := dir.ImportIdentity(RoleSupport, id); err != nil {
		t.Fatal(err)
	}
	got, err := dir.Identity("support")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Chain) != 2 || !got.Certificate().Equal(leaf) || got.Decrypter() == nil {
		t.Fatal("stored identity differs")
	}
	for name, perm := range map[string]os.FileMode{"support.key": 0o600, "support.pem": 0o644, "": 0o700} {
		st, err := os.Stat(filepath.Join(string(dir), name))
		if err != nil || st.Mode().Perm() != perm {
			t.Fatalf("%q: mode %v, want %v (%v)", name, st.Mode().Perm(), perm, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(string(dir), "support.key")); !bytes.HasPrefix(b, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Fatal("support.key is not PKCS#8")
	}
}

func TestImportIdentityPKCS12(t *testing.T) {
	ca, _, key := fixtures(t)
	leaf := issueRole(t, RoleSigner, key)
	p12, err := pkcs12.Modern.Encode(key, leaf, []*x509.Certificate{ca.Certificate()}, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePKCS12(p12, "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	id, err := ParsePKCS12(p12, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	dir := DataDir(t.TempDir())
	if _, err := dir.ImportIdentity(RoleSigner, id); err != nil {
		t.Fatal(err)
	}
	if got, err := dir.Identity("signer"); err != nil || !got.Certificate().Equal(leaf) {
		t.Fatalf("stored signer: %v", err)
	}
}

func TestImportIdentityPairsWithPendingKey(t *testing.T) {
	_, _, key := fixtures(t)
	dir := DataDir(t.TempDir())
	pending := filepath.Join(string(dir), "support.pending.key")
	csr, err := dir.NewCSR(RoleSupport, "/CN=Example Bank Support/O=Example Bank AG/C=DE", []string{"support@bank.example"}, "")
	if err != nil {
		t.Fatal(err)
	}
	cert := issueCSR(t, RoleSupport, csr)

	t.Run("CertificateForAnotherKey", func(t *testing.T) {
		id, err := ParseIdentityPEM(EncodeCertificates(issueRole(t, RoleSupport, key)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dir.ImportIdentity(RoleSupport, id); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("got %v, want ErrKeyMismatch", err)
		}
		if _, err := os.Stat(pending); err != nil {
			t.Fatal("a refused import removed the pending key")
		}
		if _, err := os.Stat(filepath.Join(string(dir), "support.pem")); err == nil {
			t.Fatal("a refused import wrote support.pem")
		}
	})
	t.Run("PendingKeyOfAnotherRole", func(t *testing.T) {
		id, _ := ParseIdentityPEM(EncodeCertificates(cert))
		if _, err := dir.ImportIdentity(RoleSigner, id); !errors.Is(err, ErrNoPrivateKey) {
			t.Fatalf("got %v, want ErrNoPrivateKey", err)
		}
	})
	t.Run("IssuedCertificate", func(t *testing.T) {
		id, err := ParseIdentityPEM(EncodeCertificates(cert))
		if err != nil || id.Signer != nil {
			t.Fatalf("parse: %v (signer %v)", err, id.Signer)
		}
		if _, err := dir.ImportIdentity(RoleSupport, id); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(pending); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("pending key still there: %v", err)
		}
		got, err := dir.Identity("support")
		if err != nil || !got.Certificate().Equal(cert) {
			t.Fatalf("stored support identity: %v", err)
		}
	})
	t.Run("AgainWithoutPendingKey", func(t *testing.T) {
		id, _ := ParseIdentityPEM(EncodeCertificates(cert))
		if _, err := dir.ImportIdentity(RoleSupport, id); !errors.Is(err, ErrNoPrivateKey) {
			t.Fatalf("got %v, want ErrNoPrivateKey", err)
		}
	})
}

func TestImportIdentityRefuses(t *testing.T) {
	ca, other, key := fixtures(t)
	signerCert := issueRole(t, RoleSigner, key)
	for _, tt := range []struct {
		name  string
		role  Role
		input []byte
		want  error
	}{
		{"SignerCertificateAsSupport", RoleSupport, append(EncodeCertificates(signerCert), keyPEM(t, key)...), ErrNoKeyEncipherment},
		{"SupportCertificateAsTSA", RoleTSA, append(EncodeCertificates(issueRole(t, RoleSupport, key)), keyPEM(t, key)...), ErrNoTimeStamping},
		{"ChainOfAnotherCA", RoleSigner, bytes.Join([][]byte{EncodeCertificates(signerCert, other.Certificate()), keyPEM(t, key)}, nil), ErrChainBroken},
		{"KeyForAnotherCertificate", RoleSigner, append(EncodeCertificates(signerCert), keyPEM(t, testKeys()["other"])...), ErrKeyMismatch},
		{"OnlyCACertificates", RoleSigner, EncodeCertificates(ca.Certificate()), ErrNoCertificateInFile},
		{"OnlyAKey", RoleSigner, keyPEM(t, key), ErrNoCertificateInFile},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := DataDir(t.TempDir())
			id, err := ParseIdentityPEM(tt.input)
			if err == nil {
				_, err = dir.ImportIdentity(tt.role, id)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			t.Log(err)
			if ents, _ := os.ReadDir(string(dir)); len(ents) != 0 {
				t.Fatalf("a refused import wrote %v", ents)
			}
		})
	}
	dir := DataDir(t.TempDir())
	two := bytes.Join([][]byte{keyPEM(t, key), keyPEM(t, key), EncodeCertificates(signerCert)}, nil)
	if _, err := ParseIdentityPEM(two); err == nil {
		t.Fatal("two private keys accepted")
	}
	twoLeaves := EncodeCertificates(signerCert, issueRole(t, RoleSupport, key))
	if _, err := ParseIdentityPEM(twoLeaves); err == nil {
		t.Fatal("two leaf certificates without a key accepted")
	}
	if _, err := dir.ImportIdentity("ca", &Identity{Signer: key, Chain: []*x509.Certificate{signerCert}}); !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("role ca: got %v", err)
	}
}

// FuzzParseIdentityPEM: identity files come from the bank's CA or its operators, but a parser
// must not panic whatever it is given.
func FuzzParseIdentityPEM(f *testing.F) {
	ca, _, key := fixtures(&testing.T{})
	leaf := issueRole(f, RoleSigner, key)
	f.Add(bytes.Join([][]byte{EncodeCertificates(leaf, ca.Certificate()), keyPEM(f, key)}, nil))
	f.Add(EncodeCertificates(leaf))
	f.Add(keyPEM(f, key))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := ParseIdentityPEM(data)
		if err != nil {
			return
		}
		for _, r := range Roles() {
			_ = CheckIdentity(r, id, ca.Certificate().NotBefore)
		}
	})
}
