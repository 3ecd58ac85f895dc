package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"slices"
	"strings"
	"time"
)

// tokenAccuracy is the accuracy the Authority claims for genTime. genTime is encoded in whole seconds,
// and the host clock is assumed to be NTP-disciplined well within that.
const tokenAccuracy = time.Second

// Authority is an embedded, in-process time-stamping authority. It is immutable after NewAuthority
// and safe for concurrent use.
//
// Serial numbers are 159-bit random integers drawn from crypto/rand for every token, so they are
// unique without any state shared between processes or restarts. Tokens are encoded by issue.go.
type Authority struct {
	signer  crypto.Signer
	cert    *x509.Certificate   // chain[0]: the TSA certificate
	parents []*x509.Certificate // chain[1:] without a self-signed root: embedded with the TSA certificate
	parts   *tokenParts         // what every token holds alike
	policy  asn1.ObjectIdentifier
	now     func() time.Time
}

// AuthorityOption configures NewAuthority.
type AuthorityOption func(*Authority)

// WithPolicy sets the TSA policy OID put in every token and the only one accepted in requests
// (ParsePolicy reads one from configuration).
//
// The default is DefaultPolicy, 1.3.6.1.4.1.32473.3161.1, under the enterprise number RFC 5612
// reserves for documentation: a placeholder that a bank must replace with the OID of its own
// published time-stamping policy.
func WithPolicy(oid asn1.ObjectIdentifier) AuthorityOption {
	return func(a *Authority) { a.policy = slices.Clone(oid) }
}

// WithClock sets the clock read for genTime (default time.Now). Tests use it; production may use it
// to read a trusted time source.
func WithClock(now func() time.Time) AuthorityOption {
	return func(a *Authority) { a.now = now }
}

// NewAuthority returns an Authority that signs with signer. chain[0] is the TSA certificate and must
// belong to signer's key, carry the timeStamping extended key usage as its only EKU in a critical
// extension (RFC 3161 section 2.3), allow digitalSignature, and be valid now. chain[1:] are the
// certificates above it (intermediates, optionally the root), each signed by the next; the
// intermediates are embedded in tokens next to the TSA certificate, the root is not.
//
// The key must be ECDSA (P-256, P-384 or P-521) or RSA of at least 2048 bits. ECDSA P-256 is much
// cheaper per token than RSA. Errors wrap ErrInvalidAuthority (key or certificates) or ErrConfig
// (options).
func NewAuthority(signer crypto.Signer, chain []*x509.Certificate, opts ...AuthorityOption) (*Authority, error) {
	a := &Authority{
		signer: signer,
		policy: slices.Clone(defaultPolicyOID),
		now:    time.Now,
	}
	for _, o := range opts {
		o(a)
	}
	if len(a.policy) == 0 {
		return nil, fmt.Errorf("%w: empty TSA policy OID", ErrConfig)
	}
	if a.now == nil {
		return nil, fmt.Errorf("%w: nil clock", ErrConfig)
	}
	if signer == nil {
		return nil, fmt.Errorf("%w: nil signer", ErrInvalidAuthority)
	}
	if len(chain) == 0 || slices.Contains(chain, nil) {
		return nil, fmt.Errorf("%w: chain must start with the TSA certificate and hold no nil", ErrInvalidAuthority)
	}
	a.cert = chain[0]

	if err := checkSigningKey(signer.Public()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidAuthority, err)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(a.cert.PublicKey) {
		return nil, fmt.Errorf("%w: signer's key is not the key of certificate %q", ErrInvalidAuthority, a.cert.Subject)
	}
	if err := checkTSACertificate(a.cert); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidAuthority, err)
	}
	if a.cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, fmt.Errorf("%w: certificate %q: key usage must include digitalSignature", ErrInvalidAuthority, a.cert.Subject)
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return nil, fmt.Errorf("%w: chain[%d] is not signed by chain[%d]: %v", ErrInvalidAuthority, i, i+1, err)
		}
	}
	if err := a.checkValidity(a.now()); err != nil {
		return nil, err
	}
	// A self-signed root is not embedded: a verifier must hold it as a trust anchor anyway.
	a.parents = slices.Clone(chain[1:])
	if n := len(a.parents); n > 0 && selfSigned(a.parents[n-1]) {
		a.parents = a.parents[:n-1]
	}
	parts, err := newTokenParts(a.cert, a.parents, a.policy, signer.Public())
	if err != nil {
		return nil, err
	}
	a.parts = parts
	return a, nil
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil
}

// checkSigningKey accepts the key types the token signature can use and verifiers widely support.
func checkSigningKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("unsupported ECDSA curve")
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits, want at least 2048", k.N.BitLen())
		}
		return nil
	}
	return fmt.Errorf("unsupported key type %T", pub)
}

// checkValidity refuses to sign outside the TSA certificate's validity: such a token would never
// verify. It is an operational fault (expired certificate), so it is reported as ErrUnavailable too:
// mail is deferred, not bounced, while the certificate is renewed.
func (a *Authority) checkValidity(now time.Time) error {
	if now.Before(a.cert.NotBefore) || now.After(a.cert.NotAfter) {
		return fmt.Errorf("%w: %w: certificate %q not valid at %s (valid %s to %s)", ErrUnavailable, ErrInvalidAuthority,
			a.cert.Subject, now.UTC().Format(time.RFC3339), a.cert.NotBefore.Format(time.RFC3339), a.cert.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// Timestamp returns a token over SHA-256(message), signed in-process. The token carries the TSA
// certificate and its intermediates, as a request with certReq would get. Errors wrap
// ErrUnavailable: the only ways to fail are a cancelled context, an expired certificate or a failing
// signer (an HSM).
func (a *Authority) Timestamp(ctx context.Context, message []byte) (*Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	digest := sha256.Sum256(message)
	t, err := a.token(crypto.SHA256, digest[:], nil, true)
	if err != nil {
		return nil, err
	}
	return &Token{
		DER:       t.der,
		Time:      t.genTime,
		Serial:    t.serial,
		Policy:    slices.Clone(a.policy),
		Authority: a.cert,
	}, nil
}

// tokenFromResponse extracts the TimeStampToken of a granted TimeStampResp, undecoded. A refusal
// becomes a *RejectedError.
func tokenFromResponse(resp []byte) ([]byte, error) {
	var r timeStampResp
	if err := unmarshalDER(resp, &r); err != nil {
		return nil, fmt.Errorf("%w: TimeStampResp: %v", ErrMalformed, err)
	}
	status := PKIStatus(r.Status.Status)
	if status != StatusGranted && status != StatusGrantedWithMods {
		return nil, rejection(r.Status)
	}
	if len(r.TimeStampToken.FullBytes) == 0 {
		return nil, fmt.Errorf("%w: status %s without a token", ErrMalformed, status)
	}
	return r.TimeStampToken.FullBytes, nil
}

// maxRejectionText caps the TSA's free text kept in a RejectedError: it ends up in logs and SMTP
// replies, and a TSA has no business sending more.
const maxRejectionText = 256

// rejection converts a refused PKIStatusInfo to a *RejectedError.
func rejection(si pkiStatusInfo) *RejectedError {
	var fi FailureInfo
	for i := 0; i < 32 && i < si.FailInfo.BitLength; i++ {
		if si.FailInfo.At(i) == 1 {
			fi |= 1 << i
		}
	}
	text := strings.Join(si.StatusString, "; ")
	if len(text) > maxRejectionText {
		text = text[:maxRejectionText] + "…"
	}
	return &RejectedError{Status: PKIStatus(si.Status), FailureInfo: fi, Text: text}
}
