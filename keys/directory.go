package keys

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/address"
)

// Directory maps recipients' addresses to their S/MIME certificates and OpenPGP keys and decides
// which may be used. It is immutable once built, so it is safe for concurrent use; a reload builds a
// new one.
//
// Addresses match without regard to case (see address.Key). When the directory knows an address in
// the spelling asked for (a certificate or a user ID that is not revoked names it exactly), only
// the keys under that spelling are candidates, of both methods; otherwise the keys of every case
// variant are.
//
// OpenPGP keys have no certificate authority: a key is trusted for the addresses in its user IDs
// because the operator imported it. Only user IDs with a valid self-signature (go-crypto verifies them
// while parsing) are indexed, and a user ID revoked at the directory's clock no longer names its
// address.
type Directory struct {
	roots         *x509.CertPool
	intermediates *x509.CertPool
	byAddress     map[string][]*x509.Certificate // by normalised address, as spelt
	certs         []*x509.Certificate
	pgpByAddress  map[string][]pgpCandidate // by normalised address, as spelt
	pgpKeys       []*openpgp.Entity
	spellings     map[string][]string // address.Key → the normalised spellings indexed under it
	now           func() time.Time
	learned       *Directory // WithLearned: the learned tier, with its own roots
	rootCerts     []*x509.Certificate
	issuers       *sync.Map // *x509.Certificate → its issuer, as IssuerOf found it
}

// pgpCandidate is one OpenPGP key with its user IDs that name one address.
type pgpCandidate struct {
	key *openpgp.Entity
	ids []*openpgp.Identity
}

// DirectoryOption configures a Directory.
type DirectoryOption func(*Directory)

// WithClock sets the clock used to judge validity (tests, and "valid at" checks).
func WithClock(now func() time.Time) DirectoryOption { return func(d *Directory) { d.now = now } }

// WithPGPKeys adds recipients' OpenPGP keys (their public parts are all that is used). Two copies of
// the same key are merged, so a revocation in either one counts.
func WithPGPKeys(keys ...*openpgp.Entity) DirectoryOption {
	return func(d *Directory) { d.pgpKeys = append(d.pgpKeys, keys...) }
}

// NewDirectory indexes certs by their rfc822Name SANs, and OpenPGP keys given WithPGPKeys by the
// email addresses of their user IDs. CA certificates among certs are used as intermediates, not as
// recipients. roots are the trust anchors for certificates.
func NewDirectory(roots []*x509.Certificate, certs []*x509.Certificate, opts ...DirectoryOption) *Directory {
	d := &Directory{
		roots:         x509.NewCertPool(),
		intermediates: x509.NewCertPool(),
		byAddress:     map[string][]*x509.Certificate{},
		pgpByAddress:  map[string][]pgpCandidate{},
		spellings:     map[string][]string{},
		now:           time.Now,
		issuers:       &sync.Map{},
	}
	for _, o := range opts {
		o(d)
	}
	for _, r := range roots {
		d.roots.AddCert(r)
	}
	d.rootCerts = roots
	for _, c := range certs {
		if c.IsCA {
			d.intermediates.AddCert(c)
			continue
		}
		if slices.ContainsFunc(d.certs, c.Equal) {
			continue // in recipients/ and in the shared directory both
		}
		d.certs = append(d.certs, c)
		for _, a := range c.EmailAddresses {
			n, err := address.Normalize(a)
			if err != nil {
				continue
			}
			if !slices.ContainsFunc(d.byAddress[n], c.Equal) {
				d.byAddress[n] = append(d.byAddress[n], c)
				d.addSpelling(n)
			}
		}
	}
	d.pgpKeys = dedupePGP(d.pgpKeys)
	for _, e := range d.pgpKeys {
		byAddr := map[string]*pgpCandidate{}
		var order []string
		for _, id := range sortedIdentities(e) {
			a, ok := pgpAddress(id)
			if !ok || id.SelfSignature == nil {
				continue
			}
			if byAddr[a] == nil {
				byAddr[a] = &pgpCandidate{key: e}
				order = append(order, a)
			}
			byAddr[a].ids = append(byAddr[a].ids, id)
		}
		for _, a := range order {
			d.pgpByAddress[a] = append(d.pgpByAddress[a], *byAddr[a])
			d.addSpelling(a)
		}
	}
	return d
}

// addSpelling records the normalised address n under its address.Key.
func (d *Directory) addSpelling(n string) {
	k := address.Fold(n)
	if !slices.Contains(d.spellings[k], n) {
		d.spellings[k] = append(d.spellings[k], n)
	}
}

// match returns addr normalised and the spellings whose keys a lookup of addr considers: addr's
// own when the directory names it exactly at now, else every spelling under its address.Key.
func (d *Directory) match(addr string, now time.Time) (string, []string, error) {
	n, err := address.Normalize(addr)
	if err != nil {
		return "", nil, fmt.Errorf("recipient %q: %w", addr, err)
	}
	if d.namesExactly(n, now) {
		return n, []string{n}, nil
	}
	return n, d.spellings[address.Fold(n)], nil
}

// namesExactly says whether a certificate, or an OpenPGP user ID not revoked at now, names the
// normalised address n spelt exactly so.
func (d *Directory) namesExactly(n string, now time.Time) bool {
	if len(d.byAddress[n]) > 0 {
		return true
	}
	for _, c := range d.pgpByAddress[n] {
		for _, id := range c.ids {
			if !pgpRevoked(id.Revocations, now) {
				return true
			}
		}
	}
	return false
}

// certificatesFor returns the certificates indexed under any of spellings, each once.
func (d *Directory) certificatesFor(spellings []string) []*x509.Certificate {
	var out []*x509.Certificate
	for _, s := range spellings {
		for _, c := range d.byAddress[s] {
			if !slices.ContainsFunc(out, c.Equal) {
				out = append(out, c)
			}
		}
	}
	return out
}

// dedupePGP drops keys without a primary key and merges copies of the same key.
func dedupePGP(keys []*openpgp.Entity) []*openpgp.Entity {
	var out []*openpgp.Entity
	at := map[string]int{}
	for _, e := range keys {
		if e == nil || e.PrimaryKey == nil {
			continue
		}
		fp := pgpFingerprint(e)
		i, seen := at[fp]
		if !seen {
			at[fp] = len(out)
			out = append(out, e)
			continue
		}
		if m, err := mergePGP(out[i], e); err == nil {
			out[i] = m
		} else if len(e.Revocations) > 0 {
			out[i] = e // cannot merge: keep the copy that says the key is revoked
		}
	}
	return out
}

// Lookup returns the certificate to encrypt to for addr: among the usable ones that name it (see
// Directory for case variants), the one that expires last. Otherwise it returns a *RecipientError
// saying why each known certificate was refused.
func (d *Directory) Lookup(addr string) (*x509.Certificate, error) {
	n, spellings, err := d.match(addr, d.now())
	if err != nil {
		return nil, err
	}
	var best *x509.Certificate
	rerr := &RecipientError{Address: n}
	for _, c := range d.certificatesFor(spellings) {
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
func (d *Directory) Check(c *x509.Certificate) *KeyError {
	now := d.now()
	fail := func(reason error, detail string) *KeyError {
		return &KeyError{Subject: c.Subject.String(), Serial: c.SerialNumber.Text(16),
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

// Entry describes one recipient certificate or OpenPGP key for listing. Exactly one of Certificate
// and PGPKey is set.
type Entry struct {
	Certificate *x509.Certificate
	PGPKey      *openpgp.Entity
	Addresses   []string  // for an OpenPGP key: of its user IDs not revoked, primary first
	Problem     *KeyError // nil when usable
	Source      Source    // SourceRegistered, or SourceLearned for Learned's
	pgpExpires  time.Time
}

// Kind says whether the entry is a certificate (MethodSMIME) or an OpenPGP key (MethodPGP).
func (e Entry) Kind() Method {
	if e.PGPKey != nil {
		return MethodPGP
	}
	return MethodSMIME
}

// Expires returns when the entry stops being usable for encryption: a certificate's NotAfter; for an
// OpenPGP key, the earlier of the primary key's and the encryption subkey's expiry. The zero time
// means never.
func (e Entry) Expires() time.Time {
	if e.PGPKey != nil {
		return e.pgpExpires
	}
	if e.Certificate != nil {
		return e.Certificate.NotAfter
	}
	return time.Time{}
}

// Subject names the entry for the operator: the certificate's subject, or the OpenPGP key's primary
// user ID (control characters replaced, cut at 200 characters).
func (e Entry) Subject() string {
	if e.PGPKey != nil {
		return primaryName(e.PGPKey)
	}
	if e.Certificate != nil {
		return e.Certificate.Subject.String()
	}
	return ""
}

// ID identifies the entry: the certificate's hex serial number, or the OpenPGP fingerprint in
// upper-case hex (as gpg shows it).
func (e Entry) ID() string {
	if e.PGPKey != nil {
		return pgpFingerprint(e.PGPKey)
	}
	if e.Certificate != nil {
		return e.Certificate.SerialNumber.Text(16)
	}
	return ""
}

// Entries lists every recipient certificate and OpenPGP key, ordered by first address, then expiry
// (never last), then S/MIME before OpenPGP.
func (d *Directory) Entries() []Entry {
	now := d.now()
	out := make([]Entry, 0, len(d.certs)+len(d.pgpKeys))
	for _, c := range d.certs {
		e := Entry{Certificate: c, Addresses: c.EmailAddresses, Source: SourceRegistered}
		if p := d.Check(c); p != nil {
			e.Problem = p
		}
		out = append(out, e)
	}
	for _, k := range d.pgpKeys {
		out = append(out, Entry{PGPKey: k, Addresses: PGPAddresses(k, now), Problem: d.CheckPGP(k), Source: SourceRegistered, pgpExpires: pgpExpiry(k, now)})
	}
	sort.SliceStable(out, func(i, j int) bool {
		ai, aj := first(out[i].Addresses), first(out[j].Addresses)
		if ai != aj {
			return ai < aj
		}
		ei, ej := out[i].Expires(), out[j].Expires()
		if !ei.Equal(ej) {
			return !ei.IsZero() && (ej.IsZero() || ei.Before(ej))
		}
		return out[i].Kind() < out[j].Kind()
	})
	return out
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// PGPKeys returns the recipients' OpenPGP keys (public parts, copies merged), for verifying
// customers' signatures.
func (d *Directory) PGPKeys() openpgp.EntityList {
	return append(openpgp.EntityList(nil), d.pgpKeys...)
}

// Roots returns the directory's trust anchors as a pool (a copy, safe to keep).
func (d *Directory) Roots() *x509.CertPool { return d.roots.Clone() }

// Intermediates returns the CA certificates given to NewDirectory as a pool (a copy).
func (d *Directory) Intermediates() *x509.CertPool { return d.intermediates.Clone() }

// CertFingerprint is how sealpost names a certificate: the upper-case hex SHA-256 of its DER.
func CertFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// PGPFingerprint is how sealpost names an OpenPGP key: its primary key's fingerprint, upper-case hex.
func PGPFingerprint(e *openpgp.Entity) string { return pgpFingerprint(e) }
