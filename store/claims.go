package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Released held messages are delivered to the desk by whichever node claims
// them first: a claim is an owner (a node) and the time it lapses, so that
// a message claimed by a node that died is claimed by another once the
// lease ends. Delivery is at least once: a node that delivered but died
// before MarkDelivered leaves the message to be claimed and delivered again.

func checkClaim(owner string, lease time.Duration, limit int) error {
	if owner == "" || lease <= 0 || limit <= 0 {
		return fmt.Errorf("%w: claim by %q for %v of %d messages (want an owner, a lease and a limit)", ErrInvalid, owner, lease, limit)
	}
	return nil
}

// ClaimReleased claims for owner, until now+lease, up to limit held messages
// that are released and not delivered, and either unclaimed, claimed by
// owner already, or whose claim lapsed; it returns them oldest first. Two
// claimers never get the same message while its lease runs. ErrInvalid
// without owner, lease or limit.
//
// The clock is this process's: SQLite is one node's, and its one write
// transaction serialises the claimers.
func (s *SQLite) ClaimReleased(ctx context.Context, owner string, lease time.Duration, limit int) ([]Held, error) {
	if err := checkClaim(owner, lease, limit); err != nil {
		return nil, err
	}
	now := time.Now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim released: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+heldColumns+` FROM held
		WHERE released = 1 AND delivered = 0 AND (claim_owner = '' OR claim_owner = ? OR claim_until <= ?)
		ORDER BY received, id LIMIT ?`, owner, now.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("claim released: %w", err)
	}
	out := []Held{}
	for rows.Next() {
		h, err := scanHeld(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim released: %w", err)
		}
		out = append(out, h)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("claim released: %w", err)
	}
	until := now.Add(lease).UnixNano()
	for _, h := range out {
		if _, err := tx.ExecContext(ctx, `UPDATE held SET claim_owner = ?, claim_until = ? WHERE id = ?`, owner, until, h.ID); err != nil {
			return nil, fmt.Errorf("claim released: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claim released: %w", err)
	}
	return out, nil
}

// MarkDelivered records that the released message id reached the desk and
// drops its claim; marking it again does nothing. ErrNotFound when id is
// unknown, ErrConflict when it is not released.
func (s *SQLite) MarkDelivered(ctx context.Context, id string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("mark delivered: %w", err)
	}
	defer tx.Rollback()
	var released bool
	err = tx.QueryRowContext(ctx, `SELECT released FROM held WHERE id = ?`, id).Scan(&released)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("mark delivered %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("mark delivered: %w", err)
	}
	if !released {
		return fmt.Errorf("mark delivered %s: not released: %w", id, ErrConflict)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE held SET delivered = 1, claim_owner = '', claim_until = 0 WHERE id = ?`, id); err != nil {
		return fmt.Errorf("mark delivered: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("mark delivered: %w", err)
	}
	return nil
}

// ClaimReleased claims for owner, until now+lease, up to limit held messages
// that are released and not delivered, and either unclaimed, claimed by
// owner already, or whose claim lapsed; it returns them oldest first. Two
// claimers never get the same message while its lease runs. ErrInvalid
// without owner, lease or limit.
//
// The clock is the database's (now()), one for every node, so that the
// nodes' clocks need not agree for leases to hold. FOR UPDATE SKIP LOCKED
// lets concurrent claimers take different messages instead of waiting, and
// re-checks the claim of a row another claimer committed meanwhile.
func (p *Postgres) ClaimReleased(ctx context.Context, owner string, lease time.Duration, limit int) ([]Held, error) {
	if err := checkClaim(owner, lease, limit); err != nil {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, `WITH c AS (
			SELECT id FROM held
			WHERE released AND NOT delivered AND (claim_until IS NULL OR claim_owner = $1 OR claim_until <= now())
			ORDER BY received, id LIMIT $3 FOR UPDATE SKIP LOCKED)
		UPDATE held SET claim_owner = $1, claim_until = now() + $2::float8 * interval '1 microsecond'
		FROM c WHERE held.id = c.id
		RETURNING `+heldReturning,
		b(owner), max(lease.Microseconds(), 1), limit)
	if err != nil {
		return nil, fmt.Errorf("claim released: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Held, error) { return pgScanHeld(row) })
	if err != nil {
		return nil, fmt.Errorf("claim released: %w", err)
	}
	// RETURNING has no order.
	sortHeld(out)
	return out, nil
}

// MarkDelivered records that the released message id reached the desk and
// drops its claim; marking it again does nothing. ErrNotFound when id is
// unknown, ErrConflict when it is not released.
func (p *Postgres) MarkDelivered(ctx context.Context, id string) error {
	tag, err := p.pool.Exec(ctx, `UPDATE held SET delivered = true, claim_owner = '', claim_until = NULL
		WHERE id = $1 AND released`, b(id))
	if err != nil {
		return fmt.Errorf("mark delivered: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM held WHERE id = $1)`, b(id)).Scan(&exists); err != nil {
		return fmt.Errorf("mark delivered: %w", err)
	}
	if !exists {
		return fmt.Errorf("mark delivered %s: %w", id, ErrNotFound)
	}
	return fmt.Errorf("mark delivered %s: not released: %w", id, ErrConflict)
}

// heldReturning is heldColumns of the held table in an UPDATE … FROM … RETURNING.
var heldReturning = "held." + strings.ReplaceAll(heldColumns, ", ", ", held.")

// sortHeld sorts held messages oldest first, as the stores list them.
func sortHeld(hs []Held) {
	slices.SortFunc(hs, func(x, y Held) int {
		return cmp.Or(x.Received.Compare(y.Received), strings.Compare(x.ID, y.ID))
	})
}
