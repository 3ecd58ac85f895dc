package api

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/internal/logtest"
	"github.com/sealpost/sealpost/internal/pgtest"
	"github.com/sealpost/sealpost/internal/tlstest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// A backend opens a fresh, empty store of one kind.
type backend struct {
	name string
	open func(t testing.TB) Store
}

var backends = []backend{
	{"sqlite", func(t testing.TB) Store {
		st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "sealpost.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"postgres", func(t testing.TB) Store {
		srv := pgtest.Start(t)
		cfg := store.DefaultPostgresConfig()
		cfg.DSN = srv.DSN(srv.NewDatabase(t))
		st, err := store.OpenPostgres(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

// forEachBackend runs f on each store.
func forEachBackend(t *testing.T, f func(t *testing.T, open func(testing.TB) Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.open) })
	}
}

// material is what the tests register, made once per test binary: a development CA trusted by
// every fixture's data directory, one RSA key certified for many addresses, and an OpenPGP key.
type material struct {
	ca     *keys.Identity
	rsa    *rsa.PrivateKey
	pgp    *openpgp.Entity // alice@example.com, with its secret key
	pgpBob *openpgp.Entity
}

var (
	materialOnce sync.Once
	shared       material
)

func testMaterial(t testing.TB) material {
	t.Helper()
	materialOnce.Do(func() {
		var err error
		if shared.ca, err = keys.NewDevCA("api test CA"); err != nil {
			panic(err)
		}
		if shared.rsa, err = keys.NewRSAKey(); err != nil {
			panic(err)
		}
		if shared.pgp, err = keys.NewDevPGPKey("Alice", []string{"alice@example.com"}); err != nil {
			panic(err)
		}
		if shared.pgpBob, err = keys.NewDevPGPKey("Bob", []string{"bob@example.com"}); err != nil {
			panic(err)
		}
	})
	return shared
}

// cert certifies the shared RSA key for addresses, valid from notBefore to notAfter (zero: now
// around, a year).
func (m material) cert(t testing.TB, notBefore, notAfter time.Time, addresses ...string) *x509.Certificate {
	t.Helper()
	if notBefore.IsZero() {
		notBefore, notAfter = time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour)
	}
	c, err := m.ca.Issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: addresses[0]},
		EmailAddresses:        addresses,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		BasicConstraintsValid: true,
	}, m.rsa.Public())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pgpPublic is e's public key, armored or binary.
func pgpPublic(t testing.TB, e *openpgp.Entity, armored bool) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	if !armored {
		return b.Bytes()
	}
	a, err := keys.EncodePGPPublicKeys(e)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// pgpSecret is e with its secret key, armored or binary.
func pgpSecret(t testing.TB, e *openpgp.Entity, armored bool) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := e.SerializePrivate(&b, nil); err != nil {
		t.Fatal(err)
	}
	if !armored {
		return b.Bytes()
	}
	var out bytes.Buffer
	w, err := armor.Encode(&out, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b.Bytes())
	w.Close()
	return out.Bytes()
}

// fixture is an API server over HTTPS on loopback with its store and data directory.
type fixture struct {
	t      testing.TB
	st     Store
	dir    keys.DataDir
	srv    *Server
	base   string
	client *http.Client
	logs   *logtest.Buffer
	m      material

	mu  sync.Mutex // the server's clock is read on its goroutines
	now time.Time
}

// clock is the fixture's time, which the server's clock reads.
func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// advance moves the clock on.
func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// newFixture starts a server on st; opts adjust its configuration before it starts.
func newFixture(t testing.TB, st Store, adjust ...func(*Config)) *fixture {
	t.Helper()
	return newFixtureWith(t, st, nil, adjust...)
}

// newFixtureWith is newFixture with options for the server (a CA, a mailbox).
func newFixtureWith(t testing.TB, st Store, opts []Option, adjust ...func(*Config)) *fixture {
	t.Helper()
	m := testMaterial(t)
	dir := keys.DataDir(t.TempDir())
	if _, err := dir.Import(keys.EncodeCertificates(m.ca.Certificate()), keys.ImportOptions{Root: true}); err != nil {
		t.Fatal(err)
	}
	d, err := dir.DirectoryFrom(context.Background(), storedKeys{st})
	if err != nil {
		t.Fatal(err)
	}
	cert := tlstest.New(t)
	certFile, keyFile := cert.Files(t)
	cfg := DefaultConfig()
	cfg.Addr, cfg.TLS.CertFile, cfg.TLS.KeyFile = "127.0.0.1:0", certFile, keyFile
	for _, a := range adjust {
		a(&cfg)
	}
	log, logs := logtest.New()
	f := &fixture{t: t, st: st, dir: dir, logs: logs, m: m, now: time.Now()}
	srv, err := New(cfg, st, dir, d, append([]Option{WithLogger(log), WithNode("node-a"), WithClock(f.clock)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		if strings.Contains(logs.String(), "does not list") {
			t.Errorf("the server answered with an undocumented status:\n%s", logs.String())
		}
	})
	f.srv, f.base = srv, "https://"+srv.Addr().String()
	f.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}, Timeout: 30 * time.Second}
	t.Cleanup(f.client.CloseIdleConnections)
	return f
}

// token makes a token with scopes and returns its secret.
func (f *fixture) token(scopes ...string) (string, store.APIToken) {
	f.t.Helper()
	secret, tok, err := CreateToken(context.Background(), f.st, "test", scopes, f.clock(), time.Time{})
	if err != nil {
		f.t.Fatal(err)
	}
	return secret, tok
}

// answer is one response, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// problem decodes a problem answer, failing the test unless it is one of type want.
func (a answer) problem(t testing.TB, want ProblemType) Problem {
	t.Helper()
	var p Problem
	if ct := a.header.Get("Content-Type"); ct != problemContentType {
		t.Fatalf("Content-Type %q, want %s (status %d, body %s)", ct, problemContentType, a.status, a.body)
	}
	if err := json.Unmarshal(a.body, &p); err != nil {
		t.Fatalf("problem %s: %v", a.body, err)
	}
	if a.status != want.Status || p.Status != want.Status || p.Type != want.URI() || p.Title != want.Title {
		t.Fatalf("answer %d %s, want %d %s", a.status, a.body, want.Status, want.URI())
	}
	return p
}

// do sends a request; header holds pairs of header name and value.
func (f *fixture) do(method, path, secret string, body []byte, header ...string) answer {
	f.t.Helper()
	req, err := http.NewRequest(method, f.base+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// stored returns what the store holds of customers' keys: registrations of addresses, and the
// recipient keys.
func (f *fixture) stored(addresses ...string) (regs []store.Registration, rks []store.RecipientKey) {
	f.t.Helper()
	ctx := context.Background()
	for _, a := range addresses {
		r, err := f.st.Registrations(ctx, a)
		if err != nil {
			f.t.Fatal(err)
		}
		regs = append(regs, r...)
	}
	rks, err := f.st.RecipientKeys(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return regs, rks
}

// audit returns the audit log.
func (f *fixture) audit() []store.AuditRecord {
	f.t.Helper()
	recs, err := f.st.(interface {
		AuditLog(ctx context.Context, after int64, limit int) ([]store.AuditRecord, error)
	}).AuditLog(context.Background(), 0, 10000)
	if err != nil {
		f.t.Fatal(err)
	}
	return recs
}

// fieldError returns the *config.FieldError at path in err, or nil.
func fieldError(err error, path string) *config.FieldError {
	for _, fe := range config.FieldErrors(err) {
		if fe.Path == path {
			return fe
		}
	}
	return nil
}
