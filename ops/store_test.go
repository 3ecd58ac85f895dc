package ops

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestStoreReadinessAndGauge: while the store answers, /readyz is 200 and sealpost_store_up 1;
// while it fails or hangs, /readyz is 503 naming the store, the gauge is 0, and both answer
// within the ping's timeout; when it answers again both recover.
func TestStoreReadinessAndGauge(t *testing.T) {
	var state atomic.Int32 // 0 answers, 1 fails, 2 hangs until its context ends
	ping := func(ctx context.Context) error {
		switch state.Load() {
		case 1:
			return errors.New("connection refused")
		case 2:
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	m := NewMetrics()
	m.WatchStore(ping)
	m.WatchStore(ping) // a second call is a no-op, not a duplicate registration
	_, base := startServer(t, WithMetrics(m), WithReadiness("store", StoreAnswers(ping)))
	expect := func(code int, up float64) {
		t.Helper()
		start := time.Now()
		var r Readiness
		got, _, body := call(t, "GET", base+"/readyz", &r)
		if got != code || (code == 200) != (r.Checks["store"] == "ok") {
			t.Fatalf("/readyz: %d %s, want %d", got, body, code)
		}
		if code != 200 && !strings.Contains(r.Checks["store"], "store does not answer") {
			t.Fatalf("/readyz's store check: %q", r.Checks["store"])
		}
		if s := scrapeMetrics(t, base); s["sealpost_store_up"] != up {
			t.Fatalf("sealpost_store_up = %v, want %v", s["sealpost_store_up"], up)
		}
		if d := time.Since(start); d > 2*StorePingTimeout+time.Second {
			t.Fatalf("readiness and a scrape took %v with the store down", d)
		}
	}
	expect(200, 1)
	state.Store(1)
	expect(503, 0)
	state.Store(2)
	expect(503, 0)
	state.Store(0)
	expect(200, 1)
}

// TestReadPrivateFile: a secret file is read only when only its owner may read or write it.
func TestReadPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(path, []byte("postgres://sealpost@db/sealpost\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadPrivateFile(path, 1<<10); err != nil || string(b) != "postgres://sealpost@db/sealpost\n" {
		t.Fatalf("ReadPrivateFile(0600) = %q, %v", b, err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivateFile(path, 1<<10); !errors.Is(err, ErrNotPrivate) || errors.Is(err, ErrTokenFileMode) || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Fatalf("ReadPrivateFile(0640) = %v, want ErrNotPrivate with the chmod", err)
	}
	if _, err := ReadPrivateFile(filepath.Join(t.TempDir(), "none"), 1<<10); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadPrivateFile(missing) = %v", err)
	}
}

// TestMailboxGauges: the secure mailbox's waiting and read counts are read at each scrape, the
// expired counter adds up, and nothing is exported while the store does not answer.
func TestMailboxGauges(t *testing.T) {
	var waiting, read atomic.Int32
	var down atomic.Bool
	m := NewMetrics()
	counts := func(context.Context) (int, int, error) {
		if down.Load() {
			return 0, 0, errors.New("connection refused")
		}
		return int(waiting.Load()), int(read.Load()), nil
	}
	m.WatchMailbox(counts)
	m.WatchMailbox(counts)
	_, base := startServer(t, WithMetrics(m))
	waiting.Store(3)
	read.Store(1)
	m.MailboxExpired(2)
	s := scrapeMetrics(t, base)
	if s[`sealpost_mailbox_messages{state="waiting"}`] != 3 || s[`sealpost_mailbox_messages{state="read"}`] != 1 || s["sealpost_mailbox_expired_total"] != 2 {
		t.Fatalf("mailbox metrics: %v", s)
	}
	down.Store(true)
	if _, ok := scrapeMetrics(t, base)[`sealpost_mailbox_messages{state="waiting"}`]; ok {
		t.Fatal("a count exported while the store is down")
	}
}
