package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the pure Go "sqlite" driver
)

// schemaVersion is the newest schema this code knows. migrations[i] takes a
// database from version i to i+1.
const schemaVersion = 11

// A migration runs inside the transaction that also records the new version.
type migration func(ctx context.Context, tx *sql.Tx) error

var migrations = []migration{
	execMigration(schemaV1),
	addAddressKeys,
	execMigration(schemaV3HeldBlobs),
	execMigration(schemaV4),
	execMigration(schemaV5),
	execMigration(schemaV6),
	execMigration(schemaV7),
	execMigration(schemaV8),
	execMigration(schemaV9),
	execMigration(schemaV10),
	execMigration(schemaV11),
}

func execMigration(ddl string) migration {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, ddl)
		return err
	}
}

// schemaV1 is the first schema. Released migrations never change.
const schemaV1 = `CREATE TABLE registrations (
		address     TEXT NOT NULL,
		method      TEXT NOT NULL CHECK (method IN ('smime', 'pgp')),
		fingerprint TEXT NOT NULL,
		registered  INTEGER NOT NULL,
		PRIMARY KEY (address, method, fingerprint)
	);
	CREATE TABLE threads (
		token       TEXT PRIMARY KEY,
		customer    TEXT NOT NULL,
		method      TEXT NOT NULL,
		fingerprint TEXT NOT NULL,
		created     INTEGER NOT NULL,
		subject     TEXT NOT NULL
	);
	CREATE TABLE thread_messages (
		message_key TEXT PRIMARY KEY,
		message_id  TEXT NOT NULL,
		token       TEXT NOT NULL REFERENCES threads(token) ON DELETE CASCADE,
		inbound     INTEGER NOT NULL,
		verdict     TEXT NOT NULL,
		at          INTEGER NOT NULL
	);
	CREATE INDEX thread_messages_token ON thread_messages(token, at);
	CREATE TABLE held (
		id       TEXT PRIMARY KEY,
		received INTEGER NOT NULL,
		sender   TEXT NOT NULL,
		reason   TEXT NOT NULL,
		verdict  TEXT NOT NULL,
		ref      TEXT NOT NULL,
		released INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX held_received ON held(released, received);
	CREATE TABLE capabilities (
		address      TEXT PRIMARY KEY,
		smime_gcm    INTEGER NOT NULL,
		pgp_seipdv2  INTEGER NOT NULL,
		updated      INTEGER NOT NULL
	);`

// schemaV4 adds the shared recipient directory, the versions of what
// changed (Watch), and delivery claims on released held messages. Released
// messages of an older database count as not delivered: their bytes are
// files this migration cannot see, and a claimer finding none treats the
// message as delivered.
const schemaV4 = `CREATE TABLE recipient_keys (
		method      TEXT NOT NULL CHECK (method IN ('smime', 'pgp')),
		fingerprint TEXT NOT NULL,
		data        BLOB NOT NULL,
		added       INTEGER NOT NULL,
		PRIMARY KEY (method, fingerprint)
	);
	CREATE TABLE change_versions (
		topic   TEXT PRIMARY KEY,
		version INTEGER NOT NULL
	);
	ALTER TABLE held ADD COLUMN delivered INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE held ADD COLUMN claim_owner TEXT NOT NULL DEFAULT '';
	ALTER TABLE held ADD COLUMN claim_until INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX held_claimable ON held (received, id) WHERE released = 1 AND delivered = 0;`

// addAddressKeys (version 2) stores next to each address of registrations and
// capabilities its AddressKey, computed here for the rows already stored, and
// indexes it: lookups stop depending on the case of the local part.
func addAddressKeys(ctx context.Context, tx *sql.Tx) error {
	for _, table := range []string{"registrations", "capabilities"} {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN address_key TEXT NOT NULL DEFAULT ''`); err != nil {
			return err
		}
		// SQLite's lower() folds ASCII only; foldAddress then corrects the
		// rows it left differing (upper-case letters beyond ASCII).
		if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET address_key = lower(address)`); err != nil {
			return err
		}
		if err := refoldAddressKeys(ctx, tx, table); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `CREATE INDEX registrations_address_key ON registrations(address_key, method, fingerprint);
		CREATE INDEX capabilities_address_key ON capabilities(address_key)`)
	return err
}

// refoldAddressKeys sets address_key to foldAddress(address) in the rows of
// table where it differs.
func refoldAddressKeys(ctx context.Context, tx *sql.Tx, table string) error {
	type fix struct {
		rowid int64
		key   string
	}
	var fixes []fix
	rows, err := tx.QueryContext(ctx, `SELECT rowid, address, address_key FROM `+table)
	if err != nil {
		return err
	}
	for rows.Next() {
		var f fix
		var addr, key string
		if err := rows.Scan(&f.rowid, &addr, &key); err != nil {
			rows.Close()
			return err
		}
		if f.key = foldAddress(addr); f.key != key {
			fixes = append(fixes, f)
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, f := range fixes {
		if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET address_key = ? WHERE rowid = ?`, f.key, f.rowid); err != nil {
			return err
		}
	}
	return nil
}

// busyTimeout is how long a connection waits for another writer.
const busyTimeout = 10 * time.Second

// SQLite is the embedded store, one database file shared by the processes of
// one node. It implements the interfaces its users declare (outbound,
// inbound, quarantine, cmd/sealpost); a test in each of them checks it.
type SQLite struct {
	db *sql.DB
	// capabilities is the outbound hot path's one query (a recipient's capabilities), prepared
	// once instead of for every recipient.
	capabilities *sql.Stmt
	// stmts are the inbound hot path's reads (registrations, a reply's thread), each prepared at
	// its first use and kept: SQLite's parse and plan cost each reply ~0.1 ms a query otherwise.
	stmts sync.Map // query → *sql.Stmt
}

// stmt returns query prepared once for the store's life.
func (s *SQLite) stmt(query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.Prepare(query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// OpenSQLite opens (creating if needed, mode 0600) the database at path,
// enables WAL, foreign keys and a busy timeout, and brings the schema up to
// date. A database written by a newer sealpost is refused with an error
// wrapping ErrSchemaTooNew.
func OpenSQLite(path string) (*SQLite, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("%w: sqlite path %q", ErrInvalid, path)
	}
	// Create the file ourselves so it is 0600 from the start; SQLite gives the
	// -wal and -shm files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	// BEGIN IMMEDIATE takes the write lock up front: a deferred transaction
	// that upgrades to a writer can fail with SQLITE_BUSY despite busy_timeout.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &SQLite{db: db}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if s.capabilities, err = db.Prepare(capabilitiesQuery); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

func (s *SQLite) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("%w: database has schema version %d, this sealpost knows up to %d; upgrade sealpost", ErrSchemaTooNew, v, schemaVersion)
	}
	if v == schemaVersion {
		return tx.Commit()
	}
	for ; v < schemaVersion; v++ {
		if err := migrations[v](ctx, tx); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, schemaVersion); err != nil {
		return err
	}
	return tx.Commit()
}

// Close closes the database.
func (s *SQLite) Close() error {
	s.capabilities.Close()
	s.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	return s.db.Close()
}

// stamp converts t for storage, defaulting a zero time to now.
func stamp(t time.Time) int64 {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UnixNano()
}

func unstamp(n int64) time.Time { return time.Unix(0, n).UTC() }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Register records a key for an address; registering the same
// (method, fingerprint) again for the address, in any spelling of its
// case, is a no-op.
func (s *SQLite) Register(ctx context.Context, r Registration) error {
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
	// Nothing to do when Registrations(addr) lists the key already. Otherwise
	// the row joins the customer's registrations under the spelling stored
	// for them (the exact one, else the oldest), so that registering in
	// another case does not hide the earlier keys from lookups in the first
	// spelling. One statement: no other writer comes between check and insert.
	err = s.sqliteWrite(ctx, TopicRegistrations, func(tx *sql.Tx) (bool, error) {
		return changedRows(tx.ExecContext(ctx, `INSERT INTO registrations (address, address_key, method, fingerprint, registered)
			SELECT COALESCE((SELECT address FROM registrations WHERE address_key = ?2
				ORDER BY address = ?1 DESC, registered, rowid LIMIT 1), ?1), ?2, ?3, ?4, ?5
			WHERE NOT EXISTS (SELECT 1 FROM registrations WHERE method = ?3 AND fingerprint = ?4 AND `+registrationsOf+`)`,
			addr, foldAddress(addr), r.Method, fp, stamp(r.Registered)))
	})
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	return nil
}

// Unregister removes the key with fingerprint (any method) from the
// registrations that Registrations(address) lists; ErrNotFound when it
// lists none with that fingerprint.
func (s *SQLite) Unregister(ctx context.Context, address, fingerprint string) error {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return err
	}
	fp, err := normalizeFingerprint(fingerprint)
	if err != nil {
		return err
	}
	var found bool
	err = s.sqliteWrite(ctx, TopicRegistrations, func(tx *sql.Tx) (bool, error) {
		var err error
		found, err = changedRows(tx.ExecContext(ctx, `DELETE FROM registrations WHERE fingerprint = ?3 AND `+registrationsOf, addr, foldAddress(addr), fp))
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

// registrationsOf selects the registrations of a normalised address ?1 with
// AddressKey ?2: those spelt exactly so if there are any, else those of every
// spelling with that key.
const registrationsOf = `address_key = ?2 AND (address = ?1 OR NOT EXISTS (SELECT 1 FROM registrations WHERE address = ?1))`

// Registrations lists the keys registered for address (see the package
// comment for case variants), oldest first; empty (and no error) when
// there are none.
func (s *SQLite) Registrations(ctx context.Context, address string) ([]Registration, error) {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return nil, err
	}
	st, err := s.stmt(registrationsQuery)
	if err != nil {
		return nil, fmt.Errorf("registrations: %w", err)
	}
	rows, err := st.QueryContext(ctx, addr, foldAddress(addr))
	if err != nil {
		return nil, fmt.Errorf("registrations: %w", err)
	}
	defer rows.Close()
	out := []Registration{}
	for rows.Next() {
		var r Registration
		var at int64
		if err := rows.Scan(&r.Address, &r.Method, &r.Fingerprint, &at); err != nil {
			return nil, fmt.Errorf("registrations: %w", err)
		}
		r.Registered = unstamp(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registrations: %w", err)
	}
	return out, nil
}

// NewThread starts a thread with a fresh unguessable token.
func (s *SQLite) NewThread(ctx context.Context, customer, method, fingerprint, subject string) (Thread, error) {
	addr, err := NormalizeAddress(customer)
	if err != nil {
		return Thread{}, err
	}
	fp, err := normalizeFingerprint(fingerprint)
	if err != nil {
		return Thread{}, err
	}
	// A customer without a registered key has neither method nor fingerprint.
	if method != "" || fp != "" {
		if err := validMethod(method); err != nil {
			return Thread{}, err
		}
	}
	t := Thread{Token: newToken(), Customer: addr, Method: method, Fingerprint: fp, Subject: subject}
	at := stamp(time.Time{})
	t.Created = unstamp(at)
	_, err = s.db.ExecContext(ctx, `INSERT INTO threads (token, customer, method, fingerprint, created, subject)
		VALUES (?, ?, ?, ?, ?, ?)`, t.Token, t.Customer, t.Method, t.Fingerprint, at, t.Subject)
	if err != nil {
		return Thread{}, fmt.Errorf("new thread: %w", err)
	}
	return t, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// threadQuery reads a thread by its token.
const threadQuery = `SELECT token, customer, method, fingerprint, created, subject FROM threads WHERE token = ?`

// registrationsQuery reads an address's registrations (registrationsOf's two arguments).
const registrationsQuery = `SELECT address, method, fingerprint, registered FROM registrations
		WHERE ` + registrationsOf + ` ORDER BY registered, method, fingerprint`

func getThread(ctx context.Context, q querier, token string) (Thread, error) {
	var t Thread
	var at int64
	err := q.QueryRowContext(ctx, threadQuery, token).Scan(&t.Token, &t.Customer, &t.Method, &t.Fingerprint, &at, &t.Subject)
	if errors.Is(err, sql.ErrNoRows) {
		return Thread{}, fmt.Errorf("thread: %w", ErrNotFound)
	}
	if err != nil {
		return Thread{}, fmt.Errorf("thread: %w", err)
	}
	t.Created = unstamp(at)
	return t, nil
}

// Thread returns the thread with token; ErrNotFound when unknown.
func (s *SQLite) Thread(ctx context.Context, token string) (Thread, error) {
	return getThread(ctx, s.db, token)
}

// ThreadForMessageIDs returns the thread of the first of ids that is
// either a stored Message-ID or embeds a known token; ErrNotFound when
// none does.
func (s *SQLite) ThreadForMessageIDs(ctx context.Context, ids []string) (Thread, error) {
	// One query an id (SQLite's read transaction is much of a lookup's cost): whether the id is a
	// stored Message-ID, and the thread of its token, else of the token the id embeds.
	q, err := s.stmt(`SELECT m.token IS NOT NULL, t.token, t.customer, t.method, t.fingerprint, t.created, t.subject
		FROM (SELECT (SELECT token FROM thread_messages WHERE message_key = ?1) AS token) AS m
		LEFT JOIN threads AS t ON t.token = COALESCE(m.token, ?2)`)
	if err != nil {
		return Thread{}, fmt.Errorf("thread for message: %w", err)
	}
	for _, id := range ids {
		var embedded any // NULL: the id embeds no token
		if tok, ok := TokenFromMessageID(id); ok {
			embedded = tok
		}
		var stored bool
		var token, customer, method, fp, subject sql.NullString
		var at sql.NullInt64
		err := q.QueryRowContext(ctx, messageIDKey(id), embedded).Scan(&stored, &token, &customer, &method, &fp, &at, &subject)
		switch {
		case err != nil:
			return Thread{}, fmt.Errorf("thread for message: %w", err)
		case token.Valid:
			return Thread{Token: token.String, Customer: customer.String, Method: method.String, Fingerprint: fp.String,
				Created: unstamp(at.Int64), Subject: subject.String}, nil
		case stored: // a stored Message-ID whose thread is gone names no other
			return Thread{}, fmt.Errorf("thread: %w", ErrNotFound)
		}
	}
	return Thread{}, fmt.Errorf("thread for message: %w", ErrNotFound)
}

// AddMessage links a Message-ID to a thread; ErrNotFound for an unknown
// thread. Adding the same message again is a no-op; the same Message-ID
// with different content or thread is ErrConflict.
func (s *SQLite) AddMessage(ctx context.Context, m ThreadMessage) error {
	key := messageIDKey(m.MessageID)
	if key == "" {
		return fmt.Errorf("%w: empty Message-ID", ErrInvalid)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add message: %w", err)
	}
	defer tx.Rollback()
	if _, err := getThread(ctx, tx, m.Token); err != nil {
		return fmt.Errorf("add message: %w", err)
	}
	var token, verdict string
	var inbound bool
	err = tx.QueryRowContext(ctx, `SELECT token, inbound, verdict FROM thread_messages WHERE message_key = ?`, key).Scan(&token, &inbound, &verdict)
	switch {
	case err == nil:
		// At-least-once delivery may process a message twice: the same
		// record is fine, a different one is not.
		if token == m.Token && inbound == m.Inbound && verdict == m.Verdict {
			return nil
		}
		return fmt.Errorf("add message %s: %w", m.MessageID, ErrConflict)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("add message: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO thread_messages (message_key, message_id, token, inbound, verdict, at)
		VALUES (?, ?, ?, ?, ?, ?)`, key, m.MessageID, m.Token, b2i(m.Inbound), m.Verdict, stamp(m.At)); err != nil {
		return fmt.Errorf("add message: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add message: %w", err)
	}
	return nil
}

// Messages lists a thread's messages, oldest first; ErrNotFound for an
// unknown thread.
func (s *SQLite) Messages(ctx context.Context, token string) ([]ThreadMessage, error) {
	if _, err := s.Thread(ctx, token); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT token, message_id, inbound, verdict, at FROM thread_messages
		WHERE token = ? ORDER BY at, rowid`, token)
	if err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	defer rows.Close()
	out := []ThreadMessage{}
	for rows.Next() {
		var m ThreadMessage
		var at int64
		if err := rows.Scan(&m.Token, &m.MessageID, &m.Inbound, &m.Verdict, &at); err != nil {
			return nil, fmt.Errorf("messages: %w", err)
		}
		m.At = unstamp(at)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	return out, nil
}

// Hold indexes a held message; ErrConflict on a duplicate ID.
func (s *SQLite) Hold(ctx context.Context, h Held) error {
	if err := checkHeld(h); err != nil {
		return err
	}
	var added bool
	err := s.sqliteWrite(ctx, TopicHeld, func(tx *sql.Tx) (bool, error) {
		var err error
		added, err = changedRows(tx.ExecContext(ctx, `INSERT INTO held (`+heldColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			h.ID, stamp(h.Received), h.From, h.Reason, h.Verdict, h.Ref, b2i(h.Released), b2i(h.Delivered),
			b2i(h.Deleted), h.DecidedBy, h.DecidedWhy, decidedStamp(h.DecidedAt)))
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

// checkHeld refuses a held entry without ID, or delivered but not released.
func checkHeld(h Held) error {
	if h.ID == "" {
		return fmt.Errorf("%w: empty held ID", ErrInvalid)
	}
	if h.Delivered && !h.Released {
		return fmt.Errorf("%w: held %s delivered but not released", ErrInvalid, h.ID)
	}
	if h.Deleted && h.Released {
		return fmt.Errorf("%w: held %s both released and deleted", ErrInvalid, h.ID)
	}
	return nil
}

// decidedStamp is a decision's time as stored: 0 when there is none.
func decidedStamp(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return stamp(t)
}

func undecidedStamp(at int64) time.Time {
	if at == 0 {
		return time.Time{}
	}
	return unstamp(at)
}

const heldColumns = `id, received, sender, reason, verdict, ref, released, delivered, deleted, decided_by, decided_why, decided_at`

type scanner interface{ Scan(dest ...any) error }

func scanHeld(r scanner) (Held, error) {
	var h Held
	var at, decided int64
	if err := r.Scan(&h.ID, &at, &h.From, &h.Reason, &h.Verdict, &h.Ref, &h.Released, &h.Delivered,
		&h.Deleted, &h.DecidedBy, &h.DecidedWhy, &decided); err != nil {
		return Held{}, err
	}
	h.Received, h.DecidedAt = unstamp(at), undecidedStamp(decided)
	return h, nil
}

// HeldList lists held messages, oldest first.
func (s *SQLite) HeldList(ctx context.Context, includeReleased bool) ([]Held, error) {
	q := `SELECT ` + heldColumns + ` FROM held WHERE released = 0 AND deleted = 0 ORDER BY received, id`
	if includeReleased {
		q = `SELECT ` + heldColumns + ` FROM held ORDER BY received, id`
	}
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("held list: %w", err)
	}
	defer rows.Close()
	out := []Held{}
	for rows.Next() {
		h, err := scanHeld(rows)
		if err != nil {
			return nil, fmt.Errorf("held list: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("held list: %w", err)
	}
	return out, nil
}

// HeldGet returns one held message; ErrNotFound when unknown.
func (s *SQLite) HeldGet(ctx context.Context, id string) (Held, error) {
	h, err := scanHeld(s.db.QueryRowContext(ctx, `SELECT `+heldColumns+` FROM held WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Held{}, fmt.Errorf("held %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Held{}, fmt.Errorf("held %s: %w", id, err)
	}
	return h, nil
}

// Release marks a held message released by decision d, and queues d's evidence record in the
// same transaction; ErrNotFound when unknown, ErrConflict when already released or deleted,
// ErrInvalid without who, why, when or the record.
func (s *SQLite) Release(ctx context.Context, id string, d Decision) error {
	return s.decide(ctx, "release", `released = 1`, id, d)
}

// Delete marks a held message deleted by decision d (the caller removes its bytes), and queues
// d's evidence record in the same transaction; errors as Release's.
func (s *SQLite) Delete(ctx context.Context, id string, d Decision) error {
	return s.decide(ctx, "delete", `deleted = 1`, id, d)
}

func (s *SQLite) decide(ctx context.Context, what, set, id string, d Decision) error {
	if err := checkDecision(d); err != nil {
		return fmt.Errorf("%s %s: %w", what, id, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback()
	var released, deleted bool
	err = tx.QueryRowContext(ctx, `SELECT released, deleted FROM held WHERE id = ?`, id).Scan(&released, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s %s: %w", what, id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if released || deleted {
		return fmt.Errorf("%s %s: already %s: %w", what, id, map[bool]string{true: "released", false: "deleted"}[released], ErrConflict)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE held SET `+set+`, decided_by = ?, decided_why = ?, decided_at = ? WHERE id = ?`,
		d.By, d.Why, stamp(d.At), id); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := queueEvidence(ctx, sqliteConn{tx}, d.Evidence); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := sqliteBump(ctx, tx, TopicHeld); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// capabilitiesRowOf selects the capabilities row of a normalised address ?1
// with AddressKey ?2: the one spelt exactly so, else the newest of the case
// variants.
const capabilitiesRowOf = `address_key = ?2 ORDER BY address = ?1 DESC, updated DESC, address LIMIT 1`

// capabilitiesQuery reads the capabilities of ?1 (normalized) by its key ?2.
const capabilitiesQuery = `SELECT address, smime_gcm, pgp_seipdv2, updated FROM capabilities WHERE ` + capabilitiesRowOf

// SetCapabilities records capabilities; an update older than the stored
// one is ignored, so replies processed out of order do not regress them.
func (s *SQLite) SetCapabilities(ctx context.Context, c Capabilities) error {
	addr, err := NormalizeAddress(c.Address)
	if err != nil {
		return err
	}
	// The update goes to the row Capabilities(addr) reads, so a reply from
	// another spelling of the address updates it rather than adding a row.
	// (WHERE true: SQLite needs it between INSERT … SELECT and ON CONFLICT.)
	_, err = s.db.ExecContext(ctx, `INSERT INTO capabilities (address, address_key, smime_gcm, pgp_seipdv2, updated)
		SELECT COALESCE((SELECT address FROM capabilities WHERE `+capabilitiesRowOf+`), ?1), ?2, ?3, ?4, ?5 WHERE true
		ON CONFLICT (address) DO UPDATE SET smime_gcm = excluded.smime_gcm,
			pgp_seipdv2 = excluded.pgp_seipdv2, updated = excluded.updated
		WHERE excluded.updated >= capabilities.updated`,
		addr, foldAddress(addr), b2i(c.SMIMEGCM), b2i(c.PGPSEIPDv2), stamp(c.Updated))
	if err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	return nil
}

// Capabilities returns what was recorded for address spelt exactly so,
// else the newest record of a case variant; the zero value and
// ErrNotFound when there is none.
func (s *SQLite) Capabilities(ctx context.Context, address string) (Capabilities, error) {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return Capabilities{}, err
	}
	var c Capabilities
	var at int64
	err = s.capabilities.QueryRowContext(ctx, addr, foldAddress(addr)).Scan(&c.Address, &c.SMIMEGCM, &c.PGPSEIPDv2, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Capabilities{}, fmt.Errorf("capabilities %s: %w", addr, ErrNotFound)
	}
	if err != nil {
		return Capabilities{}, fmt.Errorf("capabilities: %w", err)
	}
	c.Updated = unstamp(at)
	return c, nil
}
