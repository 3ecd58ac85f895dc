package keys

import (
	"errors"
	"fmt"
	"strings"
)

// Reasons a recipient certificate is refused. A *CertificateError carries one of them.
var (
	ErrNoCertificate       = errors.New("no certificate for this address")
	ErrExpired             = errors.New("certificate expired")
	ErrNotYetValid         = errors.New("certificate not yet valid")
	ErrUntrusted           = errors.New("certificate does not chain to a trusted root")
	ErrNoEmailProtection   = errors.New("certificate does not allow email protection")
	ErrNoKeyEncipherment   = errors.New("certificate does not allow key encipherment")
	ErrUnsupportedKey      = errors.New("certificate key is not RSA of at least 2048 bits")
	ErrKeyMismatch         = errors.New("private key does not match certificate")
	ErrNoPrivateKey        = errors.New("no private key found")
	ErrNoCertificateInFile = errors.New("no certificate found")
)

// CertificateError says why one certificate cannot be used.
type CertificateError struct {
	Subject  string // the certificate's subject, for the operator
	Serial   string // hex serial number
	Reason   error  // one of the Err… sentinels above
	Detail   string // extra detail from the check, if any
	NotAfter string
}

func (e *CertificateError) Error() string {
	s := fmt.Sprintf("%s (serial %s): %v", e.Subject, e.Serial, e.Reason)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the reason, so errors.Is(err, ErrExpired) works.
func (e *CertificateError) Unwrap() error { return e.Reason }

// RecipientError says why no certificate could be used for an address: either none is known
// (Causes is empty and the error Is ErrNoCertificate), or each known one failed for its own reason.
type RecipientError struct {
	Address string
	Causes  []*CertificateError
}

func (e *RecipientError) Error() string {
	if len(e.Causes) == 0 {
		return fmt.Sprintf("recipient %s: %v", e.Address, ErrNoCertificate)
	}
	parts := make([]string, len(e.Causes))
	for i, c := range e.Causes {
		parts[i] = c.Error()
	}
	return fmt.Sprintf("recipient %s: no usable certificate: %s", e.Address, strings.Join(parts, "; "))
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
