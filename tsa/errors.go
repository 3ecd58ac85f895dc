package tsa

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. See the package documentation for what each means to a caller.
var (
	// ErrUnavailable means no token could be obtained now; the caller should retry later.
	ErrUnavailable = errors.New("tsa: no time-stamping authority available")
	// ErrMalformed means the input is not a well-formed (DER) time-stamp token, query or response.
	ErrMalformed = errors.New("tsa: malformed time-stamp data")
	// ErrBadSignature means the token's signature, message-digest or signing-certificate attribute does
	// not verify.
	ErrBadSignature = errors.New("tsa: bad time-stamp token signature")
	// ErrImprintMismatch means the token does not stamp the given message.
	ErrImprintMismatch = errors.New("tsa: message imprint does not match the message")
	// ErrNonceMismatch means the token's nonce is not the one sent in the request.
	ErrNonceMismatch = errors.New("tsa: nonce does not match the request")
	// ErrUntrustedAuthority means the token's signer is not a trusted time-stamping authority at genTime.
	ErrUntrustedAuthority = errors.New("tsa: time-stamping authority not trusted")
	// ErrUnsupportedAlgorithm means a hash or signature algorithm is weak (SHA-1, MD5) or unknown.
	ErrUnsupportedAlgorithm = errors.New("tsa: unsupported or weak algorithm")
	// ErrInvalidAuthority means NewAuthority was given a key or certificate unfit for a TSA.
	ErrInvalidAuthority = errors.New("tsa: key or certificate unfit for a time-stamping authority")
	// ErrConfig means a constructor was given an invalid option or argument.
	ErrConfig = errors.New("tsa: invalid configuration")
)

// PKIStatus is the status of a time-stamp response (RFC 3161 section 2.4.2).
type PKIStatus int

// PKIStatus values from RFC 3161 section 2.4.2.
const (
	StatusGranted                PKIStatus = 0
	StatusGrantedWithMods        PKIStatus = 1
	StatusRejection              PKIStatus = 2
	StatusWaiting                PKIStatus = 3
	StatusRevocationWarning      PKIStatus = 4
	StatusRevocationNotification PKIStatus = 5
)

// String returns the RFC 3161 name of the status.
func (s PKIStatus) String() string {
	switch s {
	case StatusGranted:
		return "granted"
	case StatusGrantedWithMods:
		return "grantedWithMods"
	case StatusRejection:
		return "rejection"
	case StatusWaiting:
		return "waiting"
	case StatusRevocationWarning:
		return "revocationWarning"
	case StatusRevocationNotification:
		return "revocationNotification"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// FailureInfo is the PKIFailureInfo bit string of a response as a mask: bit n of the ASN.1 BIT STRING
// is 1<<n. More than one bit may be set.
type FailureInfo uint32

// FailureInfo bits from RFC 3161 section 2.4.2.
const (
	FailBadAlg              FailureInfo = 1 << 0
	FailBadRequest          FailureInfo = 1 << 2
	FailBadDataFormat       FailureInfo = 1 << 5
	FailTimeNotAvailable    FailureInfo = 1 << 14
	FailUnacceptedPolicy    FailureInfo = 1 << 15
	FailUnacceptedExtension FailureInfo = 1 << 16
	FailAddInfoNotAvailable FailureInfo = 1 << 17
	FailSystemFailure       FailureInfo = 1 << 25
)

var failureNames = []struct {
	bit  FailureInfo
	name string
}{
	{FailBadAlg, "badAlg"},
	{FailBadRequest, "badRequest"},
	{FailBadDataFormat, "badDataFormat"},
	{FailTimeNotAvailable, "timeNotAvailable"},
	{FailUnacceptedPolicy, "unacceptedPolicy"},
	{FailUnacceptedExtension, "unacceptedExtension"},
	{FailAddInfoNotAvailable, "addInfoNotAvailable"},
	{FailSystemFailure, "systemFailure"},
}

// String lists the RFC 3161 names of the bits set, separated by "|".
func (f FailureInfo) String() string {
	if f == 0 {
		return "none"
	}
	var names []string
	rest := f
	for _, n := range failureNames {
		if f&n.bit != 0 {
			names = append(names, n.name)
			rest &^= n.bit
		}
	}
	if rest != 0 {
		names = append(names, fmt.Sprintf("%#x", uint32(rest)))
	}
	return strings.Join(names, "|")
}

// RejectedError is returned when a TSA answers with a status other than granted or grantedWithMods.
// It is a definite answer from that TSA, not a transport failure, so it does not match ErrUnavailable
// by itself (the Client wraps it in ErrUnavailable only when every TSA failed).
type RejectedError struct {
	Status      PKIStatus
	FailureInfo FailureInfo
	// Text is the TSA's free text (PKIFreeText), joined with "; "; it comes from the network: do not
	// trust it, and quote it when logging.
	Text string
}

// Error describes the rejection.
func (e *RejectedError) Error() string {
	msg := fmt.Sprintf("tsa: request refused: status %s, failure %s", e.Status, e.FailureInfo)
	if e.Text != "" {
		msg += fmt.Sprintf(", text %q", e.Text)
	}
	return msg
}
