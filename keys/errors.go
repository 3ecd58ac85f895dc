package keys

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Reasons a recipient's certificate or OpenPGP key is refused. A *KeyError carries one of them.
var (
	ErrNoCertificate       = errors.New("no certificate or OpenPGP key for this address")
	ErrExpired             = errors.New("certificate or key expired")
	ErrNotYetValid         = errors.New("certificate or key not yet valid")
	ErrUntrusted           = errors.New("certificate does not chain to a trusted root")
	ErrNoEmailProtection   = errors.New("certificate does not allow email protection")
	ErrNoKeyEncipherment   = errors.New("certificate does not allow key encipherment")
	ErrUnsupportedKey      = errors.New("key algorithm or size not supported (RSA needs at least 2048 bits)")
	ErrKeyMismatch         = errors.New("private key does not match certificate")
	ErrNoPrivateKey        = errors.New("no private key found")
	ErrNoCertificateInFile = errors.New("no certificate found")
	ErrNoEmailAddress      = errors.New("certificate names no email address (rfc822Name)")

	// ErrCACertificate: a CA certificate offered as a recipient's, without a recipient's
	// certificate it could be the intermediate of.
	ErrCACertificate = errors.New("is a CA certificate: import it with -root to trust it")
	// ErrNoKeyMaterial: the input holds neither a certificate nor an OpenPGP key.
	ErrNoKeyMaterial = errors.New("no certificate or OpenPGP key found (expected PEM, DER or an OpenPGP key block)")

	// ErrRevoked: the OpenPGP key (or, where the detail says so, its only encryption subkey) was
	// revoked by its owner, or the certificate by its CA (CRL or OCSP).
	ErrRevoked = errors.New("key revoked")
	// ErrLookupPending: a key is being looked up elsewhere (WKD) and the answer is not in yet.
	ErrLookupPending = errors.New("key lookup still in progress")
	// ErrRevocationUnknown: neither the CRL nor OCSP gave a usable answer about a certificate.
	ErrRevocationUnknown = errors.New("revocation status cannot be checked")
	// ErrNoEncryptionKey: the OpenPGP key has no valid, unexpired, unrevoked encryption-capable
	// subkey (nor an encryption-capable primary key).
	ErrNoEncryptionKey = errors.New("OpenPGP key has no usable encryption key")
	// ErrNoSigningKey: the bank's OpenPGP key cannot sign.
	ErrNoSigningKey = errors.New("OpenPGP key cannot sign")
	// ErrWrongPassphrase: the passphrase does not decrypt the OpenPGP secret key.
	ErrWrongPassphrase = errors.New("wrong passphrase for OpenPGP secret key")
)

// KeyError says why one recipient's certificate (Method MethodSMIME) or OpenPGP key (MethodPGP)
// cannot be used.
type KeyError struct {
	Method   Method // which kind of key; the zero value is S/MIME
	Subject  string // the certificate's subject, or the OpenPGP user ID, for the operator
	Serial   string // hex serial number, or the OpenPGP fingerprint (upper-case hex, as gpg shows it)
	Reason   error  // one of the Err… sentinels above
	Detail   string // extra detail from the check, if any
	NotAfter string // RFC 3339 expiry; empty for an OpenPGP key that never expires
}

// CertificateError is the name KeyError had when the directory held only certificates.
type CertificateError = KeyError

func (e *KeyError) Error() string {
	var s string
	if e.Method == MethodPGP {
		s = fmt.Sprintf("OpenPGP key %s (fingerprint %s): %v", e.Subject, e.Serial, e.Reason)
	} else {
		s = fmt.Sprintf("%s (serial %s): %v", e.Subject, e.Serial, e.Reason)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the reason, so errors.Is(err, ErrExpired) works.
func (e *KeyError) Unwrap() error { return e.Reason }

// RecipientError says why no certificate or key could be used for an address: either none is known
// (Causes is empty and the error Is ErrNoCertificate), or each known one failed for its own reason.
type RecipientError struct {
	Address string
	Causes  []*KeyError
}

func (e *RecipientError) Error() string {
	if len(e.Causes) == 0 {
		return fmt.Sprintf("recipient %s: %v", e.Address, ErrNoCertificate)
	}
	parts := make([]string, len(e.Causes))
	for i, c := range e.Causes {
		parts[i] = c.Error()
	}
	return fmt.Sprintf("recipient %s: no usable certificate or key: %s", e.Address, strings.Join(parts, "; "))
}

// Unwrap returns every cause, so errors.Is finds any of the reasons.
func (e *RecipientError) Unwrap() []error {
	if len(e.Causes) == 0 {
		return []error{ErrNoCertificate}
	}
	errs := make([]error, len(e.Causes))
	for i, c := range e.Causes {
		errs[i] = c
	}
	return errs
}

// maxExcerpt bounds how much of untrusted input an error may quote.
const maxExcerpt = 40

// excerpt returns at most maxExcerpt printable characters of s, for an error message: untrusted or
// secret-bearing input is never echoed whole.
func excerpt(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i] + "…"
	}
	p := []rune(printable(s))
	if len(p) > maxExcerpt {
		return string(p[:maxExcerpt]) + "…"
	}
	return string(p)
}

// RevocationError says a certificate was revoked by its CA: when, why, and what said so (a CRL
// or an OCSP answer). It Is ErrRevoked.
type RevocationError struct {
	Subject string
	Serial  string    // hex
	At      time.Time // the revocation time the CA gives
	Reason  string    // the RFC 5280 reason's name, e.g. "keyCompromise"; "" when none is given
	Source  string    // "crl" or "ocsp"
}

func (e *RevocationError) Error() string {
	s := fmt.Sprintf("certificate %s (serial %s) revoked %s", printable(e.Subject), e.Serial, e.At.UTC().Format(time.RFC3339))
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	if e.Source != "" {
		s += " per its " + strings.ToUpper(e.Source)
	}
	return s
}

// Unwrap makes a RevocationError ErrRevoked.
func (e *RevocationError) Unwrap() error { return ErrRevoked }
