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

// Defaults that Validate fills in for zero fields.
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

// DefaultAllowedNetworks are the networks trusted to relay without AUTH when
// Config.AllowedNetworks is nil: loopback only.
var DefaultAllowedNetworks = []string{"127.0.0.0/8", "::1/128"}

// Config configures one SMTP listener. Decode it strictly, then call Validate (New does).
type Config struct {
	Addr   string // listen address; default DefaultAddr
	Domain string // name in the greeting and EHLO reply; default os.Hostname()
	// AllowedNetworks lists CIDRs whose clients may relay without AUTH. nil means
	// DefaultAllowedNetworks; an empty non-nil list trusts no network (AUTH only).
	AllowedNetworks []string
	// TLSCert and TLSKey are PEM files. STARTTLS (TLS 1.2+) is offered only when both are set.
	TLSCert, TLSKey string
	// Users maps AUTH user names to bcrypt hashes. AUTH PLAIN and LOGIN are offered only
	// under TLS, so Users requires TLSCert and TLSKey.
	Users map[string]string
	// MaxMessageBytes bounds a message (after dot-unstuffing) and is advertised in SIZE;
	// default 25 MiB, at most 1 GiB.
	MaxMessageBytes int64
	// MaxRecipients bounds RCPT TO per transaction; default 100.
	MaxRecipients int
	// MaxLineLength bounds command lines and DATA lines, CRLF included; default 1000
	// (RFC 5321: 998 + CRLF), at least 512.
	MaxLineLength int
	// ReadTimeout bounds the wait for each command (RFC 5321 4.5.3.2.7 asks for at least 5
	// minutes) and, inside a message, each wait for more of it; WriteTimeout bounds each reply.
	// Default 5m each.
	ReadTimeout, WriteTimeout time.Duration
	// CommandTimeout bounds a command line from its first byte to its end, together with what
	// follows it before the reply (the TLS handshake after STARTTLS); default 30s. ReadTimeout
	// bounds the whole wait for a command, its first byte included, so the lower of the two
	// applies.
	CommandTimeout time.Duration
	// MinDataRate (bytes per second) and MinDataRateGrace bound a message transfer (DATA, or
	// all BDAT chunks of one message): MinDataRateGrace after it began, and at every moment
	// after, it must have brought MinDataRate bytes for each second past the grace.
	// Defaults 1024 B/s and 30s.
	MinDataRate      int
	MinDataRateGrace time.Duration
	// MaxSessionDuration bounds a connection from accept to close, whatever it does; default
	// 30m. A message being received when it ends gets 421 and is not accepted.
	MaxSessionDuration time.Duration
	// MaxConnections bounds concurrent connections; default 200. When every slot is taken, a
	// new connection takes the slot of the connection that has owed input the longest (see
	// the package documentation); it is refused only when none is waiting for its client.
	MaxConnections int
	// MaxConnectionsPerClient bounds concurrent connections from one IP address;
	// default 20, or MaxConnections if that is lower.
	MaxConnectionsPerClient int
	// MaxConnectionsPerNetwork bounds concurrent connections from one IPv4 /24 or IPv6 /64,
	// for clients outside AllowedNetworks (the bank's own MTAs often share a subnet; the
	// per-client bound still applies to them); default 50, or MaxConnections if that is lower.
	MaxConnectionsPerNetwork int
	// Public makes this an inbound (MX-side) listener: clients that are neither in
	// AllowedNetworks nor authenticated reach the handler too (Client.Trusted false), and the
	// handler must refuse every recipient it does not serve. A submission listener leaves it
	// false, so an untrusted client gets 530 5.7.0 at MAIL and never reaches the gateway.
	Public bool
}

// Validate fills in defaults for zero fields, then checks the configuration.
//
// Defaults: Addr DefaultAddr; Domain os.Hostname() (or "localhost"); AllowedNetworks (when nil)
// DefaultAllowedNetworks; MaxMessageBytes 25 MiB; MaxRecipients 100; MaxLineLength 1000;
// ReadTimeout and WriteTimeout 5 minutes; CommandTimeout 30 seconds; MinDataRate
// 1024 B/s after MinDataRateGrace 30s; MaxSessionDuration 30 minutes; MaxConnections 200;
// MaxConnectionsPerClient min(20, MaxConnections); MaxConnectionsPerNetwork min(50,
// MaxConnections). Zero never means unlimited; negative values are errors.
// Validate also loads the TLS key pair and parses every bcrypt hash, so that New cannot
// fail on them later.
//
// Every problem is reported, each a *config.FieldError named by the listener's configuration
// key (addr, tls_cert, users, max_message_bytes, …); the caller prefixes the listener's section.
func (c *Config) Validate() error {
	c.fillDefaults()
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &config.FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
	}

	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", "%q is not host:port (e.g. %q)", c.Addr, DefaultAddr)
	}
	if !isReplyText(c.Domain) || strings.Contains(c.Domain, " ") {
		bad("domain", "%q is not a host name (no spaces or control characters)", c.Domain)
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
	if c.MaxMessageBytes < 0 || c.MaxMessageBytes > maxMessageBytesLimit {
		bad("max_message_bytes", "%d: want 1 to %d (0 means the default %d)", c.MaxMessageBytes, maxMessageBytesLimit, DefaultMaxMessageBytes)
	}
	if c.MaxRecipients < 0 {
		bad("max_recipients", "%d: want a positive number (0 means the default %d)", c.MaxRecipients, DefaultMaxRecipients)
	}
	if c.MaxLineLength < minLineLength {
		bad("max_line_length", "%d: want at least %d (0 means the default %d)", c.MaxLineLength, minLineLength, DefaultMaxLineLength)
	}
	if c.ReadTimeout < 0 {
		bad("read_timeout", "%v: want a positive duration (0 means the default %v)", c.ReadTimeout, DefaultTimeout)
	}
	if c.WriteTimeout < 0 {
		bad("write_timeout", "%v: want a positive duration (0 means the default %v)", c.WriteTimeout, DefaultTimeout)
	}
	if c.CommandTimeout < 0 {
		bad("command_timeout", "%v: want a positive duration (0 means the default %v)", c.CommandTimeout, DefaultCommandTimeout)
	}
	if c.MinDataRate < 0 {
		bad("min_data_rate", "%d: want bytes per second, a positive number (0 means the default %d)", c.MinDataRate, DefaultMinDataRate)
	}
	if c.MinDataRateGrace < 0 {
		bad("min_data_rate_grace", "%v: want a positive duration (0 means the default %v)", c.MinDataRateGrace, DefaultMinDataRateGrace)
	}
	if c.MaxSessionDuration < 0 {
		bad("max_session_duration", "%v: want a positive duration (0 means the default %v)", c.MaxSessionDuration, DefaultMaxSessionDuration)
	}
	if c.MaxConnections < 0 {
		bad("max_connections", "%d: want a positive number (0 means the default %d)", c.MaxConnections, DefaultMaxConnections)
	}
	if c.MaxConnectionsPerClient < 0 || c.MaxConnectionsPerClient > c.MaxConnections {
		bad("max_connections_per_client", "%d: want 1 to max_connections (%d)", c.MaxConnectionsPerClient, c.MaxConnections)
	}
	if c.MaxConnectionsPerNetwork < 0 || c.MaxConnectionsPerNetwork > c.MaxConnections {
		bad("max_connections_per_network", "%d: want 1 to max_connections (%d)", c.MaxConnectionsPerNetwork, c.MaxConnections)
	}
	return errors.Join(errs...)
}

// validateTLS checks that the certificate and key are both set or both not, and load as a pair.
func (c *Config) validateTLS() []error {
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

func (c *Config) fillDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Domain == "" {
		c.Domain = "localhost"
		if h, err := os.Hostname(); err == nil && h != "" {
			c.Domain = h
		}
	}
	if c.AllowedNetworks == nil {
		c.AllowedNetworks = append([]string(nil), DefaultAllowedNetworks...)
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxRecipients == 0 {
		c.MaxRecipients = DefaultMaxRecipients
	}
	if c.MaxLineLength == 0 {
		c.MaxLineLength = DefaultMaxLineLength
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultTimeout
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.MinDataRate == 0 {
		c.MinDataRate = DefaultMinDataRate
	}
	if c.MinDataRateGrace == 0 {
		c.MinDataRateGrace = DefaultMinDataRateGrace
	}
	if c.MaxSessionDuration == 0 {
		c.MaxSessionDuration = DefaultMaxSessionDuration
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxConnectionsPerClient == 0 {
		c.MaxConnectionsPerClient = min(DefaultMaxConnectionsPerClient, c.MaxConnections)
	}
	if c.MaxConnectionsPerNetwork == 0 {
		c.MaxConnectionsPerNetwork = min(DefaultMaxConnectionsPerNetwork, c.MaxConnections)
	}
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
