package outbound

import (
	"crypto/x509"
	"log/slog"
	"testing"

	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/keys"
)

// BenchmarkRcpt: the RCPT hot path of a statement, one recipient per MAIL: a registered S/MIME
// customer (the common case, and the figure the key tiers must leave unchanged), a registered
// OpenPGP customer, and a customer found only in the learned tier (the registered tier is asked
// first, then the learned one).
func BenchmarkRcpt(b *testing.B) {
	f := pipelinetest.Get(b)
	public, err := keys.NewDevCA("Public S/MIME CA")
	if err != nil {
		b.Fatal(err)
	}
	dave, err := public.NewDevCustomer("dave@example.com")
	if err != nil {
		b.Fatal(err)
	}
	dir, err := f.Dir.Directory(keys.WithLearned([]*x509.Certificate{public.Certificate()}, []*x509.Certificate{dave.Certificate()}))
	if err != nil {
		b.Fatal(err)
	}
	g, err := New(testConfig(), dir, f.SMIME, &pipelinetest.MemSpool{}, WithPGP(f.PGP), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, to string }{
		{"Registered/SMIME", "alice@example.com"},
		{"Registered/PGP", "carol@example.org"},
		{"Learned/SMIME", "dave@example.com"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := g.NewSession(pipelinetest.Trusted)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Mail(b.Context(), "statements@bank.example", 0); err != nil {
					b.Fatal(err)
				}
				if err := s.Rcpt(b.Context(), bc.to); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
