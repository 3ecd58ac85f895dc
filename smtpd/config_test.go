package smtpd

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sealpost/sealpost/config"
)

// TestDefaultConfig: DefaultConfig holds the documented defaults and validates; Validate changes
// nothing, and refuses the zero of every bound (zero never means unlimited).
func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:2525" || c.Domain != "" || !slices.Equal(c.AllowedNetworks, []string{"127.0.0.0/8", "::1/128"}) ||
		c.MaxMessageBytes != 25<<20 || c.MaxRecipients != 100 || c.MaxLineLength != 1000 ||
		c.ReadTimeout != config.Duration(5*time.Minute) || c.WriteTimeout != config.Duration(5*time.Minute) ||
		c.MaxConnections != 200 || c.MaxConnectionsPerClient != 20 || c.MaxConnectionsPerNetwork != 50 ||
		c.CommandTimeout != config.Duration(30*time.Second) || c.MinDataRate != 1024 || c.MinDataRateGrace != config.Duration(30*time.Second) ||
		c.MaxSessionDuration != config.Duration(30*time.Minute) {
		t.Fatalf("defaults: %+v", c)
	}
	if !reflect.DeepEqual(c, DefaultConfig()) {
		t.Fatal("Validate changed the configuration")
	}
	var zero Config
	var paths []string
	for _, fe := range config.FieldErrors(zero.Validate()) {
		paths = append(paths, fe.Path)
	}
	if want := []string{"addr", "allowed_networks", "max_message_bytes", "max_recipients", "max_line_length", "read_timeout", "write_timeout",
		"command_timeout", "min_data_rate", "min_data_rate_grace", "max_session_duration", "max_connections",
		"max_connections_per_client", "max_connections_per_network"}; !slices.Equal(paths, want) {
		t.Fatalf("a zero Config: problems at %q, want %q", paths, want)
	}
	// The per-client and per-network bounds are no longer lowered to a smaller MaxConnections
	// behind the operator's back: they are reported, to be set.
	small := DefaultConfig()
	small.MaxConnections = 5
	if err := small.Validate(); fieldError(err, "max_connections_per_client") == nil || fieldError(err, "max_connections_per_network") == nil {
		t.Fatalf("per-client and per-network bounds above MaxConnections 5: %v", err)
	}
	small.MaxConnectionsPerClient, small.MaxConnectionsPerNetwork = 5, 5
	if err := small.Validate(); err != nil {
		t.Fatal(err)
	}
	none := withDefaults(Config{AllowedNetworks: []string{}})
	if err := none.Validate(); err != nil || len(none.AllowedNetworks) != 0 {
		t.Fatalf("an empty AllowedNetworks must stay empty (trust no network): %v, %v", none.AllowedNetworks, err)
	}
}

// TestValidateErrors: each bad setting is reported at its configuration key, saying what to fix.
func TestValidateErrors(t *testing.T) {
	certFile, keyFile, _ := testCert(t)
	_, otherKey, _ := testCert(t)
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	tests := []struct {
		name string
		cfg  Config
		path string
		says string // part of the problem, when it matters
	}{
		{"addr", Config{Addr: "2525"}, "addr", `"2525" is not host:port`},
		{"domain", Config{Domain: "mx example"}, "domain", ""},
		{"network", Config{AllowedNetworks: []string{"10.0.0.0/8", "10.0.0.1"}}, "allowed_networks[1]", "10.0.0.1/32"},
		{"cert without key", Config{TLSCert: certFile}, "tls_key", "required with tls_cert"},
		{"key without cert", Config{TLSKey: keyFile}, "tls_cert", "required with tls_key"},
		{"unreadable cert", Config{TLSCert: "/nonexistent.pem", TLSKey: keyFile}, "tls_cert", `cannot read "/nonexistent.pem": no such file or directory`},
		{"unreadable key", Config{TLSCert: certFile, TLSKey: "/nonexistent.key"}, "tls_key", `cannot read "/nonexistent.key"`},
		{"key of another certificate", Config{TLSCert: certFile, TLSKey: otherKey}, "tls_cert", "private key does not match public key"},
		{"users without TLS", Config{Users: map[string]string{"u": string(hash)}}, "users", "need tls_cert and tls_key"},
		{"bad hash", Config{TLSCert: certFile, TLSKey: keyFile, Users: map[string]string{"u": "secret"}}, "users.u", "not a bcrypt hash"},
		{"bad user name", Config{TLSCert: certFile, TLSKey: keyFile, Users: map[string]string{"m\u00e9": string(hash)}}, `users["mé"]`, "printable ASCII"},
		{"negative size", Config{MaxMessageBytes: -1}, "max_message_bytes", ""},
		{"huge size", Config{MaxMessageBytes: 2 << 30}, "max_message_bytes", ""},
		{"negative recipients", Config{MaxRecipients: -1}, "max_recipients", ""},
		{"short lines", Config{MaxLineLength: 80}, "max_line_length", "want at least 512"},
		{"negative read timeout", Config{ReadTimeout: config.Duration(-time.Second)}, "read_timeout", ""},
		{"negative write timeout", Config{WriteTimeout: config.Duration(-time.Second)}, "write_timeout", ""},
		{"negative connections", Config{MaxConnections: -1}, "max_connections", ""},
		{"per client above total", Config{MaxConnections: 10, MaxConnectionsPerClient: 11}, "max_connections_per_client", ""},
		{"per network above total", Config{MaxConnections: 10, MaxConnectionsPerNetwork: 11}, "max_connections_per_network", "want 1 to max_connections (10)"},
		{"negative per network", Config{MaxConnectionsPerNetwork: -1}, "max_connections_per_network", ""},
		{"negative command timeout", Config{CommandTimeout: config.Duration(-time.Second)}, "command_timeout", ""},
		{"negative data rate", Config{MinDataRate: -1}, "min_data_rate", "bytes per second"},
		{"negative data rate grace", Config{MinDataRateGrace: config.Duration(-time.Second)}, "min_data_rate_grace", ""},
		{"negative session duration", Config{MaxSessionDuration: config.Duration(-time.Second)}, "max_session_duration", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := withDefaults(tt.cfg)
			err := cfg.Validate()
			fe := fieldError(err, tt.path)
			if fe == nil || !strings.Contains(fe.Problem, tt.says) {
				t.Fatalf("Validate = %v, want a problem at %s saying %q", err, tt.path, tt.says)
			}
			if _, err := New(cfg, &recorder{}); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
	ok := withDefaults(Config{TLSCert: certFile, TLSKey: keyFile, Users: map[string]string{"u": string(hash)}})
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid TLS+Users config: %v", err)
	}
	if _, err := New(DefaultConfig(), nil); err == nil {
		t.Fatal("New accepted a nil handler")
	}
}

// TestValidateReportsEveryProblem: an operator fixes every setting in one go.
func TestValidateReportsEveryProblem(t *testing.T) {
	c := withDefaults(Config{Addr: "2525", AllowedNetworks: []string{"10.0.0.1"}, TLSCert: "/nonexistent.pem", TLSKey: "/nonexistent.key", MaxLineLength: 80})
	var paths []string
	for _, fe := range config.FieldErrors(c.Validate()) {
		paths = append(paths, fe.Path)
	}
	if want := []string{"addr", "allowed_networks[0]", "tls_cert", "tls_key", "max_line_length"}; !slices.Equal(paths, want) {
		t.Fatalf("problems at %q, want %q", paths, want)
	}
}

// fieldError returns the problem at path in err, or nil.
func fieldError(err error, path string) *config.FieldError {
	for _, fe := range config.FieldErrors(err) {
		if fe.Path == path {
			return fe
		}
	}
	return nil
}

// TestEmptyAllowedNetworksTrustsNone: an empty AllowedNetworks given to New trusts no network.
// Before, New's copy of the list turned it into nil, which Validate fills with loopback.
func TestEmptyAllowedNetworksTrustsNone(t *testing.T) {
	srv := startServer(t, Config{AllowedNetworks: []string{}}, nil)
	c := dial(t, srv.addr)
	c.do("EHLO client.example", "250")
	c.do("MAIL FROM:<a@bank.example>", "530 5.7.0 Authentication required")
	if srv.trusted(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("loopback is trusted")
	}
}
