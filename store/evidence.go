package store

import (
	"context"
	"fmt"
)

// The evidence log's records and checkpoints, one chain per node (the evidence package's
// StoreBackend), written once for both databases. A record is kept as the exact bytes the chain
// hashes; nothing here reads them.

// schemaV8 (SQLite schema version 8) and pgSchemaV7 (PostgreSQL schema version 7) add the
// evidence log's tables.
const schemaV8 = `CREATE TABLE evidence_records (
		node BLOB NOT NULL,
		seq  INTEGER NOT NULL,
		line BLOB NOT NULL,
		PRIMARY KEY (node, seq)
	);
	CREATE TABLE evidence_checkpoints (
		node BLOB NOT NULL,
		n    INTEGER NOT NULL,
		line BLOB NOT NULL,
		PRIMARY KEY (node, n)
	);
	CREATE TABLE evidence_segments (
		node  BLOB NOT NULL,
		first INTEGER NOT NULL,
		PRIMARY KEY (node, first)
	);`

const pgSchemaV7 = `CREATE TABLE evidence_records (
		node BYTEA NOT NULL,
		seq  BIGINT NOT NULL,
		line BYTEA NOT NULL,
		PRIMARY KEY (node, seq)
	);
	CREATE TABLE evidence_checkpoints (
		node BYTEA NOT NULL,
		n    BIGINT NOT NULL,
		line BYTEA NOT NULL,
		PRIMARY KEY (node, n)
	);
	CREATE TABLE evidence_segments (
		node  BYTEA NOT NULL,
		first BIGINT NOT NULL,
		PRIMARY KEY (node, first)
	);`

// maxEvidenceLine bounds one record or checkpoint line.
const maxEvidenceLine = 1 << 20

func checkEvidenceNode(node string) error {
	if node == "" || len(node) > 64 {
		return fmt.Errorf("%w: evidence node name of %d bytes (want 1 to 64)", ErrInvalid, len(node))
	}
	return nil
}

func evidenceAppend(ctx context.Context, db database, node string, first uint64, lines [][]byte) error {
	if err := checkEvidenceNode(node); err != nil {
		return err
	}
	return db.write(ctx, "", func(c conn) (bool, error) {
		for i, l := range lines {
			if len(l) == 0 || len(l) > maxEvidenceLine {
				return false, fmt.Errorf("%w: evidence line of %d bytes", ErrInvalid, len(l))
			}
			n, err := c.exec(ctx, `INSERT INTO evidence_records (node, seq, line) VALUES ($1, $2, $3) ON CONFLICT (node, seq) DO NOTHING`,
				[]byte(node), int64(first)+int64(i), l)
			if err != nil {
				return false, fmt.Errorf("append evidence: %w", err)
			}
			if n == 0 {
				return false, fmt.Errorf("append evidence: record %d of %s exists (two nodes with one evidence.node?): %w", first+uint64(i), node, ErrConflict)
			}
		}
		return true, nil
	})
}

func evidenceRange(ctx context.Context, db database, node string) (first, size uint64, err error) {
	var lo, hi, n int64
	err = db.queryRow(ctx, `SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq) + 1, 0), COUNT(*) FROM evidence_records WHERE node = $1`, []byte(node)).Scan(&lo, &hi, &n)
	if err != nil {
		return 0, 0, fmt.Errorf("evidence range: %w", err)
	}
	if n != hi-lo {
		return 0, 0, fmt.Errorf("evidence range of %s: %d records from %d to %d: some are missing", node, n, lo, hi-1)
	}
	return uint64(lo), uint64(hi), nil
}

// evidenceScanBatch is how many records one query reads.
const evidenceScanBatch = 10000

func evidenceScan(ctx context.Context, db database, node string, from uint64, fn func(seq uint64, line []byte) error) error {
	next := int64(from)
	for {
		n := 0
		var ferr error
		err := db.query(ctx, `SELECT seq, line FROM evidence_records WHERE node = $1 AND seq >= $2 ORDER BY seq LIMIT $3`,
			[]any{[]byte(node), next, evidenceScanBatch}, func(r scanner) error {
				var seq int64
				var line []byte
				if err := r.Scan(&seq, &line); err != nil {
					return err
				}
				n++
				next = seq + 1
				if err := fn(uint64(seq), line); err != nil {
					ferr = err
					return err
				}
				return nil
			})
		if ferr != nil {
			return ferr
		}
		if err != nil {
			return fmt.Errorf("scan evidence: %w", err)
		}
		if n < evidenceScanBatch {
			return nil
		}
	}
}

func evidenceAppendCheckpoint(ctx context.Context, db database, node string, line []byte) error {
	if err := checkEvidenceNode(node); err != nil {
		return err
	}
	if len(line) == 0 || len(line) > maxEvidenceLine {
		return fmt.Errorf("%w: checkpoint line of %d bytes", ErrInvalid, len(line))
	}
	return db.write(ctx, "", func(c conn) (bool, error) {
		_, err := c.exec(ctx, `INSERT INTO evidence_checkpoints (node, n, line)
			VALUES ($1, (SELECT COALESCE(MAX(n), 0) + 1 FROM evidence_checkpoints WHERE node = $1), $2)`, []byte(node), line)
		return true, err
	})
}

func evidenceCheckpoints(ctx context.Context, db database, node string, fn func(line []byte) error) error {
	var lines [][]byte
	err := db.query(ctx, `SELECT line FROM evidence_checkpoints WHERE node = $1 ORDER BY n`, []any{[]byte(node)}, func(r scanner) error {
		var l []byte
		if err := r.Scan(&l); err != nil {
			return err
		}
		lines = append(lines, l)
		return nil
	})
	if err != nil {
		return fmt.Errorf("evidence checkpoints: %w", err)
	}
	for _, l := range lines {
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

func evidenceStartSegment(ctx context.Context, db database, node string, first uint64) error {
	_, err := db.exec(ctx, `INSERT INTO evidence_segments (node, first) VALUES ($1, $2) ON CONFLICT (node, first) DO NOTHING`, []byte(node), int64(first))
	return err
}

func evidenceSegments(ctx context.Context, db database, node string) ([]uint64, error) {
	var out []uint64
	err := db.query(ctx, `SELECT first FROM evidence_segments WHERE node = $1 ORDER BY first`, []any{[]byte(node)}, func(r scanner) error {
		var f int64
		err := r.Scan(&f)
		out = append(out, uint64(f))
		return err
	})
	return out, err
}

func evidencePrune(ctx context.Context, db database, node string, from, to uint64) error {
	return db.write(ctx, "", func(c conn) (bool, error) {
		if _, err := c.exec(ctx, `DELETE FROM evidence_records WHERE node = $1 AND seq >= $2 AND seq < $3`, []byte(node), int64(from), int64(to)); err != nil {
			return false, err
		}
		_, err := c.exec(ctx, `DELETE FROM evidence_segments WHERE node = $1 AND first = $2`, []byte(node), int64(from))
		return true, err
	})
}

// EvidenceAppend adds lines as records first, first+1… of node's chain, in one transaction;
// ErrConflict when one of those is taken.
func (s *SQLite) EvidenceAppend(ctx context.Context, node string, first uint64, lines [][]byte) error {
	return evidenceAppend(ctx, s.sql(), node, first, lines)
}

// EvidenceAppend adds lines as records first, first+1… of node's chain, in one transaction;
// ErrConflict when one of those is taken.
func (p *Postgres) EvidenceAppend(ctx context.Context, node string, first uint64, lines [][]byte) error {
	return evidenceAppend(ctx, p.sql(), node, first, lines)
}

// EvidenceRange is the first record kept of node's chain and its size (0, 0 when empty).
func (s *SQLite) EvidenceRange(ctx context.Context, node string) (first, size uint64, err error) {
	return evidenceRange(ctx, s.sql(), node)
}

// EvidenceRange is the first record kept of node's chain and its size (0, 0 when empty).
func (p *Postgres) EvidenceRange(ctx context.Context, node string) (first, size uint64, err error) {
	return evidenceRange(ctx, p.sql(), node)
}

// EvidenceScan calls fn with node's records from seq from on, in order.
func (s *SQLite) EvidenceScan(ctx context.Context, node string, from uint64, fn func(seq uint64, line []byte) error) error {
	return evidenceScan(ctx, s.sql(), node, from, fn)
}

// EvidenceScan calls fn with node's records from seq from on, in order.
func (p *Postgres) EvidenceScan(ctx context.Context, node string, from uint64, fn func(seq uint64, line []byte) error) error {
	return evidenceScan(ctx, p.sql(), node, from, fn)
}

// EvidenceAppendCheckpoint adds a checkpoint line to node's chain.
func (s *SQLite) EvidenceAppendCheckpoint(ctx context.Context, node string, line []byte) error {
	return evidenceAppendCheckpoint(ctx, s.sql(), node, line)
}

// EvidenceAppendCheckpoint adds a checkpoint line to node's chain.
func (p *Postgres) EvidenceAppendCheckpoint(ctx context.Context, node string, line []byte) error {
	return evidenceAppendCheckpoint(ctx, p.sql(), node, line)
}

// EvidenceCheckpoints calls fn with node's checkpoint lines, in the order added.
func (s *SQLite) EvidenceCheckpoints(ctx context.Context, node string, fn func(line []byte) error) error {
	return evidenceCheckpoints(ctx, s.sql(), node, fn)
}

// EvidenceCheckpoints calls fn with node's checkpoint lines, in the order added.
func (p *Postgres) EvidenceCheckpoints(ctx context.Context, node string, fn func(line []byte) error) error {
	return evidenceCheckpoints(ctx, p.sql(), node, fn)
}

// EvidenceStartSegment records that a segment of node's chain begins at first.
func (s *SQLite) EvidenceStartSegment(ctx context.Context, node string, first uint64) error {
	return evidenceStartSegment(ctx, s.sql(), node, first)
}

// EvidenceStartSegment records that a segment of node's chain begins at first.
func (p *Postgres) EvidenceStartSegment(ctx context.Context, node string, first uint64) error {
	return evidenceStartSegment(ctx, p.sql(), node, first)
}

// EvidenceSegments lists where node's segments begin (after the first), in order.
func (s *SQLite) EvidenceSegments(ctx context.Context, node string) ([]uint64, error) {
	return evidenceSegments(ctx, s.sql(), node)
}

// EvidenceSegments lists where node's segments begin (after the first), in order.
func (p *Postgres) EvidenceSegments(ctx context.Context, node string) ([]uint64, error) {
	return evidenceSegments(ctx, p.sql(), node)
}

// EvidencePrune removes node's records from seq from up to to (a whole segment).
func (s *SQLite) EvidencePrune(ctx context.Context, node string, from, to uint64) error {
	return evidencePrune(ctx, s.sql(), node, from, to)
}

// EvidencePrune removes node's records from seq from up to to (a whole segment).
func (p *Postgres) EvidencePrune(ctx context.Context, node string, from, to uint64) error {
	return evidencePrune(ctx, p.sql(), node, from, to)
}
