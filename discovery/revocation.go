package discovery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/keys"
)

// RevocationConfig is the discovery section's revocation part: whether customers' certificates
// are checked against their CA's CRL and OCSP responder, and the limits of asking.
type RevocationConfig struct {
	// Enabled checks every recipient certificate that names a CRL distribution point or an OCSP
	// responder (default on).
	Enabled bool `json:"enabled"`
	// Timeout bounds one CRL or OCSP fetch (default 2s).
	Timeout config.Duration `json:"timeout"`
	// MaxCRLBytes bounds a CRL (default 10 MiB: a CA's CRL of a hundred thousand entries).
	MaxCRLBytes int `json:"max_crl_bytes"`
	// RetryBad is how long a CRL or OCSP answer that could not be had or used is not asked for
	// again (default 5m), so that a CA's outage does not cost every RCPT a timeout.
	RetryBad config.Duration `json:"retry_bad"`
	// RefreshAhead fetches a cached CRL again this long before its nextUpdate, in the background
	// (default 1h).
	RefreshAhead config.Duration `json:"refresh_ahead"`
}

// DefaultRevocationConfig: on, 2 s, 10 MiB, bad answers retried after 5 minutes, CRLs refreshed an
// hour ahead.
func DefaultRevocationConfig() RevocationConfig {
	return RevocationConfig{Enabled: true, Timeout: config.Duration(2 * time.Second), MaxCRLBytes: 10 << 20,
		RetryBad: config.Duration(5 * time.Minute), RefreshAhead: config.Duration(time.Hour)}
}

// Validate checks c and changes nothing.
func (c RevocationConfig) Validate(prefix string) error {
	var errs []error
	bad := func(path, problem string) {
		errs = append(errs, &config.FieldError{Path: prefix + path, Problem: problem})
	}
	if c.Timeout <= 0 || time.Duration(c.Timeout) > time.Minute {
		bad("timeout", "between 0 and 1m (e.g. \"2s\")")
	}
	if c.MaxCRLBytes < 1<<10 || c.MaxCRLBytes > 256<<20 {
		bad("max_crl_bytes", "between 1 KiB and 256 MiB")
	}
	if c.RetryBad <= 0 {
		bad("retry_bad", "must be positive (e.g. \"5m\")")
	}
	if c.RefreshAhead <= 0 {
		bad("refresh_ahead", "must be positive (e.g. \"1h\"): a CRL is fetched again this long before its nextUpdate")
	}
	return errors.Join(errs...)
}

// Why a CRL or OCSP answer cannot be used. Each is also keys.ErrRevocationUnknown.
var (
	ErrFetch        = errors.New("cannot fetch")
	ErrCRLMalformed = errors.New("CRL malformed")
	ErrCRLSignature = errors.New("CRL not signed by the certificate's issuer")
	ErrCRLExpired   = errors.New("CRL past its nextUpdate")
	ErrCRLTooLarge  = errors.New("CRL too large")
	ErrCRLReplayed  = errors.New("CRL older than one already seen from its CA")
	ErrOCSPBad      = errors.New("OCSP answer unusable (malformed, unsigned, or for another certificate)")
	ErrOCSPStale    = errors.New("OCSP answer stale")
	ErrOCSPUnknown  = errors.New("OCSP responder does not know the certificate")
)

// CRL extensions (RFC 5280 5.2).
var (
	oidAuthorityKeyID           = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLNumber                = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidDeltaCRLIndicator        = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}
)

// ocspMaxAge bounds an OCSP answer without nextUpdate (RFC 6960 allows it): a week, as CAs
// refresh theirs daily to weekly.
const ocspMaxAge = 7 * 24 * time.Hour

// clockSkew is how far in the future a thisUpdate may be.
const clockSkew = 5 * time.Minute

// Checker checks certificates against their CA's OCSP responder and CRL, caching answers until
// their next update. It implements outbound.Revocations and inbound.Revocations. Close stops its
// background CRL refreshes.
type Checker struct {
	cfg  RevocationConfig
	http *http.Client
	now  func() time.Time
	log  *slog.Logger

	ctx    context.Context // ends at Close: background refreshes stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	crls     map[crlKey]*crlEntry
	ocsp     map[ocspKey]*ocspEntry
	fetching map[any]chan struct{} // a fetch in flight, by crlKey or ocspKey: others wait for it
}

// issuerID names a CA by its subject and key together: a CRL or OCSP answer verified against
// one CA is never used for another that shares its name (or its distribution point).
type issuerID [sha256.Size]byte

func idOf(issuer *x509.Certificate) issuerID {
	h := sha256.New()
	h.Write(issuer.RawSubject)
	h.Write(issuer.RawSubjectPublicKeyInfo)
	return issuerID(h.Sum(nil))
}

type crlKey struct {
	url    string
	issuer issuerID
}

type ocspKey struct {
	url    string
	issuer issuerID
	serial string
}

type crlEntry struct {
	revoked   map[string]x509.RevocationListEntry // by serial, decimal
	next      time.Time
	refreshAt time.Time // from here on a check fetches it again in the background
	err       error     // the last fetch's failure, until errUntil
	errUntil  time.Time
	// The newest CRL seen from this CA at this URL, kept across failures: an older one (a
	// replay, or a stale mirror) is refused even while still within its own nextUpdate, since it
	// may lack revocations the newer one has.
	number     *big.Int
	thisUpdate time.Time
	refreshing bool
}

type ocspEntry struct {
	resp     *ocsp.Response
	err      error
	errUntil time.Time
}

// CheckerOption configures a Checker.
type CheckerOption func(*Checker)

// WithCheckerHTTPClient fetches with c (tests).
func WithCheckerHTTPClient(c *http.Client) CheckerOption { return func(k *Checker) { k.http = c } }

// WithCheckerClock sets the clock answers are judged at.
func WithCheckerClock(now func() time.Time) CheckerOption { return func(k *Checker) { k.now = now } }

// WithCheckerLogger sets the logger.
func WithCheckerLogger(l *slog.Logger) CheckerOption { return func(k *Checker) { k.log = l } }

// NewChecker returns a checker with cfg's limits.
func NewChecker(cfg RevocationConfig, opts ...CheckerOption) (*Checker, error) {
	if err := cfg.Validate("discovery.revocation."); err != nil {
		return nil, err
	}
	c := &Checker{cfg: cfg, now: time.Now, log: slog.Default(),
		crls: map[crlKey]*crlEntry{}, ocsp: map[ocspKey]*ocspEntry{}, fetching: map[any]chan struct{}{},
		// One request per connection: OCSP responders (openssl ocsp among them) close after each
		// answer, and a POST on a reused, closed connection is not retried.
		http: &http.Client{Timeout: time.Duration(cfg.Timeout), Transport: &http.Transport{DisableKeepAlives: true, Proxy: http.ProxyFromEnvironment},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Close stops background refreshes and waits for those running. Checks still answer from the
// cache and fetch what they must.
func (c *Checker) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}

// CheckCertificate says whether cert, issued by issuer, is revoked: nil when an answer says it is
// good or it names neither an OCSP responder nor an http CRL distribution point; a
// *keys.RevocationError when revoked; else an error that Is keys.ErrRevocationUnknown.
func (c *Checker) CheckCertificate(ctx context.Context, cert, issuer *x509.Certificate) error {
	crlURLs := httpURLs(cert.CRLDistributionPoints)
	ocspURLs := httpURLs(cert.OCSPServer)
	if len(crlURLs) == 0 && len(ocspURLs) == 0 {
		return nil
	}
	if issuer == nil {
		return fmt.Errorf("%w: the issuer of %s is not known", keys.ErrRevocationUnknown, cert.Subject)
	}
	var errs []error
	for _, u := range ocspURLs {
		err := c.checkOCSP(ctx, u, cert, issuer)
		if !errors.Is(err, keys.ErrRevocationUnknown) {
			return err
		}
		errs = append(errs, err)
	}
	for _, u := range crlURLs {
		err := c.checkCRL(ctx, u, cert, issuer)
		if !errors.Is(err, keys.ErrRevocationUnknown) {
			return err
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// httpURLs are the http(s) URLs of us (ldap and others are not fetched).
func httpURLs(us []string) []string {
	var out []string
	for _, u := range us {
		if l := strings.ToLower(u); strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://") {
			out = append(out, u)
		}
	}
	return out
}

// unknown wraps why as keys.ErrRevocationUnknown for u.
func unknown(why error, u string, detail any) error {
	if err, ok := detail.(error); ok { // kept, so that errors.Is finds context.DeadlineExceeded
		return fmt.Errorf("%w: %w at %s: %w", keys.ErrRevocationUnknown, why, u, err)
	}
	return fmt.Errorf("%w: %w at %s: %v", keys.ErrRevocationUnknown, why, u, detail)
}

func revoked(cert *x509.Certificate, at time.Time, reason int, source string) error {
	return &keys.RevocationError{Subject: cert.Subject.String(), Serial: cert.SerialNumber.Text(16), At: at, Reason: reasonName(reason), Source: source}
}

// checkCRL answers from the CRL at u, cached until its nextUpdate.
func (c *Checker) checkCRL(ctx context.Context, u string, cert, issuer *x509.Certificate) error {
	e, err := c.crl(ctx, crlKey{u, idOf(issuer)}, u, issuer)
	if err != nil {
		return err
	}
	if r, ok := e.revoked[cert.SerialNumber.String()]; ok {
		return revoked(cert, r.RevocationTime, r.ReasonCode, "crl")
	}
	return nil
}

// crl is the CRL cached for k while it is current (starting its refresh in the background once
// due), else fetched: one fetch at a time per k, other checks waiting for its result.
func (c *Checker) crl(ctx context.Context, k crlKey, u string, issuer *x509.Certificate) (*crlEntry, error) {
	for {
		now := c.now()
		c.mu.Lock()
		e := c.crls[k]
		switch {
		case e != nil && e.err == nil && now.Before(e.next):
			if !now.Before(e.refreshAt) && !e.refreshing && c.ctx.Err() == nil {
				e.refreshing = true
				c.wg.Add(1)
				go c.refreshCRL(k, u, issuer)
			}
			c.mu.Unlock()
			return e, nil
		case e != nil && e.err != nil && now.Before(e.errUntil):
			c.mu.Unlock()
			return nil, e.err
		}
		done, lead := c.lead(k)
		c.mu.Unlock()
		if !lead {
			if err := waitFor(ctx, done, u); err != nil {
				return nil, err
			}
			continue
		}
		list, err := c.getCRL(ctx, u, issuer)
		c.mu.Lock()
		e = c.keepCRL(k, u, list, err)
		c.landed(k, done)
		c.mu.Unlock()
		if e.err != nil {
			return nil, e.err
		}
		return e, nil
	}
}

// lead, with c.mu held, makes the caller the one fetching k (lead true: it calls landed when the
// result is cached) or says which fetch to wait for.
func (c *Checker) lead(k any) (done chan struct{}, lead bool) {
	if done, busy := c.fetching[k]; busy {
		return done, false
	}
	done = make(chan struct{})
	c.fetching[k] = done
	return done, true
}

// landed, with c.mu held, ends the fetch of k: its waiters read the cache again.
func (c *Checker) landed(k any, done chan struct{}) {
	delete(c.fetching, k)
	close(done)
}

// waitFor waits for another check's fetch of u to land, or for ctx.
func waitFor(ctx context.Context, done <-chan struct{}, u string) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return unknown(ErrFetch, u, ctx.Err())
	}
}

// refreshCRL fetches the CRL at u again while the cached one is still used.
func (c *Checker) refreshCRL(k crlKey, u string, issuer *x509.Certificate) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, time.Duration(c.cfg.Timeout))
	defer cancel()
	list, err := c.getCRL(ctx, u, issuer)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keepCRL(k, u, list, err)
}

// keepCRL, with c.mu held, caches the outcome of fetching the CRL at u and returns the entry now
// in use. A failure, or a CRL older than one already seen, leaves a still-current cached CRL in
// use (asked for again after RetryBad); with none, the failure is cached for RetryBad.
func (c *Checker) keepCRL(k crlKey, u string, list *x509.RevocationList, err error) *crlEntry {
	now, retry := c.now(), time.Duration(c.cfg.RetryBad)
	old := c.crls[k]
	if err == nil && old != nil && old.olderThanSeen(list) {
		err = unknown(ErrCRLReplayed, u, fmt.Sprintf("number %v, thisUpdate %s; already seen number %v, thisUpdate %s",
			list.Number, list.ThisUpdate.UTC().Format(time.RFC3339), old.number, old.thisUpdate.UTC().Format(time.RFC3339)))
	}
	if err != nil {
		if old != nil && old.err == nil && now.Before(old.next) {
			c.log.Warn("CRL refresh refused; the cached one is used until its nextUpdate", "url", u, "err", err.Error())
			old.refreshing, old.refreshAt = false, minTime(now.Add(retry), old.next)
			return old
		}
		c.log.Warn("CRL refused", "url", u, "err", err.Error())
		e := &crlEntry{err: err, errUntil: now.Add(retry)}
		if old != nil {
			e.number, e.thisUpdate = old.number, old.thisUpdate
		}
		c.putCRL(k, e)
		return e
	}
	e := &crlEntry{next: list.NextUpdate, number: list.Number, thisUpdate: list.ThisUpdate,
		revoked: make(map[string]x509.RevocationListEntry, len(list.RevokedCertificateEntries))}
	for _, r := range list.RevokedCertificateEntries {
		e.revoked[r.SerialNumber.String()] = r
	}
	// Refreshed RefreshAhead before nextUpdate, or half-way through a shorter validity; never
	// sooner than RetryBad from now (a CA that has not yet published a newer CRL is not asked on
	// every check).
	ahead := min(time.Duration(c.cfg.RefreshAhead), list.NextUpdate.Sub(list.ThisUpdate)/2)
	e.refreshAt = minTime(maxTime(list.NextUpdate.Add(-ahead), now.Add(retry)), list.NextUpdate)
	c.putCRL(k, e)
	return e
}

// olderThanSeen reports whether list is older than the newest CRL e has seen: by CRL number
// when both have one, else by thisUpdate.
func (e *crlEntry) olderThanSeen(list *x509.RevocationList) bool {
	if e.number != nil && list.Number != nil {
		return list.Number.Cmp(e.number) < 0
	}
	return !e.thisUpdate.IsZero() && list.ThisUpdate.Before(e.thisUpdate)
}

func (c *Checker) putCRL(k crlKey, e *crlEntry) {
	c.crls[k] = e
	if len(c.crls) > maxCached {
		evictOne(c.crls, k)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// maxCached bounds each cache: far more CAs and certificates than a bank's customers use.
const maxCached = 10000

// evictOne drops one entry of m other than keep.
func evictOne[K comparable, V any](m map[K]V, keep K) {
	for k := range m {
		if k != keep {
			delete(m, k)
			return
		}
	}
}

// getCRL fetches the CRL at u and checks it: DER (or PEM), signed by issuer, current.
func (c *Checker) getCRL(ctx context.Context, u string, issuer *x509.Certificate) (*x509.RevocationList, error) {
	body, err := c.get(ctx, http.MethodGet, u, "", nil, c.cfg.MaxCRLBytes, ErrCRLTooLarge)
	if err != nil {
		return nil, err
	}
	return parseCRL(body, issuer, c.now(), u)
}

// parseCRL is a CRL body checked against issuer at now.
func parseCRL(body []byte, issuer *x509.Certificate, now time.Time, u string) (*x509.RevocationList, error) {
	if b := bytes.TrimSpace(body); bytes.HasPrefix(b, []byte("-----BEGIN X509 CRL-----")) {
		if der, err := decodePEMBlock(b, "X509 CRL"); err == nil {
			body = der
		}
	}
	list, err := x509.ParseRevocationList(body)
	if err != nil {
		return nil, unknown(ErrCRLMalformed, u, err)
	}
	if !bytes.Equal(list.RawIssuer, issuer.RawSubject) {
		return nil, unknown(ErrCRLSignature, u, "the CRL names another issuer")
	}
	if err := list.CheckSignatureFrom(issuer); err != nil {
		return nil, unknown(ErrCRLSignature, u, err)
	}
	// A delta CRL or one partition of a CRL is not the complete list: used as one, it would make
	// a revoked certificate good. RFC 5280 5.2: a critical extension not understood refuses it.
	for _, ext := range list.Extensions {
		switch {
		case ext.Id.Equal(oidDeltaCRLIndicator), ext.Id.Equal(oidIssuingDistributionPoint):
			return nil, unknown(ErrCRLMalformed, u, "a delta or partitioned CRL ("+ext.Id.String()+"), not a complete one")
		case ext.Critical && !ext.Id.Equal(oidAuthorityKeyID) && !ext.Id.Equal(oidCRLNumber):
			return nil, unknown(ErrCRLMalformed, u, "unknown critical extension "+ext.Id.String())
		}
	}
	if list.ThisUpdate.After(now.Add(clockSkew)) {
		return nil, unknown(ErrCRLMalformed, u, "thisUpdate in the future")
	}
	if list.NextUpdate.IsZero() || !now.Before(list.NextUpdate) {
		return nil, unknown(ErrCRLExpired, u, "nextUpdate "+list.NextUpdate.UTC().Format(time.RFC3339))
	}
	return list, nil
}

// checkOCSP asks the responder at u, answers cached until their nextUpdate: one question at a
// time per certificate, other checks waiting for its answer.
func (c *Checker) checkOCSP(ctx context.Context, u string, cert, issuer *x509.Certificate) error {
	k := ocspKey{u, idOf(issuer), cert.SerialNumber.String()}
	var e *ocspEntry
	for {
		now := c.now()
		c.mu.Lock()
		e = c.ocsp[k]
		if e != nil && ((e.err != nil && now.Before(e.errUntil)) || (e.err == nil && fresh(e.resp, now))) {
			c.mu.Unlock()
			break
		}
		done, lead := c.lead(k)
		c.mu.Unlock()
		if !lead {
			if err := waitFor(ctx, done, u); err != nil {
				return err
			}
			continue
		}
		resp, err := c.askOCSP(ctx, u, cert, issuer)
		e = &ocspEntry{resp: resp, err: err}
		if err != nil {
			e.errUntil = c.now().Add(time.Duration(c.cfg.RetryBad))
			c.log.Warn("OCSP answer refused", "url", u, "err", err.Error())
		}
		c.mu.Lock()
		c.ocsp[k] = e
		if len(c.ocsp) > maxCached {
			evictOne(c.ocsp, k)
		}
		c.landed(k, done)
		c.mu.Unlock()
		break
	}
	if e.err != nil {
		return e.err
	}
	switch e.resp.Status {
	case ocsp.Good:
		return nil
	case ocsp.Revoked:
		return revoked(cert, e.resp.RevokedAt, e.resp.RevocationReason, "ocsp")
	}
	return unknown(ErrOCSPUnknown, u, "status unknown")
}

// fresh reports whether an OCSP answer may be used at now.
func fresh(r *ocsp.Response, now time.Time) bool {
	if r.ThisUpdate.After(now.Add(clockSkew)) {
		return false
	}
	if r.NextUpdate.IsZero() {
		return now.Before(r.ThisUpdate.Add(ocspMaxAge))
	}
	return now.Before(r.NextUpdate)
}

// askOCSP sends one request and checks the answer: signed by issuer or its delegated responder,
// about cert, fresh.
func (c *Checker) askOCSP(ctx context.Context, u string, cert, issuer *x509.Certificate) (*ocsp.Response, error) {
	req, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return nil, unknown(ErrOCSPBad, u, err)
	}
	body, err := c.get(ctx, http.MethodPost, u, "application/ocsp-request", req, ocspMaxBytes, ErrOCSPBad)
	if err != nil {
		return nil, err
	}
	return parseOCSP(body, cert, issuer, c.now(), u)
}

// ocspMaxBytes bounds an OCSP answer: a signed response with a responder certificate is ~2 KiB.
const ocspMaxBytes = 64 << 10

// parseOCSP is an OCSP answer checked for cert and issuer at now.
func parseOCSP(body []byte, cert, issuer *x509.Certificate, now time.Time, u string) (resp *ocsp.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, unknown(ErrOCSPBad, u, r)
		}
	}()
	// Parsed without the issuer: x/crypto would then accept a responder certificate merely
	// because the issuer signed it (any customer's certificate, or the revoked one's own), and
	// refuse the issuer itself as responder. The responder is judged below, by RFC 6960 4.2.2.2.
	resp, err = ocsp.ParseResponseForCert(body, cert, nil)
	if err != nil {
		return nil, unknown(ErrOCSPBad, u, err)
	}
	if err := checkResponder(resp, issuer, now); err != nil {
		return nil, unknown(ErrOCSPBad, u, err)
	}
	if resp.SerialNumber == nil || resp.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		return nil, unknown(ErrOCSPBad, u, "answer for another serial")
	}
	if !fresh(resp, now) {
		return nil, unknown(ErrOCSPStale, u, fmt.Sprintf("thisUpdate %s, nextUpdate %s", resp.ThisUpdate.UTC().Format(time.RFC3339), resp.NextUpdate.UTC().Format(time.RFC3339)))
	}
	return resp, nil
}

// checkResponder accepts an OCSP answer signed by the issuer itself, or by a responder certificate
// the issuer issued with id-kp-OCSPSigning that is valid at now (a delegated responder). An
// embedded certificate has already verified the answer's signature (ParseResponseForCert).
func checkResponder(resp *ocsp.Response, issuer *x509.Certificate, now time.Time) error {
	r := resp.Certificate
	if r == nil {
		return resp.CheckSignatureFrom(issuer)
	}
	if bytes.Equal(r.RawSubjectPublicKeyInfo, issuer.RawSubjectPublicKeyInfo) && bytes.Equal(r.RawSubject, issuer.RawSubject) {
		return nil // the issuer answering for itself
	}
	if err := r.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("responder certificate not issued by the certificate's issuer: %w", err)
	}
	if !slices.Contains(r.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return errors.New("responder certificate lacks id-kp-OCSPSigning: not a delegated OCSP responder")
	}
	if now.Before(r.NotBefore) || now.After(r.NotAfter) {
		return errors.New("responder certificate not valid now")
	}
	return nil
}

// get fetches u (POSTing body when method is POST) within max bytes.
func (c *Checker) get(ctx context.Context, method, u, contentType string, body []byte, max int, tooLarge error) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.cfg.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, unknown(ErrFetch, u, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, unknown(ErrFetch, u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, unknown(ErrFetch, u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(max)+1))
	if err != nil {
		return nil, unknown(ErrFetch, u, err)
	}
	if len(b) > max {
		return nil, unknown(tooLarge, u, fmt.Sprintf("more than %d bytes", max))
	}
	return b, nil
}

// reasonName is an RFC 5280 CRLReason's name.
func reasonName(r int) string {
	names := map[int]string{0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged", 4: "superseded",
		5: "cessationOfOperation", 6: "certificateHold", 8: "removeFromCRL", 9: "privilegeWithdrawn", 10: "aACompromise"}
	if n, ok := names[r]; ok {
		return n
	}
	return ""
}

// decodePEMBlock is the DER of the first PEM block of type typ in b.
func decodePEMBlock(b []byte, typ string) ([]byte, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != typ {
		return nil, errors.New("not a PEM " + typ)
	}
	return block.Bytes, nil
}
