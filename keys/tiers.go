package keys

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Source is where a customer's key came from, its trust tier.
type Source string

const (
	// SourceRegistered: the customer registered it (online banking, keys import, the bank's
	// customer CA). A usable registered key always wins.
	SourceRegistered Source = "registered"
	// SourceLearned: a certificate from a customer's verified signed reply that chains to a root
	// the bank trusts for learning (learn-roots/), such as a public S/MIME CA.
	SourceLearned Source = "learned"
	// SourceDiscovered: an OpenPGP key the customer's provider publishes by WKD.
	SourceDiscovered Source = "discovered"
)

// ParseSource reads a tier as configuration writes it.
func ParseSource(s string) (Source, error) {
	switch v := Source(strings.ToLower(strings.TrimSpace(s))); v {
	case SourceRegistered, SourceLearned, SourceDiscovered:
		return v, nil
	}
	return "", fmt.Errorf("unknown key source %q (want registered, learned or discovered)", s)
}

// MarshalText writes the form ParseSource reads.
func (s Source) MarshalText() ([]byte, error) {
	if _, err := ParseSource(string(s)); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// UnmarshalText parses with ParseSource.
func (s *Source) UnmarshalText(b []byte) error {
	v, err := ParseSource(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// WithLearned adds the learned tier: certificates taken from customers' verified signed replies
// (intermediates among them), trusted only through roots, the roots the bank trusts for learning.
// They are used only by ChooseFrom with learned allowed, never by Choose.
func WithLearned(roots, certs []*x509.Certificate) DirectoryOption {
	return func(d *Directory) {
		d.learned = NewDirectory(roots, certs, WithClock(func() time.Time { return d.now() }))
	}
}

// ChooseFrom is Choose over the registered tier, then — when learned is true and no registered
// key of addr is usable — over the learned tier. The Choice's Source says which tier gave the key.
// When neither does, the *RecipientError holds the causes of both, registered first.
func (d *Directory) ChooseFrom(addr string, prefer Method, learned bool) (Choice, error) {
	c, err := d.Choose(addr, prefer)
	var rerr *RecipientError
	if err == nil || !learned || d.learned == nil || !errors.As(err, &rerr) {
		return c, err
	}
	lc, lerr := d.learned.Choose(addr, prefer)
	if lerr == nil {
		lc.Source = SourceLearned
		return lc, nil
	}
	var lr *RecipientError
	if errors.As(lerr, &lr) {
		rerr.Causes = append(rerr.Causes, lr.Causes...)
	}
	return Choice{}, rerr
}

// Learned lists the learned tier's certificates as Entries do, each with Source SourceLearned.
func (d *Directory) Learned() []Entry {
	if d.learned == nil {
		return nil
	}
	out := d.learned.Entries()
	for i := range out {
		out[i].Source = SourceLearned
	}
	return out
}

// IssuerOf is the certificate that issued c, found as c's chain is verified in the tier of source
// (the learned tier's roots for a learned certificate): what a CRL or an OCSP answer about c must
// be signed by. Nil when c does not verify now, or is self-issued. The issuer found is kept for
// the directory's life (a directory is rebuilt when its roots or certificates change), so a
// certificate's chain is built once rather than at every RCPT; whether c is usable now is Check's
// question, asked at every Lookup.
func (d *Directory) IssuerOf(c *x509.Certificate, source Source) *x509.Certificate {
	tier := d
	if source == SourceLearned && d.learned != nil {
		tier = d.learned
	}
	if v, ok := tier.issuers.Load(c); ok {
		return v.(*x509.Certificate)
	}
	chains, err := c.Verify(x509.VerifyOptions{
		Roots:         tier.roots,
		Intermediates: tier.intermediates,
		CurrentTime:   tier.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	})
	if err != nil || len(chains) == 0 || len(chains[0]) < 2 {
		return nil // not kept: it may verify later (an intermediate's validity begins)
	}
	tier.issuers.Store(c, chains[0][1])
	return chains[0][1]
}

// ReplyRoots are the roots a customer's signed reply may chain to: the registration roots and the
// roots trusted for learning (a public S/MIME CA vouches for the address it certified).
func (d *Directory) ReplyRoots() *x509.CertPool {
	p := d.roots.Clone()
	if d.learned != nil {
		for _, r := range d.learned.rootCerts {
			p.AddCert(r)
		}
	}
	return p
}

// Learnable reports whether a verified chain (leaf first) ends at a root trusted for learning and
// not at a registration root: its leaf may then be learned for outbound mail. A chain to the
// bank's own roots teaches nothing: those certificates are registered ones.
func (d *Directory) Learnable(chain []*x509.Certificate) bool {
	if d.learned == nil || len(chain) < 2 {
		return false
	}
	root := chain[len(chain)-1]
	return slices.ContainsFunc(d.learned.rootCerts, root.Equal) && !slices.ContainsFunc(d.rootCerts, root.Equal)
}
