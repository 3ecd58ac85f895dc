package discovery

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sealpost/sealpost/keys"
)

// goodAnswer is an OCSP "good" for cert signed by signer, embedding responder (nil: none).
func goodAnswer(t *testing.T, issuer *x509.Certificate, cert *x509.Certificate, signer *keys.Identity, responder *x509.Certificate) []byte {
	t.Helper()
	now := time.Now()
	id := responder
	if id == nil {
		id = issuer // named as responder, not embedded
	}
	b, err := ocsp.CreateResponse(issuer, id, ocsp.Response{Status: ocsp.Good, SerialNumber: cert.SerialNumber,
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour), Certificate: responder}, signer.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOCSPForgedResponder: a "good" signed by another customer's certificate of the same CA, or
// by the revoked certificate's own key, is refused (RFC 6960 4.2.2.2: only the issuer or a
// responder it certified with id-kp-OCSPSigning may answer); the issuer itself, embedded or not,
// and a delegated responder are accepted. (Reported in review: x/crypto's ParseResponseForCert
// with the issuer accepts any certificate the issuer signed.)
func TestOCSPForgedResponder(t *testing.T) {
	ca, err := keys.NewDevCA("OCSP test CA")
	if err != nil {
		t.Fatal(err)
	}
	victim, err := ca.NewDevCustomer("victim@example.com")
	if err != nil {
		t.Fatal(err)
	}
	mallory, err := ca.NewDevCustomer("mallory@example.com")
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.NewRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	delegatedCert, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "OCSP responder"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, KeyUsage: x509.KeyUsageDigitalSignature}, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	delegated := &keys.Identity{Signer: key, Chain: []*x509.Certificate{delegatedCert}}
	issuer, cert, now := ca.Certificate(), victim.Certificate(), time.Now()
	for _, tt := range []struct {
		name string
		body []byte
		ok   bool
	}{
		{"AnotherCustomer", goodAnswer(t, issuer, cert, mallory, mallory.Certificate()), false},
		{"TheRevokedKeyItself", goodAnswer(t, issuer, cert, victim, victim.Certificate()), false},
		{"IssuerEmbedded", goodAnswer(t, issuer, cert, ca, issuer), true},
		{"IssuerNotEmbedded", goodAnswer(t, issuer, cert, ca, nil), true},
		{"DelegatedResponder", goodAnswer(t, issuer, cert, delegated, delegatedCert), true},
	} {
		_, err := parseOCSP(tt.body, cert, issuer, now, "test")
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrOCSPBad)) {
			t.Errorf("%s: %v; want accepted %v", tt.name, err, tt.ok)
		}
	}
}

// TestDeltaCRLRefused: a delta CRL (deltaCRLIndicator) or a partition (issuingDistributionPoint)
// signed by the issuer is not taken as the complete CRL: a revoked certificate absent from it
// would pass.
func TestDeltaCRLRefused(t *testing.T) {
	ca, err := keys.NewDevCA("CRL test CA")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	mk := func(ext []pkix.Extension) []byte {
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(2), ThisUpdate: now.Add(-time.Minute),
			NextUpdate: now.Add(time.Hour), ExtraExtensions: ext}, ca.Certificate(), ca.Signer)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	base, _ := asn1.Marshal(1)
	if _, err := parseCRL(mk(nil), ca.Certificate(), now, "test"); err != nil {
		t.Fatalf("a complete CRL: %v", err)
	}
	for name, ext := range map[string]pkix.Extension{
		"delta":       {Id: oidDeltaCRLIndicator, Critical: true, Value: base},
		"partition":   {Id: oidIssuingDistributionPoint, Critical: true, Value: []byte{0x30, 0x00}},
		"unknownCrit": {Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{0x05, 0x00}},
	} {
		if _, err := parseCRL(mk([]pkix.Extension{ext}), ca.Certificate(), now, "test"); !errors.Is(err, ErrCRLMalformed) {
			t.Errorf("%s: %v; want refused", name, err)
		}
	}
}
