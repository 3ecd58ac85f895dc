package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/queue"
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
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("example config differs from the defaults it documents:\n%+v\n%+v", cfg, want)
	}
}

// TestConfigRefuses: each problem in a configuration file is reported at its path in the file, in the
// file's words.
func TestConfigRefuses(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name, json string
		path       string
		problem    string // the whole problem, when its wording is the point; else empty
	}{
		// The four a new user met: each names its key and says what is wrong in words.
		{"BadDuration", `{"queue": {"min_backoff": "5 minutes"}}`, "queue.min_backoff", `"5 minutes" is not a duration (use e.g. 5m, 90s, 120h)`},
		{"UnknownKeyTypo", `{"smtp": {"adr": "127.0.0.1:25"}}`, "smtp.adr", `unknown key (did you mean "addr"?)`},
		{"StringForNumber", `{"smtp": {"max_recipients": "100"}}`, "smtp.max_recipients", `"100" is a string, want a number`},
		{"MissingTLSCert", `{"smtp": {"tls_cert": "` + missing + `", "tls_key": "` + missing + `"}}`, "smtp.tls_cert", `cannot read "` + missing + `": no such file or directory`},

		{"UnknownKey", `{"smtp": {"adress": "127.0.0.1:25"}}`, "smtp.adress", ""},
		{"KeyInOtherCase", `{"smtp": {"Addr": "127.0.0.1:25"}}`, "smtp.Addr", `unknown key (did you mean "addr"?)`},
		{"DuplicateKey", `{"smtp": {"addr": "127.0.0.1:25", "addr": "0.0.0.0:25"}}`, "smtp.addr", ""},
		{"UnknownClass", `{"gateway": {"rules": [{"sender": "x@bank.example", "class": "promo"}]}}`, "gateway.rules[0].class", `unknown class "promo" (statement, otp, support, unclassified)`},
		{"BadLifetime", `{"gateway": {"policies": {"otp": {"encryption": "required", "lifetime": "soon"}}}}`, "gateway.policies.otp.lifetime", `"soon" is not a duration (use e.g. 5m, 90s, 120h)`},
		{"BothDeliveries", `{"delivery": {"maildir": "x", "smarthost": {"addr": "h:25"}}}`, "delivery", "set either maildir or smarthost, not both"},
		{"BadSmarthostTLS", `{"delivery": {"smarthost": {"addr": "h:25", "tls": "sometimes"}}}`, "delivery.smarthost.tls", ""},
		{"SmarthostWithoutPort", `{"delivery": {"smarthost": {"addr": "relay.bank.internal"}}}`, "delivery.smarthost.addr", ""},
		{"InboundPolicy", `{"inbound": {"on_failed": "ignore"}}`, "inbound.on_failed", `"ignore" is not deliver or quarantine`},
		{"InboundNoSupport", `{"inbound": {"support_addresses": []}}`, "inbound.support_addresses", ""},
		{"InboundBothDeliveries", `{"inbound": {"delivery": {"maildir": "x", "smarthost": {"addr": "h:25"}}}}`, "inbound.delivery", ""},
		{"InboundListener", `{"inbound": {"listener": {"max_line_length": 80}}}`, "inbound.listener.max_line_length", ""},
		{"ListenerAddr", `{"smtp": {"addr": "2525"}}`, "smtp.addr", ""},
		{"QueueWorkers", `{"queue": {"workers": -1}}`, "queue.workers", ""},
		{"TSATimeout", `{"tsa": {"timeout": "-1s"}}`, "tsa.timeout", ""},
		{"LogFormat", `{"log": {"format": "xml"}}`, "log.format", `"xml" is not text or json`},
		{"Identities", `{"identities": "production"}`, "identities", ""},
		{"HSMSigner", `{"hsm": {"signer": {"token_label": "bank", "key_label": "signer", "certificate": "c.pem"}}}`, "hsm.signer.pin_file", ""},
		{"DKIMKey", `{"dkim": {"keys": [{"domain": "bank.example", "selector": "s1", "key_file": "k"}, {"domain": "bank.example", "key_file": "k"}]}}`, "dkim.keys[1].selector", ""},
		{"OpsRemote", `{"ops": {"enabled": true, "addr": "0.0.0.0:9925"}}`, "ops.addr", ""},
		{"NoData", `{"data": ""}`, "data", ""},
		{"PostgresNoDSNFile", `{"store": {"postgres": {}}}`, "store.postgres.dsn_file", ""},
		{"PostgresPool", `{"store": {"postgres": {"dsn_file": "dsn", "max_conns": 0}}}`, "store.postgres.max_conns", ""},
		{"PostgresStatementTimeout", `{"store": {"postgres": {"dsn_file": "dsn", "statement_timeout": "-1s"}}}`, "store.postgres.statement_timeout", ""},
		{"PostgresDSNInline", `{"store": {"postgres": {"dsn": "postgres://sealpost:hunter2@db/sealpost"}}}`, "store.postgres.dsn", `unknown key (known keys: dsn_file, max_conns, statement_timeout)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "c.json")
			os.WriteFile(f, []byte(tt.json), 0o600)
			_, err := loadConfig(f, "")
			fe := problemAt(err, tt.path)
			if fe == nil {
				t.Fatalf("got %v, want a problem at %s", err, tt.path)
			}
			if tt.problem != "" && fe.Problem != tt.problem {
				t.Fatalf("%s: %q, want %q", tt.path, fe.Problem, tt.problem)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("%q echoes the password", err)
			}
			if strings.Contains(err.Error(), "Go struct") || strings.Contains(err.Error(), "json:") || strings.Contains(err.Error(), "TLSCert") {
				t.Fatalf("%q names Go types or encoding/json", err)
			}
		})
	}
}

// TestConfigPostgresDefaults: without a store section the store is the embedded SQLite and
// -print-config has no store key; a postgres section keeps the defaults it leaves out, and prints
// them.
func TestConfigPostgresDefaults(t *testing.T) {
	cfg, err := loadConfig("", "")
	if err != nil || cfg.Store.Postgres != nil || strings.Contains(string(cfg.marshal()), `"store"`) {
		t.Fatalf("defaults: %+v, %v", cfg.Store, err)
	}
	f := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(f, []byte(`{"identities": "development", "store": {"postgres": {"dsn_file": "/etc/sealpost/pg.dsn", "max_conns": 4}}}`), 0o600)
	if cfg, err = loadConfig(f, ""); err != nil {
		t.Fatal(err)
	}
	want := defaultPostgres()
	want.DSNFile, want.MaxConns = "/etc/sealpost/pg.dsn", 4
	if p := cfg.Store.Postgres; p == nil || *p != want || want.StatementTimeout <= 0 {
		t.Fatalf("store.postgres = %+v, want %+v", p, want)
	}
	if out := string(cfg.marshal()); !strings.Contains(out, `"dsn_file": "/etc/sealpost/pg.dsn"`) || !strings.Contains(out, `"statement_timeout": "`) {
		t.Fatalf("-print-config lacks the store section:\n%s", out)
	}
}

// TestConfigReportsEveryProblem: an operator fixes a file in one go: a problem of decoding does not
// hide one of validation.
func TestConfigReportsEveryProblem(t *testing.T) {
	f := filepath.Join(t.TempDir(), "sealpost.json")
	os.WriteFile(f, []byte(`{
  "smtp": {"adr": "127.0.0.1:25"},
  "queue": {"min_backoff": "5 minutes"},
  "gateway": {"rules": [{"sender": "otp@bank.example", "class": "promo"}]}
}`), 0o600)
	_, err := loadConfig(f, "")
	var paths []string
	for _, fe := range config.FieldErrors(err) {
		paths = append(paths, fe.Path)
	}
	if want := []string{"smtp.adr", "queue.min_backoff", "gateway.rules[0].class"}; !slices.Equal(paths, want) {
		t.Fatalf("problems at %q, want %q:\n%v", paths, want, err)
	}
}

// TestConfigSyntaxError: a file that is not JSON is reported as FILE:LINE:COLUMN, in words, and alone.
func TestConfigSyntaxError(t *testing.T) {
	tests := []struct {
		name, json   string
		line, column int
	}{
		{"MissingValue", "{\n  \"smtp\": {\n    \"addr\": }\n}\n", 3, 13},
		{"Truncated", "{\n  \"smtp\": {\"addr\": \"127.0.0.1:25\"}\n", 2, 35},
		{"TwoValues", `{} {}`, 1, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "sealpost.json")
			os.WriteFile(f, []byte(tt.json), 0o600)
			_, err := loadConfig(f, "")
			var se *config.SyntaxError
			if !errors.As(err, &se) || se.Line != tt.line || se.Column != tt.column {
				t.Fatalf("got %#v, want a syntax error at line %d, column %d", err, tt.line, tt.column)
			}
			if want := fmt.Sprintf("%s:%d:%d: ", f, tt.line, tt.column); !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("%q does not start with %q", err, want)
			}
		})
	}
}

// problemAt returns the problem at path in err, or nil.
func problemAt(err error, path string) *config.FieldError {
	for _, fe := range config.FieldErrors(err) {
		if fe.Path == path {
			return fe
		}
	}
	return nil
}

// TestConfigFileMeansBankIdentities: without a file serve runs on development identities; a file
// that does not say "identities": "development" is a deployment, which needs the bank's own.
func TestConfigFileMeansBankIdentities(t *testing.T) {
	if cfg, err := loadConfig("", ""); err != nil || cfg.Identities != identitiesDevelopment {
		t.Fatalf("no file: identities %q, %v", cfg.Identities, err)
	}
	for body, want := range map[string]string{`{}`: identitiesBank, `{"identities": "development"}`: identitiesDevelopment, `{"identities": "bank"}`: identitiesBank} {
		f := filepath.Join(t.TempDir(), "c.json")
		os.WriteFile(f, []byte(body), 0o600)
		if cfg, err := loadConfig(f, ""); err != nil || cfg.Identities != want {
			t.Errorf("%s: identities %q, %v; want %q", body, cfg.Identities, err, want)
		}
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

// testSpoolConfig is queue.DefaultConfig with the directory, workers and scan interval of a test.
func testSpoolConfig(dir string, workers int, scan time.Duration) queue.Config {
	c := queue.DefaultConfig()
	c.Dir, c.Workers, c.ScanInterval = dir, workers, config.Duration(scan)
	return c
}
