package ca_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
)

// BenchmarkIssueFromCSR: certificates issued per second from a P-256 request, stored in SQLite,
// beside the CA key's RSA-2048 signatures per second in the same run (the ratio is the figure:
// an issue is one signature plus parsing, checking and a store write).
func BenchmarkIssueFromCSR(b *testing.B) {
	csr := aliceCSR(b)
	b.Run("issue", func(b *testing.B) {
		c := newCA(b, sqlite(b))
		ctx := context.Background()
		for b.Loop() {
			if _, err := c.IssueFromCSR(ctx, alice, csr); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
	})
	b.Run("rsa2048-sign", func(b *testing.B) {
		key := testBank(b).customerCA.Signer.(*rsa.PrivateKey)
		digest := sha256.Sum256([]byte("statement"))
		for b.Loop() {
			if _, err := key.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signs/s")
	})
}
