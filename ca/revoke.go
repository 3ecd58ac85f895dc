package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/store"
)

// crlLifetime is how long a CRL is current (NextUpdate): clients fetch a new one after it. The CRL
// is made fresh on every request, so a revocation is in the next one fetched.
const crlLifetime = 24 * time.Hour

// reasonRemoveFromCRL is CRLReason 8 (removeFromCRL), which is for delta CRLs only, and 7 is not
// assigned (RFC 5280 5.3.1).
const (
	reasonUnassigned    = 7
	reasonRemoveFromCRL = 8
	reasonMax           = 10
)

// Revoke revokes the certificate with serial (hex, any case, leading zeros or not) issued to
// address, for reason (an RFC 5280 CRLReason: 0 unspecified, 1 keyCompromise, 3 affiliationChanged,
// 4 superseded, 5 cessationOfOperation, …). ErrNotFound when no such certificate was issued to
// address (also when it was issued to another customer); ErrRevoked when it is revoked already.
func (c *CA) Revoke(ctx context.Context, addr, serial string, reason int) error {
	if reason < 0 || reason > reasonMax || reason == reasonUnassigned || reason == reasonRemoveFromCRL {
		return fmt.Errorf("ca: revocation reason %d: %w (an RFC 5280 CRLReason: 0 to 10, not 7 or 8)", reason, store.ErrInvalid)
	}
	s, ok := normalizeSerial(serial)
	if !ok {
		return fmt.Errorf("%w (serial %q)", ErrNotFound, printable(serial))
	}
	ic, err := c.st.IssuedCert(ctx, s)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w (serial %s)", ErrNotFound, s)
	case err != nil:
		return fmt.Errorf("ca: %w", err)
	case !address.Same(ic.Address, addr):
		return fmt.Errorf("%w (serial %s)", ErrNotFound, s)
	case !ic.Revoked.IsZero():
		return fmt.Errorf("%w (serial %s, %s)", ErrRevoked, s, ic.Revoked.UTC().Format(time.RFC3339))
	}
	switch err := c.st.RevokeIssuedCert(ctx, s, c.now(), reason); {
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w (serial %s)", ErrRevoked, s) // another node revoked it meanwhile
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w (serial %s)", ErrNotFound, s)
	case err != nil:
		return fmt.Errorf("ca: %w", err)
	}
	return nil
}

// normalizeSerial writes a serial as the store keeps it: upper hex, no leading zeros, 1 to 40
// digits (20 octets, RFC 5280's limit).
func normalizeSerial(s string) (string, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" || len(s) > 40 || strings.Trim(s, "0123456789ABCDEF") != "" {
		return "", false
	}
	if s = strings.TrimLeft(s, "0"); s == "" {
		s = "0"
	}
	return s, true
}

// CRL returns a fresh DER CRL: every revoked certificate with its reason, the next CRL number
// (strictly increasing across nodes), ThisUpdate now and NextUpdate a day later, signed by the CA.
func (c *CA) CRL(ctx context.Context) ([]byte, error) {
	revoked, err := c.st.RevokedCerts(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	entries := make([]x509.RevocationListEntry, 0, len(revoked))
	for _, r := range revoked {
		n, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("ca: stored serial %q is not hex", printable(r.Serial))
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: r.Revoked.UTC(), ReasonCode: r.Reason})
	}
	number, err := c.st.NextCRLNumber(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	now := c.now().UTC()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		RevokedCertificateEntries: entries,
		Number:                    big.NewInt(number),
		ThisUpdate:                now,
		NextUpdate:                now.Add(crlLifetime),
	}, c.Certificate(), c.id.Signer)
	if err != nil {
		return nil, fmt.Errorf("ca: sign the CRL: %w", err)
	}
	return der, nil
}
