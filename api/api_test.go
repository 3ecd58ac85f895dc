package api

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

const keysPath = "/v1/customers/alice@example.com/keys"

// TestConfigValidate: the defaults pass; a non-loopback address without TLS, half a certificate,
// client CAs without TLS and out-of-range limits are each a *config.FieldError at their key.
func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		name, path string
		adjust     func(*Config)
	}{
		{"NotLoopbackWithoutTLS", "addr", func(c *Config) { c.Addr = "0.0.0.0:9926" }},
		{"PublicIPWithoutTLS", "addr", func(c *Config) { c.Addr = "192.0.2.1:9926" }},
		{"NotHostPort", "addr", func(c *Config) { c.Addr = "9926" }},
		{"CertWithoutKey", "tls", func(c *Config) { c.TLS.CertFile = "cert.pem" }},
		{"ClientCAWithoutTLS", "tls.client_ca_file", func(c *Config) { c.TLS.ClientCAFile = "ca.pem" }},
		{"MaxBodyZero", "max_body", func(c *Config) { c.MaxBody = 0 }},
		{"IdempotencyTTLZero", "idempotency_ttl", func(c *Config) { c.IdempotencyTTL = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.adjust(&c)
			if fe := fieldError(c.Validate(), tc.path); fe == nil {
				t.Fatalf("Validate() = %v, want a problem at %s", c.Validate(), tc.path)
			}
		})
	}
	c := DefaultConfig()
	c.Addr, c.TLS.CertFile, c.TLS.KeyFile = "0.0.0.0:9926", "cert.pem", "key.pem"
	if err := c.Validate(); err != nil {
		t.Fatalf("non-loopback with TLS: %v", err)
	}
}

// TestTokenShape: a secret is spk_ and 32 base32 characters, an ID tok_ and 16; the store gets the
// secret's SHA-256 only; bad names and scopes are refused.
func TestTokenShape(t *testing.T) {
	now := time.Now()
	secret, tok, err := NewToken("online banking", []string{"otp", "customers", "otp"}, now, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !validSecret(secret) || len(secret) != 36 || !strings.HasPrefix(tok.ID, "tok_") || len(tok.ID) != 20 {
		t.Fatalf("secret %q, ID %q", secret, tok.ID)
	}
	if !bytes.Equal(tok.Hash, HashSecret(secret)) || len(tok.Hash) != 32 || strings.Contains(string(tok.Hash), secret) {
		t.Fatalf("hash %x", tok.Hash)
	}
	if got := strings.Join(tok.Scopes, ","); got != "customers,otp" {
		t.Fatalf("scopes %q", got)
	}
	for _, bad := range []struct {
		name    string
		scopes  []string
		expires time.Time
	}{
		{"", []string{"otp"}, time.Time{}},
		{"a\nb", []string{"otp"}, time.Time{}},
		{"x", nil, time.Time{}},
		{"x", []string{"root"}, time.Time{}},
		{"x", []string{"otp"}, now.Add(-time.Second)},
	} {
		if _, _, err := NewToken(bad.name, bad.scopes, now, bad.expires); !errors.Is(err, ErrBadToken) {
			t.Errorf("NewToken(%q, %v, %v) = %v, want ErrBadToken", bad.name, bad.scopes, bad.expires, err)
		}
	}
}

// TestUnauthorized: no token, a malformed one, an unknown one, an expired one and a revoked one
// all get the same 401 problem (the caller cannot tell which); a valid token without the scope
// gets 403. Nothing is registered for any of them, and each call is audited.
func TestUnauthorized(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(testing.TB) Store) {
		f := newFixture(t, open(t))
		ctx := context.Background()
		expiring, _, err := CreateToken(ctx, f.st, "expiring", []string{ScopeCustomers}, f.clock(), f.clock().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		revoked, rt := f.token(ScopeCustomers)
		if err := f.st.RevokeAPIToken(ctx, rt.ID, f.clock()); err != nil {
			t.Fatal(err)
		}
		unknown, _, _ := NewToken("never stored", []string{ScopeCustomers}, f.clock(), time.Time{})
		body := keys.EncodeCertificates(f.m.cert(t, time.Time{}, time.Time{}, "alice@example.com"))
		var first []byte
		f.advance(2 * time.Hour) // the expiring token has expired
		for _, secret := range []string{"", "spk_short", strings.Repeat("x", 36), unknown, expiring, revoked} {
			a := f.do(http.MethodPut, keysPath, secret, body, "Content-Type", typePEM)
			a.problem(t, ProblemUnauthorized)
			if a.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if first == nil {
				first = a.body
			} else if !bytes.Equal(a.body, first) {
				t.Errorf("token %q: problem %s differs from %s", secret, a.body, first)
			}
		}
		otp, _ := f.token(ScopeOTP, ScopeAdmin)
		f.do(http.MethodPut, keysPath, otp, body, "Content-Type", typePEM).problem(t, ProblemForbidden)
		f.do(http.MethodGet, keysPath, otp, nil).problem(t, ProblemForbidden)
		if regs, rks := f.stored("alice@example.com"); len(regs)+len(rks) != 0 {
			t.Fatalf("refused calls stored %v %v", regs, rks)
		}
		recs := f.audit()
		if len(recs) != 8 || recs[0].Actor != "anonymous" || recs[0].Status != 401 || recs[7].Status != 403 || !strings.HasPrefix(recs[7].Actor, "token:tok_") {
			t.Fatalf("audit log %+v", recs)
		}
	})
}

// TestPutKeyForms: a certificate as PEM, DER, octet-stream and JSON, and an OpenPGP key armored
// and binary, are each registered for the address (and only it), stored in the shared directory,
// and answered 201 with the key; GET lists it.
func TestPutKeyForms(t *testing.T) {
	m := testMaterial(t)
	c := m.cert(t, time.Time{}, time.Time{}, "Alice@Example.COM")
	pemCert := keys.EncodeCertificates(c)
	jsonBody, _ := json.Marshal(KeyUpload{Key: string(pemCert)})
	for _, tc := range []struct {
		name, contentType, kind string
		body                    []byte
	}{
		{"PEM", typePEM, "smime", pemCert},
		{"PEMWithIntermediate", typePEM + "; charset=us-ascii", "smime", keys.EncodeCertificates(c, m.ca.Certificate())},
		{"DER", typeDER, "smime", c.Raw},
		{"OctetStreamDER", typeBytes, "smime", c.Raw},
		{"JSON", typeJSON, "smime", jsonBody},
		{"PGPArmored", typePGP, "pgp", pgpPublic(t, m.pgp, true)},
		{"PGPBinary", typePGP, "pgp", pgpPublic(t, m.pgp, false)},
		{"OctetStreamPGP", typeBytes, "pgp", pgpPublic(t, m.pgp, false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, backends[0].open(t))
			secret, _ := f.token(ScopeCustomers)
			a := f.do(http.MethodPut, "/v1/customers/ALICE@EXAMPLE.COM/keys", secret, tc.body, "Content-Type", tc.contentType)
			if a.status != http.StatusCreated {
				t.Fatalf("PUT: %d %s", a.status, a.body)
			}
			var k Key
			if err := json.Unmarshal(a.body, &k); err != nil {
				t.Fatal(err)
			}
			if k.Kind != tc.kind || k.State != "usable" || k.Source != "registered" || k.Address != "ALICE@example.com" || k.Expires == nil && tc.kind == "smime" {
				t.Fatalf("key %+v", k)
			}
			regs, rks := f.stored("alice@example.com")
			if len(regs) != 1 || regs[0].Fingerprint != k.Fingerprint || len(rks) == 0 {
				t.Fatalf("stored %+v %d keys", regs, len(rks))
			}
			g := f.do(http.MethodGet, "/v1/customers/alice@example.com/keys", secret, nil)
			var list KeyList
			if err := json.Unmarshal(g.body, &list); g.status != 200 || err != nil || len(list.Keys) != 1 || list.Keys[0].Fingerprint != k.Fingerprint || list.Keys[0].Source != "registered" {
				t.Fatalf("GET: %d %s", g.status, g.body)
			}
		})
	}
}

// TestPutKeyRefused: every upload keys import would refuse, or that names another address, or
// holds a private key, gets its problem, and nothing is stored.
func TestPutKeyRefused(t *testing.T) {
	m := testMaterial(t)
	expired := m.cert(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour), "alice@example.com")
	keyDER, _ := x509MarshalPKCS8(m)
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	for _, tc := range []struct {
		name, path, contentType string
		body                    []byte
		want                    ProblemType
	}{
		{"OtherAddress", keysPath, typePEM, keys.EncodeCertificates(m.cert(t, time.Time{}, time.Time{}, "bob@example.com")), ProblemWrongAddress},
		{"AlsoOtherAddress", keysPath, typePEM, keys.EncodeCertificates(m.cert(t, time.Time{}, time.Time{}, "alice@example.com", "bob@example.com")), ProblemWrongAddress},
		{"OtherAddressPGP", keysPath, typePGP, pgpPublic(t, m.pgpBob, true), ProblemWrongAddress},
		{"TwoKeys", keysPath, typePEM, keys.EncodeCertificates(m.cert(t, time.Time{}, time.Time{}, "alice@example.com"), m.cert(t, time.Time{}, time.Time{}, "alice@example.com")), ProblemBadKey},
		{"PrivateKeyPEM", keysPath, typePEM, privPEM, ProblemPrivateKey},
		{"CertificateAndPrivateKey", keysPath, typePEM, append(keys.EncodeCertificates(m.cert(t, time.Time{}, time.Time{}, "alice@example.com")), privPEM...), ProblemPrivateKey},
		{"PGPSecretArmored", keysPath, typePGP, pgpSecret(t, m.pgp, true), ProblemPrivateKey},
		{"PGPSecretBinary", keysPath, typeBytes, pgpSecret(t, m.pgp, false), ProblemPrivateKey},
		{"Expired", keysPath, typePEM, keys.EncodeCertificates(expired), ProblemBadKey},
		{"CAOnly", keysPath, typePEM, keys.EncodeCertificates(m.ca.Certificate()), ProblemBadKey},
		{"Garbage", keysPath, typeBytes, []byte("\x00\x01garbage\xff"), ProblemBadKey},
		{"Text", keysPath, typeBytes, []byte("hello, I am not a key"), ProblemBadKey},
		{"Empty", keysPath, typeBytes, nil, ProblemBadKey},
		{"DERLabelPEMBody", keysPath, typeDER, keys.EncodeCertificates(expired), ProblemBadKey},
		{"UnsupportedType", keysPath, "text/plain", []byte("x"), ProblemUnsupportedMediaType},
		{"NoContentType", keysPath, "", []byte("x"), ProblemUnsupportedMediaType},
		{"BadJSON", keysPath, typeJSON, []byte(`{"key": `), ProblemBadJSON},
		{"UnknownJSONField", keysPath, typeJSON, []byte(`{"key": "x", "password": "hunter2"}`), ProblemBadJSON},
		{"TwoJSONValues", keysPath, typeJSON, []byte(`{"key": "x"} {}`), ProblemBadJSON},
		{"BadAddress", "/v1/customers/not%20an%20address/keys", typePEM, keys.EncodeCertificates(expired), ProblemBadAddress},
		{"HostileAddress", "/v1/customers/%1B%5B31m%3Cscript%3E/keys", typePEM, keys.EncodeCertificates(expired), ProblemBadAddress},
		{"TooLarge", keysPath, typePEM, bytes.Repeat([]byte("A"), 4096), ProblemBodyTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, backends[0].open(t), func(c *Config) { c.MaxBody = 4000 })
			secret, _ := f.token(ScopeCustomers)
			var hdr []string
			if tc.contentType != "" {
				hdr = []string{"Content-Type", tc.contentType}
			}
			p := f.do(http.MethodPut, tc.path, secret, tc.body, hdr...).problem(t, tc.want)
			if strings.ContainsAny(p.Detail, "\x1b\n") && tc.name == "HostileAddress" {
				t.Errorf("detail echoes hostile input: %q", p.Detail)
			}
			if strings.Contains(p.Detail, "hunter2") || strings.Contains(p.Detail, "PRIVATE") && tc.want == ProblemPrivateKey {
				t.Errorf("detail %q quotes the body", p.Detail)
			}
			if regs, rks := f.stored("alice@example.com", "bob@example.com"); len(regs)+len(rks) != 0 {
				t.Fatalf("refused upload stored %+v, %d keys", regs, len(rks))
			}
		})
	}
}

// TestDeleteKey: DELETE with 16 hex digits of the fingerprint unregisters the key and removes it
// from the shared directory; an unknown fingerprint is 404, a malformed one 400.
func TestDeleteKey(t *testing.T) {
	f := newFixture(t, backends[0].open(t))
	secret, _ := f.token(ScopeCustomers)
	a := f.do(http.MethodPut, keysPath, secret, keys.EncodeCertificates(f.m.cert(t, time.Time{}, time.Time{}, "alice@example.com")), "Content-Type", typePEM)
	var k Key
	if err := json.Unmarshal(a.body, &k); a.status != 201 || err != nil {
		t.Fatalf("PUT: %d %s", a.status, a.body)
	}
	f.do(http.MethodDelete, keysPath+"/0123456789ABCDEF", secret, nil).problem(t, ProblemNotFound)
	f.do(http.MethodDelete, keysPath+"/0123", secret, nil).problem(t, ProblemBadFingerprint)
	f.do(http.MethodDelete, keysPath+"/"+strings.Repeat("Z", 20), secret, nil).problem(t, ProblemBadFingerprint)
	if d := f.do(http.MethodDelete, keysPath+"/"+strings.ToLower(k.Fingerprint[:16]), secret, nil); d.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", d.status, d.body)
	}
	if regs, rks := f.stored("alice@example.com"); len(regs)+len(rks) != 0 {
		t.Fatalf("after DELETE: %+v, %d keys", regs, len(rks))
	}
	var list KeyList
	g := f.do(http.MethodGet, keysPath, secret, nil)
	if err := json.Unmarshal(g.body, &list); err != nil || len(list.Keys) != 0 {
		t.Fatalf("GET after DELETE: %s", g.body)
	}
	f.do(http.MethodDelete, keysPath+"/"+k.Fingerprint, secret, nil).problem(t, ProblemNotFound)
	f.do(http.MethodGet, "/v1/customers/%00/keys", secret, nil).problem(t, ProblemBadAddress)
}

// TestIdempotency: a replay with the same Idempotency-Key and body gets the stored answer (marked
// Idempotent-Replayed) without running again; another body is 422; a call still running is 409;
// an answer of 5xx is not kept, so the retry runs. On both stores.
func TestIdempotency(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(testing.TB) Store) {
		fs := &failingStore{Store: open(t)}
		f := newFixture(t, fs)
		secret, tok := f.token(ScopeCustomers)
		body := keys.EncodeCertificates(f.m.cert(t, time.Time{}, time.Time{}, "alice@example.com"))
		first := f.do(http.MethodPut, keysPath, secret, body, "Content-Type", typePEM, "Idempotency-Key", "reg-1")
		if first.status != 201 || first.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("first: %d %v %s", first.status, first.header, first.body)
		}
		fs.failPut.Store(true) // a second run would fail: the replay must not run
		again := f.do(http.MethodPut, keysPath, secret, body, "Content-Type", typePEM, "Idempotency-Key", "reg-1")
		if again.status != 201 || again.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.body, first.body) {
			t.Fatalf("replay: %d %v %s", again.status, again.header, again.body)
		}
		other := keys.EncodeCertificates(f.m.cert(t, time.Time{}, time.Time{}, "alice@example.com"))
		f.do(http.MethodPut, keysPath, secret, other, "Content-Type", typePEM, "Idempotency-Key", "reg-1").problem(t, ProblemIdempotencyKeyReused)
		f.do(http.MethodPut, keysPath, secret, other, "Content-Type", typePEM, "Idempotency-Key", "bad key").problem(t, ProblemBadIdempotencyKey)

		// 5xx: abandoned, so that the retry runs (and succeeds once the store does).
		f.do(http.MethodPut, keysPath, secret, other, "Content-Type", typePEM, "Idempotency-Key", "reg-2").problem(t, ProblemInternal)
		fs.failPut.Store(false)
		if a := f.do(http.MethodPut, keysPath, secret, other, "Content-Type", typePEM, "Idempotency-Key", "reg-2"); a.status != 201 || a.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("retry after 5xx: %d %s", a.status, a.body)
		}
		if regs, _ := f.stored("alice@example.com"); len(regs) != 2 {
			t.Fatalf("registrations %+v, want the two certificates", regs)
		}

		// In progress: the first call has begun and not finished.
		hash := requestHash(mustRequest(t, http.MethodPut, keysPath), body)
		if _, fresh, err := f.st.BeginIdempotent(context.Background(), store.IdempotentCall{TokenID: tok.ID, Key: "reg-3", RequestHash: hash, Created: f.clock()}); err != nil || !fresh {
			t.Fatalf("BeginIdempotent: %v %v", fresh, err)
		}
		f.do(http.MethodPut, keysPath, secret, body, "Content-Type", typePEM, "Idempotency-Key", "reg-3").problem(t, ProblemIdempotencyInProgress)

		// Another token's key is its own.
		secret2, _ := f.token(ScopeCustomers)
		if a := f.do(http.MethodPut, keysPath, secret2, other, "Content-Type", typePEM, "Idempotency-Key", "reg-1"); a.status != 201 || a.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("another token's reg-1: %d %v", a.status, a.header)
		}

		// Expired calls are deleted: the key may run again.
		f.advance(25 * time.Hour)
		f.srv.ExpireIdempotent(context.Background())
		if a := f.do(http.MethodPut, keysPath, secret, other, "Content-Type", typePEM, "Idempotency-Key", "reg-1"); a.status != 201 || a.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("reg-1 after expiry: %d %v %s", a.status, a.header, a.body)
		}
	})
}

// TestAudit: a registration is audited with the token's ID, the route pattern, the address, the
// status and the node; no record and no log line holds the secret or the key.
func TestAudit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(testing.TB) Store) {
		f := newFixture(t, open(t))
		secret, tok := f.token(ScopeCustomers)
		body := keys.EncodeCertificates(f.m.cert(t, time.Time{}, time.Time{}, "alice@example.com"))
		if a := f.do(http.MethodPut, keysPath, secret, body, "Content-Type", typePEM); a.status != 201 {
			t.Fatalf("PUT: %d %s", a.status, a.body)
		}
		recs := f.audit()
		if len(recs) != 1 {
			t.Fatalf("audit %+v", recs)
		}
		r := recs[0]
		if r.Actor != "token:"+tok.ID || r.Action != "PUT /v1/customers/{address}/keys" || r.Target != "alice@example.com" || r.Status != 201 || r.Node != "node-a" || r.Seq == 0 {
			t.Fatalf("audit record %+v", r)
		}
		all, _ := json.Marshal(recs)
		for _, secretPart := range []string{secret, secret[4:], "BEGIN CERTIFICATE", "MII"} {
			if strings.Contains(string(all), secretPart) || strings.Contains(f.logs.String(), secretPart) {
				t.Fatalf("audit log or log holds %q:\n%s\n%s", secretPart, all, f.logs.String())
			}
		}
		if !strings.Contains(f.logs.String(), "domain=example.com") || strings.Contains(f.logs.String(), "alice@") {
			t.Fatalf("log line should name the domain only:\n%s", f.logs.String())
		}
	})
}

// TestRoutingProblems: an unknown path is 404 and a wrong method 405 (with Allow), both problems.
func TestRoutingProblems(t *testing.T) {
	f := newFixture(t, backends[0].open(t))
	f.do(http.MethodGet, "/v1/nothing", "", nil).problem(t, ProblemNotFound)
	a := f.do(http.MethodPost, "/v1/openapi.json", "", nil)
	a.problem(t, ProblemMethodNotAllowed)
	if a.header.Get("Allow") != "GET" {
		t.Fatalf("Allow %q", a.header.Get("Allow"))
	}
}

// TestUncleanPathNotRedirected: a path with an empty segment, "." or ".." is a 404 problem, not
// the mux's 307 to the cleaned path, which a client would follow with its body to another call
// (found by FuzzOTPCalls: POST /v1/otp//verify).
func TestUncleanPathNotRedirected(t *testing.T) {
	f := newFixture(t, backends[0].open(t))
	for _, p := range []string{"/v1/otp//verify", "/v1/./openapi.json", "/v1/customers/x/../../openapi.json", "//v1/openapi.json", "/v1/openapi.json/"} {
		a := f.do(http.MethodGet, p, "", nil)
		a.problem(t, ProblemNotFound)
		if loc := a.header.Get("Location"); loc != "" {
			t.Fatalf("%s: Location %q", p, loc)
		}
	}
}

// TestMutualTLS: with client_ca_file, a client without a certificate is refused in the handshake;
// one with a certificate from that CA is served.
func TestMutualTLS(t *testing.T) {
	clientCert := tlstestClient(t)
	f := newFixture(t, backends[0].open(t), func(c *Config) { c.TLS.ClientCAFile = clientCert.caFile })
	if _, err := f.client.Get(f.base + "/v1/openapi.json"); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	f.client.Transport.(*http.Transport).TLSClientConfig.Certificates = clientCert.certs
	f.client.CloseIdleConnections()
	if a := f.do(http.MethodGet, "/v1/openapi.json", "", nil); a.status != 200 {
		t.Fatalf("with a client certificate: %d", a.status)
	}
}

// TestStartRefusesPlainNonLoopback: New refuses a non-loopback address without TLS.
func TestStartRefusesPlainNonLoopback(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addr = "0.0.0.0:0"
	if _, err := New(cfg, backends[0].open(t), keys.DataDir(t.TempDir()), nil); fieldError(err, "addr") == nil {
		t.Fatalf("New = %v, want a problem at addr", err)
	}
}

// TestHandlerStatusesDocumented is the fixture's check (every answer's status is in the route
// table) over a call of each route, so that it runs even alone.
func TestHandlerStatusesDocumented(t *testing.T) {
	f := newFixture(t, backends[0].open(t))
	secret, _ := f.token(ScopeCustomers)
	for _, rt := range routeTable() {
		path := strings.NewReplacer("{address}", "alice@example.com", "{fingerprint}", "0123456789ABCDEF").Replace(rt.Pattern)
		a := f.do(rt.Method, path, secret, nil)
		if a.status == 0 || !containsStatus(rt.Statuses, a.status) {
			t.Errorf("%s %s: %d not among %v", rt.Method, path, a.status, rt.Statuses)
		}
	}
}

func containsStatus(list []int, s int) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mustRequest(t testing.TB, method, path string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "https://127.0.0.1"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
