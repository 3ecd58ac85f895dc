package smtpd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
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
	// ReadTimeout bounds the wait for each command and also the whole DATA transfer
	// (go-smtp arms it once per command); WriteTimeout bounds each reply. Default 5m each.
	ReadTimeout, WriteTimeout time.Duration
	// MaxConnections bounds concurrent connections; default 200.
	MaxConnections int
	// MaxConnectionsPerClient bounds concurrent connections from one IP address;
	// default 20, or MaxConnections if that is lower.
	MaxConnectionsPerClient int
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
// ReadTimeout and WriteTimeout 5 minutes; MaxConnections 200; MaxConnectionsPerClient
// min(20, MaxConnections). Zero never means unlimited; negative values are errors.
// Validate also loads the TLS key pair and parses every bcrypt hash, so that New cannot
// fail on them later.
func (c *Config) Validate() error {
	c.fillDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("smtpd: Addr %q: want host:port, e.g. %q", c.Addr, DefaultAddr)
	}
	if !isReplyText(c.Domain) || strings.Contains(c.Domain, " ") {
		bad("smtpd: Domain %q: want a host name without spaces or control characters", c.Domain)
	}
	if _, err := parseNetworks(c.AllowedNetworks); err != nil {
		bad("smtpd: AllowedNetworks: %w", err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("smtpd: set both TLSCert and TLSKey (PEM files) to offer STARTTLS, or neither")
	} else if c.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			bad("smtpd: TLSCert/TLSKey: %w", err)
		}
	}
	if len(c.Users) > 0 && c.TLSCert == "" {
		bad("smtpd: Users needs TLSCert and TLSKey: AUTH is offered only after STARTTLS")
	}
	for user, hash := range c.Users {
		if user == "" || !isReplyText(user) {
			bad("smtpd: Users: user name %q: want printable ASCII, not empty", user)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			bad("smtpd: Users[%q]: not a bcrypt hash (make one with htpasswd -nbB or bcrypt.GenerateFromPassword): %w", user, err)
		}
	}
	if c.MaxMessageBytes < 0 || c.MaxMessageBytes > maxMessageBytesLimit {
		bad("smtpd: MaxMessageBytes %d: want 1..%d (0 means the default %d)", c.MaxMessageBytes, maxMessageBytesLimit, DefaultMaxMessageBytes)
	}
	if c.MaxRecipients < 0 {
		bad("smtpd: MaxRecipients %d: want a positive number (0 means the default %d)", c.MaxRecipients, DefaultMaxRecipients)
	}
	if c.MaxLineLength < minLineLength {
		bad("smtpd: MaxLineLength %d: want at least %d (0 means the default %d)", c.MaxLineLength, minLineLength, DefaultMaxLineLength)
	}
	if c.ReadTimeout < 0 || c.WriteTimeout < 0 {
		bad("smtpd: ReadTimeout %v, WriteTimeout %v: want positive durations (0 means the default %v)", c.ReadTimeout, c.WriteTimeout, DefaultTimeout)
	}
	if c.MaxConnections < 0 {
		bad("smtpd: MaxConnections %d: want a positive number (0 means the default %d)", c.MaxConnections, DefaultMaxConnections)
	}
	if c.MaxConnectionsPerClient < 0 || c.MaxConnectionsPerClient > c.MaxConnections {
		bad("smtpd: MaxConnectionsPerClient %d: want 1..MaxConnections (%d)", c.MaxConnectionsPerClient, c.MaxConnections)
	}
	return errors.Join(errs...)
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
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxConnectionsPerClient == 0 {
		c.MaxConnectionsPerClient = min(DefaultMaxConnectionsPerClient, c.MaxConnections)
	}
}

// parseNetworks parses CIDRs; a bare address is refused so that "10.0.0.1" is not mistaken
// for a network.
func parseNetworks(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8, or 10.0.0.1/32 for one host)", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
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
