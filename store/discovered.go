package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Where a customer's key came from: its trust tier. A key the customer registered (online
// banking, keys import, the bank's customer CA) always wins over one learned from a signed reply;
// keys discovered by WKD are kept apart, in discovered_keys, as a cache of what the customer's
// provider publishes.
const (
	SourceRegistered = "registered"
	SourceLearned    = "learned"
)

// validSource checks a RecipientKey's Source ("" is SourceRegistered).
func validSource(s string) (string, error) {
	switch s {
	case "", SourceRegistered:
		return SourceRegistered, nil
	case SourceLearned:
		return s, nil
	}
	return "", fmt.Errorf("%w: key source %q (want %s or %s)", ErrInvalid, s, SourceRegistered, SourceLearned)
}

// sourceOf is k's Source as stored: "" is SourceRegistered.
func sourceOf(k RecipientKey) string {
	s, _ := validSource(k.Source)
	return s
}

// Bounds of a DiscoveredKey.
const (
	maxDiscoveredAddress = 320 // RFC 5321's longest path
	maxDiscoveredReason  = 200
)

// DiscoveredKey is what a Web Key Directory lookup found for one address, shared by every node:
// a key (Data, the binary OpenPGP public key, with its Fingerprint), or none (Data empty; Reason
// says why: nothing published, or an answer refused), until Expires, when it is looked up again.
type DiscoveredKey struct {
	// Address is the caller's normalised form of the address, 1 to 320 bytes.
	Address     string
	Fingerprint string // empty when Data is
	Data        []byte // at most MaxRecipientKey bytes
	Reason      string // at most 200 bytes
	Fetched     time.Time
	Expires     time.Time
}

func checkDiscoveredKey(k DiscoveredKey) (string, error) {
	if k.Address == "" || len(k.Address) > maxDiscoveredAddress {
		return "", fmt.Errorf("%w: discovered key address of %d bytes (want 1 to %d)", ErrInvalid, len(k.Address), maxDiscoveredAddress)
	}
	if len(k.Data) > MaxRecipientKey || len(k.Reason) > maxDiscoveredReason {
		return "", fmt.Errorf("%w: discovered key of %d bytes, reason of %d (at most %d and %d)", ErrInvalid, len(k.Data), len(k.Reason), MaxRecipientKey, maxDiscoveredReason)
	}
	if (len(k.Data) == 0) != (k.Fingerprint == "") {
		return "", fmt.Errorf("%w: a discovered key has both data and a fingerprint, or neither", ErrInvalid)
	}
	if k.Fingerprint == "" {
		return "", nil
	}
	return checkKeyID(MethodPGP, k.Fingerprint)
}

// PutDiscoveredKey stores k, replacing what was stored for its address; ErrInvalid for bad
// bounds. Discovered keys are a cache: they are not exported (a new database looks them up again).
func (s *SQLite) PutDiscoveredKey(ctx context.Context, k DiscoveredKey) error {
	return putDiscoveredKey(ctx, s.sql(), k)
}

// PutDiscoveredKey is SQLite.PutDiscoveredKey on PostgreSQL.
func (p *Postgres) PutDiscoveredKey(ctx context.Context, k DiscoveredKey) error {
	return putDiscoveredKey(ctx, p.sql(), k)
}

// DiscoveredKey returns what is stored for address; ErrNotFound when nothing is.
func (s *SQLite) DiscoveredKey(ctx context.Context, address string) (DiscoveredKey, error) {
	return discoveredKey(ctx, s.sql(), address)
}

// DiscoveredKey is SQLite.DiscoveredKey on PostgreSQL.
func (p *Postgres) DiscoveredKey(ctx context.Context, address string) (DiscoveredKey, error) {
	return discoveredKey(ctx, p.sql(), address)
}

// DiscoveredKeys lists everything stored, by address.
func (s *SQLite) DiscoveredKeys(ctx context.Context) ([]DiscoveredKey, error) {
	return discoveredKeys(ctx, s.sql())
}

// DiscoveredKeys is SQLite.DiscoveredKeys on PostgreSQL.
func (p *Postgres) DiscoveredKeys(ctx context.Context) ([]DiscoveredKey, error) {
	return discoveredKeys(ctx, p.sql())
}

// RemoveDiscoveredKey deletes what is stored for address; ErrNotFound when nothing is.
func (s *SQLite) RemoveDiscoveredKey(ctx context.Context, address string) error {
	return removeDiscoveredKey(ctx, s.sql(), address)
}

// RemoveDiscoveredKey is SQLite.RemoveDiscoveredKey on PostgreSQL.
func (p *Postgres) RemoveDiscoveredKey(ctx context.Context, address string) error {
	return removeDiscoveredKey(ctx, p.sql(), address)
}

const discoveredKeyColumns = `address, fingerprint, data, reason, fetched, expires`

func scanDiscoveredKey(r scanner) (DiscoveredKey, error) {
	var k DiscoveredKey
	var fetched, expires int64
	if err := r.Scan(&k.Address, &k.Fingerprint, &k.Data, &k.Reason, &fetched, &expires); err != nil {
		return DiscoveredKey{}, err
	}
	k.Fetched, k.Expires = unstamp(fetched), unstamp(expires)
	if len(k.Data) == 0 {
		k.Data = nil
	}
	return k, nil
}

// The statements, written once for both databases (see sqlconn.go).

func putDiscoveredKey(ctx context.Context, db database, k DiscoveredKey) error {
	fp, err := checkDiscoveredKey(k)
	if err != nil {
		return err
	}
	err = db.write(ctx, "", func(c conn) (bool, error) {
		n, err := c.exec(ctx, `INSERT INTO discovered_keys (`+discoveredKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (address) DO UPDATE SET fingerprint = excluded.fingerprint, data = excluded.data,
				reason = excluded.reason, fetched = excluded.fetched, expires = excluded.expires`,
			k.Address, fp, nonNil(k.Data), k.Reason, stamp(k.Fetched), stamp(k.Expires))
		return n > 0, err
	})
	if err != nil {
		return fmt.Errorf("put discovered key: %w", err)
	}
	return nil
}

func discoveredKey(ctx context.Context, db database, address string) (DiscoveredKey, error) {
	k, err := scanDiscoveredKey(db.queryRow(ctx, `SELECT `+discoveredKeyColumns+` FROM discovered_keys WHERE address = $1`, address))
	if errors.Is(err, errNoRows) {
		return DiscoveredKey{}, fmt.Errorf("discovered key for %q: %w", address, ErrNotFound)
	}
	if err != nil {
		return DiscoveredKey{}, fmt.Errorf("discovered key: %w", err)
	}
	return k, nil
}

func discoveredKeys(ctx context.Context, db database) ([]DiscoveredKey, error) {
	out := []DiscoveredKey{}
	err := db.query(ctx, `SELECT `+discoveredKeyColumns+` FROM discovered_keys ORDER BY address`, nil, func(r scanner) error {
		k, err := scanDiscoveredKey(r)
		out = append(out, k)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("discovered keys: %w", err)
	}
	return out, nil
}

func removeDiscoveredKey(ctx context.Context, db database, address string) error {
	var found bool
	err := db.write(ctx, "", func(c conn) (bool, error) {
		n, err := c.exec(ctx, `DELETE FROM discovered_keys WHERE address = $1`, address)
		found = n > 0
		return found, err
	})
	if err != nil {
		return fmt.Errorf("remove discovered key: %w", err)
	}
	if !found {
		return fmt.Errorf("remove discovered key %q: %w", address, ErrNotFound)
	}
	return nil
}
