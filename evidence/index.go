package evidence

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sealpost/sealpost/store"
)

// IndexStore keeps the index of a chain's records by address (store.SQLite and store.Postgres).
type IndexStore interface {
	EvidenceIndexed(ctx context.Context, node string) (uint64, error)
	IndexEvidence(ctx context.Context, node string, next uint64, items []store.IndexedEvidence) error
	PruneEvidenceIndex(ctx context.Context, node string, before uint64) error
}

// indexBatch is how many records one IndexEvidence carries at most; indexQueue how many appended
// records wait for the indexer before it falls behind (and reads them from the chain instead).
const (
	indexBatch = 1000
	indexQueue = 65536
)

// An Indexer keeps a store's index by address of one node's chain up to date, off the mail's
// path: the log hands it each batch it made durable (Log's WithAppended), and it writes them to
// the store in one transaction a second. It starts from the store's mark, reading the chain for
// what was appended while no indexer ran, and reads it again whenever it fell behind. The index
// can always be rebuilt from the chain: nothing is lost when the indexer stops.
type Indexer struct {
	b       Backend
	st      IndexStore
	node    string
	summary func(*Record) string
	log     *slog.Logger

	ch     chan *Record
	behind atomic.Bool // records were dropped from ch: read the chain from the mark again

	next    uint64 // the first seq not yet indexed (Run's goroutine only)
	pending []store.IndexedEvidence
	marked  atomic.Uint64 // the store's mark as last written: what Indexed reports
}

// NewIndexer returns the indexer of node's chain b into st; summary gives the line the index keeps
// of each record (what the console shows).
func NewIndexer(b Backend, st IndexStore, node string, summary func(*Record) string, log *slog.Logger) *Indexer {
	return &Indexer{b: b, st: st, node: node, summary: summary, log: log, ch: make(chan *Record, indexQueue)}
}

// Appended is the log's WithAppended function: it hands recs (durable, in order) to the indexer
// and never waits; when the indexer is too far behind, it reads them from the chain later.
func (ix *Indexer) Appended(recs []*Record) {
	for _, r := range recs {
		select {
		case ix.ch <- r:
		default:
			ix.behind.Store(true)
			return
		}
	}
}

// Indexed is how many of the chain's records the store's index holds (its mark).
func (ix *Indexer) Indexed() uint64 { return ix.marked.Load() }

// Run indexes until ctx ends: first what the chain holds past the store's mark, then what the log
// appends, written every interval. A store that fails is tried again at the next interval.
func (ix *Indexer) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	caughtUp := false
	for {
		if !caughtUp || ix.behind.Load() {
			if err := ix.CatchUp(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				ix.log.Warn("evidence index: cannot read the chain into the store; trying again", "err", err.Error())
			} else {
				caughtUp = true
			}
		}
	drain:
		for len(ix.pending) < indexQueue {
			select {
			case r := <-ix.ch:
				ix.add(r)
			default:
				break drain
			}
		}
		if caughtUp {
			if err := ix.flush(ctx); err != nil && ctx.Err() == nil {
				ix.log.Warn("evidence index: cannot write to the store; trying again", "err", err.Error())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// CatchUp indexes what the chain holds from the store's mark on, and drops the index's rows of
// records whose segments were pruned. Records the log hands over meanwhile are kept for after it.
func (ix *Indexer) CatchUp(ctx context.Context) error {
	ix.behind.Store(false)
	mark, err := ix.st.EvidenceIndexed(ctx, ix.node)
	if err != nil {
		return err
	}
	if segs, err := ix.b.Segments(); err == nil && len(segs) > 0 && segs[0].First > 0 {
		if err := ix.st.PruneEvidenceIndex(ctx, ix.node, segs[0].First); err != nil {
			return err
		}
		mark = max(mark, segs[0].First)
	}
	ix.next, ix.pending = mark, ix.pending[:0]
	ix.marked.Store(mark)
	size := ix.b.Size()
	if mark >= size {
		return nil
	}
	err = ix.b.Scan(mark, func(pos Position, first uint64, line []byte) error {
		seq := first + uint64(pos.Line-1)
		if seq < ix.next || seq >= size {
			return nil
		}
		r, err := Decode(line)
		if err != nil {
			return fmt.Errorf("%s: %w (run sealpost evidence verify)", pos, err)
		}
		ix.add(r)
		if len(ix.pending) >= indexBatch {
			return ix.flush(ctx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return ix.flush(ctx)
}

// add queues r for the store unless it is indexed already; a record past the next one means some
// were dropped: the chain is read again.
func (ix *Indexer) add(r *Record) {
	switch {
	case r.Seq < ix.next:
		return
	case r.Seq > ix.next:
		ix.behind.Store(true)
		return
	}
	ix.next++
	it := store.IndexedEvidence{EvidenceEntry: store.EvidenceEntry{Node: ix.node, Seq: r.Seq, Time: r.Time, Kind: string(r.Kind),
		QueueID: r.QueueID(), Summary: clip(ix.summary(r), store.MaxIndexedSummary)}}
	if len(it.QueueID) > store.MaxIndexedQueueID || !printable(it.QueueID) {
		it.QueueID = ""
	}
	if it.Kind == "" || len(it.Kind) > store.MaxIndexedKind || !printable(it.Kind) {
		it.Kind = "unknown"
	}
	if it.Time.IsZero() {
		it.Time = time.Unix(0, 0)
	}
	for _, a := range r.Addresses() {
		if _, err := store.AddressKey(a); err == nil && len(it.Addresses) < store.MaxIndexedAddresses {
			it.Addresses = append(it.Addresses, a)
		}
	}
	// A record about nobody is not kept, but the mark passes it.
	if len(it.Addresses) > 0 {
		ix.pending = append(ix.pending, it)
	}
}

// flush writes what is pending, at most indexBatch records a transaction, and moves the mark.
func (ix *Indexer) flush(ctx context.Context) error {
	for {
		n := min(len(ix.pending), indexBatch)
		next := ix.next
		if n < len(ix.pending) {
			next = ix.pending[n].Seq
		}
		if next == ix.marked.Load() && n == 0 {
			return nil
		}
		if err := ix.st.IndexEvidence(ctx, ix.node, next, ix.pending[:n]); err != nil {
			return err
		}
		ix.marked.Store(next)
		ix.pending = ix.pending[n:]
		if len(ix.pending) == 0 {
			ix.pending = nil
			return nil
		}
	}
}

// printable reports whether s is printable ASCII.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// clip cuts s to at most n bytes, at a rune's start.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
