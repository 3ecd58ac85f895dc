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
	// RoleCustomerCA is the bank's private S/MIME CA for its customers (package ca): a CA
	// certificate (keyCertSign, cRLSign) whose certificates customers' clients trust the way they
	// trust the bank's signer, through a root in their trust store.
	RoleCustomerCA Role = "customer-ca"
)

// ErrUnknownRole is returned for a name that is not one of Roles.
var ErrUnknownRole = errors.New("unknown identity role")

// Roles returns every role, in the order sealpost lists them.
func Roles() []Role { return []Role{RoleSigner, RoleTSA, RoleSupport, RoleCustomerCA} }

// ParseRole parses a role as written on the command line: "signer", "tsa", "support" or
// "customer-ca".
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if err := r.check(); err != nil {
		return "", err
	}
	return r, nil
}

// String returns the role's name.
func (r Role) String() string { return string(r) }

func (r Role) valid() bool { return slices.Contains(Roles(), r) }

// check returns ErrUnknownRole, listing the roles, unless r is one of them.
func (r Role) check() error {
	if !r.valid() {
		return fmt.Errorf("%w %q (want signer, tsa, support or customer-ca)", ErrUnknownRole, excerpt(string(r)))
	}
	return nil
}

// needsRSA reports whether the role's key must be RSA: the support key decrypts customers' replies,
// and sealpost decrypts only RSA key transport.
func (r Role) needsRSA() bool { return r == RoleSupport }
