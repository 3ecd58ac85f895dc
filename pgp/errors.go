package pgp

import (
	"errors"

	"github.com/sealpost/sealpost/mime"
)

// Errors a caller can branch on with errors.Is.
var (
	// ErrMalformed: the message cannot be parsed or made canonical; the sender must fix it.
	ErrMalformed = mime.ErrMalformed
	// ErrNoFrom: the message has no single From address.
	ErrNoFrom = mime.ErrNoFrom
	// ErrNoRecipients: Protect was asked to encrypt to nobody.
	ErrNoRecipients = errors.New("no recipients to encrypt to")
	// ErrSenderNotCovered: the From address is not a user ID of the bank's OpenPGP key.
	ErrSenderNotCovered = errors.New("sender address (From) is not a user ID of the signing key")
	// ErrTimestamp: no timestamp could be obtained; the message must not go out without one.
	ErrTimestamp = errors.New("timestamp")
	// ErrRecipientKey: a recipient key has no usable encryption key.
	ErrRecipientKey = errors.New("recipient key cannot be encrypted to")
	// ErrSignature: a signature is missing, does not verify, or its timestamp does not.
	ErrSignature = errors.New("signature not valid")
	// ErrDecrypt: the message could not be decrypted, or is not integrity-protected.
	ErrDecrypt = errors.New("decryption failed")
	// ErrUnsupported: a key or structure sealpost does not use.
	ErrUnsupported = errors.New("unsupported OpenPGP key or structure")
)
