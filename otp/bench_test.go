package otp_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sealpost/sealpost/otp"
)

// BenchmarkIssue issues payment codes, each to its own address (the rate
// limit is per address): issues/s on each store.
func BenchmarkIssue(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			st, _, _ := be.open(b)
			s := newService(b, otp.DefaultConfig(), st, newClock())
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Issue(ctx, otp.Request{Address: fmt.Sprintf("c%d@example.com", i), Purpose: "payment", Transaction: &payment, TokenID: tokenA}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issues/s")
		})
	}
}

// BenchmarkVerify verifies payment codes issued before the timer starts:
// verifies/s on each store.
func BenchmarkVerify(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			st, _, _ := be.open(b)
			s := newService(b, otp.DefaultConfig(), st, newClock())
			ctx := context.Background()
			issued := make([]otp.Issued, b.N)
			for i := range issued {
				is, err := s.Issue(ctx, otp.Request{Address: fmt.Sprintf("c%d@example.com", i), Purpose: "payment", Transaction: &payment, TokenID: tokenA})
				if err != nil {
					b.Fatal(err)
				}
				issued[i] = is
			}
			b.ReportAllocs()
			b.ResetTimer()
			for _, is := range issued {
				if r, err := s.Verify(ctx, is.ID, is.Code, &payment, tokenA); err != nil || r.Status != otp.Verified {
					b.Fatal(r, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
		})
	}
}
