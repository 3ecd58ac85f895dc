package outbound

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/keys"
)

// Discoverer finds the OpenPGP key a customer's provider publishes (discovery's WKD cache
// implements it): the key, keys.ErrLookupPending when the lookup outran its budget (it goes on,
// and its answer is cached for the client's retry), or another error saying why there is none.
type Discoverer interface {
	Discover(ctx context.Context, addr string) (*openpgp.Entity, error)
}

// Revocations checks a recipient's certificate against its CA's CRL or OCSP responder
// (discovery's checker implements it): nil when it is good or names neither, an error wrapping
// keys.ErrRevoked when it is revoked, or one wrapping keys.ErrRevocationUnknown when it cannot be
// checked now.
type Revocations interface {
	CheckCertificate(ctx context.Context, cert, issuer *x509.Certificate) error
}

// WithDiscovery looks up keys by WKD for recipients with no usable registered or learned key, in
// the classes whose policy allows discovered keys.
func WithDiscovery(d Discoverer) Option { return func(g *Pipeline) { g.discover = d } }

// WithRevocations checks every recipient certificate before it is used; a class's policy says
// what a certificate that cannot be checked means (soft-fail or hard-fail).
func WithRevocations(r Revocations) Option { return func(g *Pipeline) { g.revocations = r } }

// Revocation handling of a class: what a certificate whose status cannot be checked means.
const (
	RevocationSoftFail = "soft-fail" // use it, and count it (the default)
	RevocationHardFail = "hard-fail" // 451 4.7.5: the bank's MTA tries later
)

// allows reports whether the class may use keys of source (absent Keys: registered only).
func (p Policy) allows(source keys.Source) bool {
	return source == keys.SourceRegistered || slices.Contains(p.Keys, source)
}

// hardFail reports whether a certificate that cannot be checked is refused for now.
func (p Policy) hardFail() bool { return p.Revocation == RevocationHardFail }

// choose finds to's key in the tiers p allows: registered, then learned, then discovered.
func (s *session) choose(ctx context.Context, to string, p Policy) (keys.Choice, error) {
	c, err := s.dir.ChooseFrom(to, s.g.prefer, p.allows(keys.SourceLearned))
	if err == nil && c.Method == keys.MethodPGP && s.g.pgp == nil {
		err = &keys.RecipientError{Address: to}
	}
	if err != nil && s.g.discover != nil && s.g.pgp != nil && p.allows(keys.SourceDiscovered) {
		e, derr := s.g.discover.Discover(ctx, to)
		if derr == nil {
			return keys.Choice{Method: keys.MethodPGP, PGPKey: e, Source: keys.SourceDiscovered}, nil
		}
		if errors.Is(derr, keys.ErrLookupPending) {
			return keys.Choice{}, gateway.Refuse(451, [3]int{4, 4, 3}, "the recipient's key is being looked up, try again later",
				errors.Join(gateway.ErrKeyPending, derr))
		}
		if errors.Is(derr, keys.ErrRevoked) {
			err = fmt.Errorf("the key published by WKD is revoked: %w", derr)
		} else {
			err = fmt.Errorf("%w; WKD: %w", err, derr)
		}
	}
	if err != nil {
		return keys.Choice{}, err
	}
	if err := s.checkRevocation(ctx, c, p); err != nil {
		return keys.Choice{}, err
	}
	return c, nil
}

// checkRevocation refuses a revoked certificate like an expired one (550 5.7.1, with the reason),
// and one that cannot be checked with 451 4.7.5 when the class is hard-fail; soft-fail uses it.
func (s *session) checkRevocation(ctx context.Context, c keys.Choice, p Policy) error {
	// A certificate naming neither a CRL nor an OCSP responder has nothing to check: spare the
	// hot path the chain verification IssuerOf costs.
	if s.g.revocations == nil || c.Method != keys.MethodSMIME ||
		(len(c.Certificate.CRLDistributionPoints) == 0 && len(c.Certificate.OCSPServer) == 0) {
		return nil
	}
	issuer := s.dir.IssuerOf(c.Certificate, c.Source)
	err := s.g.revocations.CheckCertificate(ctx, c.Certificate, issuer)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keys.ErrRevoked):
		return err
	case errors.Is(err, keys.ErrRevocationUnknown) && p.hardFail():
		return gateway.Refuse(451, [3]int{4, 7, 5}, "the recipient's certificate cannot be checked for revocation now, try again later",
			errors.Join(gateway.ErrRevocationUnknown, err))
	}
	s.g.obs.RevocationUnchecked(s.class)
	s.g.log.Warn("recipient certificate used unchecked (soft-fail)", "reason", err.Error())
	return nil
}
