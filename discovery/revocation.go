package discovery

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	if c.RefreshAhead < 0 {
		bad("refresh_ahead", "must not be negative")
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
// their next update. It implements outbound.Revocations and inbound.Revocations.
type Checker struct {
	cfg  RevocationConfig
	http *http.Client
	now  func() time.Time
	log  *slog.Logger

	mu   sync.Mutex
	crls map[string]*crlEntry // by distribution point URL
	ocsp map[string]*ocspEntry
}

type crlEntry struct {
	revoked    map[string]x509.RevocationListEntry // by serial, decimal
	next       time.Time
	issuer     []byte // the issuer's raw subject it was verified against
	err        error  // the last fetch's failure, until errUntil
	errUntil   time.Time
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
	c := &Checker{cfg: cfg, now: time.Now, log: slog.Default(), crls: map[string]*crlEntry{}, ocsp: map[string]*ocspEntry{},
		// One request per connection: OCSP responders (openssl ocsp among them) close after each
		// answer, and a POST on a reused, closed connection is not retried.
		http: &http.Client{Timeout: time.Duration(cfg.Timeout), Transport: &http.Transport{DisableKeepAlives: true, Proxy: http.ProxyFromEnvironment},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
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
	return fmt.Errorf("%w: %w at %s: %v", keys.ErrRevocationUnknown, why, u, detail)
}

func revoked(cert *x509.Certificate, at time.Time, reason int, source string) error {
	return &keys.RevocationError{Subject: cert.Subject.String(), Serial: cert.SerialNumber.Text(16), At: at, Reason: reasonName(reason), Source: source}
}

// checkCRL answers from the CRL at u, cached until its nextUpdate.
func (c *Checker) checkCRL(ctx context.Context, u string, cert, issuer *x509.Certificate) error {
	now := c.now()
	c.mu.Lock()
	e := c.crls[u]
	c.mu.Unlock()
	if e == nil || (e.err == nil && !now.Before(e.next)) || (e.err != nil && !now.Before(e.errUntil)) {
		e = c.fetchCRL(ctx, u, issuer)
	} else if e.err == nil && !now.Before(e.next.Add(-time.Duration(c.cfg.RefreshAhead))) {
		c.refreshCRL(u, issuer, e)
	}
	if e.err != nil {
		return e.err
	}
	if !bytes.Equal(e.issuer, issuer.RawSubject) {
		return unknown(ErrCRLSignature, u, "the CRL is another CA's")
	}
	if r, ok := e.revoked[cert.SerialNumber.String()]; ok {
		return revoked(cert, r.RevocationTime, r.ReasonCode, "crl")
	}
	return nil
}

// refreshCRL fetches u again in the background, once, while the cached list is still used.
func (c *Checker) refreshCRL(u string, issuer *x509.Certificate, e *crlEntry) {
	c.mu.Lock()
	if e.refreshing {
		c.mu.Unlock()
		return
	}
	e.refreshing = true
	c.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.cfg.Timeout))
		defer cancel()
		if fresh := c.fetchCRL(ctx, u, issuer); fresh.err != nil {
			c.log.Warn("CRL refresh failed; the cached one is used until its nextUpdate", "url", u, "err", fresh.err.Error())
			c.mu.Lock()
			c.crls[u], e.refreshing = e, false
			c.mu.Unlock()
		}
	}()
}

// fetchCRL fetches, verifies and caches the CRL at u: a failure is cached for RetryBad.
func (c *Checker) fetchCRL(ctx context.Context, u string, issuer *x509.Certificate) *crlEntry {
	e := &crlEntry{}
	list, err := c.getCRL(ctx, u, issuer)
	if err != nil {
		e.err, e.errUntil = err, c.now().Add(time.Duration(c.cfg.RetryBad))
		c.log.Warn("CRL refused", "url", u, "err", err.Error())
	} else {
		e.next, e.issuer = list.NextUpdate, issuer.RawSubject
		e.revoked = make(map[string]x509.RevocationListEntry, len(list.RevokedCertificateEntries))
		for _, r := range list.RevokedCertificateEntries {
			e.revoked[r.SerialNumber.String()] = r
		}
	}
	c.mu.Lock()
	c.crls[u] = e
	if len(c.crls) > maxCached {
		evictOne(c.crls, u)
	}
	c.mu.Unlock()
	return e
}

// maxCached bounds each cache: far more CAs and certificates than a bank's customers use.
const maxCached = 10000

// evictOne drops one entry of m other than keep.
func evictOne[V any](m map[string]V, keep string) {
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

// checkOCSP asks the responder at u, answers cached until their nextUpdate.
func (c *Checker) checkOCSP(ctx context.Context, u string, cert, issuer *x509.Certificate) error {
	key := u + " " + string(issuer.RawSubject) + " " + cert.SerialNumber.String()
	now := c.now()
	c.mu.Lock()
	e := c.ocsp[key]
	c.mu.Unlock()
	if e == nil || (e.err != nil && !now.Before(e.errUntil)) || (e.err == nil && !fresh(e.resp, now)) {
		resp, err := c.askOCSP(ctx, u, cert, issuer)
		e = &ocspEntry{resp: resp, err: err}
		if err != nil {
			e.errUntil = now.Add(time.Duration(c.cfg.RetryBad))
			c.log.Warn("OCSP answer refused", "url", u, "err", err.Error())
		}
		c.mu.Lock()
		c.ocsp[key] = e
		if len(c.ocsp) > maxCached {
			evictOne(c.ocsp, key)
		}
		c.mu.Unlock()
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
