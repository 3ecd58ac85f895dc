package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

// testClock is a clock a test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestCache is a cache on a fresh SQLite store, asking w.
func newTestCache(t testing.TB, w *wkdServer, edit func(*CacheConfig)) (*Cache, *store.SQLite, *testClock) {
	t.Helper()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "sealpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := DefaultCacheConfig()
	cfg.Enabled = true
	if edit != nil {
		edit(&cfg)
	}
	clock := &testClock{now: time.Now()}
	c, err := NewCache(cfg, w.client(t, 5*time.Second, w.roots), st, WithCacheClock(clock.Now), WithCacheLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return c, st, clock
}

// requests counts what the server was asked for addr's path.
func (w *wkdServer) requests() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queries)
}

// TestCacheKeepsAnswers: a key found is stored and used without asking again; "none" is kept as
// an absence for absent_ttl; a denied domain is never asked.
func TestCacheKeepsAnswers(t *testing.T) {
	w := newWKDServer(t)
	e := devKey(t, "carol@example.com")
	adv, _ := wkdPaths(t, "carol@example.com")
	w.serve(adv, binaryKey(t, e))
	c, st, clock := newTestCache(t, w, nil)
	ctx := context.Background()
	for range 2 {
		got, err := c.Discover(ctx, "carol@example.com")
		if err != nil || keys.PGPFingerprint(got) != keys.PGPFingerprint(e) {
			t.Fatalf("Discover = %v, %v", got, err)
		}
	}
	if n := w.requests(); n != 1 {
		t.Errorf("%d requests for two lookups; want 1", n)
	}
	if k, err := st.DiscoveredKey(ctx, "carol@example.com"); err != nil || k.Fingerprint != keys.PGPFingerprint(e) {
		t.Errorf("stored %+v, %v", k, err)
	}
	var absent *AbsentError
	if _, err := c.Discover(ctx, "nobody@example.com"); !errors.Is(err, ErrWKDNotFound) {
		t.Fatalf("first lookup of nobody: %v", err)
	}
	if _, err := c.Discover(ctx, "nobody@example.com"); !errors.As(err, &absent) || !strings.Contains(absent.Reason, "no key published") {
		t.Fatalf("second lookup of nobody: %v; want the cached absence", err)
	}
	before := w.requests()
	clock.add(61 * time.Minute)
	c.Discover(ctx, "nobody@example.com")
	if w.requests() == before {
		t.Error("an absence older than absent_ttl was not looked up again")
	}

	denied, _, _ := newTestCache(t, w, func(c *CacheConfig) { c.Deny = []string{"Example.com"} })
	if _, err := denied.Discover(ctx, "carol@example.com"); !errors.Is(err, ErrDomainNotAsked) {
		t.Errorf("a denied domain: %v", err)
	}
	allowed, _, _ := newTestCache(t, w, func(c *CacheConfig) { c.Allow = []string{"other.example"} })
	if _, err := allowed.Discover(ctx, "carol@example.com"); !errors.Is(err, ErrDomainNotAsked) {
		t.Errorf("a domain not allowed: %v", err)
	}
}

// TestCacheBudget: a lookup slower than the budget gives keys.ErrLookupPending at once and goes
// on; the retry finds its answer stored.
func TestCacheBudget(t *testing.T) {
	w := newWKDServer(t)
	e := devKey(t, "slow@example.com")
	adv, _ := wkdPaths(t, "slow@example.com")
	release := make(chan struct{})
	w.handle(adv, func(rw http.ResponseWriter, _ *http.Request) {
		<-release
		rw.Write(binaryKey(t, e))
	})
	c, _, _ := newTestCache(t, w, func(c *CacheConfig) { c.Budget = config.Duration(50 * time.Millisecond) })
	if _, err := c.Discover(context.Background(), "slow@example.com"); !errors.Is(err, keys.ErrLookupPending) {
		t.Fatalf("a lookup past the budget: %v", err)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := c.Discover(context.Background(), "slow@example.com")
		if err == nil && keys.PGPFingerprint(got) == keys.PGPFingerprint(e) {
			break
		}
		if time.Now().After(deadline) || (err != nil && !errors.Is(err, keys.ErrLookupPending)) {
			t.Fatalf("the retry: %v, %v", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCacheRefreshFindsRevocation: a key is refreshed before it expires; when the refresh finds
// it revoked, its use ends at once; when the server cannot be reached, the key stays in use until
// it expires.
func TestCacheRefreshFindsRevocation(t *testing.T) {
	w := newWKDServer(t)
	e := devKey(t, "frank@example.com")
	adv, _ := wkdPaths(t, "frank@example.com")
	w.serve(adv, binaryKey(t, e))
	c, st, clock := newTestCache(t, w, nil)
	ctx := context.Background()
	if _, err := c.Discover(ctx, "frank@example.com"); err != nil {
		t.Fatal(err)
	}
	// Down for the first refresh: the key stays.
	w.handle(adv, func(rw http.ResponseWriter, _ *http.Request) {
		hj, _ := rw.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		conn.Close()
	})
	clock.add(23*time.Hour + 30*time.Minute)
	c.refreshDue(ctx)
	waitIdle(t, c)
	if _, err := c.Discover(ctx, "frank@example.com"); err != nil {
		t.Fatalf("after a failed refresh: %v; want the key still in use", err)
	}
	waitIdle(t, c)
	// The owner revoked it: the next refresh ends its use.
	if err := e.RevokeKey(packet.KeyCompromised, "lost", nil); err != nil {
		t.Fatal(err)
	}
	w.serve(adv, binaryKey(t, e))
	c.refreshDue(ctx)
	waitIdle(t, c)
	if got, err := c.Discover(ctx, "frank@example.com"); got != nil || err == nil {
		t.Fatalf("after the refresh found it revoked: %v, %v", got, err)
	}
	if k, err := st.DiscoveredKey(ctx, "frank@example.com"); err != nil || k.Data != nil || !strings.Contains(k.Reason, "revoked") {
		t.Fatalf("stored %+v, %v; want no key, revoked", k, err)
	}
}

// waitIdle waits until c has no lookup under way.
func waitIdle(t testing.TB, c *Cache) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.inflight)
		c.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("lookups still under way")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countingObserver counts the cache's reports.
type countingObserver struct {
	mu       sync.Mutex
	outcomes map[string]int
	pending  int
}

func (o *countingObserver) WKDLookup(outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outcomes[outcome]++
}

func (o *countingObserver) WKDPending() { o.mu.Lock(); o.pending++; o.mu.Unlock() }

// TestCachePerDomainLimit: twenty lookups to one slow domain reach its server at most
// max_per_domain at a time; each lookup's outcome and the RCPTs that outlasted the budget are
// reported.
func TestCachePerDomainLimit(t *testing.T) {
	w := newWKDServer(t)
	var mu sync.Mutex
	now, most := 0, 0
	for i := range 20 {
		adv, _ := wkdPaths(t, fmt.Sprintf("c%d@example.com", i))
		w.handle(adv, func(rw http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			now++
			most = max(most, now)
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			now--
			mu.Unlock()
			http.NotFound(rw, nil)
		})
	}
	c, _, _ := newTestCache(t, w, func(c *CacheConfig) { c.PerDomain, c.Budget = 3, config.Duration(10*time.Millisecond) })
	obs := &countingObserver{outcomes: map[string]int{}}
	c.obs = obs
	for i := range 20 {
		if _, err := c.Discover(context.Background(), fmt.Sprintf("c%d@example.com", i)); !errors.Is(err, keys.ErrLookupPending) {
			t.Fatalf("lookup %d: %v; want pending (the server is slower than the budget)", i, err)
		}
	}
	waitIdle(t, c)
	mu.Lock()
	defer mu.Unlock()
	if most > 3 || most == 0 {
		t.Errorf("%d requests at once to one domain; want at most max_per_domain (3)", most)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.outcomes["not-published"] != 20 || obs.pending != 20 {
		t.Errorf("reported %v and %d pending; want 20 not-published, 20 pending", obs.outcomes, obs.pending)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.domains) != 0 {
		t.Errorf("%d domains' slots kept after every lookup ended", len(c.domains))
	}
}
