package inbound

import (
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
)

// revokedAt answers for one certificate what a CRL would: revoked at a time, or cannot check. It
// stands for discovery's checker (tested against openssl's CRLs and OCSP responder there); here
// only the inbound rule is under test: revoked before the signing time fails the verdict.
type revokedAt struct {
	cert *x509.Certificate
	at   time.Time
	err  error
}

func (r revokedAt) CheckCertificate(_ context.Context, cert, issuer *x509.Certificate) error {
	if issuer == nil {
		return errors.New("no issuer given")
	}
	if r.err != nil {
		return r.err
	}
	if cert.Equal(r.cert) && !r.at.IsZero() {
		return &keys.RevocationError{Subject: cert.Subject.String(), Serial: cert.SerialNumber.Text(16), At: r.at, Reason: "keyCompromise", Source: "crl"}
	}
	return nil
}

// TestSignatureAfterRevocationFails: a reply signed after its certificate's revocation time is
// failed with "revoked"; one whose signing time is before it stays verified; a certificate that
// cannot be checked is judged without the check.
func TestSignatureAfterRevocationFails(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name   string
		r      revokedAt
		status string
	}{
		{"RevokedBefore", revokedAt{at: now.Add(-time.Hour)}, StatusFailed},
		{"RevokedAfter", revokedAt{at: now.Add(time.Hour)}, StatusVerified},
		{"Good", revokedAt{}, StatusVerified},
		{"CannotCheck", revokedAt{err: keys.ErrRevocationUnknown}, StatusVerified},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newInboundEnv(t, Config{})
			e.register(t, "alice@example.com", e.f.Alice)
			tt.r.cert = e.f.Alice.Certificate()
			e.ib.d.Revocations = tt.r
			msg := signAs(t, e.f.Alice, "From: alice@example.com\r\nTo: support@bank.example\r\nSubject: payee\r\n\r\nYes.\r\n")
			res, err := e.ib.Evaluate(context.Background(), msg, now)
			if err != nil {
				t.Fatal(err)
			}
			v := res.Verdict
			if v.Status != tt.status || (tt.status == StatusFailed) != slices.Contains(v.Failures, FailRevoked) {
				t.Fatalf("verdict %s %v; want %s", v.Status, v.Failures, tt.status)
			}
			if tt.status == StatusFailed && !strings.Contains(mime.HeaderValue(res.Message, "Sealpost-Verdict"), "revoked") {
				t.Errorf("the desk's verdict does not say revoked: %q", mime.HeaderValue(res.Message, "Sealpost-Verdict"))
			}
		})
	}
}
