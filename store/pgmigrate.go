package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// pgMigrations are the PostgreSQL schema's versions: pgMigrations[i] takes a
// database from version i to i+1, in one transaction that also records
// version i+1 in schema_migrations. Released migrations never change; a new
// one is appended. (PostgreSQL's versions are counted apart from SQLite's:
// the two schemas differ in types.)
var pgMigrations = []string{
	pgSchemaV1,
	pgSchemaV2HeldBlobs,
	pgSchemaV3,
	pgSchemaV4,
	pgSchemaV5,
	pgSchemaV6,
	pgSchemaV7,
	pgSchemaV8,
	pgSchemaV9,
	pgSchemaV10,
}

// pgSchemaVersion is the newest PostgreSQL schema this code knows.
var pgSchemaVersion = len(pgMigrations)

// pgSchemaV1 is SQLite's schema version 2 in PostgreSQL's types: strings from
// mail as bytea (see Postgres), an identity column where SQLite's order
// relies on rowid.
const pgSchemaV1 = `CREATE TABLE registrations (
		id          BIGINT GENERATED ALWAYS AS IDENTITY,
		address     BYTEA NOT NULL,
		address_key BYTEA NOT NULL,
		method      TEXT COLLATE "C" NOT NULL CHECK (method IN ('smime', 'pgp')),
		fingerprint TEXT COLLATE "C" NOT NULL,
		registered  BIGINT NOT NULL,
		PRIMARY KEY (address, method, fingerprint)
	);
	CREATE INDEX registrations_address_key ON registrations (address_key, method, fingerprint);
	CREATE TABLE threads (
		token       BYTEA PRIMARY KEY,
		customer    BYTEA NOT NULL,
		method      TEXT COLLATE "C" NOT NULL,
		fingerprint TEXT COLLATE "C" NOT NULL,
		created     BIGINT NOT NULL,
		subject     BYTEA NOT NULL
	);
	CREATE TABLE thread_messages (
		id          BIGINT GENERATED ALWAYS AS IDENTITY,
		message_key BYTEA PRIMARY KEY,
		message_id  BYTEA NOT NULL,
		token       BYTEA NOT NULL REFERENCES threads (token) ON DELETE CASCADE,
		inbound     BOOLEAN NOT NULL,
		verdict     BYTEA NOT NULL,
		at          BIGINT NOT NULL
	);
	CREATE INDEX thread_messages_token ON thread_messages (token, at, id);
	CREATE TABLE held (
		id       BYTEA PRIMARY KEY,
		received BIGINT NOT NULL,
		sender   BYTEA NOT NULL,
		reason   BYTEA NOT NULL,
		verdict  BYTEA NOT NULL,
		ref      BYTEA NOT NULL,
		released BOOLEAN NOT NULL DEFAULT false
	);
	CREATE INDEX held_received ON held (released, received, id);
	CREATE TABLE capabilities (
		address     BYTEA PRIMARY KEY,
		address_key BYTEA NOT NULL,
		smime_gcm   BOOLEAN NOT NULL,
		pgp_seipdv2 BOOLEAN NOT NULL,
		updated     BIGINT NOT NULL
	);
	CREATE INDEX capabilities_address_key ON capabilities (address_key);`

// pgSchemaV3 is SQLite's schema version 4: the shared recipient directory,
// the versions of what changed (Watch, with NOTIFY), and delivery claims on
// released held messages, whose lease ends at claim_until by the database's
// clock. Held bytes live in held_blobs here and a delivered message's are
// removed, so a released message without them was delivered already.
const pgSchemaV3 = `CREATE TABLE recipient_keys (
		method      TEXT COLLATE "C" NOT NULL CHECK (method IN ('smime', 'pgp')),
		fingerprint TEXT COLLATE "C" NOT NULL,
		data        BYTEA NOT NULL,
		added       BIGINT NOT NULL,
		PRIMARY KEY (method, fingerprint)
	);
	CREATE TABLE change_versions (
		topic   TEXT COLLATE "C" PRIMARY KEY,
		version BIGINT NOT NULL
	);
	ALTER TABLE held ADD COLUMN delivered BOOLEAN NOT NULL DEFAULT false,
		ADD COLUMN claim_owner BYTEA NOT NULL DEFAULT ''::bytea,
		ADD COLUMN claim_until TIMESTAMPTZ;
	UPDATE held SET delivered = true
		WHERE released AND NOT EXISTS (SELECT 1 FROM held_blobs WHERE held_blobs.id = held.id);
	CREATE INDEX held_claimable ON held (received, id) WHERE released AND NOT delivered;`

// migrationLock is the pg_advisory_lock key that serialises migrations
// across nodes ("sealpost" in ASCII, less its high bit).
const migrationLock int64 = 0x7365616c706f7374

// Migrate brings the schema up to pgSchemaVersion and returns the versions
// before and after. It holds a session advisory lock meanwhile, so that of
// several nodes starting together one migrates and the others wait and
// then find the schema current. A schema newer than this code knows is
// ErrSchemaTooNew, and is left alone.
func (p *Postgres) Migrate(ctx context.Context) (from, to int, err error) {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return 0, 0, fmt.Errorf("migrate: take the migration lock: %w", err)
	}
	defer func() {
		// Unlocking fails only with the connection, which drops the lock.
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock); uerr != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY,
			applied TIMESTAMPTZ NOT NULL DEFAULT now()
		)`); err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&from); err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	if from > pgSchemaVersion {
		return from, from, fmt.Errorf("open store: %w: database has schema version %d, this sealpost knows up to %d; upgrade sealpost", ErrSchemaTooNew, from, pgSchemaVersion)
	}
	for v := from; v < pgSchemaVersion; v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, pgMigrations[v]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v+1)
			return err
		})
		if err != nil {
			return from, v, fmt.Errorf("migrate schema to version %d: %w", v+1, err)
		}
	}
	return from, pgSchemaVersion, nil
}

// SchemaVersion returns the schema version the database records (0 before
// the first migration).
func (p *Postgres) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := p.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) && pgErr.SQLState() == "42P01" { // undefined_table
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}
