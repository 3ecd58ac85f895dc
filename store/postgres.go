package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the store shared by several sealpost nodes: one PostgreSQL
// database, one connection pool per node. It has every method of SQLite,
// with the same semantics and errors, and so implements the same interfaces.
//
// Strings that come from mail (addresses, Message-IDs, subjects, held
// messages' metadata) are stored as bytea, so that they round-trip byte for
// byte as in SQLite (TEXT would refuse invalid UTF-8 and NUL) and compare
// and sort by their bytes; methods and fingerprints, which the store checks,
// are TEXT.
type Postgres struct {
	pool *pgxpool.Pool
}

// OpenPostgres connects to the database of cfg (which must Validate) and
// brings its schema up to date (Migrate). A database whose schema is newer
// than this code knows is refused with an error wrapping ErrSchemaTooNew.
// No error it returns holds the DSN's password.
func OpenPostgres(ctx context.Context, cfg PostgresConfig) (*Postgres, error) {
	p, err := connectPostgres(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, _, err := p.Migrate(ctx); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// MigratePostgres connects to the database of cfg, migrates its schema (see
// Migrate) and disconnects, for `sealpost store migrate`.
func MigratePostgres(ctx context.Context, cfg PostgresConfig) (from, to int, err error) {
	p, err := connectPostgres(ctx, cfg)
	if err != nil {
		return 0, 0, err
	}
	defer p.Close()
	return p.Migrate(ctx)
}

// connectPostgres makes the pool and checks that the database answers.
func connectPostgres(ctx context.Context, cfg PostgresConfig) (*Postgres, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: postgres: %w", ErrInvalid, err)
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("%w: postgres: dsn is not a connection string", ErrInvalid)
	}
	pc.MaxConns = cfg.MaxConns
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if cfg.StatementTimeout > 0 {
		pc.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(time.Duration(cfg.StatementTimeout).Milliseconds())
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, redact(fmt.Errorf("open store: PostgreSQL: %w", err), pc.ConnConfig.Password)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, redact(fmt.Errorf("open store: PostgreSQL: %w", err), pc.ConnConfig.Password)
	}
	return &Postgres{pool: pool}, nil
}

// redacted is an error of connecting: its text with the password masked,
// should a server or driver ever echo it, and for errors.Is only the
// context's errors, because pgx's carry the whole configuration.
type redacted struct {
	msg   string
	cause error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.cause }

func redact(err error, password string) error {
	msg := err.Error()
	if password != "" {
		msg = strings.ReplaceAll(msg, password, "xxxxx")
	}
	r := &redacted{msg: msg}
	for _, c := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, c) {
			r.cause = c
		}
	}
	return r
}

// Close closes the pool; closing again does nothing.
func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}

// Ping reports whether the database answers, for readiness.
func (p *Postgres) Ping(ctx context.Context) error {
	if err := p.pool.Ping(ctx); err != nil {
		return fmt.Errorf("store: PostgreSQL: %w", err)
	}
	return nil
}

// b passes s as bytea; never nil, which pgx would send as NULL.
func b(s string) []byte { return append([]byte{}, s...) }

// bs scans a bytea column into *s.
type bs struct{ s *string }

func (x bs) ScanBytes(v []byte) error { *x.s = string(v); return nil }

// Lock namespaces of pg_advisory_xact_lock(int, int): the writes of one
// AddressKey to one table are serialised, as SQLite serialises all writes,
// so that two nodes registering one customer in two spellings at once still
// store one spelling.
const (
	lockRegistrations int32 = 1
	lockCapabilities  int32 = 2
)

func keyLock(key string) int32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int32(h.Sum32())
}

// withKeyLock runs f in a transaction holding the advisory lock of key in
// namespace.
func (p *Postgres) withKeyLock(ctx context.Context, namespace int32, key string, f func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, namespace, keyLock(key)); err != nil {
			return err
		}
		return f(tx)
	})
}

// pgRegistrationsOf is registrationsOf with PostgreSQL's placeholders.
const pgRegistrationsOf = `address_key = $2 AND (address = $1 OR NOT EXISTS (SELECT 1 FROM registrations WHERE address = $1))`

// Register records a key for an address; registering the same
// (method, fingerprint) again for the address, in any spelling of its
// case, is a no-op.
func (p *Postgres) Register(ctx context.Context, r Registration) error {
	addr, err := NormalizeAddress(r.Address)
	if err != nil {
		return err
	}
	if err := validMethod(r.Method); err != nil {
		return err
	}
	fp, err := normalizeFingerprint(r.Fingerprint)
	if err != nil {
		return err
	}
	if fp == "" {
		return fmt.Errorf("%w: empty fingerprint", ErrInvalid)
	}
	key := foldAddress(addr)
	// As in SQLite: nothing when Registrations(addr) lists the key, else a
	// row under the spelling stored for the customer.
	err = p.withKeyLock(ctx, lockRegistrations, key, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO registrations (address, address_key, method, fingerprint, registered)
			SELECT COALESCE((SELECT address FROM registrations WHERE address_key = $2
				ORDER BY address = $1 DESC, registered, id LIMIT 1), $1), $2, $3, $4, $5
			WHERE NOT EXISTS (SELECT 1 FROM registrations WHERE method = $3 AND fingerprint = $4 AND `+pgRegistrationsOf+`)
			ON CONFLICT DO NOTHING`,
			b(addr), b(key), r.Method, fp, stamp(r.Registered))
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return pgBump(ctx, tx, TopicRegistrations)
	})
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	return nil
}

// Unregister removes the key with fingerprint (any method) from the
// registrations that Registrations(address) lists; ErrNotFound when it
// lists none with that fingerprint.
func (p *Postgres) Unregister(ctx context.Context, address, fingerprint string) error {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return err
	}
	fp, err := normalizeFingerprint(fingerprint)
	if err != nil {
		return err
	}
	var found bool
	err = p.pgWrite(ctx, TopicRegistrations, func(tx pgx.Tx) (bool, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM registrations WHERE fingerprint = $3 AND `+pgRegistrationsOf, b(addr), b(foldAddress(addr)), fp)
		found = tag.RowsAffected() > 0
		return found, err
	})
	if err != nil {
		return fmt.Errorf("unregister: %w", err)
	}
	if !found {
		return fmt.Errorf("unregister %s: %w", fp, ErrNotFound)
	}
	return nil
}

// Registrations lists the keys registered for address (see the package
// comment for case variants), oldest first; empty (and no error) when
// there are none.
func (p *Postgres) Registrations(ctx context.Context, address string) ([]Registration, error) {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, `SELECT address, method, fingerprint, registered FROM registrations
		WHERE `+pgRegistrationsOf+` ORDER BY registered, method, fingerprint`, b(addr), b(foldAddress(addr)))
	if err != nil {
		return nil, fmt.Errorf("registrations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Registration, error) {
		var r Registration
		var at int64
		err := row.Scan(bs{&r.Address}, &r.Method, &r.Fingerprint, &at)
		r.Registered = unstamp(at)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("registrations: %w", err)
	}
	if out == nil {
		out = []Registration{}
	}
	return out, nil
}

// NewThread starts a thread with a fresh unguessable token.
func (p *Postgres) NewThread(ctx context.Context, customer, method, fingerprint, subject string) (Thread, error) {
	addr, err := NormalizeAddress(customer)
	if err != nil {
		return Thread{}, err
	}
	fp, err := normalizeFingerprint(fingerprint)
	if err != nil {
		return Thread{}, err
	}
	if method != "" || fp != "" {
		if err := validMethod(method); err != nil {
			return Thread{}, err
		}
	}
	t := Thread{Token: newToken(), Customer: addr, Method: method, Fingerprint: fp, Subject: subject}
	at := stamp(time.Time{})
	t.Created = unstamp(at)
	_, err = p.pool.Exec(ctx, `INSERT INTO threads (token, customer, method, fingerprint, created, subject)
		VALUES ($1, $2, $3, $4, $5, $6)`, b(t.Token), b(t.Customer), t.Method, t.Fingerprint, at, b(t.Subject))
	if err != nil {
		return Thread{}, fmt.Errorf("new thread: %w", err)
	}
	return t, nil
}

type pgQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func pgThread(ctx context.Context, q pgQuerier, token string) (Thread, error) {
	var t Thread
	var at int64
	err := q.QueryRow(ctx, `SELECT token, customer, method, fingerprint, created, subject
		FROM threads WHERE token = $1`, b(token)).Scan(bs{&t.Token}, bs{&t.Customer}, &t.Method, &t.Fingerprint, &at, bs{&t.Subject})
	if errors.Is(err, pgx.ErrNoRows) {
		return Thread{}, fmt.Errorf("thread: %w", ErrNotFound)
	}
	if err != nil {
		return Thread{}, fmt.Errorf("thread: %w", err)
	}
	t.Created = unstamp(at)
	return t, nil
}

// Thread returns the thread with token; ErrNotFound when unknown.
func (p *Postgres) Thread(ctx context.Context, token string) (Thread, error) {
	return pgThread(ctx, p.pool, token)
}

// ThreadForMessageIDs returns the thread of the first of ids that is
// either a stored Message-ID or embeds a known token; ErrNotFound when
// none does.
func (p *Postgres) ThreadForMessageIDs(ctx context.Context, ids []string) (Thread, error) {
	for _, id := range ids {
		var token string
		err := p.pool.QueryRow(ctx, `SELECT token FROM thread_messages WHERE message_key = $1`, b(messageIDKey(id))).Scan(bs{&token})
		switch {
		case err == nil:
			return pgThread(ctx, p.pool, token)
		case !errors.Is(err, pgx.ErrNoRows):
			return Thread{}, fmt.Errorf("thread for message: %w", err)
		}
		if tok, ok := TokenFromMessageID(id); ok {
			t, err := pgThread(ctx, p.pool, tok)
			if !errors.Is(err, ErrNotFound) {
				return t, err
			}
		}
	}
	return Thread{}, fmt.Errorf("thread for message: %w", ErrNotFound)
}

// AddMessage links a Message-ID to a thread; ErrNotFound for an unknown
// thread. Adding the same message again is a no-op; the same Message-ID
// with different content or thread is ErrConflict.
func (p *Postgres) AddMessage(ctx context.Context, m ThreadMessage) error {
	key := messageIDKey(m.MessageID)
	if key == "" {
		return fmt.Errorf("%w: empty Message-ID", ErrInvalid)
	}
	if _, err := pgThread(ctx, p.pool, m.Token); err != nil {
		return fmt.Errorf("add message: %w", err)
	}
	// Threads are never deleted, so the one just read stays; a concurrent
	// insert of the same Message-ID makes this one do nothing and wait for
	// it, and the SELECT then reads what it stored.
	tag, err := p.pool.Exec(ctx, `INSERT INTO thread_messages (message_key, message_id, token, inbound, verdict, at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_key) DO NOTHING`,
		b(key), b(m.MessageID), b(m.Token), m.Inbound, b(m.Verdict), stamp(m.At))
	if err != nil {
		return fmt.Errorf("add message: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var token, verdict string
	var inbound bool
	err = p.pool.QueryRow(ctx, `SELECT token, inbound, verdict FROM thread_messages WHERE message_key = $1`, b(key)).Scan(bs{&token}, &inbound, bs{&verdict})
	if err != nil {
		return fmt.Errorf("add message: %w", err)
	}
	// At-least-once delivery may process a message twice: the same record
	// is fine, a different one is not.
	if token == m.Token && inbound == m.Inbound && verdict == m.Verdict {
		return nil
	}
	return fmt.Errorf("add message %s: %w", m.MessageID, ErrConflict)
}

// Messages lists a thread's messages, oldest first; ErrNotFound for an
// unknown thread.
func (p *Postgres) Messages(ctx context.Context, token string) ([]ThreadMessage, error) {
	if _, err := p.Thread(ctx, token); err != nil {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, `SELECT token, message_id, inbound, verdict, at FROM thread_messages
		WHERE token = $1 ORDER BY at, id`, b(token))
	if err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ThreadMessage, error) {
		var m ThreadMessage
		var at int64
		err := row.Scan(bs{&m.Token}, bs{&m.MessageID}, &m.Inbound, bs{&m.Verdict}, &at)
		m.At = unstamp(at)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	if out == nil {
		out = []ThreadMessage{}
	}
	return out, nil
}

// Hold indexes a held message; ErrConflict on a duplicate ID.
func (p *Postgres) Hold(ctx context.Context, h Held) error {
	if err := checkHeld(h); err != nil {
		return err
	}
	var added bool
	err := p.pgWrite(ctx, TopicHeld, func(tx pgx.Tx) (bool, error) {
		tag, err := tx.Exec(ctx, `INSERT INTO held (`+heldColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING`,
			b(h.ID), stamp(h.Received), b(h.From), b(h.Reason), b(h.Verdict), b(h.Ref), h.Released, h.Delivered,
			h.Deleted, b(h.DecidedBy), b(h.DecidedWhy), decidedStamp(h.DecidedAt))
		added = tag.RowsAffected() > 0
		return added, err
	})
	if err != nil {
		return fmt.Errorf("hold: %w", err)
	}
	if !added {
		return fmt.Errorf("hold %s: %w", h.ID, ErrConflict)
	}
	return nil
}

func pgScanHeld(r pgx.Row) (Held, error) {
	var h Held
	var at, decided int64
	if err := r.Scan(bs{&h.ID}, &at, bs{&h.From}, bs{&h.Reason}, bs{&h.Verdict}, bs{&h.Ref}, &h.Released, &h.Delivered,
		&h.Deleted, bs{&h.DecidedBy}, bs{&h.DecidedWhy}, &decided); err != nil {
		return Held{}, err
	}
	h.Received, h.DecidedAt = unstamp(at), undecidedStamp(decided)
	return h, nil
}

// HeldList lists held messages, oldest first.
func (p *Postgres) HeldList(ctx context.Context, includeReleased bool) ([]Held, error) {
	q := `SELECT ` + heldColumns + ` FROM held WHERE NOT released AND NOT deleted ORDER BY received, id`
	if includeReleased {
		q = `SELECT ` + heldColumns + ` FROM held ORDER BY received, id`
	}
	rows, err := p.pool.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("held list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Held, error) { return pgScanHeld(row) })
	if err != nil {
		return nil, fmt.Errorf("held list: %w", err)
	}
	if out == nil {
		out = []Held{}
	}
	return out, nil
}

// HeldGet returns one held message; ErrNotFound when unknown.
func (p *Postgres) HeldGet(ctx context.Context, id string) (Held, error) {
	h, err := pgScanHeld(p.pool.QueryRow(ctx, `SELECT `+heldColumns+` FROM held WHERE id = $1`, b(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return Held{}, fmt.Errorf("held %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Held{}, fmt.Errorf("held %s: %w", id, err)
	}
	return h, nil
}

// Release marks a held message released by decision d, and queues d's evidence record in the
// same transaction; ErrNotFound when unknown, ErrConflict when already released or deleted,
// ErrInvalid without who, why, when or the record. Of two nodes deciding on one message at once,
// exactly one succeeds.
func (p *Postgres) Release(ctx context.Context, id string, d Decision) error {
	return p.decide(ctx, "release", `released = true`, id, d)
}

// Delete marks a held message deleted by decision d (the caller removes its bytes), and queues
// d's evidence record in the same transaction; errors as Release's.
func (p *Postgres) Delete(ctx context.Context, id string, d Decision) error {
	return p.decide(ctx, "delete", `deleted = true`, id, d)
}

func (p *Postgres) decide(ctx context.Context, what, set, id string, d Decision) error {
	if err := checkDecision(d); err != nil {
		return fmt.Errorf("%s %s: %w", what, id, err)
	}
	var decided bool
	err := p.pgWrite(ctx, TopicHeld, func(tx pgx.Tx) (bool, error) {
		tag, err := tx.Exec(ctx, `UPDATE held SET `+set+`, decided_by = $2, decided_why = $3, decided_at = $4
			WHERE id = $1 AND NOT released AND NOT deleted`, b(id), b(d.By), b(d.Why), stamp(d.At))
		if err != nil {
			return false, err
		}
		if decided = tag.RowsAffected() == 1; !decided {
			return false, nil
		}
		return true, queueEvidence(ctx, pgConn{tx}, d.Evidence)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if decided {
		return nil
	}
	var released bool
	err = p.pool.QueryRow(ctx, `SELECT released FROM held WHERE id = $1`, b(id)).Scan(&released)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s %s: %w", what, id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s %s: already %s: %w", what, id, map[bool]string{true: "released", false: "deleted"}[released], ErrConflict)
}

// pgCapabilitiesRowOf is capabilitiesRowOf with PostgreSQL's placeholders.
const pgCapabilitiesRowOf = `address_key = $2 ORDER BY address = $1 DESC, updated DESC, address LIMIT 1`

// SetCapabilities records capabilities; an update older than the stored
// one is ignored, so replies processed out of order do not regress them.
func (p *Postgres) SetCapabilities(ctx context.Context, c Capabilities) error {
	addr, err := NormalizeAddress(c.Address)
	if err != nil {
		return err
	}
	key := foldAddress(addr)
	err = p.withKeyLock(ctx, lockCapabilities, key, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO capabilities (address, address_key, smime_gcm, pgp_seipdv2, updated)
			SELECT COALESCE((SELECT address FROM capabilities WHERE `+pgCapabilitiesRowOf+`), $1), $2, $3, $4, $5
			ON CONFLICT (address) DO UPDATE SET smime_gcm = excluded.smime_gcm,
				pgp_seipdv2 = excluded.pgp_seipdv2, updated = excluded.updated
			WHERE excluded.updated >= capabilities.updated`,
			b(addr), b(key), c.SMIMEGCM, c.PGPSEIPDv2, stamp(c.Updated))
		return err
	})
	if err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	return nil
}

// Capabilities returns what was recorded for address spelt exactly so,
// else the newest record of a case variant; the zero value and
// ErrNotFound when there is none.
func (p *Postgres) Capabilities(ctx context.Context, address string) (Capabilities, error) {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return Capabilities{}, err
	}
	var c Capabilities
	var at int64
	err = p.pool.QueryRow(ctx, `SELECT address, smime_gcm, pgp_seipdv2, updated FROM capabilities
		WHERE `+pgCapabilitiesRowOf, b(addr), b(foldAddress(addr))).
		Scan(bs{&c.Address}, &c.SMIMEGCM, &c.PGPSEIPDv2, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return Capabilities{}, fmt.Errorf("capabilities %s: %w", addr, ErrNotFound)
	}
	if err != nil {
		return Capabilities{}, fmt.Errorf("capabilities: %w", err)
	}
	c.Updated = unstamp(at)
	return c, nil
}
