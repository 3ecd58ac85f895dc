package quarantine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
	// Release and Delete record an operator's decision on a held message (who, why, when) and
	// queue its evidence record in the same transaction; store.ErrNotFound when unknown,
	// store.ErrConflict when already released or deleted.
	Release(ctx context.Context, id string, d store.Decision) error
	Delete(ctx context.Context, id string, d store.Decision) error
	// ClaimReleased claims for owner, until lease has passed, up to limit released messages not yet
	// delivered that no other owner's live claim holds, oldest first: of several nodes, one
	// delivers each.
	ClaimReleased(ctx context.Context, owner string, lease time.Duration, limit int) ([]store.Held, error)
	// MarkDelivered records that a released message reached the desk.
	MarkDelivered(ctx context.Context, id string) error
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
	owner   string // who claims released messages (WithOwner)
	wake    chan struct{}
}

// Lease is how long a claim on a released message lasts: a node that dies while delivering one
// leaves it to another after this long. Delivering is a write to the desk's local spool.
const Lease = 2 * time.Minute

// claimBatch is how many released messages one claim takes.
const claimBatch = 100

// Option configures a Quarantine at Open.
type Option func(*Quarantine)

// WithLogger sets the logger Run reports deliveries and failures to (default, and with nil:
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(q *Quarantine) { q.log = l } }

// WithOwner names this node in its claims on released messages (default: the host name and a
// random suffix, new at each Open).
func WithOwner(name string) Option { return func(q *Quarantine) { q.owner = name } }

// WithBlobs keeps held files in b instead of the quarantine directory (which Open then neither
// creates nor reads).
func WithBlobs(b Blobs) Option { return func(q *Quarantine) { q.blobs = b } }

// Open opens the quarantine indexed by index, its held files in dir (created, mode 0700) unless
// WithBlobs chooses another byte store.
func Open(dir string, index Index, opts ...Option) (*Quarantine, error) {
	if index == nil {
		return nil, errors.New("quarantine: an index is required")
	}
	q := &Quarantine{index: index, wake: make(chan struct{}, 1)}
	for _, o := range opts {
		o(q)
	}
	if q.owner == "" {
		q.owner = defaultOwner()
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
		if _, err := q.sealer(); err != nil {
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

// Entry returns a held entry's index record alone, without reading its bytes.
func (q *Quarantine) Entry(ctx context.Context, id string) (store.Held, error) {
	return q.index.HeldGet(ctx, id)
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

// Sealed returns a held message's bytes as its byte store keeps them (sealed under the quarantine's
// key), for moving them to another store; an error wrapping store.ErrNotFound when there are none.
func (q *Quarantine) Sealed(ctx context.Context, id string) ([]byte, error) {
	return q.blobs.GetHeld(ctx, id)
}

// Release marks a held message released by decision d; the running gateway's Run delivers it.
func (q *Quarantine) Release(ctx context.Context, id string, d store.Decision) error {
	return q.index.Release(ctx, id, d)
}

// Delete marks a held message deleted by decision d and removes its bytes. Deleting it again
// removes bytes a failed first attempt left, and reports store.ErrConflict all the same.
func (q *Quarantine) Delete(ctx context.Context, id string, d store.Decision) error {
	err := q.index.Delete(ctx, id, d)
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	if errors.Is(err, store.ErrConflict) {
		if h, gerr := q.index.HeldGet(ctx, id); gerr != nil || !h.Deleted {
			return err
		}
	}
	if rerr := q.blobs.RemoveHeld(context.WithoutCancel(ctx), id); rerr != nil {
		return fmt.Errorf("held %s is deleted, but its bytes are not removed yet (delete it again): %w", id, rerr)
	}
	return err
}

// Deliver hands one released message on (to the desk); an error leaves it held for the next try.
type Deliver func(ctx context.Context, h store.Held, m *Message) error

// DeliverReleased claims released messages and delivers each whose bytes are still held, then
// removes the bytes and marks it delivered. It is safe to run on several nodes at once (each
// message is claimed by one) and again after a crash: at worst a released message is delivered
// twice (a crash after the desk took it, before it was marked). A message whose delivery fails
// stays claimed by this node, which tries again at its next run; another node takes it once the
// claim's Lease has passed.
func (q *Quarantine) DeliverReleased(ctx context.Context, deliver Deliver) (int, error) {
	n := 0
	var errs []error
	for {
		list, err := q.index.ClaimReleased(ctx, q.owner, Lease, claimBatch)
		if err != nil {
			return n, errors.Join(append(errs, err)...)
		}
		done := 0
		for _, h := range list {
			if err := q.deliverOne(ctx, h, deliver); err != nil {
				errs = append(errs, fmt.Errorf("held %s: %w", h.ID, err))
				continue
			}
			done++
		}
		n += done
		// A full batch may have more behind it; one without progress is this node's own
		// failures, claimed again first: those wait for the next run.
		if len(list) < claimBatch || done == 0 {
			return n, errors.Join(errs...)
		}
	}
}

// deliverOne delivers one claimed message, removes its bytes and marks it delivered; bytes already
// gone mean it was delivered before a crash kept it from being marked.
func (q *Quarantine) deliverOne(ctx context.Context, h store.Held, deliver Deliver) error {
	m, err := q.message(ctx, h.ID)
	if errors.Is(err, store.ErrNotFound) {
		return q.index.MarkDelivered(ctx, h.ID)
	}
	if err != nil {
		return err
	}
	if err := deliver(ctx, h, m); err != nil {
		return err
	}
	// The desk has it: finish the bookkeeping even if ctx ends now (the gateway stopping), so it
	// is not delivered again.
	ctx = context.WithoutCancel(ctx)
	if err := q.blobs.RemoveHeld(ctx, h.ID); err != nil {
		return err
	}
	return q.index.MarkDelivered(ctx, h.ID)
}

// Wake makes Run deliver now instead of at its next interval: a release was announced (on this
// node or another).
func (q *Quarantine) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run calls DeliverReleased now, every interval and at each Wake until ctx ends, logging
// (WithLogger) what it delivered and what failed.
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
		case <-q.wake:
		}
	}
}

// defaultOwner names this process in claims: the host name, for the operator reading the table,
// and a random suffix, so two processes on one host never share a claim.
func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "sealpost"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%x", host, b)
}
