package smime

import (
	"crypto/x509"
	"testing"
	"time"
)

// TestChainCache: a signer's verified chain is reused for its next message, but never outside the
// validity of the chain's certificates, never with pools it was not made for, and a failed chain is
// not kept.
func TestChainCache(t *testing.T) {
	f := getFixture(t)
	p, err := NewProtector(f.signer)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := p.SignMessage(ctx, message(2<<10), Options{})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(f.ca.Certificate())
	cache := NewChainCache(roots, nil)
	inspectAt := func(roots *x509.CertPool, at time.Time) *Inbound {
		t.Helper()
		in, err := Inspect(msg, InboundOptions{Roots: roots, Arrival: at, Chains: cache})
		if err != nil {
			t.Fatal(err)
		}
		if in.SignatureErr != nil {
			t.Fatalf("signature: %v", in.SignatureErr)
		}
		return in
	}
	now := time.Now()
	first := inspectAt(roots, now)
	if first.ChainErr != nil || cache.Len() != 1 || cache.hits != 0 {
		t.Fatalf("first message: chain error %v, %d kept, %d reused", first.ChainErr, cache.Len(), cache.hits)
	}
	second := inspectAt(roots, now.Add(time.Hour))
	if second.ChainErr != nil || cache.hits != 1 || len(second.SignerChain) != 1 || !second.SignerChain[0][1].Equal(f.ca.Certificate()) {
		t.Fatalf("second message: chain error %v, %d reused, chains %v", second.ChainErr, cache.hits, second.SignerChain)
	}
	signer := f.signer.Certificate()
	for name, at := range map[string]time.Time{
		"after the signer expired":     signer.NotAfter.Add(time.Second),
		"before the signer was issued": signer.NotBefore.Add(-time.Second),
	} {
		if in := inspectAt(roots, at); in.ChainErr == nil {
			t.Errorf("%s: the kept chain was accepted", name)
		}
	}
	if in := inspectAt(x509.NewCertPool(), now); in.ChainErr == nil {
		t.Error("a cache made for other roots vouched for the chain")
	}
	if cache.hits != 1 {
		t.Errorf("%d reuses, want 1", cache.hits)
	}

	failed := NewChainCache(nil, nil)
	if in, err := Inspect(msg, InboundOptions{Arrival: now, Chains: failed}); err != nil || in.ChainErr == nil || failed.Len() != 0 {
		t.Fatalf("chain without roots: %v, chain error %v, %d kept", err, in.ChainErr, failed.Len())
	}
}
