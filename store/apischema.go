package store

// The schemas of the bank's API (tokens, idempotent calls, the audit log),
// its customer CA (issued certificates, the CRL number) and the secure
// mailbox. Strings from outside are BLOB in SQLite and bytea in PostgreSQL,
// which both compare and sort by their bytes; times are Unix nanoseconds,
// 0 for "not set" where a time is optional.

// schemaV5 (SQLite schema version 5) adds them to SQLite.
const schemaV5 = `CREATE TABLE api_tokens (
		id      TEXT PRIMARY KEY,
		name    BLOB NOT NULL,
		hash    BLOB NOT NULL UNIQUE,
		scopes  TEXT NOT NULL,
		created INTEGER NOT NULL,
		expires INTEGER NOT NULL,
		revoked INTEGER NOT NULL
	);
	CREATE TABLE idempotent_calls (
		token_id     TEXT NOT NULL,
		idem_key     TEXT NOT NULL,
		request_hash BLOB NOT NULL,
		status       INTEGER NOT NULL,
		content_type TEXT NOT NULL,
		body         BLOB NOT NULL,
		created      INTEGER NOT NULL,
		PRIMARY KEY (token_id, idem_key)
	);
	CREATE INDEX idempotent_calls_created ON idempotent_calls (created);
	CREATE TABLE audit_log (
		seq    INTEGER PRIMARY KEY AUTOINCREMENT,
		at     INTEGER NOT NULL,
		actor  BLOB NOT NULL,
		action BLOB NOT NULL,
		target BLOB NOT NULL,
		status INTEGER NOT NULL,
		detail BLOB NOT NULL,
		node   BLOB NOT NULL
	);
	CREATE INDEX audit_log_at ON audit_log (at);
	CREATE TABLE issued_certs (
		serial      TEXT PRIMARY KEY,
		address     BLOB NOT NULL,
		address_key BLOB NOT NULL,
		fingerprint TEXT NOT NULL,
		der         BLOB NOT NULL,
		not_before  INTEGER NOT NULL,
		not_after   INTEGER NOT NULL,
		issued      INTEGER NOT NULL,
		revoked     INTEGER NOT NULL,
		reason      INTEGER NOT NULL
	);
	CREATE INDEX issued_certs_address ON issued_certs (address_key, issued, serial);
	CREATE INDEX issued_certs_revoked ON issued_certs (revoked, serial) WHERE revoked <> 0;
	CREATE TABLE crl_number (
		id     INTEGER PRIMARY KEY CHECK (id = 1),
		number INTEGER NOT NULL
	);
	CREATE TABLE mailbox (
		id          TEXT PRIMARY KEY,
		address     BLOB NOT NULL,
		address_key BLOB NOT NULL,
		class       TEXT NOT NULL,
		received    INTEGER NOT NULL,
		expires     INTEGER NOT NULL,
		size        INTEGER NOT NULL,
		read_at     INTEGER NOT NULL,
		data        BLOB NOT NULL
	);
	CREATE INDEX mailbox_address ON mailbox (address_key, received, id);
	CREATE INDEX mailbox_expires ON mailbox (expires);`

// pgSchemaV4 (PostgreSQL schema version 4) is SQLite's schema version 5 in
// PostgreSQL's types; the audit log's Seq is an identity column.
const pgSchemaV4 = `CREATE TABLE api_tokens (
		id      TEXT COLLATE "C" PRIMARY KEY,
		name    BYTEA NOT NULL,
		hash    BYTEA NOT NULL UNIQUE,
		scopes  TEXT COLLATE "C" NOT NULL,
		created BIGINT NOT NULL,
		expires BIGINT NOT NULL,
		revoked BIGINT NOT NULL
	);
	CREATE TABLE idempotent_calls (
		token_id     TEXT COLLATE "C" NOT NULL,
		idem_key     TEXT COLLATE "C" NOT NULL,
		request_hash BYTEA NOT NULL,
		status       INTEGER NOT NULL,
		content_type TEXT COLLATE "C" NOT NULL,
		body         BYTEA NOT NULL,
		created      BIGINT NOT NULL,
		PRIMARY KEY (token_id, idem_key)
	);
	CREATE INDEX idempotent_calls_created ON idempotent_calls (created);
	CREATE TABLE audit_log (
		seq    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		at     BIGINT NOT NULL,
		actor  BYTEA NOT NULL,
		action BYTEA NOT NULL,
		target BYTEA NOT NULL,
		status INTEGER NOT NULL,
		detail BYTEA NOT NULL,
		node   BYTEA NOT NULL
	);
	CREATE INDEX audit_log_at ON audit_log (at);
	CREATE TABLE issued_certs (
		serial      TEXT COLLATE "C" PRIMARY KEY,
		address     BYTEA NOT NULL,
		address_key BYTEA NOT NULL,
		fingerprint TEXT COLLATE "C" NOT NULL,
		der         BYTEA NOT NULL,
		not_before  BIGINT NOT NULL,
		not_after   BIGINT NOT NULL,
		issued      BIGINT NOT NULL,
		revoked     BIGINT NOT NULL,
		reason      INTEGER NOT NULL
	);
	CREATE INDEX issued_certs_address ON issued_certs (address_key, issued, serial);
	CREATE INDEX issued_certs_revoked ON issued_certs (revoked, serial) WHERE revoked <> 0;
	CREATE TABLE crl_number (
		id     INTEGER PRIMARY KEY CHECK (id = 1),
		number BIGINT NOT NULL
	);
	CREATE TABLE mailbox (
		id          TEXT COLLATE "C" PRIMARY KEY,
		address     BYTEA NOT NULL,
		address_key BYTEA NOT NULL,
		class       TEXT COLLATE "C" NOT NULL,
		received    BIGINT NOT NULL,
		expires     BIGINT NOT NULL,
		size        BIGINT NOT NULL,
		read_at     BIGINT NOT NULL,
		data        BYTEA NOT NULL
	);
	CREATE INDEX mailbox_address ON mailbox (address_key, received, id);
	CREATE INDEX mailbox_expires ON mailbox (expires);`
