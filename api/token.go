package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sealpost/sealpost/store"
)

// Scopes a token may carry. A route needs exactly one; admin does not stand in for the others, so
// a token does only what it was made for.
const (
	ScopeCustomers = "customers" // customers' keys (online banking's registration)
	ScopeMailbox   = "mailbox"   // the secure mailbox of keyless customers
	ScopeOTP       = "otp"       // one-time passcodes
	ScopeAdmin     = "admin"     // the bank's operators' calls
)

// Scopes lists every scope.
func Scopes() []string { return []string{ScopeAdmin, ScopeCustomers, ScopeMailbox, ScopeOTP} }

// Token shapes: a secret is secretPrefix and 32 base32 characters (160 bits from crypto/rand), an
// ID is idPrefix and 16 (80 bits); both in lower case, which reads and types better.
const (
	secretPrefix = "spk_"
	idPrefix     = "tok_"
	secretBytes  = 20
	idBytes      = 10
	maxNameLen   = 100
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// ErrBadToken reports a token's name, scopes or expiry that cannot be stored.
var ErrBadToken = errors.New("api: bad token")

// NewToken is a new token: its secret, shown once, and what the store keeps (the secret's SHA-256,
// never the secret). expires zero means never.
func NewToken(name string, scopes []string, now, expires time.Time) (secret string, t store.APIToken, err error) {
	if err := checkTokenName(name); err != nil {
		return "", store.APIToken{}, err
	}
	if len(scopes) == 0 {
		return "", store.APIToken{}, fmt.Errorf("%w: give at least one scope (%s)", ErrBadToken, strings.Join(Scopes(), ", "))
	}
	for _, s := range scopes {
		if !slices.Contains(Scopes(), s) {
			return "", store.APIToken{}, fmt.Errorf("%w: %s is not a scope (%s)", ErrBadToken, quote(s), strings.Join(Scopes(), ", "))
		}
	}
	if !expires.IsZero() && !expires.After(now) {
		return "", store.APIToken{}, fmt.Errorf("%w: the expiry is not in the future", ErrBadToken)
	}
	sb, ib := make([]byte, secretBytes), make([]byte, idBytes)
	rand.Read(sb)
	rand.Read(ib)
	secret = secretPrefix + strings.ToLower(b32.EncodeToString(sb))
	sc := slices.Clone(scopes)
	slices.Sort(sc)
	return secret, store.APIToken{ID: idPrefix + strings.ToLower(b32.EncodeToString(ib)), Name: name, Hash: HashSecret(secret),
		Scopes: slices.Compact(sc), Created: now, Expires: expires}, nil
}

// checkTokenName accepts 1..maxNameLen printable characters.
func checkTokenName(name string) error {
	if n := len([]rune(name)); n == 0 || n > maxNameLen || quote(name) != strconvQuote(name) {
		return fmt.Errorf("%w: the name must be 1 to %d printable characters", ErrBadToken, maxNameLen)
	}
	return nil
}

// HashSecret is what the store keeps of a token's secret, and what a request's is looked up by.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CreateToken makes a token and stores it; see NewToken.
func CreateToken(ctx context.Context, st TokenStore, name string, scopes []string, now, expires time.Time) (string, store.APIToken, error) {
	secret, t, err := NewToken(name, scopes, now, expires)
	if err != nil {
		return "", store.APIToken{}, err
	}
	if err := st.PutAPIToken(ctx, t); err != nil {
		return "", store.APIToken{}, fmt.Errorf("store token: %w", err)
	}
	return secret, t, nil
}

// validSecret is the shape of a secret: a request with anything else is refused without a look
// in the store.
func validSecret(s string) bool {
	if len(s) != len(secretPrefix)+32 || !strings.HasPrefix(s, secretPrefix) {
		return false
	}
	_, err := b32.DecodeString(strings.ToUpper(s[len(secretPrefix):]))
	return err == nil
}

// authenticate returns the token a request's Authorization header carries, valid at now. The
// secret is compared by looking up its SHA-256 in the store: an equality test on a hash of the
// secret leaks nothing useful about the secret through timing, so no constant-time compare of the
// secret itself is needed. Any failure is the same unauthorized problem, so a caller never learns
// whether a token exists, expired or was revoked.
func authenticate(ctx context.Context, st TokenStore, header string, now time.Time) (store.APIToken, error) {
	unauthorized := refuse(ProblemUnauthorized, "send Authorization: Bearer with a valid API token")
	scheme, secret, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !validSecret(strings.TrimSpace(secret)) {
		return store.APIToken{}, unauthorized
	}
	t, err := st.APITokenByHash(ctx, HashSecret(strings.TrimSpace(secret)))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.APIToken{}, unauthorized
	case err != nil:
		return store.APIToken{}, fmt.Errorf("look up token: %w", err)
	case !t.Revoked.IsZero(), !t.Expires.IsZero() && !now.Before(t.Expires):
		return store.APIToken{}, unauthorized
	}
	return t, nil
}
