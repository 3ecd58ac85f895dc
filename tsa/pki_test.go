package tsa

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// This file builds the small PKIs the tests need: a CA and TSA certificates with or without the
// properties RFC 3161 section 2.3 requires.

var oidKPTimeStamping = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}

// rsaKey is generated once per test binary: RSA-2048 generation is slow and the key is not the
// subject of any test.
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type testCA struct {
	key   *ecdsa.PrivateKey
	cert  *x509.Certificate
	roots *x509.CertPool
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	ca := issueCA(t, name, 1, nil)
	ca.roots = x509.NewCertPool()
	ca.roots.AddCert(ca.cert)
	return ca
}

// subCA returns an intermediate CA issued by ca; its roots are ca's.
func (ca *testCA) subCA(t testing.TB, name string) *testCA {
	t.Helper()
	sub := issueCA(t, name, 10, ca)
	sub.roots = ca.roots
	return sub
}

// issueCA makes a P-256 CA certificate, self-signed when parent is nil.
func issueCA(t testing.TB, name string, serial int64, parent *testCA) *testCA {
	t.Helper()
	key := newP256(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"sealpost test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	issuer, issuerKey := tmpl, key
	if parent != nil {
		issuer, issuerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{key: key, cert: cert}
}

// tsaCert describes a TSA certificate; the zero value is a proper one (critical EKU timeStamping
// only, digitalSignature, valid for a day).
type tsaCert struct {
	nonCriticalEKU bool
	ekus           []asn1.ObjectIdentifier // nil: timeStamping; empty non-nil: no EKU extension
	keyUsage       x509.KeyUsage           // 0: digitalSignature
	notBefore      time.Time
	notAfter       time.Time
	serial         int64
	cn             string
}

func (ca *testCA) issue(t testing.TB, pub crypto.PublicKey, spec tsaCert) *x509.Certificate {
	t.Helper()
	if spec.ekus == nil {
		spec.ekus = []asn1.ObjectIdentifier{oidKPTimeStamping}
	}
	if spec.keyUsage == 0 {
		spec.keyUsage = x509.KeyUsageDigitalSignature
	}
	if spec.notBefore.IsZero() {
		spec.notBefore = time.Now().Add(-time.Hour)
	}
	if spec.notAfter.IsZero() {
		spec.notAfter = time.Now().Add(24 * time.Hour)
	}
	if spec.serial == 0 {
		spec.serial = 2
	}
	if spec.cn == "" {
		spec.cn = "sealpost test TSA"
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(spec.serial),
		Subject:      pkix.Name{CommonName: spec.cn, Organization: []string{"sealpost test"}},
		NotBefore:    spec.notBefore,
		NotAfter:     spec.notAfter,
		KeyUsage:     spec.keyUsage,
	}
	// Go's x509 writes ExtKeyUsage as a non-critical extension; RFC 3161 wants it critical, so the
	// extension is built by hand and ExtKeyUsage is left empty.
	if len(spec.ekus) > 0 {
		val, err := asn1.Marshal(spec.ekus)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidExtExtKeyUsage, Critical: !spec.nonCriticalEKU, Value: val}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// testTSA is an Authority with its PKI.
type testTSA struct {
	ca   *testCA
	key  crypto.Signer
	cert *x509.Certificate
	a    *Authority
}

// newTestTSA returns an Authority (P-256 if key is nil) whose certificate is issued by a fresh root
// CA; chain is [TSA, root].
func newTestTSA(t testing.TB, key crypto.Signer, opts ...AuthorityOption) *testTSA {
	t.Helper()
	ca := newTestCA(t, "sealpost test CA")
	if key == nil {
		key = newP256(t)
	}
	cert := ca.issue(t, key.Public(), tsaCert{})
	a, err := NewAuthority(key, []*x509.Certificate{cert, ca.cert}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &testTSA{ca: ca, key: key, cert: cert, a: a}
}

// newTestTSAViaIntermediate is newTestTSA with an intermediate CA: chain is [TSA, intermediate,
// root]. ca is the root; inter the intermediate.
func newTestTSAViaIntermediate(t testing.TB, key crypto.Signer) (ts *testTSA, inter *testCA) {
	t.Helper()
	root := newTestCA(t, "sealpost test root")
	inter = root.subCA(t, "sealpost test intermediate")
	cert := inter.issue(t, key.Public(), tsaCert{})
	a, err := NewAuthority(key, []*x509.Certificate{cert, inter.cert, root.cert})
	if err != nil {
		t.Fatal(err)
	}
	return &testTSA{ca: root, key: key, cert: cert, a: a}, inter
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func keyPEM(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// writeFile writes data to dir/name and returns the path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pkixExtension returns a non-critical extension with an empty value.
func pkixExtension(id asn1.ObjectIdentifier) pkix.Extension {
	return pkix.Extension{Id: id, Value: []byte{0x05, 0x00}}
}

func bigOne() *big.Int { return big.NewInt(1) }
