package discovery

import (
	"context"
	"testing"
	"time"

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

// BenchmarkWKDFetch: a cold WKD lookup against a loopback HTTPS server (TLS handshake, request,
// key checks): what a first RCPT to a customer known only by WKD costs.
func BenchmarkWKDFetch(b *testing.B) {
	w := newWKDServer(b)
	e := devKey(b, "carol@example.com")
	adv, _ := wkdPaths(b, "carol@example.com")
	w.serve(adv, binaryKey(b, e))
	c := w.client(b, 5*time.Second, w.roots)
	for b.Loop() {
		if _, err := c.Fetch(context.Background(), "carol@example.com"); err != nil {
			b.Fatal(err)
		}
	}
}
