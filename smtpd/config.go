package smtpd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sealpost/sealpost/config"
)

// Defaults that DefaultConfig sets.
const (
	DefaultAddr                    = "127.0.0.1:2525"
	DefaultMaxMessageBytes         = 25 << 20
	DefaultMaxRecipients           = 100
	DefaultMaxLineLength           = 1000
	DefaultTimeout                 = 5 * time.Minute
	DefaultMaxConnections          = 200
	DefaultMaxConnectionsPerClient = 20
	// DefaultMaxConnectionsPerNetwork is a quarter of DefaultMaxConnections: no one /24 or /64
	// outside AllowedNetworks holds more than a quarter of the slots.
	DefaultMaxConnectionsPerNetwork = 50
	// DefaultCommandTimeout: every MTA sends a command line in one segment, so 30 s is only
	// reached by a line that arrives at a few bytes per second, never by a real client.
	DefaultCommandTimeout = 30 * time.Second
	// DefaultMinDataRate and DefaultMinDataRateGrace: after 30 s a message must have come at
	// 1 KiB/s on average (a 25 MiB message at that rate takes 7 hours; Postfix's
	// smtpd_min_data_rate is 500 B/s), so only a dribbling client is ever cut.
	DefaultMinDataRate      = 1024
	DefaultMinDataRateGrace = 30 * time.Second
	// DefaultMaxSessionDuration: six times Postfix's connection reuse limit (300 s), and time
	// for a 25 MiB message at 14 KiB/s; a sender cut there reconnects and loses nothing.
	DefaultMaxSessionDuration = 30 * time.Minute
)

// Bounds that Validate enforces.
const (
	// maxMessageBytesLimit: messages are held in memory, and go-smtp parses SIZE and BDAT
	// chunk sizes as 32-bit numbers.
	maxMessageBytesLimit = 1 << 30
	// minLineLength: RFC 5321 4.5.3.1.4, a command line is up to 512 octets with CRLF.
	minLineLength = 512
)

// DefaultAllowedNetworks are the networks DefaultConfig trusts to relay without AUTH: loopback only.
var DefaultAllowedNetworks = []string{"127.0.0.0/8", "::1/128"}

// Config configures one SMTP listener, with the keys of its section of the configuration file.
// Start from DefaultConfig, decode strictly over it, then call Validate (New does). Zero never
// means "unlimited": a zero bound is refused.
type Config struct {
	Addr string `json:"addr"` // listen address
	// Domain is the name in the greeting and EHLO reply; "" is the host's name (os.Hostname,
	// looked up by New).
	Domain string `json:"domain"`
	// AllowedNetworks lists CIDRs whose clients may relay without AUTH; an empty list trusts no
	// network (AUTH only).
	AllowedNetworks []string `json:"allowed_networks"`
	// TLSCert and TLSKey are PEM files. STARTTLS (TLS 1.2+) is offered only when both are set.
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`
	// Users maps AUTH user names to bcrypt hashes. AUTH PLAIN and LOGIN are offered only
	// under TLS, so Users requires TLSCert and TLSKey.
	Users map[string]string `json:"users"`
	// MaxMessageBytes bounds a message (after dot-unstuffing) and is advertised in SIZE;
	// at most 1 GiB.
	MaxMessageBytes int64 `json:"max_message_bytes"`
	// MaxRecipients bounds RCPT TO per transaction.
	MaxRecipients int `json:"max_recipients"`
	// MaxLineLength bounds command lines and DATA lines, CRLF included; at least 512
	// (RFC 5321: 998 + CRLF is the default).
	MaxLineLength int `json:"max_line_length"`
	// ReadTimeout bounds the wait for each command (RFC 5321 4.5.3.2.7 asks for at least 5
	// minutes) and, inside a message, each wait for more of it; WriteTimeout bounds each reply.
	ReadTimeout  config.Duration `json:"read_timeout"`
	WriteTimeout config.Duration `json:"write_timeout"`
	// CommandTimeout bounds a command line from its first byte to its end, together with what
	// follows it before the reply (the TLS handshake after STARTTLS). ReadTimeout bounds the
	// whole wait for a command, its first byte included, so the lower of the two applies.
	CommandTimeout config.Duration `json:"command_timeout"`
	// MinDataRate (bytes per second) and MinDataRateGrace bound a message transfer (DATA, or
	// all BDAT chunks of one message): MinDataRateGrace after it began, and at every moment
	// after, it must have brought MinDataRate bytes for each second past the grace.
	MinDataRate      int             `json:"min_data_rate"`
	MinDataRateGrace config.Duration `json:"min_data_rate_grace"`
	// MaxSessionDuration bounds a connection from accept to close, whatever it does. A message
	// being received when it ends gets 421 and is not accepted.
	MaxSessionDuration config.Duration `json:"max_session_duration"`
	// MaxConnections bounds concurrent connections. When every slot is taken, a new connection
	// takes the slot of the connection that has owed input the longest (see the package
	// documentation); it is refused only when none is waiting for its client.
	MaxConnections int `json:"max_connections"`
	// MaxConnectionsPerClient bounds concurrent connections from one IP address; at most
	// MaxConnections.
	MaxConnectionsPerClient int `json:"max_connections_per_client"`
	// MaxConnectionsPerNetwork bounds concurrent connections from one IPv4 /24 or IPv6 /64,
	// for clients outside AllowedNetworks (the bank's own MTAs often share a subnet; the
	// per-client bound still applies to them); at most MaxConnections.
	MaxConnectionsPerNetwork int `json:"max_connections_per_network"`
	// Public makes this an inbound (MX-side) listener: clients that are neither in
	// AllowedNetworks nor authenticated reach the handler too (Client.Trusted false), and the
	// handler must refuse every recipient it does not serve. A submission listener leaves it
	// false, so an untrusted client gets 530 5.7.0 at MAIL and never reaches the gateway. It is
	// the caller's choice, not a setting of the file.
	Public bool `json:"-"`
}

// DefaultConfig is a submission listener on DefaultAddr trusting loopback, with every bound at
// its default: 25 MiB messages, 100 recipients, 1000-octet lines, 5-minute read and write
// timeouts, a 30-second command timeout, 1024 B/s after a 30-second grace, 30-minute sessions,
// 200 connections, 20 per client and 50 per network.
func DefaultConfig() Config {
	return Config{
		Addr:                     DefaultAddr,
		AllowedNetworks:          slices.Clone(DefaultAllowedNetworks),
		MaxMessageBytes:          DefaultMaxMessageBytes,
		MaxRecipients:            DefaultMaxRecipients,
		MaxLineLength:            DefaultMaxLineLength,
		ReadTimeout:              config.Duration(DefaultTimeout),
		WriteTimeout:             config.Duration(DefaultTimeout),
		CommandTimeout:           config.Duration(DefaultCommandTimeout),
		MinDataRate:              DefaultMinDataRate,
		MinDataRateGrace:         config.Duration(DefaultMinDataRateGrace),
		MaxSessionDuration:       config.Duration(DefaultMaxSessionDuration),
		MaxConnections:           DefaultMaxConnections,
		MaxConnectionsPerClient:  DefaultMaxConnectionsPerClient,
		MaxConnectionsPerNetwork: DefaultMaxConnectionsPerNetwork,
	}
}

// DefaultPublicAddr is where DefaultPublicConfig's listener listens.
const DefaultPublicAddr = "127.0.0.1:2526"

// DefaultPublicConfig is an inbound (Public) listener on DefaultPublicAddr: it trusts no network,
// and bounds what strangers may take at half of DefaultConfig's connections and a tenth of its
// recipients (replies go to a few support addresses): 10 recipients, 100 connections, 10 per
// client, 25 per network.
func DefaultPublicConfig() Config {
	c := DefaultConfig()
	c.Addr, c.AllowedNetworks, c.Public = DefaultPublicAddr, []string{}, true
	c.MaxRecipients, c.MaxConnections, c.MaxConnectionsPerClient, c.MaxConnectionsPerNetwork = 10, 100, 10, 25
	return c
}

// Validate checks the configuration and changes nothing: a zero bound is refused, as is a
// negative one. It also loads the TLS key pair and parses every bcrypt hash, so that New cannot
// fail on them later.
//
// Every problem is reported, each a *config.FieldError named by the listener's configuration
// key (addr, tls_cert, users, max_message_bytes, …); the caller prefixes the listener's section.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &config.FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
	}

	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", "%q is not host:port (e.g. %q)", c.Addr, DefaultAddr)
	}
	if c.Domain != "" && (!isReplyText(c.Domain) || strings.Contains(c.Domain, " ")) {
		bad("domain", "%q is not a host name (no spaces or control characters)", c.Domain)
	}
	if c.AllowedNetworks == nil {
		bad("allowed_networks", "required: a list of CIDRs ([] trusts no network, AUTH only)")
	}
	for i, n := range c.AllowedNetworks {
		if _, err := parseNetwork(n); err != nil {
			bad(fmt.Sprintf("allowed_networks[%d]", i), "%v", err)
		}
	}
	errs = append(errs, c.validateTLS()...)
	if len(c.Users) > 0 && c.TLSCert == "" {
		bad("users", "need tls_cert and tls_key: AUTH is offered only after STARTTLS")
	}
	for _, user := range slices.Sorted(maps.Keys(c.Users)) {
		path := config.MapKey("users", user)
		if user == "" || !isReplyText(user) {
			bad(path, "a user name must be printable ASCII, not empty")
		}
		if _, err := bcrypt.Cost([]byte(c.Users[user])); err != nil {
			errs = append(errs, &config.FieldError{Path: path, Err: err,
				Problem: "not a bcrypt hash (make one with htpasswd -nbB USER PASSWORD)"})
		}
	}
	errs = append(errs, c.validateBounds()...)
	return errors.Join(errs...)
}

// validateBounds checks the sizes, timeouts and connection bounds: each positive.
func (c Config) validateBounds() []error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &config.FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
	}
	if c.MaxMessageBytes < 1 || c.MaxMessageBytes > maxMessageBytesLimit {
		bad("max_message_bytes", "%d: want 1 to %d (the default is %d)", c.MaxMessageBytes, maxMessageBytesLimit, DefaultMaxMessageBytes)
	}
	if c.MaxRecipients < 1 {
		bad("max_recipients", "%d: want a positive number (the default is %d)", c.MaxRecipients, DefaultMaxRecipients)
	}
	if c.MaxLineLength < minLineLength {
		bad("max_line_length", "%d: want at least %d (the default is %d)", c.MaxLineLength, minLineLength, DefaultMaxLineLength)
	}
	positive := func(path string, d config.Duration, def time.Duration) {
		if d <= 0 {
			bad(path, "%v: want a positive duration (the default is %v)", time.Duration(d), def)
		}
	}
	positive("read_timeout", c.ReadTimeout, DefaultTimeout)
	positive("write_timeout", c.WriteTimeout, DefaultTimeout)
	positive("command_timeout", c.CommandTimeout, DefaultCommandTimeout)
	if c.MinDataRate < 1 {
		bad("min_data_rate", "%d: want bytes per second, a positive number (the default is %d)", c.MinDataRate, DefaultMinDataRate)
	}
	positive("min_data_rate_grace", c.MinDataRateGrace, DefaultMinDataRateGrace)
	positive("max_session_duration", c.MaxSessionDuration, DefaultMaxSessionDuration)
	if c.MaxConnections < 1 {
		bad("max_connections", "%d: want a positive number (the default is %d)", c.MaxConnections, DefaultMaxConnections)
	}
	if c.MaxConnectionsPerClient < 1 || c.MaxConnectionsPerClient > c.MaxConnections {
		bad("max_connections_per_client", "%d: want 1 to max_connections (%d)", c.MaxConnectionsPerClient, c.MaxConnections)
	}
	if c.MaxConnectionsPerNetwork < 1 || c.MaxConnectionsPerNetwork > c.MaxConnections {
		bad("max_connections_per_network", "%d: want 1 to max_connections (%d)", c.MaxConnectionsPerNetwork, c.MaxConnections)
	}
	return errs
}

// validateTLS checks that the certificate and key are both set or both not, and load as a pair.
func (c Config) validateTLS() []error {
	switch {
	case c.TLSCert == "" && c.TLSKey == "":
		return nil
	case c.TLSKey == "":
		return []error{&config.FieldError{Path: "tls_key", Problem: "required with tls_cert (set both to offer STARTTLS, or neither)"}}
	case c.TLSCert == "":
		return []error{&config.FieldError{Path: "tls_cert", Problem: "required with tls_key (set both to offer STARTTLS, or neither)"}}
	}
	var errs []error
	certPEM, err := os.ReadFile(c.TLSCert)
	if err != nil {
		errs = append(errs, unreadable("tls_cert", c.TLSCert, err))
	}
	keyPEM, kerr := os.ReadFile(c.TLSKey)
	if kerr != nil {
		errs = append(errs, unreadable("tls_key", c.TLSKey, kerr))
	}
	if err == nil && kerr == nil {
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			errs = append(errs, &config.FieldError{Path: "tls_cert", Err: err,
				Problem: fmt.Sprintf("%q and tls_key %q are not a certificate and its key: %s", c.TLSCert, c.TLSKey, strings.TrimPrefix(err.Error(), "tls: "))})
		}
	}
	return errs
}

// unreadable reports a file that cannot be read, without the Go operation's name.
func unreadable(path, file string, err error) error {
	reason := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		reason = pe.Err
	}
	return &config.FieldError{Path: path, Problem: fmt.Sprintf("cannot read %q: %v", file, reason), Err: err}
}

// hostname is the default greeting name: the host's, or "localhost".
func hostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// parseNetworks parses CIDRs (see parseNetwork).
func parseNetworks(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range cidrs {
		p, err := parseNetwork(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// parseNetwork parses a CIDR; a bare address is refused so that "10.0.0.1" is not mistaken
// for a network.
func parseNetwork(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8, or 10.0.0.1/32 for one host)", s)
	}
	return p.Masked(), nil
}

// isReplyText reports whether s is non-empty printable ASCII, safe inside an SMTP line.
func isReplyText(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
