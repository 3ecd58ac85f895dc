package inbound

import (
	"context"

	"github.com/sealpost/sealpost/store"
)

// The shared state the inbound pipeline reads and writes, declared here where it is used; the
// shared store (SQLite, PostgreSQL) implements them.

// Registry tells which keys customers registered: a customer who registered one must sign with it.
type Registry interface {
	// Registrations lists the keys registered for address, oldest first; empty (and no error)
	// when there are none, store.ErrInvalid for an address that is not local@domain.
	Registrations(ctx context.Context, address string) ([]store.Registration, error)
}

// Threads links replies to the support threads outbound mail started.
type Threads interface {
	// ThreadForMessageIDs returns the thread of the first of ids that is either a stored
	// Message-ID or embeds a known token; store.ErrNotFound when none does.
	ThreadForMessageIDs(ctx context.Context, ids []string) (store.Thread, error)
	// AddMessage links a Message-ID to a thread; store.ErrNotFound for an unknown thread. Adding
	// the same message again is a no-op; the same Message-ID with different content or thread is
	// store.ErrConflict.
	AddMessage(ctx context.Context, m store.ThreadMessage) error
}

// Capabilities remembers what a customer's signed reply announced their client reads, for
// outbound to choose AES-GCM.
type Capabilities interface {
	// SetCapabilities records capabilities; an update older than the stored one is ignored, so
	// replies processed out of order do not regress them.
	SetCapabilities(ctx context.Context, c store.Capabilities) error
}

// Store is what the inbound pipeline keeps in the shared store. A Store that also implements
// RegisteredNames gives the desk the names customers registered.
type Store interface {
	Registry
	Threads
	Capabilities
}

// Learner keeps certificates learned from customers' verified signed replies (chaining to a root
// trusted for learning), for outbound mail of the classes whose policy allows learned keys. A
// Store that also implements it learns; the shared store does.
type Learner interface {
	// PutRecipientKey stores k (Source store.SourceLearned); a registered copy stays registered.
	PutRecipientKey(ctx context.Context, k store.RecipientKey) error
}
