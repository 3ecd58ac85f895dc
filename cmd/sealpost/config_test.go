package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestExampleConfigLoadsAsPrinted(t *testing.T) {
	f := filepath.Join(t.TempDir(), "sealpost.json")
	if err := os.WriteFile(f, exampleConfig(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(f, "")
	if err != nil {
		t.Fatalf("the documented example does not load: %v", err)
	}
	want, _ := loadConfig("", "")
	want.Gateway.Rules = cfg.Gateway.Rules
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("example config differs from the defaults it documents:\n%+v\n%+v", cfg, want)
	}
}

func TestConfigRefuses(t *testing.T) {
	tests := []struct{ name, json, says string }{
		{"UnknownKey", `{"smtp": {"adress": "127.0.0.1:25"}}`, `unknown field "adress"`},
		{"UnknownClass", `{"gateway": {"rules": [{"sender": "x@bank.example", "class": "promo"}]}}`, `gateway.rules[0].class`},
		{"BadLifetime", `{"gateway": {"policies": {"otp": {"encryption": "required", "lifetime": "soon"}}}}`, `time: invalid duration`},
		{"BothDeliveries", `{"delivery": {"maildir": "x", "smarthost": {"addr": "h:25"}}}`, `delivery: set either maildir or smarthost`},
		{"BadSmarthostTLS", `{"delivery": {"smarthost": {"addr": "h:25", "tls": "sometimes"}}}`, `delivery.smarthost.tls`},
		{"TwoValues", `{} {}`, `more than one JSON value`},
		{"InboundPolicy", `{"inbound": {"on_failed": "ignore"}}`, `inbound.on_failed`},
		{"InboundNoSupport", `{"inbound": {"support_addresses": []}}`, `inbound.support_addresses`},
		{"InboundBothDeliveries", `{"inbound": {"delivery": {"maildir": "x", "smarthost": {"addr": "h:25"}}}}`, `inbound.delivery: set either`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "c.json")
			os.WriteFile(f, []byte(tt.json), 0o600)
			if _, err := loadConfig(f, ""); err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want an error saying %q", err, tt.says)
			}
		})
	}
}

// TestREADMEConfigIsTheExample: the configuration shown in README.md is what -print-config prints.
func TestREADMEConfigIsTheExample(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, "```json\n{\n  \"data\"")
	if i < 0 {
		t.Fatal("README.md has no configuration example")
	}
	block := readme[i+len("```json\n"):]
	block = block[:strings.Index(block, "```")]
	if block != string(exampleConfig()) {
		t.Fatalf("README.md's configuration differs from sealpost serve -print-config; paste:\n%s", exampleConfig())
	}
}
