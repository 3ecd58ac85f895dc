package outbound

import (
	"crypto/x509"
	"log/slog"
	"testing"

	"github.com/sealpost/sealpost/discovery"
	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/keys"
)

// BenchmarkRcpt: the RCPT hot path of a statement, one recipient per MAIL: a registered S/MIME
// customer (the common case, and the figure the key tiers must leave unchanged), a registered
// OpenPGP customer, and a customer found only in the learned tier (the registered tier is asked
// first, then the learned one). With revocation checking on (a real discovery.Checker), a learned
// certificate from an `openssl ca` whose CRL is cached: the warm RCPT of a certificate that names a
// CRL distribution point.
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
	o := interop.NewOpenSSLCA(b, "Public CA with CRL")
	erin := o.Issue(b, "erin", "erin@example.com", "usr")
	o.GenCRL(b)
	dir, err := f.Dir.Directory(keys.WithLearned([]*x509.Certificate{public.Certificate(), o.CA}, []*x509.Certificate{dave.Certificate(), erin}))
	if err != nil {
		b.Fatal(err)
	}
	checker, err := discovery.NewChecker(discovery.DefaultRevocationConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { checker.Close() })
	g, err := New(testConfig(), dir, f.SMIME, &pipelinetest.MemSpool{}, WithPGP(f.PGP), WithLogger(slog.New(slog.DiscardHandler)), WithRevocations(checker))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, to string }{
		{"Registered/SMIME", "alice@example.com"},
		{"Registered/PGP", "carol@example.org"},
		{"Learned/SMIME", "dave@example.com"},
		{"Learned/SMIME-CRL-cached", "erin@example.com"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := g.NewSession(pipelinetest.Trusted)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Mail(b.Context(), "statements@bank.example", 0); err != nil {
				b.Fatal(err)
			}
			if err := s.Rcpt(b.Context(), bc.to); err != nil { // the CRL fetched once, before timing
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
