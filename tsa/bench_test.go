package tsa

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
)

// The benchmarks live in one file so that one run gives comparable figures: the cost of a token
// from the embedded Authority is read as a ratio to BenchmarkRSA2048Sign, the RSA signature the
// gateway makes for every mail anyway.

func BenchmarkAuthorityTimestamp(b *testing.B) {
	msg := make([]byte, 256) // an RSA-2048 signature value is 256 bytes
	for _, tc := range []struct {
		name         string
		key          crypto.Signer
		intermediate bool // chain [TSA, intermediate, root]: the intermediate is embedded
		parallel     bool
	}{
		{name: "p256"}, // chain [TSA, root]
		{name: "p256-intermediate", intermediate: true},
		{name: "p256-parallel", parallel: true},
		{name: "rsa2048", key: rsaKey()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			a := newTestTSA(b, tc.key).a
			if tc.intermediate {
				ts, _ := newTestTSAViaIntermediate(b, newP256(b))
				a = ts.a
			}
			ctx := context.Background()
			b.ReportAllocs()
			if tc.parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := a.Timestamp(ctx, msg); err != nil {
							b.Error(err)
							return
						}
					}
				})
				return
			}
			for b.Loop() {
				if _, err := a.Timestamp(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	ts := newTestTSA(b, nil)
	msg := make([]byte, 256)
	tok, err := ts.a.Timestamp(context.Background(), msg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(tok.DER, msg, ts.ca.roots); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRSA2048Sign(b *testing.B) {
	key := rsaKey()
	digest := sha256.Sum256([]byte("message"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}
