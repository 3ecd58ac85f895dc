package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"slices"
	"time"
)

// Development identities: a private CA that issues the bank's signer, the embedded TSA, the support
// identity and demo customers. They make `sealpost serve` work out of the box; production loads real ones.

var (
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidKPTimeStamping   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
	devValidity         = 2 * 365 * 24 * time.Hour
	devCAValidity       = 10 * 365 * 24 * time.Hour
	devBackdate         = time.Hour
	serialLimit         = new(big.Int).Lsh(big.NewInt(1), 127)
	devOrganization     = []string{DevelopmentOrganization}
	devSignerKeyUsage   = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
	devCustomerKeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	devSupportKeyUsage  = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
)

// DevelopmentOrganization is the organisation every development identity names, so that no one
// mistakes one for the bank's.
const DevelopmentOrganization = "sealpost development (not for production)"

// NewRSAKey returns a fresh RSA-2048 key.
func NewRSAKey() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) }

// NewDevCA creates a self-signed RSA-2048 root for development.
func NewDevCA(name string) (*Identity, error) {
	key, err := NewRSAKey()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name, Organization: devOrganization},
		NotBefore:             time.Now().Add(-devBackdate),
		NotAfter:              time.Now().Add(devCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	ca := &Identity{Signer: key}
	cert, err := ca.Issue(tmpl, key.Public())
	if err != nil {
		return nil, err
	}
	ca.Chain = []*x509.Certificate{cert}
	return ca, nil
}

// Issue signs tmpl for pub with the identity as issuer; when the identity has no certificate yet the
// result is self-signed. A serial number and subject key identifier are filled in if missing.
func (ca *Identity) Issue(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	if tmpl.SerialNumber == nil {
		s, err := rand.Int(rand.Reader, serialLimit)
		if err != nil {
			return nil, err
		}
		tmpl.SerialNumber = s
	}
	if tmpl.SubjectKeyId == nil {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return nil, err
		}
		ski := sha1.Sum(der) // RFC 5280 method 1 identifier, not a security function
		tmpl.SubjectKeyId = ski[:]
	}
	parent := tmpl
	if len(ca.Chain) > 0 {
		parent = ca.Chain[0]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, ca.Signer)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// issueLeaf certifies key with tmpl, defaulting to the development validity period.
func (ca *Identity) issueLeaf(tmpl *x509.Certificate, key crypto.Signer) (*Identity, error) {
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-devBackdate)
		tmpl.NotAfter = time.Now().Add(devValidity)
	}
	tmpl.BasicConstraintsValid = true
	cert, err := ca.Issue(tmpl, key.Public())
	if err != nil {
		return nil, err
	}
	return &Identity{Signer: key, Chain: []*x509.Certificate{cert}}, nil
}

// NewDevSigner issues the bank's RSA-2048 S/MIME signing identity for the given sender addresses.
func (ca *Identity) NewDevSigner(addresses []string) (*Identity, error) {
	key, err := NewRSAKey()
	if err != nil {
		return nil, err
	}
	return ca.issueLeaf(&x509.Certificate{
		Subject:        pkix.Name{CommonName: "sealpost bank signer", Organization: devOrganization},
		EmailAddresses: addresses,
		KeyUsage:       devSignerKeyUsage,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}, key)
}

// NewDevSupport issues the RSA-2048 identity customers encrypt their replies to, for the given
// support addresses: keyEncipherment (gpgsm, NSS and openssl refuse to encrypt to a certificate
// without it, such as the signer's) and digitalSignature, extended key usage emailProtection.
func (ca *Identity) NewDevSupport(addresses []string) (*Identity, error) {
	key, err := NewRSAKey()
	if err != nil {
		return nil, err
	}
	return ca.issueLeaf(&x509.Certificate{
		Subject:        pkix.Name{CommonName: "sealpost bank support", Organization: devOrganization},
		EmailAddresses: addresses,
		KeyUsage:       devSupportKeyUsage,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}, key)
}

// newDevIdentity issues the development identity of role.
func (ca *Identity) newDevIdentity(role Role, senders, support []string) (*Identity, error) {
	switch role {
	case RoleSigner:
		return ca.NewDevSigner(senders)
	case RoleTSA:
		return ca.NewDevTSA()
	case RoleSupport:
		return ca.NewDevSupport(support)
	case RoleCustomerCA:
		return ca.NewDevCustomerCA()
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownRole, role)
}

// NewDevCustomerCA issues the development customer CA (package ca): an RSA-2048 CA under ca that
// issues no CA below it, so what it issues chains to the development CA, a trusted root of the
// data directory. It lasts as long as ca.
func (ca *Identity) NewDevCustomerCA() (*Identity, error) {
	key, err := NewRSAKey()
	if err != nil {
		return nil, err
	}
	return ca.issueLeaf(&x509.Certificate{
		Subject:        pkix.Name{CommonName: "sealpost development customer CA", Organization: devOrganization},
		NotBefore:      time.Now().Add(-devBackdate),
		NotAfter:       ca.Certificate().NotAfter,
		KeyUsage:       x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		IsCA:           true,
		MaxPathLenZero: true,
	}, key)
}

// TimeStampingExtension is the extendedKeyUsage extension with only id-kp-timeStamping, marked
// critical as RFC 3161 section 2.3 requires (and openssl ts -verify enforces). Go would mark it
// non-critical, so it is built by hand.
func TimeStampingExtension() pkix.Extension {
	v, _ := asn1.Marshal([]asn1.ObjectIdentifier{oidKPTimeStamping})
	return pkix.Extension{Id: oidExtKeyUsage, Critical: true, Value: v}
}

// NewDevTSA issues the embedded TSA's identity. Its key is ECDSA P-256: a timestamp per message then
// costs a small fraction of the RSA-2048 signature it covers.
func (ca *Identity) NewDevTSA() (*Identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return ca.issueLeaf(&x509.Certificate{
		Subject:         pkix.Name{CommonName: "sealpost embedded TSA", Organization: devOrganization},
		KeyUsage:        x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtraExtensions: []pkix.Extension{TimeStampingExtension()},
	}, key)
}

// NewDevCustomer issues an RSA-2048 S/MIME identity for a customer's address (demo and tests).
func (ca *Identity) NewDevCustomer(address string) (*Identity, error) {
	key, err := NewRSAKey()
	if err != nil {
		return nil, err
	}
	return ca.issueLeaf(&x509.Certificate{
		Subject:        pkix.Name{CommonName: address},
		EmailAddresses: []string{address},
		KeyUsage:       devCustomerKeyUsage,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}, key)
}

// DevelopmentIdentities returns the roles whose identity in d is a development one (see
// IsDevelopment), in Roles order; a role without an identity is left out. It reads certificates
// only, never a key, so `serve` can ask at every start and warn or refuse.
func (d DataDir) DevelopmentIdentities() ([]Role, error) {
	ca, err := d.devCACertificate()
	if err != nil {
		return nil, err
	}
	var dev []Role
	for _, r := range Roles() {
		leaf, err := d.leaf(r)
		if errors.Is(err, ErrNotInitialised) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if isDevelopment(leaf, ca) {
			dev = append(dev, r)
		}
	}
	return dev, nil
}

// IsDevelopment reports whether role's identity in d is a development identity: issued by the
// directory's own development CA (ca.pem), or naming DevelopmentOrganization as its subject's or its
// issuer's organisation. It reads certificates only. A role without an identity gives
// ErrNotInitialised.
func (d DataDir) IsDevelopment(role Role) (bool, error) {
	if err := role.check(); err != nil {
		return false, err
	}
	leaf, err := d.leaf(role)
	if err != nil {
		return false, err
	}
	ca, err := d.devCACertificate()
	if err != nil {
		return false, err
	}
	return isDevelopment(leaf, ca), nil
}

// leaf reads the certificate of role's identity.
func (d DataDir) leaf(role Role) (*x509.Certificate, error) {
	certs, err := ReadCertificatesFile(d.path(string(role) + ".pem"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no %s identity: %w", d, role, ErrNotInitialised)
	}
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// devCACertificate reads ca.pem, or returns nil when there is none.
func (d DataDir) devCACertificate() (*x509.Certificate, error) {
	certs, err := ReadCertificatesFile(d.path("ca.pem"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

func isDevelopment(c, devCA *x509.Certificate) bool {
	if devCA != nil && bytes.Equal(c.RawIssuer, devCA.RawSubject) && c.CheckSignatureFrom(devCA) == nil {
		return true
	}
	return slices.Contains(c.Subject.Organization, DevelopmentOrganization) ||
		slices.Contains(c.Issuer.Organization, DevelopmentOrganization)
}
