package smtpd

import (
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestValidateDefaults: zero fields get the documented defaults; zero never means unlimited.
func TestValidateDefaults(t *testing.T) {
	var c Config
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:2525" || c.Domain == "" || !slices.Equal(c.AllowedNetworks, []string{"127.0.0.0/8", "::1/128"}) ||
		c.MaxMessageBytes != 25<<20 || c.MaxRecipients != 100 || c.MaxLineLength != 1000 ||
		c.ReadTimeout != 5*time.Minute || c.WriteTimeout != 5*time.Minute ||
		c.MaxConnections != 200 || c.MaxConnectionsPerClient != 20 {
		t.Fatalf("defaults: %+v", c)
	}
	small := Config{MaxConnections: 5}
	if err := small.Validate(); err != nil || small.MaxConnectionsPerClient != 5 {
		t.Fatalf("MaxConnectionsPerClient default with MaxConnections 5: %d, %v", small.MaxConnectionsPerClient, err)
	}
	none := Config{AllowedNetworks: []string{}}
	if err := none.Validate(); err != nil || len(none.AllowedNetworks) != 0 {
		t.Fatalf("an empty AllowedNetworks must stay empty (trust no network): %v, %v", none.AllowedNetworks, err)
	}
}

// TestValidateErrors: each bad setting is reported, saying what to fix.
func TestValidateErrors(t *testing.T) {
	certFile, keyFile, _ := testCert(t)
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"addr", Config{Addr: "2525"}, "Addr"},
		{"domain", Config{Domain: "mx example"}, "Domain"},
		{"network", Config{AllowedNetworks: []string{"10.0.0.1"}}, "10.0.0.1/32"},
		{"cert without key", Config{TLSCert: certFile}, "both TLSCert and TLSKey"},
		{"unreadable cert", Config{TLSCert: "/nonexistent.pem", TLSKey: keyFile}, "TLSCert/TLSKey"},
		{"users without TLS", Config{Users: map[string]string{"u": string(hash)}}, "Users needs TLSCert"},
		{"bad hash", Config{TLSCert: certFile, TLSKey: keyFile, Users: map[string]string{"u": "secret"}}, "not a bcrypt hash"},
		{"negative size", Config{MaxMessageBytes: -1}, "MaxMessageBytes"},
		{"huge size", Config{MaxMessageBytes: 2 << 30}, "MaxMessageBytes"},
		{"negative recipients", Config{MaxRecipients: -1}, "MaxRecipients"},
		{"short lines", Config{MaxLineLength: 80}, "MaxLineLength"},
		{"negative timeout", Config{ReadTimeout: -time.Second}, "ReadTimeout"},
		{"negative connections", Config{MaxConnections: -1}, "MaxConnections"},
		{"per client above total", Config{MaxConnections: 10, MaxConnectionsPerClient: 11}, "MaxConnectionsPerClient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error mentioning %q", err, tt.want)
			}
			if _, err := New(tt.cfg, &recorder{}, nil); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
	ok := Config{TLSCert: certFile, TLSKey: keyFile, Users: map[string]string{"u": string(hash)}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid TLS+Users config: %v", err)
	}
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Fatal("New accepted a nil handler")
	}
}
