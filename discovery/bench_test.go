package discovery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/internal/interop"
)

// BenchmarkCheckCached: the RCPT path of a certificate whose CRL is cached (the common case).
func BenchmarkCheckCached(b *testing.B) {
	o := interop.NewOpenSSLCA(b, "Bench CA")
	cert := o.Issue(b, "good", "good@example.com", "usr")
	o.GenCRL(b)
	c, err := NewChecker(DefaultRevocationConfig())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := c.CheckCertificate(ctx, cert, o.CA); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := c.CheckCertificate(ctx, cert, o.CA); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWKDFetch: a WKD lookup against a loopback HTTPS server, the key checked.
// "cold" is what a first RCPT to a customer known only by WKD costs: a new client, so a new TCP
// connection and TLS handshake; "connection-reused" is a lookup over a kept-alive connection (the
// background refresh of several keys of one domain).
func BenchmarkWKDFetch(b *testing.B) {
	w := newWKDServer(b)
	e := devKey(b, "carol@example.com")
	adv, _ := wkdPaths(b, "carol@example.com")
	w.serve(adv, binaryKey(b, e))
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			c := w.client(b, 5*time.Second, w.roots)
			if _, err := c.Fetch(context.Background(), "carol@example.com"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("connection-reused", func(b *testing.B) {
		c := w.client(b, 5*time.Second, w.roots)
		for b.Loop() {
			if _, err := c.Fetch(context.Background(), "carol@example.com"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWKDServe: the bank's WKD server answering one key request (handler only).
func BenchmarkWKDServe(b *testing.B) {
	bank := devKey(b, "statements@bank.example", "support@bank.example")
	s, err := NewWKDServer([]*openpgp.Entity{bank})
	if err != nil {
		b.Fatal(err)
	}
	u, _, err := WKDURLs("support@bank.example")
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, u, nil)
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkDiscover: what RCPT spends in the WKD cache for a customer known only by WKD, on
// SQLite. "warm": the key is stored and fresh (read, parsed and checked again: it may have expired
// or been revoked since). "cold": the stored answer has expired, so RCPT waits for a lookup over
// a new TLS connection, and the answer is stored.
func BenchmarkDiscover(b *testing.B) {
	w := newWKDServer(b)
	e := devKey(b, "carol@example.com")
	adv, _ := wkdPaths(b, "carol@example.com")
	w.serve(adv, binaryKey(b, e))
	ctx := context.Background()
	b.Run("warm", func(b *testing.B) {
		c, _, _ := newTestCache(b, w, nil)
		if _, err := c.Discover(ctx, "carol@example.com"); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := c.Discover(ctx, "carol@example.com"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold", func(b *testing.B) {
		c, _, clock := newTestCache(b, w, nil)
		for b.Loop() {
			clock.add(25 * time.Hour) // past found_ttl: asked again
			if _, err := c.Discover(ctx, "carol@example.com"); err != nil {
				b.Fatal(err)
			}
			waitIdle(b, c)
		}
	})
}
