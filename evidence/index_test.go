package evidence

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealpost/sealpost/store"
)

func openIndexStore(t *testing.T) *store.SQLite {
	t.Helper()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func summary(r *Record) string { return string(r.Kind) + " " + r.QueueID() }

// waitIndexed waits until ix's mark reaches n (the indexer runs in its own goroutine).
func waitIndexed(t *testing.T, ix *Indexer, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ix.Indexed() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("indexed %d of %d records", ix.Indexed(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIndexerFollowsTheChain: records a chain held before any indexer ran are read from it, those
// appended later come from the log, each once; an indexer that falls behind (records dropped)
// reads the chain again, and a new one starts from the store's mark without indexing twice;
// pruned segments' rows go.
func TestIndexerFollowsTheChain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openIndexStore(t)
	l, _ := openLog(t, dir, WithSegmentRecords(10))
	fill(t, l, 12, 6)
	if err := l.Append(ctx, &Record{Kind: KindDelivery, Delivery: &Delivery{QueueID: "q000003", Recipient: "C3@Example.com", Outcome: "delivered", Code: 250}}); err != nil {
		t.Fatal(err)
	}
	var ix *Indexer
	l2, fb2 := openLog(t, dir, WithSegmentRecords(10), WithAppended(func(r []*Record) { ix.Appended(r) }))
	ix = NewIndexer(fb2, st, "node-a", summary, discardLogger())
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); ix.Run(rctx, 5*time.Millisecond) }()
	for i := 12; i < 20; i++ {
		if err := l2.Append(ctx, outboundRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitIndexed(t, ix, 21)
	got, err := st.EvidenceAbout(ctx, "c3@example.com", 10)
	if err != nil || len(got) != 2 || got[0].Summary != "delivery q000003" || got[1].Summary != "outbound q000003" || got[1].Seq != 3 {
		t.Fatalf("c3's records: %+v, %v", got, err)
	}
	if got, _ := st.EvidenceAbout(ctx, "c19@example.com", 10); len(got) != 1 || got[0].Seq != 20 || got[0].Node != "node-a" || got[0].Kind != "outbound" {
		t.Fatalf("c19's records (appended while the indexer ran): %+v", got)
	}

	// Records handed over with a gap (some dropped) make the indexer read the chain again.
	for i := 20; i < 25; i++ {
		if err := l2.Append(ctx, outboundRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	ix.behind.Store(true)
	ix.Appended([]*Record{{Seq: 99, Kind: KindOutbound, Outbound: &Outbound{To: []string{"ghost@example.com"}}}})
	waitIndexed(t, ix, 26)
	for i := 0; i < 25; i++ {
		if got, _ := st.EvidenceAbout(ctx, fmt.Sprintf("c%d@example.com", i), 10); len(got) != 1+map[bool]int{true: 1}[i == 3] {
			t.Errorf("c%d's records after catching up: %+v", i, got)
		}
	}
	if got, _ := st.EvidenceAbout(ctx, "ghost@example.com", 10); len(got) != 0 {
		t.Errorf("a record the chain does not hold was indexed: %+v", got)
	}
	stop()
	<-done

	// A new indexer starts from the mark; pruned segments' rows go.
	segs, err := fb2.Segments()
	if err != nil || len(segs) < 2 {
		t.Fatalf("segments %+v, %v", segs, err)
	}
	if err := fb2.Prune(segs[0]); err != nil {
		t.Fatal(err)
	}
	ix2 := NewIndexer(fb2, st, "node-a", summary, discardLogger())
	if err := ix2.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if ix2.Indexed() != 26 {
		t.Fatalf("a new indexer's mark %d; want 26", ix2.Indexed())
	}
	if got, _ := st.EvidenceAbout(ctx, "c1@example.com", 10); len(got) != 0 {
		t.Errorf("a pruned record is still indexed: %+v", got)
	}
	if got, _ := st.EvidenceAbout(ctx, "c24@example.com", 10); len(got) != 1 {
		t.Errorf("c24's records after a new indexer: %+v", got)
	}
}
