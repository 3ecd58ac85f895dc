package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The audit log records every call of the bank's API and every CLI action
// on its objects: who, what, when, the result; never secrets or codes (the
// callers see to that).

// Limits of an audit record's fields, in bytes, and of one AuditLog read.
const (
	maxAuditActor  = 200
	maxAuditAction = 200
	maxAuditTarget = 320
	maxAuditDetail = 1000
	maxAuditNode   = 200
	maxAuditRead   = 10000
)

// lockAudit is the pg_advisory_xact_lock namespace of audit appends (after
// those of postgres.go): they commit in the order of their Seq, so that a
// reader following the log with AuditLog(after) never skips a record that
// commits later under a smaller Seq.
const lockAudit int32 = 3

// AuditRecord is one entry of the audit log.
type AuditRecord struct {
	// Seq is set by the store, increasing in the order records commit.
	Seq int64
	// At defaults to the current time when zero.
	At time.Time
	// Actor is who acted: "token:tok_…", "cli:USER", … (1 to 200 bytes).
	Actor string
	// Action is what was done, e.g. "PUT /v1/customers/{address}/keys" (the
	// route pattern; 1 to 200 bytes).
	Action string
	// Target is what it was done to, e.g. the customer's address; may be
	// empty (at most 320 bytes).
	Target string
	// Status is the HTTP status, or 0 for CLI actions.
	Status int
	// Detail is short and never holds secrets or codes (at most 1000 bytes).
	Detail string
	// Node is which node wrote the record (at most 200 bytes).
	Node string
}

func checkAudit(r AuditRecord) error {
	switch {
	case len(r.Actor) == 0 || len(r.Actor) > maxAuditActor:
		return fmt.Errorf("%w: audit actor of %d bytes (want 1 to %d)", ErrInvalid, len(r.Actor), maxAuditActor)
	case len(r.Action) == 0 || len(r.Action) > maxAuditAction:
		return fmt.Errorf("%w: audit action of %d bytes (want 1 to %d)", ErrInvalid, len(r.Action), maxAuditAction)
	case len(r.Target) > maxAuditTarget:
		return fmt.Errorf("%w: audit target of %d bytes (at most %d)", ErrInvalid, len(r.Target), maxAuditTarget)
	case len(r.Detail) > maxAuditDetail:
		return fmt.Errorf("%w: audit detail of %d bytes (at most %d)", ErrInvalid, len(r.Detail), maxAuditDetail)
	case len(r.Node) > maxAuditNode:
		return fmt.Errorf("%w: audit node of %d bytes (at most %d)", ErrInvalid, len(r.Node), maxAuditNode)
	case r.Status != 0 && (r.Status < minHTTPStatus || r.Status > maxHTTPStatus):
		return fmt.Errorf("%w: audit status %d (want 0 or an HTTP status)", ErrInvalid, r.Status)
	}
	return nil
}

const auditColumns = `seq, at, actor, action, target, status, detail, node`

func scanAudit(r scanner) (AuditRecord, error) {
	var a AuditRecord
	var at int64
	var actor, action, target, detail, node []byte
	if err := r.Scan(&a.Seq, &at, &actor, &action, &target, &a.Status, &detail, &node); err != nil {
		return AuditRecord{}, err
	}
	a.At = unstamp(at)
	a.Actor, a.Action, a.Target, a.Detail, a.Node = string(actor), string(action), string(target), string(detail), string(node)
	return a, nil
}

// insertAudit appends r in the transaction of c, which holds lockAudit, and
// returns its Seq.
func insertAudit(ctx context.Context, c conn, r AuditRecord) (int64, error) {
	var seq int64
	err := c.queryRow(ctx, `INSERT INTO audit_log (at, actor, action, target, status, detail, node)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq`,
		stamp(r.At), b(r.Actor), b(r.Action), b(r.Target), r.Status, b(r.Detail), b(r.Node)).Scan(&seq)
	return seq, err
}

func appendAudit(ctx context.Context, db database, r AuditRecord) (int64, error) {
	if err := checkAudit(r); err != nil {
		return 0, err
	}
	var seq int64
	err := db.write(ctx, "", func(c conn) (bool, error) {
		if err := db.serialize(ctx, c, lockAudit); err != nil {
			return false, err
		}
		var err error
		seq, err = insertAudit(ctx, c, r)
		return true, err
	})
	if err != nil {
		return 0, fmt.Errorf("append audit: %w", err)
	}
	return seq, nil
}

func auditLog(ctx context.Context, c conn, after int64, limit int) ([]AuditRecord, error) {
	if limit < 1 || limit > maxAuditRead {
		return nil, fmt.Errorf("%w: audit log limit %d (want 1 to %d)", ErrInvalid, limit, maxAuditRead)
	}
	return auditRows(ctx, c, `SELECT `+auditColumns+` FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
}

func auditRows(ctx context.Context, c conn, q string, args ...any) ([]AuditRecord, error) {
	out := []AuditRecord{}
	err := c.query(ctx, q, args, func(r scanner) error {
		a, err := scanAudit(r)
		out = append(out, a)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return out, nil
}

// importAudit appends, in the transaction of c, the records of rs that the
// log does not hold (a record with the same fields but Seq), in their
// order, under new Seqs: logs of several nodes merge, and importing again
// adds nothing.
func importAudit(ctx context.Context, db database, c conn, rs []AuditRecord, added *int) error {
	if len(rs) == 0 {
		return nil
	}
	if err := db.serialize(ctx, c, lockAudit); err != nil {
		return err
	}
	for _, r := range rs {
		var one int
		err := c.queryRow(ctx, `SELECT 1 FROM audit_log WHERE at = $1 AND actor = $2 AND action = $3 AND target = $4
			AND status = $5 AND detail = $6 AND node = $7`,
			r.At.UnixNano(), b(r.Actor), b(r.Action), b(r.Target), r.Status, b(r.Detail), b(r.Node)).Scan(&one)
		if err == nil {
			continue
		}
		if !errors.Is(err, errNoRows) {
			return fmt.Errorf("audit record %d: %w", r.Seq, err)
		}
		if _, err := insertAudit(ctx, c, r); err != nil {
			return fmt.Errorf("audit record %d: %w", r.Seq, err)
		}
		*added++
	}
	return nil
}

// AppendAudit appends r (its Seq ignored, At defaulting to now) and returns
// its Seq; ErrInvalid for fields out of their limits.
func (s *SQLite) AppendAudit(ctx context.Context, r AuditRecord) (int64, error) {
	return appendAudit(ctx, s.sql(), r)
}

// AppendAudit appends r (its Seq ignored, At defaulting to now) and returns
// its Seq; ErrInvalid for fields out of their limits. Appends of all nodes
// commit in the order of their Seq.
func (p *Postgres) AppendAudit(ctx context.Context, r AuditRecord) (int64, error) {
	return appendAudit(ctx, p.sql(), r)
}

// AuditLog returns up to limit (1 to 10000, else ErrInvalid) records with
// Seq > after, by Seq; empty when there are none.
func (s *SQLite) AuditLog(ctx context.Context, after int64, limit int) ([]AuditRecord, error) {
	return auditLog(ctx, s.sql(), after, limit)
}

// AuditLog returns up to limit (1 to 10000, else ErrInvalid) records with
// Seq > after, by Seq; empty when there are none.
func (p *Postgres) AuditLog(ctx context.Context, after int64, limit int) ([]AuditRecord, error) {
	return auditLog(ctx, p.sql(), after, limit)
}
