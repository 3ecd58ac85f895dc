package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
	"software.sslmate.com/src/go-pkcs12"
)

// backdate is how far before now a certificate becomes valid, for customers' clocks that are slow.
const backdate = 5 * time.Minute

// serialLimit: serials are random 128-bit numbers (RFC 5280 allows up to 20 octets; CA/Browser
// Forum asks for at least 64 random bits).
var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

// Issued is what an issue returns.
type Issued struct {
	Certificate *x509.Certificate
	// Chain is the issuing CA's chain (the leaf not included), as the customer's client needs it.
	Chain []*x509.Certificate
	// PKCS12 (IssueWithKey only) holds the key, the certificate and the chain, encrypted with
	// AES-256-CBC (PBES2, PBKDF2-HMAC-SHA-256) under Password, with an HMAC-SHA-256 MAC: go-pkcs12's
	// Modern2023, what openssl 3 writes by default.
	PKCS12 []byte
	// Password (IssueWithKey only) is generated, returned once, and never stored.
	Password string
}

// IssueFromCSR issues for address from a PKCS#10 request (PEM or DER) made on the customer's
// device. The request's signature must verify (else ErrBadCSR); it may name only that address, as
// rfc822Name of its subjectAltName and/or emailAddress of its subject, and no DNS, IP, URI or other
// name (else ErrWrongAddress); its key must be RSA of at least 2048 bits, ECDSA P-256 or P-384
// (else ErrWeakKey). Nothing else of the request is used: the certificate has a random 128-bit
// serial, subject CN = the address, subjectAltName rfc822Name = the address, extended key usage
// emailProtection, key usage digitalSignature and keyEncipherment (and keyAgreement for EC),
// the configured validity (from a few minutes back, and not beyond the CA's own), the configured
// CRL distribution point, and key identifiers. It is stored before it is returned; nothing is
// stored when an error is returned.
func (c *CA) IssueFromCSR(ctx context.Context, address string, csr []byte) (Issued, error) {
	addr, err := normalize(address)
	if err != nil {
		return Issued{}, err
	}
	req, err := parseCSR(csr)
	if err != nil {
		return Issued{}, err
	}
	if err := checkKey(req.PublicKey); err != nil {
		return Issued{}, err
	}
	if err := checkNames(req, addr); err != nil {
		return Issued{}, err
	}
	return c.issue(ctx, addr, req.PublicKey)
}

// IssueWithKey makes an RSA-2048 key, issues for it as IssueFromCSR does, and returns key,
// certificate and chain in a PKCS#12 under a generated password. The CA keeps no copy of the key.
func (c *CA) IssueWithKey(ctx context.Context, address string) (Issued, error) {
	addr, err := normalize(address)
	if err != nil {
		return Issued{}, err
	}
	key, err := keys.NewRSAKey()
	if err != nil {
		return Issued{}, err
	}
	// The password is made before anything is stored, so a failure leaves no certificate whose key
	// is lost.
	password := rand.Text()
	cert, err := c.sign(addr, key.Public())
	if err != nil {
		return Issued{}, err
	}
	p12, err := pkcs12.Modern2023.Encode(key, cert, c.chain(), password)
	if err != nil {
		return Issued{}, fmt.Errorf("ca: PKCS#12: %w", err)
	}
	if err := c.store(ctx, addr, cert); err != nil {
		return Issued{}, err
	}
	return Issued{Certificate: cert, Chain: c.chain(), PKCS12: p12, Password: password}, nil
}

// normalize checks the address a certificate is for: an addr-spec that an rfc822Name (IA5String,
// RFC 5280) can hold.
func normalize(s string) (string, error) {
	addr, err := address.Normalize(s)
	if err != nil {
		return "", fmt.Errorf("ca: %q: %w", printable(s), err)
	}
	for _, r := range addr {
		if r > 0x7e {
			return "", fmt.Errorf("ca: %q: %w (an internationalised address cannot be an rfc822Name)", printable(s), address.ErrInvalid)
		}
	}
	return addr, nil
}

// issue signs a certificate for addr and pub and stores it.
func (c *CA) issue(ctx context.Context, addr string, pub crypto.PublicKey) (Issued, error) {
	cert, err := c.sign(addr, pub)
	if err != nil {
		return Issued{}, err
	}
	if err := c.store(ctx, addr, cert); err != nil {
		return Issued{}, err
	}
	return Issued{Certificate: cert, Chain: c.chain()}, nil
}

// sign makes the certificate for addr and pub (see IssueFromCSR), without storing it.
func (c *CA) sign(addr string, pub crypto.PublicKey) (*x509.Certificate, error) {
	tmpl, err := c.template(addr, pub)
	if err != nil {
		return nil, err
	}
	cert, err := c.id.Issue(tmpl, pub)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	return cert, nil
}

// template is the certificate for addr and pub (see IssueFromCSR).
func (c *CA) template(addr string, pub crypto.PublicKey) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, serialLimit)
	if err != nil {
		return nil, err
	}
	if serial.Sign() == 0 {
		serial.SetInt64(1)
	}
	now := c.now()
	notAfter := now.Add(time.Duration(c.cfg.Validity))
	if ca := c.Certificate(); notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	usage := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	if _, ok := pub.(*ecdsa.PublicKey); ok {
		// ECDH needs keyAgreement (RFC 8551); openssl's smimeencrypt purpose wants keyEncipherment
		// whatever the key, so an EC certificate has both.
		usage |= x509.KeyUsageKeyAgreement
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: addr},
		EmailAddresses:        []string{addr},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		BasicConstraintsValid: true,
		CRLDistributionPoints: []string{c.cfg.CRLURL},
	}, nil
}

// store records an issued certificate.
func (c *CA) store(ctx context.Context, addr string, cert *x509.Certificate) error {
	err := c.st.PutIssuedCert(ctx, store.IssuedCert{
		Serial:      serialHex(cert.SerialNumber),
		Address:     addr,
		Fingerprint: keys.CertFingerprint(cert),
		DER:         cert.Raw,
		NotBefore:   cert.NotBefore,
		NotAfter:    cert.NotAfter,
		Issued:      c.now(),
	})
	if err != nil {
		return fmt.Errorf("ca: store the certificate: %w", err)
	}
	return nil
}

// chain is the CA's chain as the customer's client needs it beside the certificate.
func (c *CA) chain() []*x509.Certificate { return append([]*x509.Certificate(nil), c.id.Chain...) }

// serialHex is a serial as the store keeps it: upper hex without leading zeros.
func serialHex(n *big.Int) string { return strings.ToUpper(n.Text(16)) }
