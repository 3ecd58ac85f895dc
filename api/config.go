package api

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/sealpost/sealpost/config"
)

// DefaultAddr is where DefaultConfig's API listener listens: loopback, so the embedded default
// needs no certificate.
const DefaultAddr = "127.0.0.1:9926"

// Defaults and bounds of Config.
const (
	DefaultMaxBody        = 1 << 20
	DefaultIdempotencyTTL = 24 * time.Hour
	// maxMaxBody bounds max_body: a certificate with its chain, or an OpenPGP key with its
	// signatures, is kilobytes; megabytes of body are an attack on the node's memory.
	maxMaxBody = 64 << 20
	// The idempotency window: long enough for a client's retries, short enough to keep the table small.
	minIdempotencyTTL = time.Minute
	maxIdempotencyTTL = 30 * 24 * time.Hour
)

// Config configures the bank's API listener (cmd embeds it as "api").
type Config struct {
	// Enabled starts the listener with serve.
	Enabled bool `json:"enabled"`
	// Addr is host:port. Any address but loopback needs TLS: tokens must not cross a network in clear.
	Addr string    `json:"addr"`
	TLS  TLSConfig `json:"tls"`
	// MaxBody bounds a request body in bytes; a larger one is refused with 413.
	MaxBody int64 `json:"max_body"`
	// IdempotencyTTL is how long the answer to a call with an Idempotency-Key is kept for replay.
	IdempotencyTTL config.Duration `json:"idempotency_ttl"`
}

// TLSConfig is the listener's certificate and, optionally, the CA its clients' certificates must
// chain to (mutual TLS).
type TLSConfig struct {
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
	// ClientCAFile, when set, makes every client present a certificate that chains to a CA in this
	// PEM file; a connection without one is refused before any HTTP is read.
	ClientCAFile string `json:"client_ca_file"`
}

// DefaultConfig is the API listener started with serve: on DefaultAddr, plain HTTP on loopback.
func DefaultConfig() Config {
	return Config{Enabled: true, Addr: DefaultAddr, MaxBody: DefaultMaxBody, IdempotencyTTL: config.Duration(DefaultIdempotencyTTL)}
}

// enabled reports whether the listener speaks TLS.
func (t TLSConfig) enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Validate checks the values and changes nothing; every problem is a *config.FieldError at its key.
// An address that is not loopback without a certificate is refused.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &config.FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
	}
	host, _, err := net.SplitHostPort(c.Addr)
	switch {
	case err != nil:
		bad("addr", "%q is not host:port (e.g. %q)", c.Addr, DefaultAddr)
	case !loopbackHost(host) && !c.TLS.enabled():
		bad("addr", "%q is not a loopback address: set tls.cert_file and tls.key_file (API tokens must not cross the network in clear)", c.Addr)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "set both cert_file and key_file, or neither")
	}
	if c.TLS.ClientCAFile != "" && !c.TLS.enabled() {
		bad("tls.client_ca_file", "client certificates need TLS: set cert_file and key_file too")
	}
	if c.MaxBody <= 0 || c.MaxBody > maxMaxBody {
		bad("max_body", "%d is not between 1 and %d bytes (default %d)", c.MaxBody, maxMaxBody, DefaultMaxBody)
	}
	if ttl := time.Duration(c.IdempotencyTTL); ttl < minIdempotencyTTL || ttl > maxIdempotencyTTL {
		bad("idempotency_ttl", "%v is not between %v and %v (default %v)", ttl, minIdempotencyTTL, maxIdempotencyTTL, DefaultIdempotencyTTL)
	}
	return errors.Join(errs...)
}

// loopbackHost reports whether host names the loopback interface: "localhost" or a loopback IP.
// An empty host means every interface.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	host, _, _ = strings.Cut(host, "%")
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckFiles loads the TLS certificate, key and client CA the configuration names, as the server
// will at start, so that `serve -check` finds a bad file before a start does; errors name the key
// under api.
func (c Config) CheckFiles() error {
	if !c.Enabled || !c.TLS.enabled() {
		return nil
	}
	_, err := serverTLS(c.TLS)
	return err
}
