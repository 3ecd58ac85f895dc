package keys

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Role is what one of the bank's X.509 identities is for. Its name is also the identity's file name
// in the data directory: <role>.pem and <role>.key.
type Role string

const (
	// RoleSigner signs outbound S/MIME mail.
	RoleSigner Role = "signer"
	// RoleTSA is the embedded RFC 3161 time-stamping authority.
	RoleTSA Role = "tsa"
	// RoleSupport is the certificate customers encrypt their replies to; the inbound side decrypts
	// with its key.
	RoleSupport Role = "support"
)

// ErrUnknownRole is returned for a name that is not one of Roles.
var ErrUnknownRole = errors.New("unknown identity role")

// Roles returns every role, in the order sealpost lists them.
func Roles() []Role { return []Role{RoleSigner, RoleTSA, RoleSupport} }

// ParseRole parses a role as written on the command line: "signer", "tsa" or "support".
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if !r.valid() {
		return "", fmt.Errorf("%w %q (want signer, tsa or support)", ErrUnknownRole, excerpt(s))
	}
	return r, nil
}

// String returns the role's name.
func (r Role) String() string { return string(r) }

func (r Role) valid() bool { return slices.Contains(Roles(), r) }

// needsRSA reports whether the role's key must be RSA: the support key decrypts customers' replies,
// and sealpost decrypts only RSA key transport.
func (r Role) needsRSA() bool { return r == RoleSupport }

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
