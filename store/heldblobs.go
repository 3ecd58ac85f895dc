package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The held messages' bytes (quarantine.Blobs), kept next to their index so that every node
// sharing the store sees them: a reply held on one node is released and delivered from another.
// The quarantine seals them (AES-256-GCM under a key from the data directory) before they reach
// the store, which never holds that key, so a dump of the database holds no reply in clear.

// schemaV3HeldBlobs (SQLite schema version 3) adds the held messages' bytes.
const schemaV3HeldBlobs = `CREATE TABLE held_blobs (
		id   TEXT PRIMARY KEY,
		data BLOB NOT NULL
	)`

// pgSchemaV2HeldBlobs (PostgreSQL schema version 2) adds the held messages' bytes.
const pgSchemaV2HeldBlobs = `CREATE TABLE held_blobs (
		id   BYTEA PRIMARY KEY,
		data BYTEA NOT NULL
	)`

// PutHeld stores the bytes of the held message id (sealed by the caller), committed before it
// returns; ErrConflict when bytes are stored under id already.
func (s *SQLite) PutHeld(ctx context.Context, id string, data []byte) error {
	if id == "" {
		return fmt.Errorf("%w: empty held ID", ErrInvalid)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO held_blobs (id, data) VALUES (?, ?) ON CONFLICT DO NOTHING`, id, nonNil(data))
	if err != nil {
		return fmt.Errorf("put held %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("put held %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("put held %s: %w", id, ErrConflict)
	}
	return nil
}

// GetHeld returns the bytes stored under id (never nil); ErrNotFound when there are none.
func (s *SQLite) GetHeld(ctx context.Context, id string) ([]byte, error) {
	var data []byte
	err := s.db.QueryRowContext(ctx, `SELECT data FROM held_blobs WHERE id = ?`, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("held bytes %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("held bytes %s: %w", id, err)
	}
	return nonNil(data), nil
}

// RemoveHeld deletes the bytes stored under id; removing what is not there is not an error.
func (s *SQLite) RemoveHeld(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM held_blobs WHERE id = ?`, id); err != nil {
		return fmt.Errorf("remove held %s: %w", id, err)
	}
	return nil
}

// PutHeld stores the bytes of the held message id (sealed by the caller), committed before it
// returns; ErrConflict when bytes are stored under id already.
func (p *Postgres) PutHeld(ctx context.Context, id string, data []byte) error {
	if id == "" {
		return fmt.Errorf("%w: empty held ID", ErrInvalid)
	}
	tag, err := p.pool.Exec(ctx, `INSERT INTO held_blobs (id, data) VALUES ($1, $2) ON CONFLICT DO NOTHING`, b(id), nonNil(data))
	if err != nil {
		return fmt.Errorf("put held %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("put held %s: %w", id, ErrConflict)
	}
	return nil
}

// GetHeld returns the bytes stored under id (never nil); ErrNotFound when there are none.
func (p *Postgres) GetHeld(ctx context.Context, id string) ([]byte, error) {
	var data []byte
	err := p.pool.QueryRow(ctx, `SELECT data FROM held_blobs WHERE id = $1`, b(id)).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("held bytes %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("held bytes %s: %w", id, err)
	}
	return nonNil(data), nil
}

// RemoveHeld deletes the bytes stored under id; removing what is not there is not an error.
func (p *Postgres) RemoveHeld(ctx context.Context, id string) error {
	if _, err := p.pool.Exec(ctx, `DELETE FROM held_blobs WHERE id = $1`, b(id)); err != nil {
		return fmt.Errorf("remove held %s: %w", id, err)
	}
	return nil
}

// nonNil is data, or no bytes for nil: a nil slice is NULL to the drivers (which the column
// refuses) and reads as "nothing" to callers.
func nonNil(data []byte) []byte {
	if data == nil {
		return []byte{}
	}
	return data
}
