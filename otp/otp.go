package otp

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/store"
)

// Errors a caller branches on with errors.Is (the API maps each to its
// problem type).
var (
	ErrUnknownPurpose = errors.New("otp: unknown purpose")
	ErrBadAmount      = errors.New("otp: amount is not a decimal above 0 in the currency's minor units")
	ErrBadCurrency    = errors.New("otp: not an active ISO 4217 currency code")
	ErrBadPayee       = errors.New("otp: payee name or account is not acceptable")
	ErrNoTransaction  = errors.New("otp: the purpose needs a transaction to bind the code to")
	ErrTTL            = errors.New("otp: ttl is over the purpose's maximum")
	ErrRateLimited    = errors.New("otp: too many codes for the address; try again later")
	ErrBadCode        = errors.New("otp: a code is its purpose's number of digits 0-9")
	ErrBadAddress     = errors.New("otp: not an address")
	ErrBadAgent       = errors.New("otp: agent is not 1 to 100 printable characters")
)

// RateLimitedError is the error of an issue over the rate limit: it is
// ErrRateLimited, and RetryAfter says when the address may have the next
// code.
type RateLimitedError struct {
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", ErrRateLimited, e.RetryAfter)
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// Store is what the service keeps in the shared store (store.SQLite and
// store.Postgres implement it).
type Store interface {
	PutOTP(ctx context.Context, o store.OTP, limit int, since time.Time) (retryFrom time.Time, err error)
	UpdateOTP(ctx context.Context, id string, f func(o *store.OTP) (changed bool, err error)) (store.OTP, error)
	ExpireOTPs(ctx context.Context, before time.Time) (int, error)
}

// MinKeySize is the least number of bytes of the server key.
const MinKeySize = 32

// Labels of the keys derived from the server key, one per use.
const (
	codeKeyLabel    = "sealpost otp code"
	bindingKeyLabel = "sealpost otp binding"
	sealKeyLabel    = "sealpost otp agent code"
)

// Kinds of stored OTPs.
const (
	kindOTP  = "otp"
	kindCall = "call"
)

// Service issues and verifies codes. It is safe for concurrent use.
type Service struct {
	cfg     Config
	st      Store
	codeKey []byte
	bindKey []byte
	seal    cipher.AEAD
	now     func() time.Time
}

// Option configures New.
type Option func(*Service)

// WithClock makes the service read the time from now (tests; the default
// is time.Now).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New returns the service of cfg that keeps its state in st. key is the
// server key, at least 32 secret bytes (the caller reads DATA/otp.key); the
// keys of the code HMACs, transaction bindings and sealed agent codes are
// derived from it with HKDF-SHA-256, so every node needs the same key.
func New(cfg Config, key []byte, st Store, opts ...Option) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("otp: %w", err)
	}
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("otp: server key of %d bytes (want at least %d)", len(key), MinKeySize)
	}
	if st == nil {
		return nil, errors.New("otp: no store")
	}
	s := &Service{cfg: cfg, st: st, now: time.Now}
	derived := make([][]byte, 3)
	for i, label := range []string{codeKeyLabel, bindingKeyLabel, sealKeyLabel} {
		k, err := hkdf.Key(sha256.New, key, nil, label, 32)
		if err != nil {
			return nil, fmt.Errorf("otp: derive key: %w", err)
		}
		derived[i] = k
	}
	s.codeKey, s.bindKey = derived[0], derived[1]
	block, err := aes.NewCipher(derived[2])
	if err != nil {
		return nil, fmt.Errorf("otp: %w", err)
	}
	if s.seal, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("otp: %w", err)
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// codeMAC is HMAC-SHA-256(code key, id || code); the ID has a fixed length
// and no digits follow it, so the concatenation is unambiguous.
func (s *Service) codeMAC(id, code string) []byte {
	m := hmac.New(sha256.New, s.codeKey)
	m.Write([]byte(id))
	m.Write([]byte(code))
	return m.Sum(nil)
}

// put stores o, counting it against the address's rate limit.
func (s *Service) put(ctx context.Context, o store.OTP) error {
	rl := s.cfg.RateLimit
	window := time.Duration(rl.Window)
	retryFrom, err := s.st.PutOTP(ctx, o, rl.Count, o.Created.Add(-window))
	if errors.Is(err, store.ErrOTPRateLimited) {
		after := retryFrom.Add(window).Sub(o.Created)
		if after < time.Second {
			after = time.Second
		}
		return &RateLimitedError{RetryAfter: after}
	}
	if err != nil {
		return fmt.Errorf("otp: %w", err)
	}
	return nil
}

// Expire deletes what the store keeps of codes and call verifications that
// expired before the rate limit's window, which counts them until then, and
// returns how many.
func (s *Service) Expire(ctx context.Context) (int, error) {
	n, err := s.st.ExpireOTPs(ctx, s.now().Add(-time.Duration(s.cfg.RateLimit.Window)))
	if err != nil {
		return 0, fmt.Errorf("otp: %w", err)
	}
	return n, nil
}
