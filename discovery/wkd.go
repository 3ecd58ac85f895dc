package discovery

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/keys"
)

// zbase32 is the z-base-32 alphabet (RFC 6189) the WKD hash is written in.
const zbase32 = "ybndrfg8ejkmcpqxot1uwisza345h769"

// WKDHash is the Web Key Directory name of a local part: the z-base-32 encoding of the SHA-1 of
// the local part with ASCII letters lower-cased (draft-koch-openpgp-webkey-service, 3.1).
func WKDHash(local string) string {
	// ASCII letters only, as the draft and GnuPG do: a Unicode lower-casing would give another
	// hash for an SMTPUTF8 local part.
	b := []byte(local)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	sum := sha1.Sum(b)
	var out strings.Builder
	var acc, bits uint
	for _, b := range sum {
		acc, bits = acc<<8|uint(b), bits+8
		for bits >= 5 {
			bits -= 5
			out.WriteByte(zbase32[(acc>>bits)&31])
		}
	}
	if bits > 0 {
		out.WriteByte(zbase32[(acc<<(5-bits))&31])
	}
	return out.String()
}

// WKDURLs are the two places a key for addr is published: the advanced method's
// (openpgpkey.DOMAIN) and the direct method's (DOMAIN), each with the l= parameter.
func WKDURLs(addr string) (advanced, direct string, err error) {
	local, domain, ok := address.Split(addr)
	if !ok || local == "" || domain == "" {
		return "", "", fmt.Errorf("%q is not local@domain", addr)
	}
	domain = strings.ToLower(domain)
	h, l := WKDHash(local), url.QueryEscape(local)
	advanced = "https://openpgpkey." + domain + "/.well-known/openpgpkey/" + domain + "/hu/" + h + "?l=" + l
	direct = "https://" + domain + "/.well-known/openpgpkey/hu/" + h + "?l=" + l
	return advanced, direct, nil
}

// WKDConfig are the WKD client's limits.
type WKDConfig struct {
	// Timeout bounds one lookup, both methods together (default 5s; RCPT waits only the cache's
	// budget, the lookup goes on for its answer to be cached).
	Timeout config.Duration `json:"timeout"`
	// MaxBytes bounds an answer (default 256 KiB: a key with its signatures is far smaller).
	MaxBytes int `json:"max_bytes"`
}

// DefaultWKDConfig: 5 s, 256 KiB.
func DefaultWKDConfig() WKDConfig {
	return WKDConfig{Timeout: config.Duration(5 * time.Second), MaxBytes: 256 << 10}
}

// Validate checks c and changes nothing.
func (c WKDConfig) Validate() error {
	var errs []error
	if c.Timeout <= 0 || time.Duration(c.Timeout) > time.Minute {
		errs = append(errs, &config.FieldError{Path: "discovery.wkd.client.timeout", Problem: "between 0 and 1m (e.g. \"5s\")"})
	}
	if c.MaxBytes < 1<<10 || c.MaxBytes > 16<<20 {
		errs = append(errs, &config.FieldError{Path: "discovery.wkd.client.max_bytes", Problem: "between 1 KiB and 16 MiB (e.g. 262144)"})
	}
	return errors.Join(errs...)
}

// Why a WKD answer gives no key.
var (
	// ErrWKDNotFound: neither method publishes a key for the address (404, or no such host).
	ErrWKDNotFound = errors.New("no key published by WKD")
	// ErrWKDTransport: the server could not be reached or did not answer in time; not an answer.
	ErrWKDTransport = errors.New("WKD server not reachable")
	// errNoHost: the host does not exist (DNS), the one case the direct method is tried after
	// the advanced one.
	errNoHost        = errors.New("no such host")
	ErrWKDTLS        = errors.New("WKD server's TLS certificate refused")
	ErrWKDStatus     = errors.New("WKD server answered with an error status")
	ErrWKDRedirect   = errors.New("WKD server redirected elsewhere")
	ErrWKDTooLarge   = errors.New("WKD answer too large")
	ErrWKDArmored    = errors.New("WKD answer is armored, not a binary key")
	ErrWKDSeveralKey = errors.New("WKD answer holds several keys")
	ErrWKDSecretKey  = errors.New("WKD answer holds secret key material")
	ErrWKDMalformed  = errors.New("WKD answer is not an OpenPGP key")
	// ErrWKDOtherAddress: the key has no valid user ID for the address looked up.
	ErrWKDOtherAddress = errors.New("WKD key is not for this address")
	// ErrWKDKeyRefused wraps keys' reason (errors.Is(err, keys.ErrRevoked) for a revoked key).
	ErrWKDKeyRefused = errors.New("WKD key fails sealpost's key checks")
)

// WKDError is a lookup that gave no key: the address, the URL asked last, and why.
type WKDError struct {
	Address, URL string
	Reason       error
}

// Error names the address and the reason; the URL (for logs) is in the field.
func (e *WKDError) Error() string {
	return fmt.Sprintf("WKD lookup for %s: %v", e.Address, e.Reason)
}

func (e *WKDError) Unwrap() error { return e.Reason }

// WKDClient looks keys up by WKD over HTTPS, certificates verified, within its limits.
type WKDClient struct {
	cfg   WKDConfig
	http  *http.Client
	now   func() time.Time
	roots *x509.CertPool
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
}

// WKDOption configures a WKDClient.
type WKDOption func(*WKDClient)

// WithWKDRoots verifies servers against roots instead of the system's (tests, or a bank's proxy).
func WithWKDRoots(roots *x509.CertPool) WKDOption { return func(c *WKDClient) { c.roots = roots } }

// WithWKDDialer connects with dial (tests send DOMAIN:443 to a loopback server).
func WithWKDDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) WKDOption {
	return func(c *WKDClient) { c.dial = dial }
}

// WithWKDClock sets the clock keys are judged at.
func WithWKDClock(now func() time.Time) WKDOption { return func(c *WKDClient) { c.now = now } }

// NewWKDClient returns a client with cfg's limits.
func NewWKDClient(cfg WKDConfig, opts ...WKDOption) (*WKDClient, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &WKDClient{cfg: cfg, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	dialer := &net.Dialer{Timeout: time.Duration(cfg.Timeout)}
	tr := &http.Transport{
		TLSClientConfig:        &tls.Config{RootCAs: c.roots, MinVersion: tls.VersionTLS12},
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    time.Duration(cfg.Timeout),
		ResponseHeaderTimeout:  time.Duration(cfg.Timeout),
		MaxResponseHeaderBytes: 16 << 10,
		DisableCompression:     true,
		Proxy:                  http.ProxyFromEnvironment,
	}
	if c.dial != nil {
		tr.DialContext = c.dial
	}
	// No redirects at all: a WKD server that moved must be reached by its own name, and a
	// redirect to another host could hand over a key for an address that host does not own.
	c.http = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c, nil
}

// Fetch looks addr's key up: the advanced method first, then — only when openpgpkey.DOMAIN does
// not exist, as the draft and GnuPG do — the direct one. The key returned is the answer's
// only key, binary, with a valid user ID for addr, and passes keys' checks for encryption.
func (c *WKDClient) Fetch(ctx context.Context, addr string) (*openpgp.Entity, error) {
	advanced, direct, err := WKDURLs(addr)
	if err != nil {
		return nil, &WKDError{Address: addr, Reason: fmt.Errorf("%w: %v", ErrWKDMalformed, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.cfg.Timeout))
	defer cancel()
	body, err := c.get(ctx, advanced)
	if errors.Is(err, errNoHost) {
		body, err = c.get(ctx, direct)
		advanced = direct
		if errors.Is(err, errNoHost) {
			err = fmt.Errorf("%w: neither openpgpkey.DOMAIN nor DOMAIN exists", ErrWKDNotFound)
		}
	}
	if err != nil {
		return nil, &WKDError{Address: addr, URL: advanced, Reason: err}
	}
	e, err := parseWKDKey(body, addr, c.now())
	if err != nil {
		return nil, &WKDError{Address: addr, URL: advanced, Reason: err}
	}
	return e, nil
}

// get fetches u: the body of a 200, ErrWKDNotFound for a 404, or why not.
func (c *WKDClient) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/octet-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		var verr *tls.CertificateVerificationError
		var herr x509.HostnameError
		var dns *net.DNSError
		if errors.As(err, &verr) || errors.As(err, &herr) {
			return nil, fmt.Errorf("%w: %v", ErrWKDTLS, err)
		}
		if errors.As(err, &dns) && dns.IsNotFound {
			return nil, fmt.Errorf("%w: %w: %v", ErrWKDTransport, errNoHost, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrWKDTransport, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound:
		return nil, ErrWKDNotFound
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, fmt.Errorf("%w: %d to %q", ErrWKDRedirect, resp.StatusCode, resp.Header.Get("Location"))
	default:
		return nil, fmt.Errorf("%w: %d", ErrWKDStatus, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(c.cfg.MaxBytes)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWKDTransport, err)
	}
	if len(body) > c.cfg.MaxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrWKDTooLarge, c.cfg.MaxBytes)
	}
	return body, nil
}

// parseWKDKey checks a WKD answer for addr at now: one binary public key, with a valid user ID
// for addr, usable for encryption by keys' own rule.
func parseWKDKey(body []byte, addr string, now time.Time) (*openpgp.Entity, error) {
	if bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("-----BEGIN")) {
		return nil, ErrWKDArmored
	}
	// Counted from the packets, not the entities read: ReadKeyRing skips a key it cannot use (an
	// unknown algorithm or version), and a second key must refuse the answer whatever it is.
	primaries, secrets, err := countKeyPackets(body)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrWKDMalformed, err)
	case secrets > 0:
		return nil, ErrWKDSecretKey
	case primaries > 1:
		return nil, fmt.Errorf("%w: %d", ErrWKDSeveralKey, primaries)
	}
	ents, err := readBinaryKeys(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWKDMalformed, err)
	}
	switch {
	case len(ents) == 0:
		return nil, ErrWKDMalformed
	case len(ents) > 1:
		return nil, fmt.Errorf("%w: %d", ErrWKDSeveralKey, len(ents))
	}
	e := ents[0]
	if e.PrivateKey != nil {
		return nil, ErrWKDSecretKey
	}
	for _, sk := range e.Subkeys {
		if sk.PrivateKey != nil {
			return nil, ErrWKDSecretKey
		}
	}
	d := keys.NewDirectory(nil, nil, keys.WithPGPKeys(e), keys.WithClock(func() time.Time { return now }))
	got, err := d.LookupPGP(addr)
	if err != nil {
		if errors.Is(err, keys.ErrNoCertificate) {
			return nil, ErrWKDOtherAddress
		}
		return nil, fmt.Errorf("%w: %w", ErrWKDKeyRefused, err)
	}
	return got, nil
}

// OpenPGP packet tags (RFC 9580 5).
const (
	tagSecretKey    = 5
	tagPublicKey    = 6
	tagSecretSubkey = 7
)

// countKeyPackets counts the primary keys and the secret-key packets in body by their framing
// alone, whatever their version or algorithm.
func countKeyPackets(body []byte) (primaries, secrets int, err error) {
	r := packet.NewOpaqueReader(bytes.NewReader(body))
	for {
		p, err := r.Next()
		if err == io.EOF {
			return primaries, secrets, nil
		}
		if err != nil {
			return 0, 0, err
		}
		switch p.Tag {
		case tagPublicKey:
			primaries++
		case tagSecretKey:
			primaries++
			secrets++
		case tagSecretSubkey:
			secrets++
		}
	}
}

// readBinaryKeys reads transferable public keys, never panicking on hostile input.
func readBinaryKeys(body []byte) (ents openpgp.EntityList, err error) {
	defer func() {
		if r := recover(); r != nil {
			ents, err = nil, fmt.Errorf("unreadable key: %v", r)
		}
	}()
	return openpgp.ReadKeyRing(bytes.NewReader(body))
}
