package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/digitorus/timestamp"
)

// maxReplyBytes caps a TSA's reply read by the Client. A token with a certificate chain is a few KiB;
// 1 MiB bounds memory against a broken or hostile TSA.
const maxReplyBytes = 1 << 20

// defaultAttemptTimeout bounds one request to one TSA.
const defaultAttemptTimeout = 10 * time.Second

// nonceBits is the size of the random nonce sent with each request (RFC 3161 suggests at least 64).
const nonceBits = 128

// Client is an RFC 3161 client over HTTP. It asks its TSAs in order and returns the first token that
// passes Verify and carries the nonce it sent. It is safe for concurrent use.
type Client struct {
	urls    []*url.URL
	roots   *x509.CertPool
	timeout time.Duration
	hc      *http.Client
}

// ClientOption configures NewClient.
type ClientOption func(*Client)

// WithTimeout bounds each attempt at one TSA (connect, send, receive); the default is 10s. Zero or a
// negative duration is a configuration error, never "unlimited".
func WithTimeout(d time.Duration) ClientOption {
	return func(c *Client) { c.timeout = d }
}

// WithHTTPClient sets the HTTP client used to reach the TSAs (proxies, TLS settings). Its own Timeout
// still applies on top of WithTimeout. The default is a plain http.Client.
func WithHTTPClient(hc *http.Client) ClientOption {
	return func(c *Client) { c.hc = hc }
}

// NewClient returns a Client asking the TSAs at urls, in that order, and trusting tokens whose TSA
// certificate chains to roots. urls must be absolute http or https URLs; plain http is usual for TSAs
// since tokens are signed. Errors wrap ErrConfig.
func NewClient(urls []string, roots *x509.CertPool, opts ...ClientOption) (*Client, error) {
	if len(urls) == 0 {
		return nil, fmt.Errorf("%w: no TSA URLs", ErrConfig)
	}
	if roots == nil {
		return nil, fmt.Errorf("%w: nil roots (the system roots are not time-stamping roots)", ErrConfig)
	}
	c := &Client{roots: roots, timeout: defaultAttemptTimeout, hc: &http.Client{}}
	for _, o := range opts {
		o(c)
	}
	if c.timeout <= 0 {
		return nil, fmt.Errorf("%w: timeout %v must be positive", ErrConfig, c.timeout)
	}
	if c.hc == nil {
		return nil, fmt.Errorf("%w: nil HTTP client", ErrConfig)
	}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%w: TSA URL: %v", ErrConfig, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: TSA URL %q must be absolute http or https", ErrConfig, u.Redacted())
		}
		c.urls = append(c.urls, u)
	}
	return c, nil
}

// Timestamp obtains a token over SHA-256(message) from the first TSA that gives a valid one. Each
// attempt sends a fresh query (SHA-256, 128-bit random nonce, certReq), reads at most 1 MiB, and the
// reply must be a granted token that passes Verify with the Client's roots and carries the nonce.
// When every TSA fails, the error wraps ErrUnavailable and, joined, each TSA's own error (which may
// be a *RejectedError, ErrNonceMismatch, ErrMalformed, ...). If ctx ends, the remaining TSAs are not
// tried.
func (c *Client) Timestamp(ctx context.Context, message []byte) (*Token, error) {
	digest := sha256.Sum256(message)
	var errs []error
	for _, u := range c.urls {
		// A fresh nonce per attempt: a slow first TSA must not be able to answer the second's request.
		nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), nonceBits))
		if err != nil {
			return nil, fmt.Errorf("%w: nonce: %w", ErrUnavailable, err)
		}
		tok, err := c.attempt(ctx, u, digest[:], message, nonce)
		if err == nil {
			return tok, nil
		}
		errs = append(errs, fmt.Errorf("TSA %s: %w", u.Redacted(), err))
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("giving up: %w", ctx.Err()))
			break
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(errs...))
}

// attempt asks one TSA.
func (c *Client) attempt(ctx context.Context, u *url.URL, digest, message []byte, nonce *big.Int) (*Token, error) {
	q, err := (&timestamp.Request{
		HashAlgorithm: crypto.SHA256,
		HashedMessage: digest,
		Certificates:  true,
		Nonce:         nonce,
	}).Marshal()
	if err != nil {
		return nil, fmt.Errorf("building query: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(q))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", mediaTypeQuery)
	req.Header.Set("Accept", mediaTypeReply)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused for the next mail.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("HTTP status %s", resp.Status)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != mediaTypeReply {
		return nil, fmt.Errorf("%w: reply content type %q, want %s", ErrMalformed, resp.Header.Get("Content-Type"), mediaTypeReply)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading reply: %w", err)
	}
	if len(body) > maxReplyBytes {
		return nil, fmt.Errorf("%w: reply larger than %d bytes", ErrMalformed, maxReplyBytes)
	}
	return acceptReply(body, message, nonce, c.roots)
}

// acceptReply checks a TimeStampResp against the query that was sent.
func acceptReply(body, message []byte, nonce *big.Int, roots *x509.CertPool) (tok *Token, err error) {
	defer recoverMalformed(&err)
	return checkReply(body, message, nonce, roots)
}

// checkReply is acceptReply without the recover, for fuzzing.
func checkReply(body, message []byte, nonce *big.Int, roots *x509.CertPool) (*Token, error) {
	der, err := tokenFromResponse(body)
	if err != nil {
		return nil, err
	}
	tok, info, err := verify(der, message, roots)
	if err != nil {
		return nil, err
	}
	if info.Nonce == nil || info.Nonce.Cmp(nonce) != 0 {
		return nil, ErrNonceMismatch
	}
	// RFC 3161 2.4.2: the imprint must be the one requested, hash algorithm included.
	if !info.MessageImprint.HashAlgorithm.Algorithm.Equal(oidSHA256) {
		return nil, fmt.Errorf("%w: token imprint uses %s, SHA-256 was requested", ErrImprintMismatch, hashName(info.MessageImprint.HashAlgorithm.Algorithm))
	}
	return tok, nil
}
