package evidence

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/tsa"
)

// clock is a test clock moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countingObserver counts what the log reports.
type countingObserver struct {
	appended, checkpoints, failures, prunedSegments atomic.Int64
	prunedRecords                                   atomic.Uint64
	made                                            chan uint64
}

func (o *countingObserver) EvidenceAppended(n int) { o.appended.Add(int64(n)) }
func (o *countingObserver) EvidenceCheckpoint(size uint64, _ time.Time) {
	o.checkpoints.Add(1)
	if o.made != nil {
		select {
		case o.made <- size:
		default:
		}
	}
}
func (o *countingObserver) EvidenceCheckpointFailed() { o.failures.Add(1) }
func (o *countingObserver) EvidencePruned(segments int, records uint64) {
	o.prunedSegments.Add(int64(segments))
	o.prunedRecords.Add(records)
}

// switchableTSA is the embedded TSA over HTTP on loopback, answering 503 while down, or holding
// each request until released while hung.
type switchableTSA struct {
	srv      *httptest.Server
	down     atomic.Bool
	hung     atomic.Bool
	release  chan struct{}
	requests atomic.Int64
}

func newSwitchableTSA(t *testing.T, a *tsa.Authority) (*switchableTSA, *tsa.Client) {
	s := &switchableTSA{release: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if s.hung.Load() {
			select {
			case <-s.release:
			case <-r.Context().Done():
				return
			}
		}
		if s.down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		a.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	c, err := tsa.NewClient([]string{s.srv.URL}, testBank(t).trust.TSARoots, tsa.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// TestRetentionPrunesWholeCheckpointedSegments: segments whose records a checkpoint older than
// the retention covers go, oldest first; every checkpoint stays; the rest verifies from where
// it begins; the segment being written and a segment still within the retention stay.
func TestRetentionPrunesWholeCheckpointedSegments(t *testing.T) {
	b := testBank(t)
	t0 := time.Now().UTC() // within the test certificates' validity
	c := &clock{t: t0}
	obs := &countingObserver{}
	fb, err := OpenFileBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	l, err := Open(fb, "node-a", b.signer, b.tsa, WithClock(c.now), WithSegmentRecords(10), WithObserver(obs),
		WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	// 45 records, a checkpoint every 10, a day apart: checkpoints at 10 (t0), 20 (t0+1d), 30
	// (t0+2d), 40 (t0+3d); segments begin at 0, 10, 20, 30, 40.
	for range 4 {
		fill(t, l, 10, 10)
		c.add(24 * time.Hour)
	}
	fill(t, l, 5, 0)
	segs, _ := fb.Segments()
	if len(segs) != 5 {
		t.Fatalf("segments %+v; want 5", segs)
	}
	var cpsBefore int
	_ = fb.Checkpoints(func([]byte) error { cpsBefore++; return nil })

	// Nothing covered before t0: nothing goes.
	if p, err := l.Prune(t0); err != nil || p.Segments != 0 {
		t.Fatalf("pruned %+v, %v; want nothing", p, err)
	}
	// Before t0+1d12h: the records below 20 were covered at t0 and t0+1d; segments 0 and 10 go.
	p, err := l.Prune(t0.Add(36 * time.Hour))
	if err != nil || p.Segments != 2 || p.Records != 20 || p.From != 20 {
		t.Fatalf("pruned %+v, %v; want segments 0 and 10", p, err)
	}
	if obs.prunedRecords.Load() != 20 {
		t.Errorf("observer told of %d pruned records; want 20", obs.prunedRecords.Load())
	}
	var cpsAfter int
	_ = fb.Checkpoints(func([]byte) error { cpsAfter++; return nil })
	if cpsAfter != cpsBefore {
		t.Errorf("%d checkpoints after pruning; want all %d kept", cpsAfter, cpsBefore)
	}
	rep, err := Verify(fb, b.trust)
	if err != nil || rep.Problem != nil || rep.From != 20 || rep.Records != 25 {
		t.Fatalf("after pruning: %+v (%v), %v", rep, rep.Problem, err)
	}
	// Far in the future: everything but the segment being written goes, and the log goes on.
	if p, err := l.Prune(c.now().Add(1000 * 24 * time.Hour)); err != nil || p.From != 40 {
		t.Fatalf("pruned %+v, %v; want all but the last segment", p, err)
	}
	fill(t, l, 3, 0)
	if _, err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, err = Verify(fb, b.trust)
	if err != nil || rep.Problem != nil || rep.From != 40 || rep.Records != 8 || rep.Verified != 48 {
		t.Fatalf("after pruning all but the last: %+v (%v), %v", rep, rep.Problem, err)
	}
}

// TestPruneStopsWhereNoCheckpointBeginsASegment: when the TSA failed at the checkpoint that began
// a segment, that segment's start has no checkpoint to verify from: pruning takes the segment
// before it only together with it, once a later boundary has one.
func TestPruneStopsWhereNoCheckpointBeginsASegment(t *testing.T) {
	b := testBank(t)
	c := &clock{t: time.Now().UTC()}
	fb, err := OpenFileBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	srv, client := newSwitchableTSA(t, b.tsa)
	l, err := Open(fb, "node-a", b.signer, client, WithClock(c.now), WithSegmentRecords(10),
		WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fill(t, l, 10, 10) // checkpoint at 10, segment 10 begins there
	fill(t, l, 10, 0)
	srv.down.Store(true)
	if _, err := l.Checkpoint(ctx); !errors.Is(err, ErrTSA) {
		t.Fatalf("checkpoint with the TSA down: %v; want ErrTSA", err)
	}
	srv.down.Store(false)
	fill(t, l, 2, 0)
	if _, err := l.Checkpoint(ctx); err != nil { // at 22: segment 20 has no checkpoint at its start
		t.Fatal(err)
	}
	segs, _ := fb.Segments()
	if len(segs) != 3 || segs[2].First != 20 {
		t.Fatalf("segments %+v; want ones at 0, 10, 20", segs)
	}
	later := c.now().Add(time.Hour)
	p, err := l.Prune(later)
	if err != nil || p.Segments != 1 || p.From != 10 {
		t.Fatalf("pruned %+v, %v; want only segment 0 (segment 20 begins at no checkpoint)", p, err)
	}
	fill(t, l, 10, 0)
	if _, err := l.Checkpoint(ctx); err != nil { // at 32, segment 32 begins
		t.Fatal(err)
	}
	if p, err = l.Prune(c.now().Add(time.Hour)); err != nil || p.Segments != 2 || p.From != 32 {
		t.Fatalf("pruned %+v, %v; want segments 10 and 20 together", p, err)
	}
	if rep, err := Verify(fb, b.trust); err != nil || rep.Problem != nil || rep.From != 32 {
		t.Fatalf("after pruning: %+v (%v), %v", rep, rep.Problem, err)
	}
}

// TestTSADownDelaysTheCheckpointNeverTheMail: while the TSA hangs, appends (the mail) go on at
// once; while it is down, Run's checkpoints fail, are counted and retried, and the first one after
// it is back covers every record.
func TestTSADownDelaysTheCheckpointNeverTheMail(t *testing.T) {
	b := testBank(t)
	fb, err := OpenFileBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	srv, client := newSwitchableTSA(t, b.tsa)
	obs := &countingObserver{made: make(chan uint64, 1)}
	l, err := Open(fb, "node-a", b.signer, client, WithObserver(obs), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fill(t, l, 5, 0)

	// A hung TSA: a checkpoint waits for it, appends do not.
	srv.hung.Store(true)
	cpDone := make(chan error, 1)
	go func() { _, err := l.Checkpoint(ctx); cpDone <- err }()
	for srv.requests.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	fill(t, l, 20, 0) // returns while the checkpoint is held at the TSA
	select {
	case err := <-cpDone:
		t.Fatalf("the checkpoint finished (%v) while its TSA was hung", err)
	default:
	}
	srv.hung.Store(false)
	close(srv.release)
	if err := <-cpDone; err != nil {
		t.Fatal(err)
	}
	if size := <-obs.made; size != 5 {
		t.Fatalf("the checkpoint held at the TSA covers %d records; want the 5 before it", size)
	}

	// A TSA that is down: Run retries every second and counts each failure.
	srv.down.Store(true)
	fill(t, l, 7, 0)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() { l.Run(runCtx, time.Second); close(done) }()
	for obs.failures.Load() < 2 {
		time.Sleep(20 * time.Millisecond)
	}
	srv.down.Store(false)
	select {
	case size := <-obs.made:
		if size != 32 {
			t.Errorf("the retried checkpoint covers %d records; want 32", size)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no checkpoint after the TSA came back")
	}
	stop()
	<-done
	rep, err := Verify(fb, b.trust)
	if err != nil || rep.Problem != nil || rep.Verified != 32 || rep.Checkpoints != 2 {
		t.Fatalf("after the TSA came back: %+v (%v), %v", rep, rep.Problem, err)
	}
}
