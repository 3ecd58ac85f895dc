package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/discovery"
	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/logtest"
	"github.com/sealpost/sealpost/internal/pgtest"
	"github.com/sealpost/sealpost/internal/tlstest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

// providerWKD is a mail provider's WKD server: real HTTPS on loopback, with a certificate for
// openpgpkey.provider.example from a CA the gateway is told to trust, serving one key.
type providerWKD struct {
	srv   *httptest.Server
	roots *x509.CertPool
	mu    sync.Mutex
	key   []byte
	hold  chan struct{} // when set, answers wait until it closes
	asked atomic.Int32  // requests answered
}

func newProviderWKD(t *testing.T) *providerWKD {
	t.Helper()
	cert := tlstest.ForHosts(t, "openpgpkey.provider.example")
	p := &providerWKD{roots: cert.Pool}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		key, hold := p.key, p.hold
		p.mu.Unlock()
		if hold != nil {
			<-hold
		}
		p.asked.Add(1)
		adv, _, _ := discovery.WKDURLs("frank@provider.example")
		if u, _ := url.Parse(adv); r.URL.Path != u.Path || key == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(key)
	}))
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	return p
}

func (p *providerWKD) publish(t *testing.T, e *openpgp.Entity) {
	t.Helper()
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.key = b.Bytes()
	p.mu.Unlock()
}

// options make the gateway's WKD client reach p for provider.example (and nothing else).
func (p *providerWKD) options() []discovery.WKDOption {
	return []discovery.WKDOption{discovery.WithWKDRoots(p.roots), discovery.WithWKDDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !strings.HasPrefix(addr, "openpgpkey.provider.example:") {
			return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, p.srv.Listener.Addr().String())
	})}
}

// TestServeWKD: frank registered nothing, but his provider publishes his key by WKD. His
// statement goes out encrypted to it (gpg opens it: GOODSIG, GOODMDC), the log and keys list say
// the key was discovered, and an OTP to him is still refused (the OTP class takes no discovered
// keys). He revokes the key at his provider: once the cached answer expires, the next statement
// is refused.
func TestServeWKD(t *testing.T) {
	interop.Tool(t, "gpg")
	frank, err := keys.NewDevPGPKey("Frank", []string{"frank@provider.example"})
	if err != nil {
		t.Fatal(err)
	}
	wkd := newProviderWKD(t)
	wkd.publish(t, frank)
	logger, logs := logtest.New()
	inst, cfg, _, _ := testInstanceLogging(t, func(c *Config) {
		c.Discovery.WKD.Enabled = true
		c.Discovery.WKD.Found = config.Duration(3 * time.Second)
		c.Discovery.WKD.Refresh = config.Duration(time.Second)
		c.wkdOptions = wkd.options()
	}, logger)
	statement := "From: statements@bank.example\r\nTo: frank@provider.example\r\nSubject: Statement\r\n\r\nYour balance is 7,00 EUR.\r\n"
	if res := submit(t, inst, "statements@bank.example", []string{"frank@provider.example"}, statement); res.Err != nil {
		t.Fatalf("a statement to frank, known by WKD: %+v", res)
	}
	msgs, err := waitForMaildir(cfg.Delivery.Maildir, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keys.DataDir(cfg.Data).Export("pgp")
	if err != nil {
		t.Fatal(err)
	}
	out, status, err := interop.Try(t, armoredMessage(msgs[0]), "gpg", append(gnupgHome(t, frank, pub), "--decrypt")...)
	if err != nil || !bytes.Contains(status, []byte("[GNUPG:] GOODSIG")) || !bytes.Contains(status, []byte("[GNUPG:] GOODMDC")) || !bytes.Contains(out, []byte("7,00 EUR")) {
		t.Fatalf("gpg: %v\n%s\n%s", err, status, out)
	}
	if !strings.Contains(logs.String(), "key_sources=discovered") {
		t.Errorf("the queued line does not name the key's source:\n%s", logs.String())
	}
	code, list, errOut := runCLI(t, "", "keys", "list", "-data", cfg.Data)
	if code != 0 || !regexp.MustCompile(`(?m)^frank@provider.example +OpenPGP +discovered +[0-9A-F]{16} +usable `).MatchString(list) {
		t.Errorf("keys list: %d\n%s\n%s", code, list, errOut)
	}
	otp := "From: otp@bank.example\r\nTo: frank@provider.example\r\nSubject: code\r\n\r\nYour code is 123456.\r\n"
	if res := submit(t, inst, "otp@bank.example", []string{"frank@provider.example"}, otp); !strings.Contains(res.Refused["frank@provider.example"], "550") {
		t.Errorf("an OTP to a discovered key: %+v; want 550", res)
	}

	if err := frank.RevokeKey(packet.KeyCompromised, "lost my laptop", nil); err != nil {
		t.Fatal(err)
	}
	wkd.publish(t, frank)
	time.Sleep(3 * time.Second) // found_ttl: the cached key expires, and the next RCPT asks again
	res := submit(t, inst, "statements@bank.example", []string{"frank@provider.example"}, statement)
	if refusal := res.Refused["frank@provider.example"]; !strings.Contains(refusal, "550") || !strings.Contains(refusal, "revoked") {
		t.Fatalf("a statement after frank revoked his key: %+v; want 550 naming the revocation", res)
	}
	_, metrics := httpGet(t, "http://"+inst.ops.Addr().String()+"/metrics")
	for _, want := range []string{`sealpost_wkd_lookups_total{outcome="found"}`, `sealpost_wkd_lookups_total{outcome="refused"}`,
		`sealpost_recipient_keys_chosen_total{class="statement",source="discovered"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestServeWKDBudget: RCPT does not wait on a slow WKD server past the budget: the statement gets
// 451 4.4.3 (the bank's MTA retries; never plaintext), the lookup goes on, and the retry finds
// the key cached and is accepted.
func TestServeWKDBudget(t *testing.T) {
	frank, err := keys.NewDevPGPKey("Frank", []string{"frank@provider.example"})
	if err != nil {
		t.Fatal(err)
	}
	wkd := newProviderWKD(t)
	wkd.publish(t, frank)
	hold := make(chan struct{})
	wkd.hold = hold
	inst, _, _, _ := testInstance(t, func(c *Config) {
		c.Discovery.WKD.Enabled = true
		c.Discovery.WKD.Budget = config.Duration(100 * time.Millisecond)
		c.wkdOptions = wkd.options()
	})
	statement := "From: statements@bank.example\r\nTo: frank@provider.example\r\nSubject: Statement\r\n\r\nYour balance is 7,00 EUR.\r\n"
	res := submit(t, inst, "statements@bank.example", []string{"frank@provider.example"}, statement)
	if r := res.Refused["frank@provider.example"]; !strings.Contains(r, "451") || !strings.Contains(r, "looked up") {
		t.Fatalf("a statement while WKD is slow: %+v; want 451 4.4.3", res)
	}
	close(hold)
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := submit(t, inst, "statements@bank.example", []string{"frank@provider.example"}, statement)
		if res.Err == nil {
			break
		}
		if time.Now().After(deadline) || !strings.Contains(res.Refused["frank@provider.example"], "451") {
			t.Fatalf("the retry: %+v", res)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServePublishesBankKeyByWKD: with discovery.publish_addr, the URL gpg-wks-client prints for
// the bank's sender gives the binary key gpg imports: the bank's own OpenPGP key.
func TestServePublishesBankKeyByWKD(t *testing.T) {
	interop.Tool(t, "gpg")
	tool := interop.WKSClient(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, cfg, _, _ := testInstance(t, func(c *Config) { c.Discovery.Publish = addr })
	wkdURL := strings.TrimSpace(string(interop.Run(t, nil, tool, "--print-wkd-url", "statements@bank.example")))
	u, err := url.Parse(wkdURL)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+u.RequestURI(), nil)
	req.Host = u.Host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("%s: %d %s", wkdURL, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	bank, err := keys.DataDir(cfg.Data).PGPKey()
	if err != nil {
		t.Fatal(err)
	}
	home := gnupgHome(t, frankless(t))
	interop.Run(t, key, "gpg", append(home, "--import")...)
	list := string(interop.Run(t, nil, "gpg", append(home, "--with-colons", "--list-keys", "statements@bank.example")...))
	if !strings.Contains(list, keys.PGPFingerprint(bank)) {
		t.Fatalf("gpg imported from WKD:\n%s\nwant the bank's key %s", list, keys.PGPFingerprint(bank))
	}
}

// frankless is a throw-away secret key for a GnuPG home that needs one.
func frankless(t *testing.T) *openpgp.Entity {
	t.Helper()
	e, err := keys.NewDevPGPKey("Nobody", []string{"nobody@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestServeWKDSharedOnPostgres: two nodes on one PostgreSQL. Node A looks frank's key up by WKD
// for his statement; node B's statement to him is encrypted to the key A stored, without asking
// the provider again, and keys list on the shared store shows it discovered.
func TestServeWKDSharedOnPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.PasswordDSN(pg.NewDatabase(t), pgtest.Password)
	frank, err := keys.NewDevPGPKey("Frank", []string{"frank@provider.example"})
	if err != nil {
		t.Fatal(err)
	}
	wkd := newProviderWKD(t)
	wkd.publish(t, frank)
	node := func() (*instance, Config, string) {
		dir := t.TempDir()
		dsnFile := filepath.Join(dir, "pg.dsn")
		if err := os.WriteFile(dsnFile, []byte(dsn+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		inst, cfg, _, _ := testInstance(t, func(c *Config) {
			c.Store.Postgres = &PostgresConfig{DSNFile: dsnFile, PostgresConfig: store.DefaultPostgresConfig()}
			c.Discovery.WKD.Enabled = true
			c.wkdOptions = wkd.options()
		})
		b, _ := json.Marshal(map[string]any{"identities": "development", "data": cfg.Data,
			"store": map[string]any{"postgres": map[string]any{"dsn_file": dsnFile}}})
		file := filepath.Join(dir, "sealpost.json")
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return inst, cfg, file
	}
	a, cfgA, _ := node()
	b, cfgB, fileB := node()
	statement := "From: statements@bank.example\r\nTo: frank@provider.example\r\nSubject: Statement\r\n\r\nYour balance is 7,00 EUR.\r\n"
	for i, inst := range []*instance{a, b} {
		if res := submit(t, inst, "statements@bank.example", []string{"frank@provider.example"}, statement); res.Err != nil {
			t.Fatalf("node %d: a statement to frank, known by WKD: %+v", i, res)
		}
	}
	if n := wkd.asked.Load(); n != 1 {
		t.Errorf("the provider was asked %d times by two nodes; want once (the answer is shared in PostgreSQL)", n)
	}
	for _, cfg := range []Config{cfgA, cfgB} {
		msgs, err := waitForMaildir(cfg.Delivery.Maildir, 1, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(msgs[0], []byte("application/pgp-encrypted")) {
			t.Fatalf("%s: not PGP/MIME:\n%.400s", cfg.Delivery.Maildir, msgs[0])
		}
	}
	code, list, errOut := runCLI(t, "", "keys", "list", "-config", fileB)
	if code != 0 || !regexp.MustCompile(`(?m)^frank@provider.example +OpenPGP +discovered +[0-9A-F]{16} +usable `).MatchString(list) {
		t.Errorf("keys list on PostgreSQL: %d\n%s\n%s", code, list, errOut)
	}
}
