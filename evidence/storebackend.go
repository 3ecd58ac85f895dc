package evidence

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ChainStore keeps chains of records and checkpoints, one per node, in a database shared by
// several nodes (store.Postgres; store.SQLite too).
type ChainStore interface {
	EvidenceAppend(ctx context.Context, node string, first uint64, lines [][]byte) error
	EvidenceRange(ctx context.Context, node string) (first, size uint64, err error)
	EvidenceScan(ctx context.Context, node string, from uint64, fn func(seq uint64, line []byte) error) error
	EvidenceAppendCheckpoint(ctx context.Context, node string, line []byte) error
	EvidenceCheckpoints(ctx context.Context, node string, fn func(line []byte) error) error
	EvidenceStartSegment(ctx context.Context, node string, first uint64) error
	EvidenceSegments(ctx context.Context, node string) ([]uint64, error)
	EvidencePrune(ctx context.Context, node string, from, to uint64) error
}

// StoreBackend is node's chain in a ChainStore: a Backend whose appends are transactions (all of
// a batch or none), so no tail is ever torn.
type StoreBackend struct {
	st      ChainStore
	node    string
	timeout time.Duration

	mu          sync.Mutex
	first, size uint64
}

// OpenStoreBackend opens node's chain in st.
func OpenStoreBackend(st ChainStore, node string) (*StoreBackend, error) {
	b := &StoreBackend{st: st, node: node, timeout: 30 * time.Second}
	ctx, cancel := b.ctx()
	defer cancel()
	first, size, err := st.EvidenceRange(ctx, node)
	if err != nil {
		return nil, err
	}
	b.first, b.size = first, size
	return b, nil
}

func (b *StoreBackend) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), b.timeout)
}

// Size implements Backend.
func (b *StoreBackend) Size() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size
}

// Append implements Backend: one transaction.
func (b *StoreBackend) Append(lines [][]byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ctx, cancel := b.ctx()
	defer cancel()
	if err := b.st.EvidenceAppend(ctx, b.node, b.size, lines); err != nil {
		return err
	}
	b.size += uint64(len(lines))
	return nil
}

// StartSegment implements Backend.
func (b *StoreBackend) StartSegment() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ctx, cancel := b.ctx()
	defer cancel()
	return b.st.EvidenceStartSegment(ctx, b.node, b.size)
}

func (b *StoreBackend) segmentName(first uint64) string {
	return fmt.Sprintf("%s/%020d", b.node, first)
}

// Segments implements Backend.
func (b *StoreBackend) Segments() ([]Segment, error) {
	ctx, cancel := b.ctx()
	defer cancel()
	firsts, err := b.st.EvidenceSegments(ctx, b.node)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	first := b.first
	b.mu.Unlock()
	out := []Segment{{Name: b.segmentName(first), First: first}}
	for _, f := range firsts {
		if f > first {
			out = append(out, Segment{Name: b.segmentName(f), First: f})
		}
	}
	return out, nil
}

// Scan implements Backend.
func (b *StoreBackend) Scan(from uint64, fn func(pos Position, first uint64, line []byte) error) error {
	segs, err := b.Segments()
	if err != nil {
		return err
	}
	start := segmentHolding(segs, from)
	i := start
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	return b.st.EvidenceScan(ctx, b.node, segs[start].First, func(seq uint64, line []byte) error {
		for i+1 < len(segs) && seq >= segs[i+1].First {
			i++
		}
		s := segs[i]
		return fn(Position{Segment: s.Name, Line: int(seq-s.First) + 1}, s.First, line)
	})
}

// Prune implements Backend.
func (b *StoreBackend) Prune(s Segment) error {
	segs, err := b.Segments()
	if err != nil {
		return err
	}
	for i, x := range segs {
		if x.First != s.First {
			continue
		}
		if i == len(segs)-1 {
			return errors.New("evidence: the last segment is never pruned")
		}
		if i != 0 {
			return errors.New("evidence: segments are pruned oldest first")
		}
		ctx, cancel := b.ctx()
		defer cancel()
		if err := b.st.EvidencePrune(ctx, b.node, x.First, segs[i+1].First); err != nil {
			return err
		}
		b.mu.Lock()
		b.first = segs[i+1].First
		b.mu.Unlock()
		return nil
	}
	return fmt.Errorf("evidence: no segment %s", s.Name)
}

// AppendCheckpoint implements Backend.
func (b *StoreBackend) AppendCheckpoint(line []byte) error {
	ctx, cancel := b.ctx()
	defer cancel()
	return b.st.EvidenceAppendCheckpoint(ctx, b.node, line)
}

// Checkpoints implements Backend.
func (b *StoreBackend) Checkpoints(fn func(line []byte) error) error {
	ctx, cancel := b.ctx()
	defer cancel()
	return b.st.EvidenceCheckpoints(ctx, b.node, fn)
}

// Close implements Backend; the store is the caller's to close.
func (b *StoreBackend) Close() error { return nil }
