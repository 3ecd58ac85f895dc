package store

// schemaV7 (SQLite schema version 7) gives every recipient key its source
// (keys stored before are registered ones) and adds the cache of keys
// discovered by WKD (discovered.go).
const schemaV7 = `ALTER TABLE recipient_keys ADD COLUMN source TEXT NOT NULL DEFAULT 'registered'
		CHECK (source IN ('registered', 'learned'));
	CREATE TABLE discovered_keys (
		address     TEXT PRIMARY KEY,
		fingerprint TEXT NOT NULL,
		data        BLOB NOT NULL,
		reason      TEXT NOT NULL,
		fetched     INTEGER NOT NULL,
		expires     INTEGER NOT NULL
	);`

// pgSchemaV6 (PostgreSQL schema version 6) is SQLite's schema version 7 in
// PostgreSQL's types.
const pgSchemaV6 = `ALTER TABLE recipient_keys ADD COLUMN source TEXT COLLATE "C" NOT NULL DEFAULT 'registered'
		CHECK (source IN ('registered', 'learned'));
	CREATE TABLE discovered_keys (
		address     TEXT COLLATE "C" PRIMARY KEY,
		fingerprint TEXT COLLATE "C" NOT NULL,
		data        BYTEA NOT NULL,
		reason      TEXT NOT NULL,
		fetched     BIGINT NOT NULL,
		expires     BIGINT NOT NULL
	);`
