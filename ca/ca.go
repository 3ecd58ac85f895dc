package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

// Errors a caller branches on (the API maps each to its problem type).
var (
	ErrBadCSR       = errors.New("ca: not a valid PKCS#10 certificate request")
	ErrWrongAddress = errors.New("ca: the request names another address")
	ErrWeakKey      = errors.New("ca: the request's key is not acceptable")
	ErrNotFound     = errors.New("ca: no such certificate for this customer")
	ErrRevoked      = errors.New("ca: the certificate is revoked already")
)

// Store is what the CA keeps in the shared store (store.SQLite and store.Postgres implement it).
type Store interface {
	PutIssuedCert(ctx context.Context, c store.IssuedCert) error
	IssuedCert(ctx context.Context, serial string) (store.IssuedCert, error)
	IssuedCerts(ctx context.Context, address string) ([]store.IssuedCert, error)
	RevokeIssuedCert(ctx context.Context, serial string, at time.Time, reason int) error
	RevokedCerts(ctx context.Context) ([]store.IssuedCert, error)
	NextCRLNumber(ctx context.Context) (int64, error)
}

// CA is the bank's customer CA. It is safe for concurrent use.
type CA struct {
	cfg Config
	id  *keys.Identity
	st  Store
	now func() time.Time
}

// Option configures New.
type Option func(*CA)

// WithClock makes the CA read the time from now (tests; the default is time.Now).
func WithClock(now func() time.Time) Option { return func(c *CA) { c.now = now } }

// New returns the customer CA that signs with id (keys.Identity: certificate chain + crypto.Signer,
// file or PKCS#11/HSM) and keeps what it issues in st. It refuses an invalid cfg and an identity
// that keys.CheckIdentity refuses for keys.RoleCustomerCA: one that is not a CA (BasicConstraints
// CA, keyCertSign, cRLSign, a subject key identifier), whose key is not its certificate's, or that
// is not valid now.
func New(cfg Config, id *keys.Identity, st Store, opts ...Option) (*CA, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	if st == nil {
		return nil, errors.New("ca: no store")
	}
	c := &CA{cfg: cfg, id: id, st: st, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	if err := keys.CheckIdentity(keys.RoleCustomerCA, id, c.now()); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	return c, nil
}

// Certificate returns the CA's own certificate, the issuer of every certificate it issues.
func (c *CA) Certificate() *x509.Certificate { return c.id.Certificate() }
