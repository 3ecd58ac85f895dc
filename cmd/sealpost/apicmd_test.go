package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/internal/tlstest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

// apiClient calls a running instance's API over HTTPS.
type apiClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (a apiClient) call(method, path, secret, contentType string, body []byte) (int, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestAPIRegistrationThroughServe: with a token from `api token create`, online banking registers
// a new customer's certificate over HTTPS, and the running gateway encrypts to it without a
// restart; DELETE makes it refuse the customer again. `api token list` never shows a secret or
// hash; after `api token revoke` the next call is 401. Token creation and revocation are audited
// with the operator's name.
func TestAPIRegistrationThroughServe(t *testing.T) {
	cert := tlstest.New(t)
	certFile, keyFile := cert.Files(t)
	inst, cfg, _, _ := testInstance(t, func(c *Config) { c.API.TLS.CertFile, c.API.TLS.KeyFile = certFile, keyFile })
	t.Setenv("USER", "operator7")
	code, secret, stderr := runCLI(t, "", "api", "token", "create", "-data", cfg.Data, "-name", "online banking", "-scopes", "customers", "-expires", "720h")
	secret = strings.TrimSpace(secret)
	if code != 0 || !strings.HasPrefix(secret, "spk_") || len(secret) != 36 || !strings.Contains(stderr, "shown only now") {
		t.Fatalf("api token create: %d %q %q", code, secret, stderr)
	}
	api := apiClient{t: t, base: "https://" + inst.APIAddr().String(),
		c: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}, Timeout: 30 * time.Second}}
	defer api.c.CloseIdleConnections()

	ca, err := keys.DataDir(cfg.Data).Identity("ca")
	if err != nil {
		t.Fatal(err)
	}
	dave, err := ca.NewDevCustomer("dave@example.net")
	if err != nil {
		t.Fatal(err)
	}
	if res := submit(t, inst, "statements@bank.example", []string{"dave@example.net"}, e2eStatement); res.Refused["dave@example.net"] == "" {
		t.Fatalf("dave accepted before he registered a key: %+v", res)
	}
	status, body := api.call(http.MethodPut, "/v1/customers/dave@example.net/keys", secret, "application/pkix-cert", dave.Certificate().Raw)
	var k struct{ Fingerprint, State, Source string }
	if err := json.Unmarshal(body, &k); status != http.StatusCreated || err != nil || k.State != "usable" || k.Source != "registered" {
		t.Fatalf("PUT: %d %s", status, body)
	}
	waitFor(t, "dave's certificate in the gateway's directory", func() bool {
		return len(submit(t, inst, "statements@bank.example", []string{"dave@example.net"}, e2eStatement).Refused) == 0
	})
	if status, body := api.call(http.MethodDelete, "/v1/customers/dave@example.net/keys/"+k.Fingerprint[:16], secret, "", nil); status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", status, body)
	}
	waitFor(t, "dave refused again", func() bool {
		return submit(t, inst, "statements@bank.example", []string{"dave@example.net"}, e2eStatement).Refused["dave@example.net"] != ""
	})
	// Both changes are in the evidence log, with the token that made them.
	var actions []string
	for _, r := range evidenceRecords(t, cfg.Data) {
		if a := r.Action; a != nil && a.Subject == "dave@example.net" && strings.HasPrefix(a.Actor, "token:tok_") && strings.Contains(a.Actor, "(online banking)") {
			actions = append(actions, a.Action)
		}
	}
	if strings.Join(actions, ",") != "key registered,key removed" {
		t.Errorf("evidence actions for dave: %q", actions)
	}

	code, list, stderr := runCLI(t, "", "api", "token", "list", "-data", cfg.Data)
	if code != 0 || !strings.Contains(list, "online banking") || !strings.Contains(list, "customers") || strings.Contains(list, secret[4:]) {
		t.Fatalf("api token list: %d %q %q", code, list, stderr)
	}
	id := strings.Fields(strings.Split(list, "\n")[1])[0]
	if code, out, stderr := runCLI(t, "", "api", "token", "revoke", "-data", cfg.Data, id); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("api token revoke: %d %q %q", code, out, stderr)
	}
	if status, body := api.call(http.MethodGet, "/v1/customers/dave@example.net/keys", secret, "", nil); status != http.StatusUnauthorized {
		t.Fatalf("after revoke: %d %s", status, body)
	}
	if code, _, stderr := runCLI(t, "", "api", "token", "revoke", "-data", cfg.Data, id); code != 1 || !strings.Contains(stderr, "revoked already") {
		t.Fatalf("revoke twice: %d %q", code, stderr)
	}

	st, err := store.OpenSQLite(filepath.Join(cfg.Data, storeFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.AuditLog(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var cli []string
	for _, r := range recs {
		if strings.Contains(r.Detail, secret[4:]) {
			t.Fatalf("audit record %+v holds the secret", r)
		}
		if strings.HasPrefix(r.Actor, "cli:") {
			cli = append(cli, r.Actor+" "+r.Action)
		}
	}
	if strings.Join(cli, "; ") != "cli:operator7 api token create; cli:operator7 api token revoke" {
		t.Fatalf("CLI audit records: %q", cli)
	}
}

// TestAPITokenUsage: bad token commands are usage errors (exit 2) and store nothing.
func TestAPITokenUsage(t *testing.T) {
	data := t.TempDir()
	for _, args := range [][]string{
		{"api", "token"},
		{"api", "token", "mint"},
		{"api", "token", "create", "-data", data, "-scopes", "customers"},
		{"api", "token", "create", "-data", data, "-name", "x"},
		{"api", "token", "create", "-data", data, "-name", "x", "-scopes", "root"},
		{"api", "token", "revoke", "-data", data},
	} {
		if code, out, stderr := runCLI(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d %q %q, want 2", args, code, out, stderr)
		}
	}
	if code, out, _ := runCLI(t, "", "api", "token", "list", "-data", data); code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("list after refused creates: %d %q", code, out)
	}
}

// TestAPIConfigRemoteNeedsTLS: an api.addr that is not loopback, without TLS, is refused at load.
func TestAPIConfigRemoteNeedsTLS(t *testing.T) {
	f := writeConfigFile(t, `{"identities": "development", "api": {"addr": "0.0.0.0:9926"}}`)
	_, err := loadConfig(f, "")
	var found bool
	for _, fe := range config.FieldErrors(err) {
		found = found || fe.Path == "api.addr"
	}
	if !found {
		t.Fatalf("loadConfig = %v, want a problem at api.addr", err)
	}
}
