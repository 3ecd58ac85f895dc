package outbound

import (
	"context"

	"github.com/sealpost/sealpost/store"
)

// Threads records support threads: outbound support mail starts one and carries its token in its
// Message-ID, so that the customer's reply can be linked to it. It is declared here, where it is
// used; the shared store (SQLite, PostgreSQL) implements it.
type Threads interface {
	// NewThread starts a thread with a fresh unguessable token.
	NewThread(ctx context.Context, customer, method, fingerprint, subject string) (store.Thread, error)
	// AddMessage links a Message-ID to a thread; store.ErrNotFound for an unknown thread. Adding
	// the same message again is a no-op; the same Message-ID with different content or thread is
	// store.ErrConflict.
	AddMessage(ctx context.Context, m store.ThreadMessage) error
}

// Capabilities tells what a customer's client showed it reads (the inbound pipeline records it).
type Capabilities interface {
	// Capabilities returns what was recorded for address; the zero value and store.ErrNotFound
	// when there is none.
	Capabilities(ctx context.Context, address string) (store.Capabilities, error)
}

// Store is what outbound keeps in the shared store: support threads, and the capabilities that
// decide between AES-GCM and CBC.
type Store interface {
	Threads
	Capabilities
}
