package api

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"net/http"
	"testing"
	"time"
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
