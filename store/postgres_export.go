package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Snapshot reads every row of the store in one read-only, repeatable-read
// transaction, each kind in the order the store keeps it, for Export.
func (p *Postgres) Snapshot(ctx context.Context) (*Snapshot, error) {
	snap := &Snapshot{}
	err := pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		queries := []struct {
			q    string
			scan func(r pgx.Rows) error
		}{
			{`SELECT address, method, fingerprint, registered FROM registrations ORDER BY registered, id`, func(r pgx.Rows) error {
				var x Registration
				var at int64
				err := r.Scan(bs{&x.Address}, &x.Method, &x.Fingerprint, &at)
				x.Registered = unstamp(at)
				snap.Registrations = append(snap.Registrations, x)
				return err
			}},
			// Threads have no identity column: tokens break ties of creation time.
			{`SELECT token, customer, method, fingerprint, created, subject FROM threads ORDER BY created, token`, func(r pgx.Rows) error {
				var x Thread
				var at int64
				err := r.Scan(bs{&x.Token}, bs{&x.Customer}, &x.Method, &x.Fingerprint, &at, bs{&x.Subject})
				x.Created = unstamp(at)
				snap.Threads = append(snap.Threads, x)
				return err
			}},
			{`SELECT token, message_id, inbound, verdict, at FROM thread_messages ORDER BY at, id`, func(r pgx.Rows) error {
				var x ThreadMessage
				var at int64
				err := r.Scan(bs{&x.Token}, bs{&x.MessageID}, &x.Inbound, bs{&x.Verdict}, &at)
				x.At = unstamp(at)
				snap.Messages = append(snap.Messages, x)
				return err
			}},
			{`SELECT ` + heldColumns + ` FROM held ORDER BY received, id`, func(r pgx.Rows) error {
				h, err := pgScanHeld(r)
				snap.Held = append(snap.Held, h)
				return err
			}},
			{`SELECT address, smime_gcm, pgp_seipdv2, updated FROM capabilities ORDER BY updated, address`, func(r pgx.Rows) error {
				var x Capabilities
				var at int64
				err := r.Scan(bs{&x.Address}, &x.SMIMEGCM, &x.PGPSEIPDv2, &at)
				x.Updated = unstamp(at)
				snap.Capabilities = append(snap.Capabilities, x)
				return err
			}},
			{`SELECT ` + recipientKeyColumns + ` FROM recipient_keys ORDER BY method, fingerprint`, func(r pgx.Rows) error {
				k, err := pgScanRecipientKey(r)
				snap.RecipientKeys = append(snap.RecipientKeys, k)
				return err
			}},
			{`SELECT id, data FROM held_blobs ORDER BY id`, func(r pgx.Rows) error {
				var x HeldBlob
				err := r.Scan(bs{&x.ID}, &x.Data)
				x.Data = nonNil(x.Data)
				snap.HeldBlobs = append(snap.HeldBlobs, x)
				return err
			}},
		}
		for _, q := range queries {
			rows, err := tx.Query(ctx, q.q)
			if err != nil {
				return err
			}
			for rows.Next() {
				if err := q.scan(rows); err != nil {
					rows.Close()
					return err
				}
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return snapshotAPI(ctx, pgConn{tx}, snap)
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return snap, nil
}

// ImportSnapshot adds the rows of snap that the store does not hold (by
// their keys, as SQLite's ImportSnapshot) in one transaction, keeping the
// stored ones as they are, and returns how many of each it added.
// Recipient keys are stored or their data replaced (keeping the stored
// Added); held bytes are stored when absent, and other bytes under a held
// ID the store holds are ErrConflict. The topics it wrote are bumped and
// notified.
// API tokens, issued certificates, the CRL number, the audit log and
// mailbox items are added as importAPI says.
func (p *Postgres) ImportSnapshot(ctx context.Context, snap *Snapshot) (ImportCounts, error) {
	var n ImportCounts
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		exec := func(count *int, what, q string, args ...any) error {
			tag, err := tx.Exec(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			*count += int(tag.RowsAffected())
			return nil
		}
		for _, r := range snap.Registrations {
			if err := exec(&n.Registrations, fmt.Sprintf("registration %q", r.Address), `INSERT INTO registrations (address, address_key, method, fingerprint, registered)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, b(r.Address), b(foldAddress(r.Address)), r.Method, r.Fingerprint, r.Registered.UnixNano()); err != nil {
				return err
			}
		}
		for _, t := range snap.Threads {
			if err := exec(&n.Threads, fmt.Sprintf("thread %q", t.Token), `INSERT INTO threads (token, customer, method, fingerprint, created, subject)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, b(t.Token), b(t.Customer), t.Method, t.Fingerprint, t.Created.UnixNano(), b(t.Subject)); err != nil {
				return err
			}
		}
		for _, m := range snap.Messages {
			if err := exec(&n.Messages, fmt.Sprintf("message %q", m.MessageID), `INSERT INTO thread_messages (message_key, message_id, token, inbound, verdict, at)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, b(messageIDKey(m.MessageID)), b(m.MessageID), b(m.Token), m.Inbound, b(m.Verdict), m.At.UnixNano()); err != nil {
				return err
			}
		}
		for _, h := range snap.Held {
			if err := exec(&n.Held, fmt.Sprintf("held %q", h.ID), `INSERT INTO held (`+heldColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING`,
				b(h.ID), h.Received.UnixNano(), b(h.From), b(h.Reason), b(h.Verdict), b(h.Ref), h.Released, h.Delivered,
				h.Deleted, b(h.DecidedBy), b(h.DecidedWhy), decidedStamp(h.DecidedAt)); err != nil {
				return err
			}
		}
		for _, c := range snap.Capabilities {
			if err := exec(&n.Capabilities, fmt.Sprintf("capabilities %q", c.Address), `INSERT INTO capabilities (address, address_key, smime_gcm, pgp_seipdv2, updated)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, b(c.Address), b(foldAddress(c.Address)), c.SMIMEGCM, c.PGPSEIPDv2, c.Updated.UnixNano()); err != nil {
				return err
			}
		}
		for _, k := range snap.RecipientKeys {
			if err := exec(&n.RecipientKeys, fmt.Sprintf("recipient key %s %s", k.Method, k.Fingerprint), `INSERT INTO recipient_keys (`+recipientKeyColumns+`)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (method, fingerprint) DO UPDATE SET data = excluded.data,
					source = CASE WHEN recipient_keys.source = 'registered' THEN 'registered' ELSE excluded.source END
				WHERE recipient_keys.data <> excluded.data OR (recipient_keys.source <> 'registered' AND excluded.source = 'registered')`,
				k.Method, k.Fingerprint, nonNil(k.Data), k.Added.UnixNano(), sourceOf(k)); err != nil {
				return err
			}
		}
		if err := pgImportHeldBlobs(ctx, tx, snap.HeldBlobs, &n.HeldBlobs); err != nil {
			return err
		}
		if err := importAPI(ctx, p.sql(), pgConn{tx}, snap, &n); err != nil {
			return err
		}
		return bumpImported(n, func(topic string) error { return pgBump(ctx, tx, topic) })
	})
	if err != nil {
		return ImportCounts{}, err
	}
	return n, nil
}

// pgImportHeldBlobs stores the held bytes of blobs that tx lacks, counting
// them in added; other bytes under a stored ID are ErrConflict.
func pgImportHeldBlobs(ctx context.Context, tx pgx.Tx, blobs []HeldBlob, added *int) error {
	for _, hb := range blobs {
		tag, err := tx.Exec(ctx, `INSERT INTO held_blobs (id, data) VALUES ($1, $2) ON CONFLICT DO NOTHING`, b(hb.ID), nonNil(hb.Data))
		if err != nil {
			return fmt.Errorf("held bytes %q: %w", hb.ID, err)
		}
		if tag.RowsAffected() == 1 {
			*added++
			continue
		}
		var same bool
		if err := tx.QueryRow(ctx, `SELECT data = $1 FROM held_blobs WHERE id = $2`, nonNil(hb.Data), b(hb.ID)).Scan(&same); err != nil {
			return fmt.Errorf("held bytes %q: %w", hb.ID, err)
		}
		if !same {
			return fmt.Errorf("held bytes %q: other bytes are stored under this ID: %w", hb.ID, ErrConflict)
		}
	}
	return nil
}
