package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Snapshot reads every row of the store in one transaction, each kind in
// the order the store keeps it (the order of insertion among equal times),
// for Export.
func (s *SQLite) Snapshot(ctx context.Context) (*Snapshot, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	defer tx.Rollback()
	snap := &Snapshot{}
	queries := []struct {
		q    string
		scan func(r *sql.Rows) error
	}{
		{`SELECT address, method, fingerprint, registered FROM registrations ORDER BY registered, rowid`, func(r *sql.Rows) error {
			var x Registration
			var at int64
			err := r.Scan(&x.Address, &x.Method, &x.Fingerprint, &at)
			x.Registered = unstamp(at)
			snap.Registrations = append(snap.Registrations, x)
			return err
		}},
		{`SELECT token, customer, method, fingerprint, created, subject FROM threads ORDER BY created, token`, func(r *sql.Rows) error {
			var x Thread
			var at int64
			err := r.Scan(&x.Token, &x.Customer, &x.Method, &x.Fingerprint, &at, &x.Subject)
			x.Created = unstamp(at)
			snap.Threads = append(snap.Threads, x)
			return err
		}},
		{`SELECT token, message_id, inbound, verdict, at FROM thread_messages ORDER BY at, rowid`, func(r *sql.Rows) error {
			var x ThreadMessage
			var at int64
			err := r.Scan(&x.Token, &x.MessageID, &x.Inbound, &x.Verdict, &at)
			x.At = unstamp(at)
			snap.Messages = append(snap.Messages, x)
			return err
		}},
		{`SELECT ` + heldColumns + ` FROM held ORDER BY received, id`, func(r *sql.Rows) error {
			h, err := scanHeld(r)
			snap.Held = append(snap.Held, h)
			return err
		}},
		{`SELECT address, smime_gcm, pgp_seipdv2, updated FROM capabilities ORDER BY updated, address`, func(r *sql.Rows) error {
			var x Capabilities
			var at int64
			err := r.Scan(&x.Address, &x.SMIMEGCM, &x.PGPSEIPDv2, &at)
			x.Updated = unstamp(at)
			snap.Capabilities = append(snap.Capabilities, x)
			return err
		}},
		{`SELECT ` + recipientKeyColumns + ` FROM recipient_keys ORDER BY method, fingerprint`, func(r *sql.Rows) error {
			k, err := scanRecipientKey(r)
			snap.RecipientKeys = append(snap.RecipientKeys, k)
			return err
		}},
		{`SELECT id, data FROM held_blobs ORDER BY id`, func(r *sql.Rows) error {
			var x HeldBlob
			err := r.Scan(&x.ID, &x.Data)
			x.Data = nonNil(x.Data)
			snap.HeldBlobs = append(snap.HeldBlobs, x)
			return err
		}},
	}
	for _, q := range queries {
		if err := sqliteRows(ctx, tx, q.q, q.scan); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
	}
	if err := snapshotAPI(ctx, sqliteConn{tx}, snap); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return snap, nil
}

func sqliteRows(ctx context.Context, tx *sql.Tx, q string, scan func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ImportSnapshot adds the rows of snap that the store does not hold (by
// their keys: address, method and fingerprint; token; Message-ID; held ID;
// address) in one transaction, keeping the stored ones as they are, and
// returns how many of each it added. Threads go in before their messages.
// Recipient keys are stored or their data replaced (keeping the stored
// Added); held bytes are stored when absent, and other bytes under a held
// ID the store holds are ErrConflict. The topics it wrote are bumped.
// API tokens, issued certificates, the CRL number, the audit log and
// mailbox items are added as importAPI says.
func (s *SQLite) ImportSnapshot(ctx context.Context, snap *Snapshot) (ImportCounts, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return ImportCounts{}, err
	}
	defer tx.Rollback()
	var n ImportCounts
	exec := func(count *int, q string, args ...any) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		added, err := res.RowsAffected()
		*count += int(added)
		return err
	}
	for _, r := range snap.Registrations {
		if err := exec(&n.Registrations, `INSERT INTO registrations (address, address_key, method, fingerprint, registered)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, r.Address, foldAddress(r.Address), r.Method, r.Fingerprint, r.Registered.UnixNano()); err != nil {
			return ImportCounts{}, fmt.Errorf("registration %q: %w", r.Address, err)
		}
	}
	for _, t := range snap.Threads {
		if err := exec(&n.Threads, `INSERT INTO threads (token, customer, method, fingerprint, created, subject)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, t.Token, t.Customer, t.Method, t.Fingerprint, t.Created.UnixNano(), t.Subject); err != nil {
			return ImportCounts{}, fmt.Errorf("thread %q: %w", t.Token, err)
		}
	}
	for _, m := range snap.Messages {
		if err := exec(&n.Messages, `INSERT INTO thread_messages (message_key, message_id, token, inbound, verdict, at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, messageIDKey(m.MessageID), m.MessageID, m.Token, b2i(m.Inbound), m.Verdict, m.At.UnixNano()); err != nil {
			return ImportCounts{}, fmt.Errorf("message %q: %w", m.MessageID, err)
		}
	}
	for _, h := range snap.Held {
		if err := exec(&n.Held, `INSERT INTO held (`+heldColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			h.ID, h.Received.UnixNano(), h.From, h.Reason, h.Verdict, h.Ref, b2i(h.Released), b2i(h.Delivered),
			b2i(h.Deleted), h.DecidedBy, h.DecidedWhy, decidedStamp(h.DecidedAt)); err != nil {
			return ImportCounts{}, fmt.Errorf("held %q: %w", h.ID, err)
		}
	}
	for _, c := range snap.Capabilities {
		if err := exec(&n.Capabilities, `INSERT INTO capabilities (address, address_key, smime_gcm, pgp_seipdv2, updated)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, c.Address, foldAddress(c.Address), b2i(c.SMIMEGCM), b2i(c.PGPSEIPDv2), c.Updated.UnixNano()); err != nil {
			return ImportCounts{}, fmt.Errorf("capabilities %q: %w", c.Address, err)
		}
	}
	for _, k := range snap.RecipientKeys {
		if err := exec(&n.RecipientKeys, `INSERT INTO recipient_keys (`+recipientKeyColumns+`) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (method, fingerprint) DO UPDATE SET data = excluded.data,
				source = CASE WHEN recipient_keys.source = 'registered' THEN 'registered' ELSE excluded.source END
			WHERE data != excluded.data OR (recipient_keys.source <> 'registered' AND excluded.source = 'registered')`,
			k.Method, k.Fingerprint, nonNil(k.Data), k.Added.UnixNano(), sourceOf(k)); err != nil {
			return ImportCounts{}, fmt.Errorf("recipient key %s %s: %w", k.Method, k.Fingerprint, err)
		}
	}
	if err := sqliteImportHeldBlobs(ctx, tx, snap.HeldBlobs, &n.HeldBlobs); err != nil {
		return ImportCounts{}, err
	}
	if err := importAPI(ctx, s.sql(), sqliteConn{tx}, snap, &n); err != nil {
		return ImportCounts{}, err
	}
	if err := bumpImported(n, func(topic string) error { return sqliteBump(ctx, tx, topic) }); err != nil {
		return ImportCounts{}, err
	}
	if err := tx.Commit(); err != nil {
		return ImportCounts{}, err
	}
	return n, nil
}

// bumpImported bumps, through bump, the topics of the rows an import wrote.
func bumpImported(n ImportCounts, bump func(topic string) error) error {
	for _, t := range []struct {
		topic string
		wrote bool
	}{
		{TopicRegistrations, n.Registrations > 0},
		{TopicDirectory, n.RecipientKeys > 0},
		{TopicHeld, n.Held > 0},
		{TopicTokens, n.APITokens > 0},
	} {
		if t.wrote {
			if err := bump(t.topic); err != nil {
				return err
			}
		}
	}
	return nil
}

// sqliteImportHeldBlobs stores the held bytes of blobs that tx lacks,
// counting them in added; other bytes under a stored ID are ErrConflict.
func sqliteImportHeldBlobs(ctx context.Context, tx *sql.Tx, blobs []HeldBlob, added *int) error {
	for _, hb := range blobs {
		stored, err := changedRows(tx.ExecContext(ctx, `INSERT INTO held_blobs (id, data) VALUES (?, ?) ON CONFLICT DO NOTHING`, hb.ID, nonNil(hb.Data)))
		if err != nil {
			return fmt.Errorf("held bytes %q: %w", hb.ID, err)
		}
		if stored {
			*added++
			continue
		}
		var same bool
		if err := tx.QueryRowContext(ctx, `SELECT data = ? FROM held_blobs WHERE id = ?`, nonNil(hb.Data), hb.ID).Scan(&same); err != nil {
			return fmt.Errorf("held bytes %q: %w", hb.ID, err)
		}
		if !same {
			return fmt.Errorf("held bytes %q: other bytes are stored under this ID: %w", hb.ID, ErrConflict)
		}
	}
	return nil
}
