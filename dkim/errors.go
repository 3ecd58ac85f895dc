package dkim

import (
	"errors"
	"fmt"
)

// Errors a caller can branch on with errors.Is. Their texts carry no "dkim:" prefix; the errors
// returned by this package add it.
var (
	// ErrConfig reports a key configuration that is incomplete or inconsistent: no keys, an empty or
	// malformed domain or selector, no key file, or two keys for one domain.
	ErrConfig = errors.New("invalid key configuration")
	// ErrDuplicateDomain reports two keys for one domain (compared case-insensitively). It wraps
	// ErrConfig.
	ErrDuplicateDomain = fmt.Errorf("%w: duplicate domain", ErrConfig)
	// ErrKeyFormat reports a key file that holds no PEM private key sealpost can parse.
	ErrKeyFormat = errors.New("not a PEM private key")
	// ErrWeakKey reports an RSA key shorter than 2048 bits.
	ErrWeakKey = errors.New("key too weak")
	// ErrUnsupportedKey reports a private key of a type DKIM cannot use (only RSA and Ed25519 are
	// defined: RFC 6376, RFC 8463).
	ErrUnsupportedKey = errors.New("unsupported key type")
	// ErrNoKey reports a domain the Signer has no key for (from DNSRecord; Sign passes such mail on
	// unsigned instead).
	ErrNoKey = errors.New("no key for domain")
	// ErrUnsignable reports a message Sign refuses to sign: not CRLF throughout, a header that is not
	// well formed, or not exactly one From field with exactly one address. Signing such a message
	// would vouch for bytes that relays or verifiers may read differently.
	ErrUnsignable = errors.New("message cannot be signed")
	// ErrSign reports a failure inside the signing library itself.
	ErrSign = errors.New("signing failed")
)

// KeyError is returned by New for a key that cannot be used; it names the configured domain and
// key file. Err wraps ErrConfig, ErrKeyFormat, ErrWeakKey, ErrUnsupportedKey, or the error from
// reading the file (so errors.Is(err, fs.ErrNotExist) works).
type KeyError struct {
	Domain string // as configured
	File   string // the configured key_file
	Err    error
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("dkim: key for domain %q (key_file %q): %v", e.Domain, e.File, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }
