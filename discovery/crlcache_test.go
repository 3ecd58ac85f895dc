package discovery

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
)

func checkerAt(t *testing.T, clock *testClock, cfg RevocationConfig, log *bytes.Buffer) *Checker {
	t.Helper()
	h := slog.Handler(slog.DiscardHandler)
	if log != nil {
		h = slog.NewTextHandler(log, nil)
	}
	c, err := NewChecker(cfg, WithCheckerClock(clock.Now), WithCheckerLogger(slog.New(h)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCRLReplayRefused: a CRL older (by CRL number) than one already seen from the CA is refused
// even within its own nextUpdate, and the newer one stays in use: an attacker who replays the CA's
// earlier CRL at the distribution point cannot make a revoked certificate good again.
func TestCRLReplayRefused(t *testing.T) {
	o := interop.NewOpenSSLCA(t, "Public SMIME CA")
	bad := o.Issue(t, "bad", "bad@example.com", "usr")
	o.GenCRL(t)
	before := o.CRL() // number 4096 (crlnumber 1000, hex): bad not yet revoked
	o.Revoke(t, "bad", "keyCompromise")
	o.GenCRL(t) // number 4097
	clock, log := &testClock{now: time.Now()}, &bytes.Buffer{}
	c := checkerAt(t, clock, DefaultRevocationConfig(), log)
	ctx := context.Background()
	if err := c.CheckCertificate(ctx, bad, o.CA); !errors.Is(err, keys.ErrRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	o.ServeCRL(before)
	clock.add(23*time.Hour + 30*time.Minute) // within RefreshAhead of nextUpdate: refreshed in the background
	for range 3 {
		if err := c.CheckCertificate(ctx, bad, o.CA); !errors.Is(err, keys.ErrRevoked) {
			t.Fatalf("after the older CRL was served: %v; want still revoked", err)
		}
		c.wg.Wait()
	}
	if n := o.Fetches.Load(); n != 2 {
		t.Errorf("%d CRL fetches; want 2 (the refused refresh is retried after retry_bad, not on every check)", n)
	}
	if !bytes.Contains(log.Bytes(), []byte(ErrCRLReplayed.Error())) {
		t.Errorf("the refused CRL is not logged as replayed:\n%s", log)
	}
	// A newer CRL is taken at the next refresh.
	o.GenCRL(t) // number 4098
	clock.add(10 * time.Minute)
	c.CheckCertificate(ctx, bad, o.CA)
	c.wg.Wait()
	if n := o.Fetches.Load(); n != 3 {
		t.Errorf("%d CRL fetches; want 3 (refreshed after retry_bad)", n)
	}
	c.mu.Lock()
	var number string
	for _, e := range c.crls {
		number = e.number.String()
	}
	c.mu.Unlock()
	if number != "4098" {
		t.Errorf("cached CRL number %s; want 4098, the newest", number)
	}
}

// slowCRLServer serves o's CRL after delay, counting requests; certificates o issues afterwards
// name it as their distribution point.
func slowCRLServer(t *testing.T, o *interop.OpenSSLCA, delay time.Duration) *atomic.Int32 {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Write(o.CRL())
	}))
	t.Cleanup(srv.Close)
	o.CRLURL = srv.URL + "/slow.crl"
	return &n
}

// TestCRLFetchedOnceForConcurrentChecks: RCPTs for many customers of one CA that arrive while its
// CRL is not yet cached share one fetch (a burst must not become a burst at the CA).
func TestCRLFetchedOnceForConcurrentChecks(t *testing.T) {
	o := interop.NewOpenSSLCA(t, "Public SMIME CA")
	fetches := slowCRLServer(t, o, 200*time.Millisecond)
	good := o.Issue(t, "good", "good@example.com", "usr")
	o.GenCRL(t)
	c := checkerAt(t, &testClock{now: time.Now()}, DefaultRevocationConfig(), nil)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() { errs <- c.CheckCertificate(context.Background(), good, o.CA) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("check: %v", err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d CRL fetches for 20 concurrent checks; want 1", n)
	}
}

// TestCRLFetchWithinTheCallersDeadline: a CRL server that does not answer costs a check no more
// than its caller's deadline (the RCPT budget), and the error says so (errors.Is).
func TestCRLFetchWithinTheCallersDeadline(t *testing.T) {
	o := interop.NewOpenSSLCA(t, "Public SMIME CA")
	slowCRLServer(t, o, time.Minute)
	good := o.Issue(t, "good", "good@example.com", "usr")
	o.GenCRL(t)
	c := checkerAt(t, &testClock{now: time.Now()}, DefaultRevocationConfig(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.CheckCertificate(ctx, good, o.CA)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, keys.ErrRevocationUnknown) || !errors.Is(err, ErrFetch) {
		t.Fatalf("check against a silent CRL server: %v; want ErrFetch wrapping context.DeadlineExceeded", err)
	}
}

// TestCRLShortValidityNotFetchedOnEveryCheck: a CRL valid for less than refresh_ahead is refreshed
// half-way through its validity, and a refresh that brings the same CRL is not repeated on every
// check.
func TestCRLShortValidityNotFetchedOnEveryCheck(t *testing.T) {
	o := interop.NewOpenSSLCA(t, "Public SMIME CA")
	good := o.Issue(t, "good", "good@example.com", "usr")
	o.GenCRL(t) // valid for 24 h
	cfg := DefaultRevocationConfig()
	cfg.RefreshAhead = config.Duration(48 * time.Hour)
	clock := &testClock{now: time.Now()}
	c := checkerAt(t, clock, cfg, nil)
	ctx := context.Background()
	for range 5 {
		if err := c.CheckCertificate(ctx, good, o.CA); err != nil {
			t.Fatal(err)
		}
		c.wg.Wait()
	}
	if n := o.Fetches.Load(); n != 1 {
		t.Errorf("%d fetches in the first half of the CRL's validity; want 1", n)
	}
	clock.add(13 * time.Hour)
	for range 5 {
		if err := c.CheckCertificate(ctx, good, o.CA); err != nil {
			t.Fatal(err)
		}
		c.wg.Wait()
	}
	if n := o.Fetches.Load(); n != 2 {
		t.Errorf("%d fetches after half its validity; want 2 (one refresh, not one per check)", n)
	}
}

// TestCRLOfAnotherCAWithTheSameName: two CAs with the same name at the same distribution point
// (a rogue CA copying a public CA's name): the CRL verified for one is never used for the other's
// certificates.
func TestCRLOfAnotherCAWithTheSameName(t *testing.T) {
	real, rogue := interop.NewOpenSSLCA(t, "Public SMIME CA"), interop.NewOpenSSLCA(t, "Public SMIME CA")
	good := real.Issue(t, "good", "good@example.com", "usr")
	real.GenCRL(t)
	rogue.CRLURL = real.CRLURL
	other := rogue.Issue(t, "other", "other@example.com", "usr")
	c := checkerAt(t, &testClock{now: time.Now()}, DefaultRevocationConfig(), nil)
	ctx := context.Background()
	if err := c.CheckCertificate(ctx, good, real.CA); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckCertificate(ctx, other, rogue.CA); !errors.Is(err, ErrCRLSignature) {
		t.Errorf("the other CA's certificate checked against the first CA's cached CRL: %v; want ErrCRLSignature", err)
	}
}

// TestCheckerClose: Close waits for a background refresh and starts no more.
func TestCheckerClose(t *testing.T) {
	o := interop.NewOpenSSLCA(t, "Public SMIME CA")
	good := o.Issue(t, "good", "good@example.com", "usr")
	o.GenCRL(t)
	clock := &testClock{now: time.Now()}
	c := checkerAt(t, clock, DefaultRevocationConfig(), nil)
	ctx := context.Background()
	c.CheckCertificate(ctx, good, o.CA)
	clock.add(23*time.Hour + 30*time.Minute)
	c.CheckCertificate(ctx, good, o.CA) // starts a refresh
	c.Close()
	n := o.Fetches.Load()
	clock.add(20 * time.Minute)
	if err := c.CheckCertificate(ctx, good, o.CA); err != nil {
		t.Fatal(err)
	}
	c.wg.Wait()
	if m := o.Fetches.Load(); m != n {
		t.Errorf("a refresh after Close (%d fetches, then %d)", n, m)
	}
}
