package quarantine

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/logtest"
	"github.com/sealpost/sealpost/store"
)

// TestRunLogsThroughWithLogger: Run delivers a released message and says so on the logger given
// to Open, not on the default one.
func TestRunLogsThroughWithLogger(t *testing.T) {
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "sealpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log, logs := logtest.New()
	q, err := Open(filepath.Join(t.TempDir(), "quarantine"), st, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	id, err := q.Hold(ctx, heldMsg, store.Held{Received: time.Now(), Reason: "unsigned"})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Release(ctx, id, testDecision()); err != nil {
		t.Fatal(err)
	}
	delivered := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Run(ctx, time.Hour, func(_ context.Context, h store.Held, _ *Message) error { delivered <- h.ID; return nil })
	}()
	if got := <-delivered; got != id {
		t.Fatalf("Run delivered %s, want %s", got, id)
	}
	cancel()
	<-done
	if !strings.Contains(logs.String(), "released held messages delivered to the desk") || !strings.Contains(logs.String(), "count=1") {
		t.Fatalf("Run's log:\n%s", logs)
	}
}

// TestDeliverReleasedOnTwoNodesDeliversEachOnce: two quarantines on one index and byte store (two
// nodes sharing the store) deliver released messages at the same time; each message reaches a
// desk once, because each is claimed by one of them.
func TestDeliverReleasedOnTwoNodesDeliversEachOnce(t *testing.T) {
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "sealpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := filepath.Join(t.TempDir(), "quarantine")
	ctx := context.Background()
	var nodes [2]*Quarantine
	for i := range nodes {
		if nodes[i], err = Open(dir, st, WithOwner(fmt.Sprintf("node%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	const n = 30
	for range n {
		id, err := nodes[0].Hold(ctx, heldMsg, store.Held{Received: time.Now(), Reason: "unsigned"})
		if err != nil {
			t.Fatal(err)
		}
		if err := nodes[1].Release(ctx, id, testDecision()); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for _, q := range nodes {
		wg.Go(func() {
			_, err := q.DeliverReleased(ctx, func(_ context.Context, h store.Held, _ *Message) error {
				mu.Lock()
				got[h.ID]++
				mu.Unlock()
				time.Sleep(time.Millisecond) // a desk spool's fsync: the other node runs meanwhile
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(got) != n {
		t.Fatalf("delivered %d messages, want %d", len(got), n)
	}
	for id, c := range got {
		if c != 1 {
			t.Errorf("%s delivered %d times", id, c)
		}
	}
	list, err := st.HeldList(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range list {
		if !h.Delivered {
			t.Errorf("%s not marked delivered", h.ID)
		}
	}
}
