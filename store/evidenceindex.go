package store

import (
	"context"
	"fmt"
	"time"
)

// The evidence log's index by address: for each record about a customer (a message sent to them,
// its delivery outcomes, their replies, actions on their keys), which node's chain holds it, its
// seq, time, kind, queue ID and the line the console shows. The log stays the evidence; the index
// only finds records in it without reading the chain, and can be rebuilt from it (a node indexes
// its own chain, from the first record not yet indexed), so it is not exported. Its address
// column holds AddressKey, the store's rule for finding an address.

// schemaV11 (SQLite schema version 11) and pgSchemaV10 (PostgreSQL schema version 10) add it.
const schemaV11 = `CREATE TABLE evidence_index (
		address  BLOB NOT NULL,
		node     BLOB NOT NULL,
		seq      INTEGER NOT NULL,
		time     INTEGER NOT NULL,
		kind     TEXT NOT NULL,
		queue_id TEXT NOT NULL,
		summary  TEXT NOT NULL,
		PRIMARY KEY (address, node, seq)
	);
	CREATE INDEX evidence_index_newest ON evidence_index (address, time);
	CREATE INDEX evidence_index_seq ON evidence_index (node, seq);
	CREATE TABLE evidence_indexed (
		node BLOB PRIMARY KEY,
		next INTEGER NOT NULL
	);`

const pgSchemaV10 = `CREATE TABLE evidence_index (
		address  BYTEA NOT NULL,
		node     BYTEA NOT NULL,
		seq      BIGINT NOT NULL,
		time     BIGINT NOT NULL,
		kind     TEXT NOT NULL,
		queue_id TEXT NOT NULL,
		summary  TEXT NOT NULL,
		PRIMARY KEY (address, node, seq)
	);
	CREATE INDEX evidence_index_newest ON evidence_index (address, time);
	CREATE INDEX evidence_index_seq ON evidence_index (node, seq);
	CREATE TABLE evidence_indexed (
		node BYTEA PRIMARY KEY,
		next BIGINT NOT NULL
	);`

// Limits of the evidence index; an indexer keeps within the exported ones.
const (
	MaxIndexedAddresses = 1000  // of one record
	MaxIndexedSummary   = 2048  // bytes
	MaxIndexedKind      = 32    // bytes of printable ASCII
	MaxIndexedQueueID   = 128   // bytes of printable ASCII
	maxIndexBatch       = 10000 // records in one IndexEvidence
	maxEvidenceAbout    = 500   // rows EvidenceAbout returns at most
)

// EvidenceEntry is one record of a node's evidence chain as the index keeps it.
type EvidenceEntry struct {
	Node    string
	Seq     uint64
	Time    time.Time
	Kind    string // the record's kind (outbound, delivery, inbound, action)
	QueueID string // "" when the record has none
	Summary string // one line: what the record says (never a body, code or key)
}

// IndexedEvidence is an entry and the addresses it is about (kept by AddressKey, and found by it).
type IndexedEvidence struct {
	EvidenceEntry
	Addresses []string
}

func checkIndexedEvidence(node string, next uint64, items []IndexedEvidence) ([][]string, error) {
	if err := checkEvidenceNode(node); err != nil {
		return nil, err
	}
	if len(items) > maxIndexBatch {
		return nil, fmt.Errorf("%w: %d records to index at once (at most %d)", ErrInvalid, len(items), maxIndexBatch)
	}
	addrs := make([][]string, len(items))
	for i, it := range items {
		switch {
		case it.Node != node:
			return nil, fmt.Errorf("%w: record %d of node %q indexed as node %q's", ErrInvalid, it.Seq, it.Node, node)
		case it.Seq >= next:
			return nil, fmt.Errorf("%w: record %d indexed, but the index is said to end before %d", ErrInvalid, it.Seq, next)
		case it.Seq > 1<<62 || next > 1<<62:
			return nil, fmt.Errorf("%w: seq out of range", ErrInvalid)
		case it.Time.IsZero():
			return nil, fmt.Errorf("%w: record %d has no time", ErrInvalid, it.Seq)
		case !printableASCII(it.Kind, 1, MaxIndexedKind):
			return nil, fmt.Errorf("%w: record %d: kind %q", ErrInvalid, it.Seq, it.Kind)
		case !printableASCII(it.QueueID, 0, MaxIndexedQueueID):
			return nil, fmt.Errorf("%w: record %d: queue ID of %d bytes", ErrInvalid, it.Seq, len(it.QueueID))
		case len(it.Summary) > MaxIndexedSummary:
			return nil, fmt.Errorf("%w: record %d: summary of %d bytes (at most %d)", ErrInvalid, it.Seq, len(it.Summary), MaxIndexedSummary)
		case len(it.Addresses) > MaxIndexedAddresses:
			return nil, fmt.Errorf("%w: record %d: %d addresses (at most %d)", ErrInvalid, it.Seq, len(it.Addresses), MaxIndexedAddresses)
		}
		seen := map[string]bool{}
		for _, a := range it.Addresses {
			n, err := AddressKey(a)
			if err != nil {
				return nil, fmt.Errorf("%w: record %d: %v", ErrInvalid, it.Seq, err)
			}
			if !seen[n] {
				seen[n] = true
				addrs[i] = append(addrs[i], n)
			}
		}
	}
	return addrs, nil
}

func indexEvidence(ctx context.Context, db database, node string, next uint64, items []IndexedEvidence) error {
	addrs, err := checkIndexedEvidence(node, next, items)
	if err != nil {
		return err
	}
	return db.write(ctx, "", func(c conn) (bool, error) {
		for i, it := range items {
			for _, a := range addrs[i] {
				if _, err := c.exec(ctx, `INSERT INTO evidence_index (address, node, seq, time, kind, queue_id, summary)
					VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (address, node, seq) DO NOTHING`,
					[]byte(a), []byte(node), int64(it.Seq), stamp(it.Time), it.Kind, it.QueueID, it.Summary); err != nil {
					return false, fmt.Errorf("index evidence: %w", err)
				}
			}
		}
		// The mark only moves forward: an indexer that replays older records changes nothing.
		_, err := c.exec(ctx, `INSERT INTO evidence_indexed (node, next) VALUES ($1, $2)
			ON CONFLICT (node) DO UPDATE SET next = CASE WHEN evidence_indexed.next > excluded.next THEN evidence_indexed.next ELSE excluded.next END`,
			[]byte(node), int64(next))
		if err != nil {
			return false, fmt.Errorf("index evidence: %w", err)
		}
		return true, nil
	})
}

func evidenceIndexed(ctx context.Context, db database, node string) (uint64, error) {
	if err := checkEvidenceNode(node); err != nil {
		return 0, err
	}
	var next int64
	err := db.queryRow(ctx, `SELECT COALESCE(MAX(next), 0) FROM evidence_indexed WHERE node = $1`, []byte(node)).Scan(&next)
	if err != nil {
		return 0, fmt.Errorf("evidence indexed: %w", err)
	}
	return uint64(next), nil
}

func evidenceAbout(ctx context.Context, db database, addr string, limit int) ([]EvidenceEntry, error) {
	if limit < 1 || limit > maxEvidenceAbout {
		return nil, fmt.Errorf("%w: evidence limit %d (1 to %d)", ErrInvalid, limit, maxEvidenceAbout)
	}
	a, err := AddressKey(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	out := []EvidenceEntry{}
	err = db.query(ctx, `SELECT node, seq, time, kind, queue_id, summary FROM evidence_index WHERE address = $1
		ORDER BY time DESC, node DESC, seq DESC LIMIT $2`, []any{[]byte(a), limit}, func(r scanner) error {
		var e EvidenceEntry
		var node []byte
		var seq, at int64
		if err := r.Scan(&node, &seq, &at, &e.Kind, &e.QueueID, &e.Summary); err != nil {
			return err
		}
		e.Node, e.Seq, e.Time = string(node), uint64(seq), unstamp(at)
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("evidence about %s: %w", a, err)
	}
	return out, nil
}

func pruneEvidenceIndex(ctx context.Context, db database, node string, before uint64) error {
	if err := checkEvidenceNode(node); err != nil {
		return err
	}
	_, err := db.exec(ctx, `DELETE FROM evidence_index WHERE node = $1 AND seq < $2`, []byte(node), int64(before))
	if err != nil {
		return fmt.Errorf("prune evidence index: %w", err)
	}
	return nil
}

// IndexEvidence adds items — records of node's chain — to the index by address, each under each of
// its addresses, and records that node's records before next are indexed, in one transaction.
// What is indexed already stays as it is, and the mark never moves back.
func (s *SQLite) IndexEvidence(ctx context.Context, node string, next uint64, items []IndexedEvidence) error {
	return indexEvidence(ctx, s.sql(), node, next, items)
}

// IndexEvidence: see SQLite.IndexEvidence.
func (p *Postgres) IndexEvidence(ctx context.Context, node string, next uint64, items []IndexedEvidence) error {
	return indexEvidence(ctx, p.sql(), node, next, items)
}

// EvidenceIndexed is the seq of node's first record not yet indexed (0: none is).
func (s *SQLite) EvidenceIndexed(ctx context.Context, node string) (uint64, error) {
	return evidenceIndexed(ctx, s.sql(), node)
}

// EvidenceIndexed: see SQLite.EvidenceIndexed.
func (p *Postgres) EvidenceIndexed(ctx context.Context, node string) (uint64, error) {
	return evidenceIndexed(ctx, p.sql(), node)
}

// EvidenceAbout returns the newest indexed records about addr, of every node's chain, at most
// limit (1 to 500), newest first; none (and no error) for an address nothing is about.
func (s *SQLite) EvidenceAbout(ctx context.Context, addr string, limit int) ([]EvidenceEntry, error) {
	return evidenceAbout(ctx, s.sql(), addr, limit)
}

// EvidenceAbout: see SQLite.EvidenceAbout.
func (p *Postgres) EvidenceAbout(ctx context.Context, addr string, limit int) ([]EvidenceEntry, error) {
	return evidenceAbout(ctx, p.sql(), addr, limit)
}

// PruneEvidenceIndex removes the index's rows of node's records before before (their segments
// were pruned from the chain).
func (s *SQLite) PruneEvidenceIndex(ctx context.Context, node string, before uint64) error {
	return pruneEvidenceIndex(ctx, s.sql(), node, before)
}

// PruneEvidenceIndex: see SQLite.PruneEvidenceIndex.
func (p *Postgres) PruneEvidenceIndex(ctx context.Context, node string, before uint64) error {
	return pruneEvidenceIndex(ctx, p.sql(), node, before)
}
