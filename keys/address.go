package keys

import "github.com/sealpost/sealpost/address"

// ErrBadAddress is returned for a string that is not a plain addr-spec: it is address.ErrInvalid,
// so errors.Is matches either name.
var ErrBadAddress = address.ErrInvalid

// How sealpost compares customers' addresses is package address's rule (see its doc). These names
// forward to it for the callers that still use them; new code calls package address.
//
// Where two directory entries differ only by case (certificates for Alice@x.example and
// alice@x.example), the one spelt exactly as asked wins; without an exact one, every case variant
// is a candidate.

// NormalizeAddress is address.Normalize: the local part as given, the domain in lower case.
func NormalizeAddress(addr string) (string, error) { return address.Normalize(addr) }

// AddressKey is address.Key: the normalised address lower-cased, the form addresses are looked up
// under.
func AddressKey(addr string) (string, error) { return address.Key(addr) }

// SameAddress is address.Same: a and b are valid addresses with the same key.
func SameAddress(a, b string) bool { return address.Same(a, b) }
