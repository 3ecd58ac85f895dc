package keys

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Directory maps recipients' addresses to their S/MIME certificates and decides which may be used.
// It is immutable once built, so it is safe for concurrent use; a reload builds a new one.
type Directory struct {
	roots         *x509.CertPool
	intermediates *x509.CertPool
	byAddress     map[string][]*x509.Certificate
	certs         []*x509.Certificate
	now           func() time.Time
}

// DirectoryOption configures a Directory.
type DirectoryOption func(*Directory)

// WithClock sets the clock used to judge validity (tests, and "valid at" checks).
func WithClock(now func() time.Time) DirectoryOption { return func(d *Directory) { d.now = now } }

// NewDirectory indexes certs by their rfc822Name SANs. CA certificates among certs are used as
// intermediates, not as recipients. roots are the trust anchors.
func NewDirectory(roots []*x509.Certificate, certs []*x509.Certificate, opts ...DirectoryOption) *Directory {
	d := &Directory{
		roots:         x509.NewCertPool(),
		intermediates: x509.NewCertPool(),
		byAddress:     map[string][]*x509.Certificate{},
		now:           time.Now,
	}
	for _, o := range opts {
		o(d)
	}
	for _, r := range roots {
		d.roots.AddCert(r)
	}
	for _, c := range certs {
		if c.IsCA {
			d.intermediates.AddCert(c)
			continue
		}
		d.certs = append(d.certs, c)
		for _, a := range c.EmailAddresses {
			n, err := NormalizeAddress(a)
			if err != nil {
				continue
			}
			if !slices.ContainsFunc(d.byAddress[n], c.Equal) {
				d.byAddress[n] = append(d.byAddress[n], c)
			}
		}
	}
	return d
}

// Lookup returns the certificate to encrypt to for addr: among the usable ones, the one that expires
// last. Otherwise it returns a *RecipientError saying why each known certificate was refused.
func (d *Directory) Lookup(addr string) (*x509.Certificate, error) {
	n, err := NormalizeAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("recipient %q: %w", addr, err)
	}
	var best *x509.Certificate
	rerr := &RecipientError{Address: n}
	for _, c := range d.byAddress[n] {
		if cerr := d.Check(c); cerr != nil {
			rerr.Causes = append(rerr.Causes, cerr)
			continue
		}
		if best == nil || c.NotAfter.After(best.NotAfter) {
			best = c
		}
	}
	if best == nil {
		return nil, rerr
	}
	return best, nil
}

// Check says whether c may be used to encrypt to now, or returns why not.
func (d *Directory) Check(c *x509.Certificate) *CertificateError {
	now := d.now()
	fail := func(reason error, detail string) *CertificateError {
		return &CertificateError{Subject: c.Subject.String(), Serial: c.SerialNumber.Text(16),
			Reason: reason, Detail: detail, NotAfter: c.NotAfter.UTC().Format(time.RFC3339)}
	}
	switch {
	case now.Before(c.NotBefore):
		return fail(ErrNotYetValid, "valid from "+c.NotBefore.UTC().Format(time.RFC3339))
	case now.After(c.NotAfter):
		return fail(ErrExpired, "expired "+c.NotAfter.UTC().Format(time.RFC3339))
	}
	if k, ok := c.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() < 2048 {
		return fail(ErrUnsupportedKey, "")
	}
	// RFC 5280: no keyUsage extension means no restriction.
	if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
		return fail(ErrNoKeyEncipherment, "")
	}
	if len(c.ExtKeyUsage) > 0 && !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageEmailProtection) &&
		!slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return fail(ErrNoEmailProtection, "")
	}
	_, err := c.Verify(x509.VerifyOptions{
		Roots:         d.roots,
		Intermediates: d.intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage {
			return fail(ErrNoEmailProtection, "an issuer in the chain does not allow it")
		}
		return fail(ErrUntrusted, err.Error())
	}
	return nil
}

// Entry describes one recipient certificate for listing.
type Entry struct {
	Certificate *x509.Certificate
	Addresses   []string
	Problem     *CertificateError // nil when usable
}

// Entries lists every recipient certificate, ordered by first address then expiry.
func (d *Directory) Entries() []Entry {
	out := make([]Entry, 0, len(d.certs))
	for _, c := range d.certs {
		e := Entry{Certificate: c, Addresses: c.EmailAddresses}
		if p := d.Check(c); p != nil {
			e.Problem = p
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		ai, aj := first(out[i].Addresses), first(out[j].Addresses)
		if ai != aj {
			return ai < aj
		}
		return out[i].Certificate.NotAfter.Before(out[j].Certificate.NotAfter)
	})
	return out
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
