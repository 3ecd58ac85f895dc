package smime

import (
	"errors"

	"github.com/sealpost/sealpost/mime"
)

// Errors a caller can branch on with errors.Is.
var (
	// ErrMalformed: the message (or a CMS structure) cannot be parsed; the sender must fix it.
	ErrMalformed = mime.ErrMalformed
	// ErrNoRecipients: Protect was asked to encrypt to nobody.
	ErrNoRecipients = errors.New("no recipients to encrypt to")
	// ErrSenderNotCovered: the From address is not one the bank's signing certificate names, so
	// the customer's client would show a sender mismatch.
	ErrSenderNotCovered = errors.New("sender address (From) is not named in the signing certificate")
	// ErrNoFrom: the message has no single From address.
	ErrNoFrom = mime.ErrNoFrom
	// ErrTimestamp: no timestamp could be obtained; the message must not go out without one.
	ErrTimestamp = errors.New("timestamp")
	// ErrUnsupported: a CMS algorithm or structure sealpost does not accept.
	ErrUnsupported = errors.New("unsupported CMS algorithm or structure")
	// ErrNotForUs: none of the RecipientInfos names the decrypting key.
	ErrNotForUs = errors.New("message is not encrypted to this key")
	// ErrDecrypt: decryption or authentication of the content failed.
	ErrDecrypt = errors.New("decryption failed")
	// ErrSignature: a signature is missing or does not verify (Inbound.SignatureErr wraps it), or,
	// from Inbound.Err, the message is not signed in a way that may be trusted.
	ErrSignature = errors.New("signature not valid")
	// ErrUnknownSigner: no certificate, in the message or among InboundOptions.Certificates, is
	// the one a SignerInfo names (e.g. openssl cms -nocerts by a stranger). Always wrapped with
	// ErrSignature: nothing could be verified.
	ErrUnknownSigner = errors.New("no certificate for the signer")
)
