package main

import (
	"context"
	"io"
	"time"

	"github.com/sealpost/sealpost/api"
	"github.com/sealpost/sealpost/ca"
	"github.com/sealpost/sealpost/console"
	"github.com/sealpost/sealpost/evidence"
	"github.com/sealpost/sealpost/inbound"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/otp"
	"github.com/sealpost/sealpost/outbound"
	"github.com/sealpost/sealpost/quarantine"
	"github.com/sealpost/sealpost/store"
)

// backend is the shared store as the binary wires it: one value (the embedded SQLite, or PostgreSQL shared by several nodes)
// that satisfies every interface its users declare, and is closed when the binary stops.
type backend interface {
	outbound.Store
	inbound.Store
	api.Store
	quarantine.Index
	registry
	sharedDirectory
	changeFeed
	outbound.Mailbox
	mailboxKeeper
	api.MailboxStore
	ca.Store
	otp.Store
	discoveredKeys
	decisionOutbox
	console.Accounts
	// CustomerThreads lists a customer's newest support threads (the console's customer page).
	CustomerThreads(ctx context.Context, customer string, limit int) ([]store.Thread, error)
	// The evidence log's index by address (the console's customer page), kept by an indexer.
	evidence.IndexStore
	EvidenceAbout(ctx context.Context, addr string, limit int) ([]store.EvidenceEntry, error)
	io.Closer
}

// discoveredKeys is the shared cache of the keys WKD lookups found.
type discoveredKeys interface {
	PutDiscoveredKey(ctx context.Context, k store.DiscoveredKey) error
	DiscoveredKey(ctx context.Context, address string) (store.DiscoveredKey, error)
	DiscoveredKeys(ctx context.Context) ([]store.DiscoveredKey, error)
}

// mailboxKeeper is how serve keeps the secure mailbox: expired messages removed, counts exported.
type mailboxKeeper interface {
	// ExpireMailbox deletes the messages whose expiry has passed and says how many.
	ExpireMailbox(ctx context.Context, now time.Time) (int, error)
	// MailboxCounts says how many messages wait unread and how many were read.
	MailboxCounts(ctx context.Context) (waiting, read int, err error)
}

// sharedDirectory is the store's recipient directory (api's interface: keys import and remove,
// and the API, write it alike).
type sharedDirectory = api.SharedDirectory

// changeFeed announces what changed in the shared store, on any node: serve reloads the recipient
// directory and delivers released messages without waiting for its next look.
type changeFeed interface {
	// ChangeVersions is every topic's version now: Watch's baseline.
	ChangeVersions(ctx context.Context) (map[string]int64, error)
	// Watch calls f with each topic that changed since the versions since, until ctx ends.
	Watch(ctx context.Context, poll time.Duration, since map[string]int64, f func(topic string))
}

// recipientDirectory loads the recipient directory: the data directory's files, and the shared
// store's keys when st is not nil.
func recipientDirectory(ctx context.Context, dir keys.DataDir, st sharedDirectory) (*keys.Directory, error) {
	if st == nil {
		return dir.Directory()
	}
	return dir.DirectoryFrom(ctx, api.KeySource(st))
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
