package store

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// An operator's release or deletion of a held message is a Decision: who, why and when, kept on
// the held entry, and the evidence record of it, queued in the same transaction in the evidence
// outbox. The running gateway appends what the outbox holds to its evidence log (tools that run
// beside it, such as `sealpost quarantine`, cannot write the log themselves: one process writes
// a chain), so that no decision is taken without its record.

// schemaV9 (SQLite schema version 9) and pgSchemaV8 (PostgreSQL schema version 8) add the
// decisions on held messages and the evidence outbox.
const schemaV9 = `ALTER TABLE held ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE held ADD COLUMN decided_by TEXT NOT NULL DEFAULT '';
	ALTER TABLE held ADD COLUMN decided_why TEXT NOT NULL DEFAULT '';
	ALTER TABLE held ADD COLUMN decided_at INTEGER NOT NULL DEFAULT 0;
	CREATE TABLE evidence_outbox (
		seq  INTEGER PRIMARY KEY AUTOINCREMENT,
		line BLOB NOT NULL,
		node TEXT NOT NULL DEFAULT ''
	);`

const pgSchemaV8 = `ALTER TABLE held ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT false;
	ALTER TABLE held ADD COLUMN decided_by BYTEA NOT NULL DEFAULT ''::bytea;
	ALTER TABLE held ADD COLUMN decided_why BYTEA NOT NULL DEFAULT ''::bytea;
	ALTER TABLE held ADD COLUMN decided_at BIGINT NOT NULL DEFAULT 0;
	CREATE TABLE evidence_outbox (
		seq  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		line BYTEA NOT NULL,
		node TEXT NOT NULL DEFAULT ''
	);`

// Decision is an operator's release or deletion of a held message.
type Decision struct {
	By  string    // who: the operator's name or account (1 to 200 printable characters)
	Why string    // why (1 to 2000 printable characters)
	At  time.Time // when (required)
	// Evidence is the record of the decision for the evidence log (opaque here), queued in the
	// same transaction; nil where the gateway keeps no evidence log.
	Evidence []byte
}

const maxDecisionBy, maxDecisionWhy = 200, 2000

// checkDecision refuses a decision without who, why, when or its evidence, or whose text is not
// one line of printable UTF-8.
func checkDecision(d Decision) error {
	text := func(name, v string, max int) error {
		if v == "" || len(v) > max || !utf8.ValidString(v) || strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			return fmt.Errorf("%w: decision %s must be 1 to %d printable characters on one line", ErrInvalid, name, max)
		}
		return nil
	}
	if err := text("by", d.By, maxDecisionBy); err != nil {
		return err
	}
	if err := text("reason", d.Why, maxDecisionWhy); err != nil {
		return err
	}
	if d.At.IsZero() {
		return fmt.Errorf("%w: decision without a time", ErrInvalid)
	}
	if d.Evidence != nil && (len(d.Evidence) == 0 || len(d.Evidence) > maxEvidenceLine) {
		return fmt.Errorf("%w: decision with an empty or oversized evidence record", ErrInvalid)
	}
	return nil
}

func queueEvidence(ctx context.Context, c conn, line []byte) error {
	return queueEvidenceFor(ctx, c, "", line)
}

// queueEvidenceFor queues line for node's gateway ("": any node's).
func queueEvidenceFor(ctx context.Context, c conn, node string, line []byte) error {
	if line == nil {
		return nil
	}
	if _, err := c.exec(ctx, `INSERT INTO evidence_outbox (line, node) VALUES ($1, $2)`, line, node); err != nil {
		return fmt.Errorf("queue evidence: %w", err)
	}
	return nil
}

// OutboxEntry is a line queued in the evidence outbox, for Node's gateway ("": any node's).
type OutboxEntry struct {
	Node string
	Line []byte
}

// checkOutboxEntry refuses an empty or oversized line, or a node name that is not printable ASCII.
func checkOutboxEntry(e OutboxEntry) error {
	if len(e.Line) == 0 || len(e.Line) > maxEvidenceLine {
		return fmt.Errorf("%w: an evidence record of %d bytes (1 to %d)", ErrInvalid, len(e.Line), maxEvidenceLine)
	}
	if len(e.Node) > 200 || strings.IndexFunc(e.Node, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		return fmt.Errorf("%w: evidence outbox node %q", ErrInvalid, e.Node)
	}
	return nil
}

// queueEntry queues e in the transaction of c.
func queueEntry(ctx context.Context, c conn, e OutboxEntry) error {
	if err := checkOutboxEntry(e); err != nil {
		return err
	}
	return queueEvidenceFor(ctx, c, e.Node, e.Line)
}

// evidenceOutboxTake hands up to limit queued lines, oldest first, to fn and removes them when fn
// returns nil, in one transaction; lock is appended to the select (PostgreSQL: rows another node
// is taking are skipped, not waited for).
func evidenceOutboxTake(ctx context.Context, db database, lock, node string, limit int, fn func(lines [][]byte) error) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("%w: take %d", ErrInvalid, limit)
	}
	var n int
	err := db.write(ctx, "", func(c conn) (bool, error) {
		var seqs []int64
		var lines [][]byte
		err := c.query(ctx, `SELECT seq, line FROM evidence_outbox WHERE node = '' OR node = $2 ORDER BY seq LIMIT $1`+lock, []any{limit, node}, func(r scanner) error {
			var seq int64
			var line []byte
			if err := r.Scan(&seq, &line); err != nil {
				return err
			}
			seqs, lines = append(seqs, seq), append(lines, line)
			return nil
		})
		if err != nil || len(lines) == 0 {
			return false, err
		}
		if err := fn(lines); err != nil {
			return false, err
		}
		for _, s := range seqs {
			if _, err := c.exec(ctx, `DELETE FROM evidence_outbox WHERE seq = $1`, s); err != nil {
				return false, err
			}
		}
		n = len(lines)
		return true, nil
	})
	if err != nil {
		return 0, fmt.Errorf("evidence outbox: %w", err)
	}
	return n, nil
}

// EvidenceOutboxTake hands up to limit records queued for node's gateway (or any node's),
// oldest first, to fn (which appends them to the evidence log) and removes them when it returns
// nil. A crash after fn and before the commit hands them again: a record may be appended twice,
// never lost.
func (s *SQLite) EvidenceOutboxTake(ctx context.Context, node string, limit int, fn func(lines [][]byte) error) (int, error) {
	return evidenceOutboxTake(ctx, s.sql(), "", node, limit, fn)
}

// EvidenceOutboxTake hands up to limit records queued for node's gateway (or any node's), oldest
// first, to fn and removes them when it returns nil; two nodes taking at once get different
// records.
func (p *Postgres) EvidenceOutboxTake(ctx context.Context, node string, limit int, fn func(lines [][]byte) error) (int, error) {
	return evidenceOutboxTake(ctx, p.sql(), " FOR UPDATE SKIP LOCKED", node, limit, fn)
}

// QueueEvidence queues an evidence record for node's gateway ("": any node's) to append to its
// log: a request only that node can carry out, such as renewing its chain's checkpoint.
func (s *SQLite) QueueEvidence(ctx context.Context, node string, line []byte) error {
	return s.sql().write(ctx, "", func(c conn) (bool, error) { return true, queueEntry(ctx, c, OutboxEntry{node, line}) })
}

// QueueEvidence queues an evidence record for node's gateway ("": any node's).
func (p *Postgres) QueueEvidence(ctx context.Context, node string, line []byte) error {
	return p.sql().write(ctx, "", func(c conn) (bool, error) { return true, queueEntry(ctx, c, OutboxEntry{node, line}) })
}

// bytesOrNil is s as bytes, nil when empty (an export leaves the field out).
func bytesOrNil(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}
