package api

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/outbound"
	"github.com/sealpost/sealpost/store"
)

// BenchmarkPutKey measures registration latency: PUT /v1/customers/{address}/keys over loopback
// HTTPS (TLS session kept alive, as a backend's client does) on the embedded SQLite, each call a
// new customer's certificate. It reports registrations/s beside RSA-2048 signatures/s measured
// in the same run, and their ratio (CONVENTIONS 6: a target is a ratio).
func BenchmarkPutKey(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			f := newFixture(b, be.open(b))
			f.srv.reload = func(context.Context) error { return nil } // serve: the change feed reloads
			secret, _ := f.token(ScopeCustomers)
			const pool = 256
			bodies := make([][]byte, pool)
			paths := make([]string, pool)
			for i := range bodies {
				a := fmt.Sprintf("customer%d@example.com", i)
				bodies[i], paths[i] = f.m.cert(b, time.Time{}, time.Time{}, a).Raw, "/v1/customers/"+a+"/keys"
			}
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				if a := f.do(http.MethodPut, paths[i%pool], secret, bodies[i%pool], "Content-Type", typeDER); a.status != http.StatusCreated {
					b.Fatalf("PUT: %d %s", a.status, a.body)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			puts := float64(b.N) / elapsed.Seconds()
			sigs := rsaSignaturesPerSecond(b, f.m.rsa)
			b.ReportMetric(puts, "registrations/s")
			b.ReportMetric(sigs, "rsa2048-signs/s")
			b.ReportMetric(puts/sigs, "registrations/sign")
		})
	}
}

// rsaSignaturesPerSecond signs SHA-256 digests with key for about half a second.
func rsaSignaturesPerSecond(b *testing.B, key *rsa.PrivateKey) float64 {
	digest := sha256.Sum256([]byte("sealpost"))
	n, start := 0, time.Now()
	for time.Since(start) < 500*time.Millisecond {
		if _, err := key.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkMailboxFetch measures what online banking waits for when a customer opens a waiting
// statement: GET /v1/customers/{address}/mailbox/{id} over loopback HTTPS (a 2 KB signed message:
// read, unsealed, verified), reporting the p50 and p99 latency and fetches/s beside RSA-2048
// signatures/s measured in the same run.
func BenchmarkMailboxFetch(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			st := be.open(b)
			key, err := keys.DataDir(b.TempDir()).MailboxKey()
			if err != nil {
				b.Fatal(err)
			}
			f := newFixtureWith(b, st, []Option{WithMailbox(st.(MailboxStore), key, nil, nil)})
			msg := []byte("From: statements@bank.example\r\nTo: lena@example.com\r\nSubject: Statement\r\n\r\n" + strings.Repeat("Balance 1 234,56 EUR\r\n", 90))
			sealer, err := keys.NewSealer(key, outbound.MailboxMagic)
			if err != nil {
				b.Fatal(err)
			}
			sealed, err := sealer.Seal("bench1", msg)
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			if err := st.(interface {
				PutMailboxItem(context.Context, store.MailboxItem) error
			}).PutMailboxItem(context.Background(), store.MailboxItem{ID: "bench1", Address: "lena@example.com", Class: "statement", Received: now, Expires: now.Add(time.Hour), Size: len(msg), Data: sealed}); err != nil {
				b.Fatal(err)
			}
			secret, _ := f.token(ScopeMailbox)
			var lat []time.Duration
			start := time.Now()
			for b.Loop() {
				t0 := time.Now()
				if a := f.do(http.MethodGet, "/v1/customers/lena@example.com/mailbox/bench1", secret, nil); a.status != http.StatusOK {
					b.Fatalf("GET: %d %s", a.status, a.body)
				}
				lat = append(lat, time.Since(t0))
			}
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			fetches := float64(len(lat)) / elapsed.Seconds()
			sigs := rsaSignaturesPerSecond(b, f.m.rsa)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(fetches, "fetches/s")
			b.ReportMetric(fetches/sigs, "fetches/sign")
		})
	}
}
