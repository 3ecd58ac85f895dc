package api

import (
	"context"
	"time"

	"github.com/sealpost/sealpost/store"
)

// TokenStore keeps the API tokens (store.SQLite and store.Postgres implement it).
type TokenStore interface {
	// PutAPIToken stores a new token; store.ErrConflict when its ID or hash is taken.
	PutAPIToken(ctx context.Context, t store.APIToken) error
	// APITokenByHash returns the token whose secret hashes to hash; store.ErrNotFound when none.
	APITokenByHash(ctx context.Context, hash []byte) (store.APIToken, error)
	// APITokens lists every token, by creation.
	APITokens(ctx context.Context) ([]store.APIToken, error)
	// RevokeAPIToken revokes a token; store.ErrNotFound, or store.ErrConflict when revoked already.
	RevokeAPIToken(ctx context.Context, id string, at time.Time) error
}

// IdempotencyStore remembers the answers to calls with an Idempotency-Key.
type IdempotencyStore interface {
	// BeginIdempotent records a pending call unless one exists for its token and key: fresh is
	// true when it inserted, else stored is the existing call.
	BeginIdempotent(ctx context.Context, c store.IdempotentCall) (stored store.IdempotentCall, fresh bool, err error)
	// FinishIdempotent stores the answer of the pending call.
	FinishIdempotent(ctx context.Context, tokenID, key string, status int, contentType string, body []byte) error
	// AbandonIdempotent deletes a pending call, so that a retry runs again.
	AbandonIdempotent(ctx context.Context, tokenID, key string) error
	// ExpireIdempotent deletes calls created before t.
	ExpireIdempotent(ctx context.Context, before time.Time) (int, error)
}

// AuditLog is where every call is recorded.
type AuditLog interface {
	// AppendAudit appends r and returns its sequence number.
	AppendAudit(ctx context.Context, r store.AuditRecord) (int64, error)
}

// Registry is the key each customer registered.
type Registry interface {
	// Register records a key for an address; registering it again is a no-op.
	Register(ctx context.Context, r store.Registration) error
	// Unregister removes the key with fingerprint from address's registrations; store.ErrNotFound
	// when it has none with that fingerprint.
	Unregister(ctx context.Context, address, fingerprint string) error
	// Registrations lists the keys registered for address, oldest first.
	Registrations(ctx context.Context, address string) ([]store.Registration, error)
}

// SharedDirectory is the recipient directory in the shared store, which every node reads.
type SharedDirectory interface {
	// PutRecipientKey stores a customer's certificate or OpenPGP key, replacing its stored copy.
	PutRecipientKey(ctx context.Context, k store.RecipientKey) error
	// RecipientKey returns one stored key; store.ErrNotFound when there is none.
	RecipientKey(ctx context.Context, method, fingerprint string) (store.RecipientKey, error)
	// RecipientKeys returns every stored key.
	RecipientKeys(ctx context.Context) ([]store.RecipientKey, error)
	// RemoveRecipientKey deletes one stored key; store.ErrNotFound when there is none.
	RemoveRecipientKey(ctx context.Context, method, fingerprint string) error
}

// KeyStore is what registering and removing customers' keys needs: `keys import` and `keys
// remove` use it as the API does.
type KeyStore interface {
	Registry
	SharedDirectory
}

// Store is everything the API server keeps in the shared store.
type Store interface {
	TokenStore
	IdempotencyStore
	AuditLog
	KeyStore
	// IssuedCert returns a certificate the customer CA issued; store.ErrNotFound when none.
	IssuedCert(ctx context.Context, serial string) (store.IssuedCert, error)
}

var (
	_ Store = (*store.SQLite)(nil)
	_ Store = (*store.Postgres)(nil)
)
