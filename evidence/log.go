package evidence

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/tsa"
)

// Observer is told what the log does (ops.Metrics implements it).
type Observer interface {
	EvidenceAppended(records int)
	EvidenceCheckpoint(size uint64, at time.Time)
	EvidenceCheckpointFailed()
	EvidencePruned(segments int, records uint64)
}

type nopObserver struct{}

func (nopObserver) EvidenceAppended(int)                 {}
func (nopObserver) EvidenceCheckpoint(uint64, time.Time) {}
func (nopObserver) EvidenceCheckpointFailed()            {}
func (nopObserver) EvidencePruned(int, uint64)           {}

// Log is one node's evidence chain over a Backend. Append is safe for concurrent use: concurrent
// appends share one write and one sync (group commit).
type Log struct {
	b     Backend
	node  string
	id    *keys.Identity
	ts    tsa.Timestamper
	now   func() time.Time
	log   *slog.Logger
	obs   Observer
	every int           // records between checkpoints, at most
	seg   int           // records per segment, at least
	keep  time.Duration // retention: Run prunes segments checkpointed longer ago (0: never)

	mu       sync.Mutex
	next     uint64   // seq of the next record
	prev     Hash     // leaf hash of record next-1
	front    Frontier // over records 0..next-1, durable or in the batch being written
	durable  Frontier // over the records the backend holds
	last     Hash     // leaf hash of the last durable record
	cur      *batch   // records waiting for the next write
	writing  bool
	lastCP   Checkpoint // the newest checkpoint (zero Frontier.Size 0 when none)
	cpHead   Head
	lastTok  []byte // the newest token over lastCP: its own, or its newest renewal's
	segStart uint64 // first seq of the current segment (as far as the log knows)

	paused bool       // a new segment is being started: appends wait
	resume *sync.Cond // on mu: paused ended, or writing did

	cpMu sync.Mutex // one checkpoint at a time

	appended func([]*Record) // told of each durable batch, in order (nil: nobody)
	writes   atomic.Uint64   // backend appends (each a write and a sync)
	gather   time.Duration   // how long the first appender waits for others before writing
}

type batch struct {
	recs   []*Record
	lines  [][]byte
	leaves []Hash
	done   chan struct{}
	err    error
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// Option configures a Log.
type Option func(*Log)

// WithClock sets the clock of records and checkpoints (tests).
func WithClock(now func() time.Time) Option { return func(l *Log) { l.now = now } }

// WithLogger sets the logger.
func WithLogger(lg *slog.Logger) Option { return func(l *Log) { l.log = lg } }

// WithObserver sets who is told of appends and checkpoints.
func WithObserver(o Observer) Option { return func(l *Log) { l.obs = o } }

// WithCheckpointRecords makes a checkpoint due after n records (default 10,000).
func WithCheckpointRecords(n int) Option { return func(l *Log) { l.every = n } }

// WithSegmentRecords starts a new segment at the first checkpoint after n records (default 100,000).
func WithSegmentRecords(n int) Option { return func(l *Log) { l.seg = n } }

// WithAppended makes the log call f with the records of each batch it made durable, in the
// chain's order, from the appender that wrote them: f must not wait (an Indexer's Appended).
func WithAppended(f func([]*Record)) Option { return func(l *Log) { l.appended = f } }

// WithGather makes the appender that finds no write under way wait d before writing, so that
// those who append in that moment share its write and sync (default 0: it writes at once; appends
// that come while a write is under way share the next one anyway).
func WithGather(d time.Duration) Option { return func(l *Log) { l.gather = d } }

// WithRetention makes Run prune, every hour, the segments whose records were all checkpointed
// longer than d ago (0, the default here: never).
func WithRetention(d time.Duration) Option { return func(l *Log) { l.keep = d } }

// Open reads the chain's state from b — the newest checkpoint, then every record after it — and
// returns the log that extends it. node names the chain; id signs its checkpoints and ts
// timestamps them.
func Open(b Backend, node string, id *keys.Identity, ts tsa.Timestamper, opts ...Option) (*Log, error) {
	if node == "" || id == nil || ts == nil {
		return nil, errors.New("evidence: a log needs a node name, a signer and a TSA")
	}
	l := &Log{b: b, node: node, id: id, ts: ts, now: time.Now, log: slog.Default(), obs: nopObserver{},
		every: 10000, seg: 100000, cur: newBatch()}
	l.resume = sync.NewCond(&l.mu)
	for _, o := range opts {
		o(l)
	}
	err := b.Checkpoints(func(line []byte) error {
		cp, err := decodeCheckpoint(line)
		if err != nil {
			return fmt.Errorf("evidence: checkpoints: %w", err)
		}
		if cp.Renewal {
			if cp.Text == l.lastCP.Text {
				l.lastTok = cp.Token
			}
			return nil
		}
		h, err := ParseHead(cp.Text)
		if err != nil {
			return err
		}
		l.lastCP, l.cpHead, l.lastTok = cp, h, cp.Token
		return nil
	})
	if err != nil {
		return nil, err
	}
	f := l.lastCP.Frontier.Clone()
	if l.lastCP.Text != "" && (f.Size != l.cpHead.Size || !f.valid() || f.Root() != l.cpHead.Root) {
		return nil, fmt.Errorf("evidence: the newest checkpoint's frontier does not give its signed root (size %d)", l.cpHead.Size)
	}
	prev := l.cpHead.Last
	next := l.cpHead.Size
	err = b.Scan(next, func(pos Position, first uint64, line []byte) error {
		// Lines of the checkpoint's segment before it are already in the frontier.
		if first+uint64(pos.Line-1) < next {
			return nil
		}
		r, err := Decode(line)
		if err != nil {
			return fmt.Errorf("evidence: %s: %w (run sealpost evidence verify)", pos, err)
		}
		if r.Seq != next || r.Prev != hex.EncodeToString(prev[:]) {
			return fmt.Errorf("evidence: %s: record %d does not continue the chain at %d (run sealpost evidence verify)", pos, r.Seq, next)
		}
		prev = LeafHash(line)
		f.Append(prev)
		next++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if next != b.Size() {
		return nil, fmt.Errorf("evidence: %d records read, the log holds %d", next, b.Size())
	}
	l.next, l.prev, l.last, l.front, l.durable = next, prev, prev, f.Clone(), f
	if segs, err := b.Segments(); err == nil && len(segs) > 0 {
		l.segStart = segs[len(segs)-1].First
	}
	return l, nil
}

// Writes is how many writes (each with its sync) the log has made of records: concurrent appends
// share one.
func (l *Log) Writes() uint64 { return l.writes.Load() }

// Node is the name of the log's chain.
func (l *Log) Node() string { return l.node }

// Size is the number of durable records.
func (l *Log) Size() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durable.Size
}

// Append adds recs to the chain (setting their Seq, Prev, Node and, when zero, Time) and returns
// when they are durable. An error means none of them is kept: the caller answers 451.
func (l *Log) Append(ctx context.Context, recs ...*Record) error {
	if len(recs) == 0 {
		return nil
	}
	l.mu.Lock()
	for l.paused {
		l.resume.Wait()
	}
	b := l.cur
	now := l.now()
	next, prev, front, n := l.next, l.prev, l.front.Clone(), len(b.lines)
	for _, r := range recs {
		r.Seq, r.Prev, r.Node = l.next, hex.EncodeToString(l.prev[:]), l.node
		if r.Time.IsZero() {
			r.Time = now
		}
		line, err := encode(r)
		if err != nil {
			l.next, l.prev, l.front, b.recs, b.lines, b.leaves = next, prev, front, b.recs[:n], b.lines[:n], b.leaves[:n]
			l.mu.Unlock()
			return fmt.Errorf("evidence: encode: %w", err)
		}
		l.prev = LeafHash(line)
		l.front.Append(l.prev)
		l.next++
		b.recs, b.lines, b.leaves = append(b.recs, r), append(b.lines, line), append(b.leaves, l.prev)
	}
	lead := !l.writing
	l.writing = true
	l.mu.Unlock()
	if lead {
		l.write()
	}
	<-b.done
	if b.err == nil {
		l.obs.EvidenceAppended(len(recs))
	}
	return b.err
}

// write writes batches until none waits: the first appender writes for those who came while it
// was writing.
func (l *Log) write() {
	if l.gather > 0 {
		time.Sleep(l.gather) // let the appenders of the next moments share this write
	}
	for {
		l.mu.Lock()
		b := l.cur
		if len(b.lines) == 0 {
			l.writing = false
			l.resume.Broadcast()
			l.mu.Unlock()
			return
		}
		l.cur = newBatch()
		l.mu.Unlock()
		err := l.b.Append(b.lines)
		l.writes.Add(1)
		l.mu.Lock()
		if err == nil {
			for _, h := range b.leaves {
				l.durable.Append(h)
			}
			l.last = b.leaves[len(b.leaves)-1]
		} else {
			// Nothing of b is kept, and the records waiting chain onto b's: they fail too, and
			// the chain goes on from what is durable.
			waiting := l.cur
			l.cur = newBatch()
			l.next, l.prev, l.front = l.durable.Size, l.last, l.durable.Clone()
			waiting.err = err
			close(waiting.done)
			l.log.Error("evidence log write failed: mail waits for it (451)", "err", err.Error())
		}
		l.mu.Unlock()
		if err == nil && l.appended != nil {
			l.appended(b.recs)
		}
		b.err = err
		close(b.done)
	}
}

// Due reports whether a checkpoint is due at now: records since the last one, and either every
// records or interval since it.
func (l *Log) Due(now time.Time, interval time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.durable.Size - l.cpHead.Size
	return n > 0 && (n >= uint64(l.every) || !now.Before(l.cpHead.Time.Add(interval)))
}

// Checkpoint signs, timestamps and keeps the head of the durable records, unless it is the newest
// checkpoint's already. When the current segment holds enough records, a new one begins exactly
// at the head (appends wait for the moment it takes), so that pruning the older segments leaves
// a checkpoint to verify the rest from.
func (l *Log) Checkpoint(ctx context.Context) (Head, error) {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	l.mu.Lock()
	if l.durable.Size-l.segStart >= uint64(l.seg) {
		l.paused = true
		for l.writing {
			l.resume.Wait()
		}
		if err := l.b.StartSegment(); err != nil {
			l.log.Warn("evidence: cannot start a new segment; the current one grows", "err", err.Error())
		} else {
			l.segStart = l.durable.Size
		}
		l.paused = false
		l.resume.Broadcast()
	}
	f, last, prevHead, made := l.durable.Clone(), l.last, l.cpHead, l.lastCP.Text != ""
	l.mu.Unlock()
	if made && f.Size == prevHead.Size {
		return prevHead, nil
	}
	h := Head{Node: l.node, Size: f.Size, Root: f.Root(), Last: last, Time: l.now().UTC()}
	cp, err := sign(ctx, h, f, l.id, l.ts)
	if err == nil {
		var line []byte
		if line, err = encodeCheckpoint(cp); err == nil {
			err = l.b.AppendCheckpoint(line)
		}
	}
	if err != nil {
		l.obs.EvidenceCheckpointFailed()
		return Head{}, err
	}
	l.mu.Lock()
	l.lastCP, l.cpHead, l.lastTok = cp, h, cp.Token
	l.mu.Unlock()
	l.obs.EvidenceCheckpoint(h.Size, h.Time)
	return h, nil
}

// Prune removes the segments whose records were all checkpointed before before (see Prune).
func (l *Log) Prune(before time.Time) (Pruned, error) {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	p, err := Prune(l.b, before)
	if p.Segments > 0 {
		l.obs.EvidencePruned(p.Segments, p.Records)
		l.log.Info("evidence: segments past retention pruned, their checkpoints kept",
			"segments", p.Segments, "records", p.Records, "first_kept", p.From)
	}
	return p, err
}

// pruneEvery is how often Run applies the retention.
const pruneEvery = time.Hour

// Run makes a checkpoint whenever one is due (every interval, or after the configured number
// of records), until ctx ends; a failure (the TSA down) is retried at the next tick. With a
// retention it prunes at start and every hour.
func (l *Log) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(min(interval, time.Second))
	defer tick.Stop()
	var pruned time.Time
	for {
		if l.keep > 0 && time.Since(pruned) >= pruneEvery {
			pruned = time.Now()
			if _, err := l.Prune(l.now().Add(-l.keep)); err != nil {
				l.log.Warn("evidence: pruning failed; tried again in an hour", "err", err.Error())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !l.Due(l.now(), interval) {
			continue
		}
		if _, err := l.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("evidence checkpoint failed; tried again", "err", err.Error())
		}
	}
}
