package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Reasons CheckIdentity refuses one of the bank's identities, besides ErrKeyMismatch,
// ErrNoPrivateKey, ErrNoCertificateInFile, ErrUnsupportedKey, ErrExpired, ErrNotYetValid,
// ErrNoEmailAddress, ErrNoEmailProtection and ErrNoKeyEncipherment. Each *IdentityError carries one.
var (
	ErrChainBroken        = errors.New("certificate chain does not link (each certificate must be signed by the next)")
	ErrNoDigitalSignature = errors.New("certificate does not allow digital signatures (keyUsage digitalSignature)")
	ErrNoTimeStamping     = errors.New("certificate does not allow time stamping (extendedKeyUsage timeStamping)")
	// ErrTimeStampingNotOnly: RFC 3161 section 2.3 wants timeStamping as the TSA certificate's only
	// extended key usage.
	ErrTimeStampingNotOnly = errors.New("time-stamping certificate allows other extended key usages too (RFC 3161 2.3: timeStamping must be the only one)")
	// ErrTimeStampingNotCritical: RFC 3161 section 2.3 wants the extension critical, and
	// openssl ts -verify refuses tokens from a TSA whose certificate does not mark it so.
	ErrTimeStampingNotCritical = errors.New("time-stamping extended key usage is not marked critical (RFC 3161 2.3; openssl ts -verify refuses the tokens)")
	// ErrNotCA: the customer CA's certificate must be a CA certificate that may sign certificates
	// and CRLs, and identify its key for the certificates' authority key identifier.
	ErrNotCA = errors.New("certificate is not a CA certificate that signs certificates and CRLs (basicConstraints CA, keyUsage keyCertSign and cRLSign, subjectKeyIdentifier)")
)

// IdentityError is one reason an identity cannot serve its role.
type IdentityError struct {
	Role    Role
	Subject string // the certificate at fault (the leaf, or a member of its chain); empty if none
	Reason  error  // one of the sentinels listed at ErrChainBroken
	Detail  string // what was found, in words
}

// Error names the role, the certificate, the reason and what was found.
func (e *IdentityError) Error() string {
	s := fmt.Sprintf("%s identity", e.Role)
	if e.Subject != "" {
		s += ", certificate " + e.Subject
	}
	s += ": " + e.Reason.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the reason, so errors.Is(err, ErrChainBroken) works.
func (e *IdentityError) Unwrap() error { return e.Reason }

// CheckIdentity says whether id may serve as the bank's role identity at now. It returns nil, or
// every problem found (errors.Join of *IdentityError values):
//
//   - the private key is the leaf certificate's;
//   - the key is RSA of at least 2048 bits or ECDSA P-256 or P-384; for RoleSupport only RSA, as
//     sealpost decrypts only RSA key transport;
//   - every certificate of the chain is valid at now;
//   - the chain links: each certificate is signed by the next (so each issuer is a CA). A leaf given
//     alone passes: its peers must then know its issuer;
//   - key usage and extended key usage fit the role. RoleSigner: digitalSignature, emailProtection
//     and at least one rfc822Name. RoleSupport: keyEncipherment, emailProtection and an
//     rfc822Name. RoleTSA: timeStamping as the only extended key usage, marked critical (RFC 3161
//     2.3), and digitalSignature or nonRepudiation. RoleCustomerCA: a CA certificate (basicConstraints
//     CA) with keyUsage keyCertSign and cRLSign and a subject key identifier, and no email rules. A
//     certificate without a keyUsage extension may be used for anything (RFC 5280); the extended key
//     usage must be named explicitly.
func CheckIdentity(role Role, id *Identity, now time.Time) error {
	if err := role.check(); err != nil {
		return err
	}
	if id == nil || len(id.Chain) == 0 {
		return &IdentityError{Role: role, Reason: ErrNoCertificateInFile}
	}
	p := &problems{role: role}
	p.checkKey(id)
	p.checkValidity(id.Chain, now)
	p.checkChain(id.Chain)
	switch role {
	case RoleSigner:
		p.checkMailUsage(id.Certificate(), x509.KeyUsageDigitalSignature, ErrNoDigitalSignature)
	case RoleSupport:
		p.checkMailUsage(id.Certificate(), x509.KeyUsageKeyEncipherment, ErrNoKeyEncipherment)
	case RoleTSA:
		p.checkTimeStamping(id.Certificate())
	case RoleCustomerCA:
		p.checkCA(id.Certificate())
	}
	return errors.Join(p.errs...)
}

// problems collects what CheckIdentity finds.
type problems struct {
	role Role
	errs []error
}

func (p *problems) add(c *x509.Certificate, reason error, format string, args ...any) {
	e := &IdentityError{Role: p.role, Reason: reason, Detail: fmt.Sprintf(format, args...)}
	if c != nil {
		e.Subject = subjectOf(c)
	}
	p.errs = append(p.errs, e)
}

// subjectOf names a certificate for the operator, bounded and without control characters.
func subjectOf(c *x509.Certificate) string { return printable(c.Subject.String()) }

func (p *problems) checkKey(id *Identity) {
	leaf := id.Certificate()
	if id.Signer == nil {
		p.add(leaf, ErrNoPrivateKey, "")
	} else if pub, ok := id.Signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(leaf.PublicKey) {
		p.add(leaf, ErrKeyMismatch, "the private key given is for another certificate")
	}
	if detail := unsupportedKey(p.role, leaf.PublicKey); detail != "" {
		p.add(leaf, ErrUnsupportedKey, "%s", detail)
	}
}

// unsupportedKey says what is wrong with a role's public key, or "" if nothing is.
func unsupportedKey(role Role, pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 {
			return fmt.Sprintf("%d-bit RSA key", n)
		}
		return ""
	case *ecdsa.PublicKey:
		name := "ECDSA " + k.Curve.Params().Name
		switch {
		case role.needsRSA():
			return name + " key, but the support identity needs RSA (sealpost decrypts only RSA key transport)"
		case k.Curve != elliptic.P256() && k.Curve != elliptic.P384():
			return name + " key (ECDSA must be on P-256 or P-384)"
		}
		return ""
	}
	return fmt.Sprintf("%s key (use RSA of 2048 bits or more, or ECDSA P-256 or P-384)", keyAlgorithm(pub))
}

func keyAlgorithm(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

func (p *problems) checkValidity(chain []*x509.Certificate, now time.Time) {
	for i, c := range chain {
		where := ""
		if i > 0 {
			where = fmt.Sprintf(" (issuer %d of the chain)", i)
		}
		switch {
		case now.Before(c.NotBefore):
			p.add(c, ErrNotYetValid, "valid from %s%s", c.NotBefore.UTC().Format(time.RFC3339), where)
		case now.After(c.NotAfter):
			p.add(c, ErrExpired, "expired %s%s", c.NotAfter.UTC().Format(time.RFC3339), where)
		}
	}
}

func (p *problems) checkChain(chain []*x509.Certificate) {
	for i := 0; i+1 < len(chain); i++ {
		c, next := chain[i], chain[i+1]
		if !bytes.Equal(c.RawIssuer, next.RawSubject) {
			p.add(c, ErrChainBroken, "it is issued by %s, but the next certificate is %s",
				printable(c.Issuer.String()), subjectOf(next))
			continue
		}
		if err := c.CheckSignatureFrom(next); err != nil {
			p.add(c, ErrChainBroken, "the next certificate (%s) did not sign it: %v", subjectOf(next), err)
		}
	}
}

// checkMailUsage checks an S/MIME certificate: the key usage bit the role needs, emailProtection,
// and an email address.
func (p *problems) checkMailUsage(c *x509.Certificate, need x509.KeyUsage, reason error) {
	if c.KeyUsage != 0 && c.KeyUsage&need == 0 {
		p.add(c, reason, "keyUsage is %s", keyUsageNames(c.KeyUsage))
	}
	if !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageEmailProtection) {
		p.add(c, ErrNoEmailProtection, "extendedKeyUsage is %s", extKeyUsageNames(c))
	}
	if len(c.EmailAddresses) == 0 {
		p.add(c, ErrNoEmailAddress, "")
	}
}

func (p *problems) checkTimeStamping(c *x509.Certificate) {
	if c.KeyUsage != 0 && c.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		p.add(c, ErrNoDigitalSignature, "keyUsage is %s; a time-stamping key needs digitalSignature or nonRepudiation", keyUsageNames(c.KeyUsage))
	}
	if !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageTimeStamping) {
		p.add(c, ErrNoTimeStamping, "extendedKeyUsage is %s", extKeyUsageNames(c))
		return
	}
	if len(c.ExtKeyUsage) > 1 || len(c.UnknownExtKeyUsage) > 0 {
		p.add(c, ErrTimeStampingNotOnly, "extendedKeyUsage is %s", extKeyUsageNames(c))
	}
	for _, e := range c.Extensions {
		if e.Id.Equal(oidExtKeyUsage) && !e.Critical {
			p.add(c, ErrTimeStampingNotCritical, "")
		}
	}
}

// checkCA checks the customer CA's certificate: it issues customers' certificates and signs the
// CRL, whose issuers' key identifier the certificates name.
func (p *problems) checkCA(c *x509.Certificate) {
	switch {
	case !c.BasicConstraintsValid || !c.IsCA:
		p.add(c, ErrNotCA, "basicConstraints does not say CA")
	case c.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != x509.KeyUsageCertSign|x509.KeyUsageCRLSign:
		usage := keyUsageNames(c.KeyUsage)
		if usage == "" {
			usage = "absent"
		}
		p.add(c, ErrNotCA, "keyUsage is %s", usage)
	case len(c.SubjectKeyId) == 0:
		p.add(c, ErrNotCA, "no subjectKeyIdentifier")
	}
}

var keyUsageBits = []struct {
	bit  x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature"},
	{x509.KeyUsageContentCommitment, "nonRepudiation"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
	{x509.KeyUsageDataEncipherment, "dataEncipherment"},
	{x509.KeyUsageKeyAgreement, "keyAgreement"},
	{x509.KeyUsageCertSign, "keyCertSign"},
	{x509.KeyUsageCRLSign, "cRLSign"},
	{x509.KeyUsageEncipherOnly, "encipherOnly"},
	{x509.KeyUsageDecipherOnly, "decipherOnly"},
}

// keyUsageNames lists key usage bits as RFC 5280 (and openssl) name them.
func keyUsageNames(ku x509.KeyUsage) string {
	var names []string
	for _, b := range keyUsageBits {
		if ku&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	return strings.Join(names, ", ")
}

var extKeyUsageName = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "anyExtendedKeyUsage",
	x509.ExtKeyUsageServerAuth:      "serverAuth",
	x509.ExtKeyUsageClientAuth:      "clientAuth",
	x509.ExtKeyUsageCodeSigning:     "codeSigning",
	x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping:    "timeStamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
}

// extKeyUsageNames lists a certificate's extended key usages as openssl names them.
func extKeyUsageNames(c *x509.Certificate) string {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return "absent"
	}
	var names []string
	for _, u := range c.ExtKeyUsage {
		n, ok := extKeyUsageName[u]
		if !ok {
			n = fmt.Sprintf("ExtKeyUsage(%d)", int(u))
		}
		names = append(names, n)
	}
	for _, oid := range c.UnknownExtKeyUsage {
		names = append(names, oid.String())
	}
	return strings.Join(names, ", ")
}
