package main

import (
	"context"
	"io"

	"github.com/sealpost/sealpost/inbound"
	"github.com/sealpost/sealpost/outbound"
	"github.com/sealpost/sealpost/quarantine"
	"github.com/sealpost/sealpost/store"
)

// backend is the shared store as the binary wires it: one value (the embedded SQLite, or PostgreSQL shared by several nodes)
// that satisfies every interface its users declare, and is closed when the binary stops.
type backend interface {
	outbound.Store
	inbound.Store
	quarantine.Index
	registry
	io.Closer
}

// registry is what the keys command keeps in the shared store: the key each customer registered.
type registry interface {
	// Register records a key for an address; registering it again is a no-op.
	Register(ctx context.Context, r store.Registration) error
	// Unregister removes the key with fingerprint from address's registrations; store.ErrNotFound
	// when it has none with that fingerprint.
	Unregister(ctx context.Context, address, fingerprint string) error
	// Registrations lists the keys registered for address, oldest first.
	Registrations(ctx context.Context, address string) ([]store.Registration, error)
}

var (
	_ backend = (*store.SQLite)(nil)
	_ backend = (*store.Postgres)(nil)
)
