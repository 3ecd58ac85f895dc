package quarantine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/store"
)

// Index is the held-mail index: who sent it, why it is held, whether an operator released it. It
// is declared here, where it is used; the shared store (SQLite, PostgreSQL) implements it.
type Index interface {
	// Hold indexes a held message; store.ErrConflict on a duplicate ID.
	Hold(ctx context.Context, h store.Held) error
	// HeldList lists held messages, oldest first.
	HeldList(ctx context.Context, includeReleased bool) ([]store.Held, error)
	// HeldGet returns one held message; store.ErrNotFound when unknown.
	HeldGet(ctx context.Context, id string) (store.Held, error)
	// Release marks a held message released; store.ErrNotFound when unknown, store.ErrConflict
	// when already released.
	Release(ctx context.Context, id string) error
}

// Blobs is the byte store of held files: what it is given is already sealed (WithSealKey), so
// no byte store sees a customer reply in clear. The default is one file per message in the
// quarantine directory (a single node); WithBlobs chooses another, such as the PostgreSQL store
// that several nodes share.
type Blobs interface {
	// PutHeld stores data under id, durably before it returns; store.ErrConflict when id is
	// stored already.
	PutHeld(ctx context.Context, id string, data []byte) error
	// GetHeld returns the bytes stored under id; an error wrapping store.ErrNotFound when there
	// are none.
	GetHeld(ctx context.Context, id string) ([]byte, error)
	// RemoveHeld deletes the bytes stored under id, durably; removing what is not there is not
	// an error.
	RemoveHeld(ctx context.Context, id string) error
}

// ErrUnavailable: a message could not be held now (disk or index); the sender should retry.
var ErrUnavailable = errors.New("quarantine cannot hold the message now")

// Message is a held message as it was received, with its envelope.
type Message struct {
	From string
	To   []string
	Data []byte
}

// Quarantine holds inbound mail for an operator.
type Quarantine struct {
	blobs   Blobs
	index   Index
	log     *slog.Logger
	sealKey []byte // nil: held files are written in clear (v1)
}

// Option configures a Quarantine at Open.
type Option func(*Quarantine)

// WithLogger sets the logger Run reports deliveries and failures to (default, and with nil:
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(q *Quarantine) { q.log = l } }

// WithBlobs keeps held files in b instead of the quarantine directory (which Open then neither
// creates nor reads).
func WithBlobs(b Blobs) Option { return func(q *Quarantine) { q.blobs = b } }

// Open opens the quarantine indexed by index, its held files in dir (created, mode 0700) unless
// WithBlobs chooses another byte store.
func Open(dir string, index Index, opts ...Option) (*Quarantine, error) {
	if index == nil {
		return nil, errors.New("quarantine: an index is required")
	}
	q := &Quarantine{index: index}
	for _, o := range opts {
		o(q)
	}
	if q.blobs == nil {
		f, err := openFiles(dir)
		if err != nil {
			return nil, err
		}
		q.blobs = f
	}
	if q.log == nil {
		q.log = slog.Default()
	}
	if q.sealKey != nil {
		if _, err := q.aead(); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// Hold keeps m as received and indexes it with entry (received, header From, reason, verdict;
// Hold sets the ID and Ref); it returns the held ID, shaped like a queue ID. On failure nothing
// stays held and the error wraps ErrUnavailable.
func (q *Quarantine) Hold(ctx context.Context, m Message, entry store.Held) (string, error) {
	id := queue.NewID()
	file, err := q.seal(id, encode(m.From, m.To, m.Data))
	if err != nil {
		return "", errors.Join(ErrUnavailable, err)
	}
	if err := q.blobs.PutHeld(ctx, id, file); err != nil {
		return "", errors.Join(ErrUnavailable, err)
	}
	h := entry
	h.ID, h.Ref, h.Released = id, id, false
	if err := q.index.Hold(ctx, h); err != nil {
		_ = q.blobs.RemoveHeld(context.WithoutCancel(ctx), id)
		return "", errors.Join(ErrUnavailable, err)
	}
	return id, nil
}

// List lists held messages, oldest first; released ones too when includeReleased.
func (q *Quarantine) List(ctx context.Context, includeReleased bool) ([]store.Held, error) {
	return q.index.HeldList(ctx, includeReleased)
}

// Get returns a held message's index entry and the message as received; the message is nil when
// it was released and delivered already.
func (q *Quarantine) Get(ctx context.Context, id string) (store.Held, *Message, error) {
	h, err := q.index.HeldGet(ctx, id)
	if err != nil {
		return store.Held{}, nil, err
	}
	m, err := q.message(ctx, h.ID)
	if errors.Is(err, store.ErrNotFound) {
		return h, nil, nil
	}
	return h, m, err
}

func (q *Quarantine) message(ctx context.Context, id string) (*Message, error) {
	raw, err := q.blobs.GetHeld(ctx, id)
	if err != nil {
		return nil, err
	}
	if raw, err = q.unseal(id, raw); err != nil {
		return nil, fmt.Errorf("held %s: %w", id, err)
	}
	from, to, msg, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("held %s: %w", id, err)
	}
	return &Message{From: from, To: to, Data: msg}, nil
}

// Release marks a held message released; the running gateway's Run delivers it.
func (q *Quarantine) Release(ctx context.Context, id string) error { return q.index.Release(ctx, id) }

// Deliver hands one released message on (to the desk); an error leaves it held for the next try.
type Deliver func(ctx context.Context, h store.Held, m *Message) error

// DeliverReleased delivers every released message whose bytes are still held, then removes the
// bytes. It is safe to run again after a crash: at worst a released message is delivered twice.
func (q *Quarantine) DeliverReleased(ctx context.Context, deliver Deliver) (int, error) {
	list, err := q.index.HeldList(ctx, true)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, h := range list {
		if !h.Released {
			continue
		}
		m, err := q.message(ctx, h.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue // already delivered
		}
		if err == nil {
			err = deliver(ctx, h, m)
		}
		if err == nil {
			err = q.blobs.RemoveHeld(ctx, h.ID)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("held %s: %w", h.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// Run calls DeliverReleased now and every interval until ctx ends, logging (WithLogger) what it
// delivered and what failed.
func (q *Quarantine) Run(ctx context.Context, interval time.Duration, deliver Deliver) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := q.DeliverReleased(ctx, deliver)
		if n > 0 {
			q.log.Info("released held messages delivered to the desk", "count", n)
		}
		if err != nil && ctx.Err() == nil {
			q.log.Warn("releasing held messages", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
