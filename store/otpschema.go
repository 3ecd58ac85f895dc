package store

// schemaV6 (SQLite schema version 6) adds one-time passcodes and call
// verifications (otp.go), and the per-address rows that serialise their
// rate limit.
const schemaV6 = `CREATE TABLE otp_codes (
		id            TEXT PRIMARY KEY,
		kind          TEXT NOT NULL,
		token_id      TEXT NOT NULL,
		purpose       TEXT NOT NULL,
		address_key   BLOB NOT NULL,
		digits        INTEGER NOT NULL,
		code_mac      BLOB NOT NULL,
		binding       BLOB NOT NULL,
		sealed        BLOB NOT NULL,
		created       INTEGER NOT NULL,
		expires       INTEGER NOT NULL,
		attempts_left INTEGER NOT NULL,
		used          INTEGER NOT NULL
	);
	CREATE INDEX otp_codes_address ON otp_codes (address_key, created);
	CREATE INDEX otp_codes_expires ON otp_codes (expires);
	CREATE TABLE otp_rate (
		address_key BLOB PRIMARY KEY
	);`

// pgSchemaV5 (PostgreSQL schema version 5) is SQLite's schema version 6 in
// PostgreSQL's types.
const pgSchemaV5 = `CREATE TABLE otp_codes (
		id            TEXT COLLATE "C" PRIMARY KEY,
		kind          TEXT COLLATE "C" NOT NULL,
		token_id      TEXT COLLATE "C" NOT NULL,
		purpose       TEXT COLLATE "C" NOT NULL,
		address_key   BYTEA NOT NULL,
		digits        INTEGER NOT NULL,
		code_mac      BYTEA NOT NULL,
		binding       BYTEA NOT NULL,
		sealed        BYTEA NOT NULL,
		created       BIGINT NOT NULL,
		expires       BIGINT NOT NULL,
		attempts_left INTEGER NOT NULL,
		used          BIGINT NOT NULL
	);
	CREATE INDEX otp_codes_address ON otp_codes (address_key, created);
	CREATE INDEX otp_codes_expires ON otp_codes (expires);
	CREATE TABLE otp_rate (
		address_key BYTEA PRIMARY KEY
	);`
