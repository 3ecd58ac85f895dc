package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/sealpost/sealpost/address"
)

// KeyType is the kind of key NewCSR makes. The zero value is KeyRSA2048.
type KeyType string

// The key types NewCSR can make.
const (
	KeyRSA2048 KeyType = "rsa2048"
	KeyRSA3072 KeyType = "rsa3072"
	KeyP256    KeyType = "p256"
	KeyP384    KeyType = "p384"
)

// ErrPendingKey is returned by NewCSR when the role already has a pending key: the certificate a
// CA issues for the earlier request would no longer pair.
var ErrPendingKey = errors.New("a pending key from an earlier certificate request exists")

// ParseKeyType parses a key type as written on the command line: rsa2048 (the default, also for ""),
// rsa3072, p256 or p384.
func ParseKeyType(s string) (KeyType, error) {
	k := KeyType(strings.ToLower(strings.TrimSpace(s)))
	switch k {
	case "":
		return KeyRSA2048, nil
	case KeyRSA2048, KeyRSA3072, KeyP256, KeyP384:
		return k, nil
	}
	return "", fmt.Errorf("unknown key type %q (want rsa2048, rsa3072, p256 or p384)", excerpt(s))
}

func (k KeyType) isRSA() bool { return k == "" || k == KeyRSA2048 || k == KeyRSA3072 }

// generate makes a fresh key of type k.
func (k KeyType) generate() (crypto.Signer, error) {
	switch k {
	case "", KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case KeyRSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case KeyP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	}
	return nil, fmt.Errorf("unknown key type %q (want rsa2048, rsa3072, p256 or p384)", excerpt(string(k)))
}

// pendingKeyFile is where NewCSR keeps the key of a certificate request until ImportIdentity
// pairs the issued certificate with it.
func pendingKeyFile(role Role) string { return string(role) + ".pending.key" }

// NewCSR starts replacing one of the bank's identities with one a real CA issues: it makes a fresh
// key of type kt (RSA-2048 by default; the support identity needs RSA), keeps it in the data
// directory as <role>.pending.key (0600), and returns a PEM "CERTIFICATE REQUEST" for subject (see
// ParseSubject) naming emails as rfc822Name SANs. The signer and support identities need at least
// one email address. The CA's certificate is then imported with ImportIdentity without a key.
//
// The request asks for no key usage: the CA sets it from its profile for the role (CheckIdentity
// says what each role needs). A role that already has a pending key gives ErrPendingKey, so a
// request on its way to the CA is never orphaned.
func (d DataDir) NewCSR(role Role, subject string, emails []string, kt KeyType) ([]byte, error) {
	tmpl, err := csrTemplate(role, subject, emails, kt)
	if err != nil {
		return nil, err
	}
	pending := d.path(pendingKeyFile(role))
	if _, err := os.Stat(pending); err == nil {
		return nil, fmt.Errorf("%s: %w (%s): import the certificate issued for it (sealpost keys import-identity %s), or delete the file to start again",
			role, ErrPendingKey, pending, role)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key, err := kt.generate()
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("%s certificate request: %w", role, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(pending, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), nil
}

// csrTemplate checks NewCSR's arguments and returns the request to sign.
func csrTemplate(role Role, subject string, emails []string, kt KeyType) (*x509.CertificateRequest, error) {
	if err := role.check(); err != nil {
		return nil, err
	}
	if _, err := ParseKeyType(string(kt)); err != nil {
		return nil, err
	}
	if role.needsRSA() && !kt.isRSA() {
		return nil, fmt.Errorf("%s: %w: %s key, but the support identity needs RSA (sealpost decrypts only RSA key transport)", role, ErrUnsupportedKey, kt)
	}
	name, err := ParseSubject(subject)
	if err != nil {
		return nil, err
	}
	if role != RoleTSA && role != RoleCustomerCA && len(emails) == 0 {
		return nil, fmt.Errorf("%s: %w: the %s certificate must name the addresses it is for", role, ErrNoEmailAddress, role)
	}
	for _, e := range emails {
		if _, err := address.Normalize(e); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", role, excerpt(e), err)
		}
	}
	return &x509.CertificateRequest{Subject: name, EmailAddresses: emails}, nil
}
