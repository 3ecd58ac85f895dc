package quarantine

import (
	"context"
	"path/filepath"
	"strings"
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
	if err := q.Release(ctx, id); err != nil {
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
