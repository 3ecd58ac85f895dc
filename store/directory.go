package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The recipient directory: customers' certificates (and intermediates) and
// OpenPGP public keys, shared by every node so that a key imported on one
// is used by all (keys import and keys remove write here).

// MaxRecipientKey bounds RecipientKey.Data: a certificate chain or an
// armored public key with its signatures is far smaller.
const MaxRecipientKey = 256 << 10

// maxFingerprint bounds a fingerprint's hex digits (SHA-512's 128; the
// fingerprints in use have 40 or 64).
const maxFingerprint = 128

// RecipientKey is a customer's certificate (or an intermediate) or OpenPGP
// public key in the shared recipient directory.
type RecipientKey struct {
	// Method is MethodSMIME or MethodPGP.
	Method string
	// Fingerprint is stored as normalizeFingerprint gives it: upper-case
	// hex without separators, at most 128 digits.
	Fingerprint string
	// Data is what keys import reads: PEM certificate(s), or an armored
	// OpenPGP public key; non-empty, at most MaxRecipientKey bytes.
	Data []byte
	// Added is set by the store when the key is first stored, and kept when
	// its Data is replaced.
	Added time.Time
	// Source is SourceRegistered ("" when written) or SourceLearned. A
	// registered key stays registered: putting it again as learned changes
	// nothing, while registering a learned one makes it registered.
	Source string
}

// checkKeyID validates method and returns fingerprint normalised.
func checkKeyID(method, fingerprint string) (string, error) {
	if err := validMethod(method); err != nil {
		return "", err
	}
	fp, err := normalizeFingerprint(fingerprint)
	if err != nil {
		return "", err
	}
	if fp == "" || len(fp) > maxFingerprint {
		return "", fmt.Errorf("%w: fingerprint of %d hex digits (want 1 to %d)", ErrInvalid, len(fp), maxFingerprint)
	}
	return fp, nil
}

// checkRecipientKey validates k and returns its fingerprint normalised.
func checkRecipientKey(k RecipientKey) (string, error) {
	fp, err := checkKeyID(k.Method, k.Fingerprint)
	if err != nil {
		return "", err
	}
	if len(k.Data) == 0 || len(k.Data) > MaxRecipientKey {
		return "", fmt.Errorf("%w: recipient key of %d bytes (want 1 to %d)", ErrInvalid, len(k.Data), MaxRecipientKey)
	}
	if _, err := validSource(k.Source); err != nil {
		return "", err
	}
	return fp, nil
}

// PutRecipientKey stores k, or replaces the Data of the key stored under
// its method and fingerprint (keeping its Added); ErrInvalid for a bad
// method, fingerprint or size. Storing the same Data again changes nothing.
func (s *SQLite) PutRecipientKey(ctx context.Context, k RecipientKey) error {
	return putRecipientKey(ctx, s.sql(), k)
}

// PutRecipientKey is SQLite.PutRecipientKey on PostgreSQL.
func (p *Postgres) PutRecipientKey(ctx context.Context, k RecipientKey) error {
	return putRecipientKey(ctx, p.sql(), k)
}

// RecipientKey returns the key stored under method and fingerprint (in any
// spelling normalizeFingerprint accepts); ErrNotFound when there is none.
func (s *SQLite) RecipientKey(ctx context.Context, method, fingerprint string) (RecipientKey, error) {
	return recipientKey(ctx, s.sql(), method, fingerprint)
}

// RecipientKey is SQLite.RecipientKey on PostgreSQL.
func (p *Postgres) RecipientKey(ctx context.Context, method, fingerprint string) (RecipientKey, error) {
	return recipientKey(ctx, p.sql(), method, fingerprint)
}

// RecipientKeys lists every key of the directory, by method and then
// fingerprint; empty (and no error) when there are none.
func (s *SQLite) RecipientKeys(ctx context.Context) ([]RecipientKey, error) {
	return recipientKeys(ctx, s.sql())
}

// RecipientKeys is SQLite.RecipientKeys on PostgreSQL.
func (p *Postgres) RecipientKeys(ctx context.Context) ([]RecipientKey, error) {
	return recipientKeys(ctx, p.sql())
}

// RemoveRecipientKey deletes the key stored under method and fingerprint;
// ErrNotFound when there is none.
func (s *SQLite) RemoveRecipientKey(ctx context.Context, method, fingerprint string) error {
	return removeRecipientKey(ctx, s.sql(), method, fingerprint)
}

// RemoveRecipientKey is SQLite.RemoveRecipientKey on PostgreSQL.
func (p *Postgres) RemoveRecipientKey(ctx context.Context, method, fingerprint string) error {
	return removeRecipientKey(ctx, p.sql(), method, fingerprint)
}

// changedRows reports whether the statement that gave res changed a row.
func changedRows(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

const recipientKeyColumns = `method, fingerprint, data, added, source`

func scanRecipientKey(r scanner) (RecipientKey, error) {
	var k RecipientKey
	var at int64
	if err := r.Scan(&k.Method, &k.Fingerprint, &k.Data, &at, &k.Source); err != nil {
		return RecipientKey{}, err
	}
	k.Added = unstamp(at)
	return k, nil
}

// pgScanRecipientKey is scanRecipientKey for the PostgreSQL export's rows.
func pgScanRecipientKey(r pgx.Row) (RecipientKey, error) { return scanRecipientKey(r) }

// The recipient directory's statements, written once for both databases (see sqlconn.go): its
// method and fingerprint are TEXT in both, its data BLOB and bytea.

func putRecipientKey(ctx context.Context, db database, k RecipientKey) error {
	fp, err := checkRecipientKey(k)
	if err != nil {
		return err
	}
	err = db.write(ctx, TopicDirectory, func(c conn) (bool, error) {
		// A learned copy never demotes a registered key; a registered one promotes a learned key.
		n, err := c.exec(ctx, `INSERT INTO recipient_keys (method, fingerprint, data, added, source) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (method, fingerprint) DO UPDATE SET data = excluded.data,
				source = CASE WHEN recipient_keys.source = 'registered' THEN 'registered' ELSE excluded.source END
			WHERE recipient_keys.data <> excluded.data OR (recipient_keys.source <> 'registered' AND excluded.source = 'registered')`,
			k.Method, fp, k.Data, stamp(time.Time{}), sourceOf(k))
		return n > 0, err
	})
	if err != nil {
		return fmt.Errorf("put recipient key: %w", err)
	}
	return nil
}

func recipientKey(ctx context.Context, db database, method, fingerprint string) (RecipientKey, error) {
	fp, err := checkKeyID(method, fingerprint)
	if err != nil {
		return RecipientKey{}, err
	}
	k, err := scanRecipientKey(db.queryRow(ctx, `SELECT `+recipientKeyColumns+` FROM recipient_keys
		WHERE method = $1 AND fingerprint = $2`, method, fp))
	if errors.Is(err, errNoRows) {
		return RecipientKey{}, fmt.Errorf("recipient key %s %s: %w", method, fp, ErrNotFound)
	}
	if err != nil {
		return RecipientKey{}, fmt.Errorf("recipient key: %w", err)
	}
	return k, nil
}

func recipientKeys(ctx context.Context, db database) ([]RecipientKey, error) {
	out := []RecipientKey{}
	err := db.query(ctx, `SELECT `+recipientKeyColumns+` FROM recipient_keys ORDER BY method, fingerprint`, nil, func(r scanner) error {
		k, err := scanRecipientKey(r)
		out = append(out, k)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("recipient keys: %w", err)
	}
	return out, nil
}

func removeRecipientKey(ctx context.Context, db database, method, fingerprint string) error {
	fp, err := checkKeyID(method, fingerprint)
	if err != nil {
		return err
	}
	var found bool
	err = db.write(ctx, TopicDirectory, func(c conn) (bool, error) {
		n, err := c.exec(ctx, `DELETE FROM recipient_keys WHERE method = $1 AND fingerprint = $2`, method, fp)
		found = n > 0
		return found, err
	})
	if err != nil {
		return fmt.Errorf("remove recipient key: %w", err)
	}
	if !found {
		return fmt.Errorf("remove recipient key %s %s: %w", method, fp, ErrNotFound)
	}
	return nil
}
