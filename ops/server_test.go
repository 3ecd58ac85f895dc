package ops

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/outbound"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/tsa"
)

var (
	_ outbound.Observer = (*Metrics)(nil)
	_ Spool             = (*queue.Spool)(nil)
	_ SpoolStats        = (*queue.Spool)(nil)
)

var quiet = slog.New(slog.DiscardHandler)

// hop is a next hop that answers each recipient with reply(to) (nil: delivered).
type hop func(to string) error

func (h hop) Deliver(_ context.Context, _ string, to []string, _ []byte) []error {
	errs := make([]error, len(to))
	for i, r := range to {
		errs[i] = h(r)
	}
	return errs
}

// busy is the temporary failure of a next hop that keeps entries queued; its text names the
// recipient, as real servers' replies do.
func busy(to string) error {
	return &queue.DeliveryError{Temporary: true, Code: 450, Enhanced: "4.2.1", Message: "<" + to + "> mailbox busy"}
}

func openSpool(t *testing.T, dir string, next queue.NextHop, opts ...queue.Option) *queue.Spool {
	t.Helper()
	opts = append([]queue.Option{queue.WithLogger(quiet), queue.WithHostname("mx.sealpost.test")}, opts...)
	sp, err := queue.Open(testSpoolConfig(dir, 2, 5*time.Millisecond), next, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sp.Start(ctx)
	t.Cleanup(func() { cancel(); sp.Close() })
	return sp
}

// testSecret is the ops token of the servers startServer starts; call presents it.
const testSecret = "test-ops-token-0123456789abcdefghijklmnop"

func startServer(t *testing.T, opts ...Option) (*Server, string) {
	t.Helper()
	srv, err := NewServer(Config{Enabled: true, Addr: "127.0.0.1:0"}, append([]Option{WithLogger(quiet), WithToken(NewToken(testSecret))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, "http://" + srv.Addr().String()
}

// call makes one request with the ops token and decodes a JSON answer into out (when not nil).
func call(t *testing.T, method, url string, out any) (int, http.Header, string) {
	t.Helper()
	return callWith(t, "Bearer "+testSecret, method, url, out)
}

// callWith is call with the given Authorization field ("": none).
func callWith(t *testing.T, authorization, method, url string, out any) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v in %q", method, url, err, body)
		}
	}
	return resp.StatusCode, resp.Header, string(body)
}

func scrapeMetrics(t *testing.T, base string) scrape {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %s, %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	return parseExposition(t, resp.Body)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// bank is a data directory with development identities and one S/MIME customer, alice.
type bank struct {
	dir    keys.DataDir
	signer *keys.Identity
	tsa    *keys.Identity
	ca     *keys.Identity
}

var (
	bankOnce sync.Once
	theBank  *bank
	bankErr  error
	bankDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if bankDir != "" {
		os.RemoveAll(bankDir)
	}
	os.Exit(code)
}

func getBank(t *testing.T) *bank {
	t.Helper()
	bankOnce.Do(func() {
		if bankDir, bankErr = os.MkdirTemp("", "sealpost-ops-"); bankErr != nil {
			return
		}
		b := &bank{dir: keys.DataDir(bankDir)}
		if bankErr = b.dir.Init([]string{"statements@bank.example"}); bankErr != nil {
			return
		}
		for name, dst := range map[string]**keys.Identity{"signer": &b.signer, "tsa": &b.tsa, "ca": &b.ca} {
			if *dst, bankErr = b.dir.Identity(name); bankErr != nil {
				return
			}
		}
		alice, err := b.ca.NewDevCustomer("alice@example.com")
		if err == nil {
			_, err = b.dir.Import(keys.EncodeCertificates(alice.Certificate()), keys.ImportOptions{})
		}
		theBank, bankErr = b, err
	})
	if bankErr != nil {
		t.Fatal(bankErr)
	}
	return theBank
}

// transaction runs MAIL, RCPT… and DATA on g.
func transaction(g *outbound.Pipeline, from string, to []string, msg string) error {
	s, err := g.NewSession(gateway.Client{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Trusted: true})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Mail(context.Background(), from, 0); err != nil {
		return err
	}
	for _, r := range to {
		if err := s.Rcpt(context.Background(), r); err != nil {
			return err
		}
	}
	_, err = s.Data(context.Background(), []byte(msg))
	return err
}

const statement = "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: Statement\r\n\r\nBalance: 1 234,56 EUR\r\n"

// After real traffic through the gateway, both spools and the TSA, the scraped counters moved.
func TestMetricsAfterTraffic(t *testing.T) {
	b := getBank(t)
	m := NewMetrics()
	authority, err := tsa.NewAuthority(b.tsa.Signer, b.tsa.Chain)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := smime.NewProtector(b.signer, smime.WithTimestamper(InstrumentTimestamper(authority, m)))
	if err != nil {
		t.Fatal(err)
	}
	directory, err := b.dir.Directory()
	if err != nil {
		t.Fatal(err)
	}
	outSpool := openSpool(t, t.TempDir(), &queue.Maildir{Dir: filepath.Join(t.TempDir(), "outbox")}, queue.WithObserver(m.QueueObserver("outbound")))
	desk := openSpool(t, t.TempDir(), hop(func(to string) error {
		if strings.HasPrefix(to, "gone@") {
			return &queue.DeliveryError{Code: 550, Enhanced: "5.1.1", Message: "no such user"}
		}
		return busy(to)
	}), queue.WithObserver(m.QueueObserver("desk")))
	m.WatchSpool("outbound", outSpool)
	m.WatchSpool("desk", desk)
	m.SetCertificateExpiry("signer", b.signer.Certificate())
	cfg := outbound.DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g, err := outbound.New(cfg, directory, sm, outSpool, outbound.WithObserver(m), outbound.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	_, base := startServer(t, WithMetrics(m))

	before := scrapeMetrics(t, base)
	if v, ok := before["sealpost_tsa_errors_total"]; !ok || v != 0 {
		t.Errorf("sealpost_tsa_errors_total before traffic: %v, %v; want an explicit 0", v, ok)
	}
	if err := transaction(g, "statements@bank.example", []string{"alice@example.com"}, statement); err != nil {
		t.Fatal(err)
	}
	if err := transaction(g, "statements@bank.example", []string{"bob@example.net"}, statement); !errors.Is(err, gateway.ErrNoKey) {
		t.Fatalf("keyless recipient: %v", err)
	}
	if _, err := desk.Put(context.Background(), &queue.Message{From: "", Recipients: []string{"gone@desk.example", "later@desk.example"},
		Data: []byte("Subject: reply\r\n\r\nx\r\n"), Class: "support", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "outbound delivery", func() bool { n, _ := outSpool.Stats(); return n == 0 })
	waitFor(t, "desk attempt", func() bool {
		l, _ := desk.List()
		return len(l) == 1 && l[0].Recipients[1].Attempts == 1
	})

	after := scrapeMetrics(t, base)
	for key, want := range map[string]float64{
		`sealpost_messages_accepted_total{class="statement",method="smime"}`:                                       1,
		`sealpost_recipients_accepted_total{class="statement",method="smime"}`:                                     1,
		`sealpost_messages_refused_total{class="statement",reason="` + gateway.ReasonCode(gateway.ErrNoKey) + `"}`: 1,
		`sealpost_messages_protected_total{method="smime"}`:                                                        1,
		`sealpost_protect_duration_seconds_count{method="smime"}`:                                                  1,
		`sealpost_tsa_request_duration_seconds_count`:                                                              1,
		`sealpost_tsa_errors_total`:                                                                                0,
		`sealpost_queue_delivered_total{queue="outbound",class="statement"}`:                                       1,
		`sealpost_delivery_duration_seconds_count{queue="outbound",class="statement"}`:                             1,
		`sealpost_queue_bounced_total{queue="desk",class="support"}`:                                               1,
		`sealpost_queue_deferred_total{queue="desk",class="support",reason="4.2.1"}`:                               1,
		`sealpost_queue_depth{queue="outbound"}`:                                                                   0,
		`sealpost_queue_depth{queue="desk"}`:                                                                       1,
		`sealpost_queue_delivery_concurrency{queue="outbound",lane="default"}`:                                     2, // its workers: the Maildir took the mail
		`sealpost_queue_delivery_concurrency{queue="desk",lane="default"}`:                                         2, // a busy mailbox (4.2.1) is not the hop pushing back
		`sealpost_queue_delivery_concurrency{queue="outbound",lane="otp"}`:                                         queue.DefaultOTPWorkers,
		`sealpost_certificate_expiry_timestamp_seconds{identity="signer"}`:                                         float64(b.signer.Certificate().NotAfter.Unix()),
	} {
		got, ok := after[canonKey(key)]
		if !ok {
			t.Errorf("%s: missing", key)
		} else if got != want {
			t.Errorf("%s = %v, want %v (before: %v)", key, got, want, before[key])
		}
	}
	if age := after[`sealpost_queue_oldest_age_seconds{queue="desk"}`]; age <= 0 || age > 60 {
		t.Errorf("desk's oldest entry is %vs old", age)
	}
	if after[`sealpost_protect_duration_seconds_sum{method="smime"}`] <= 0 {
		t.Error("protect latency sum is 0")
	}
	if after["go_goroutines"] < 1 || after[`go_info{version="`+runtime.Version()+`"}`] != 1 {
		t.Error("Go runtime metrics missing")
	}
	if runtime.GOOS == "linux" {
		if start := after["process_start_time_seconds"]; time.Since(time.Unix(int64(start), 0)) > 24*time.Hour || start > float64(time.Now().Unix()+1) {
			t.Errorf("process_start_time_seconds %v", start)
		}
		if after["process_resident_memory_bytes"] <= 0 || after["process_open_fds"] <= 0 {
			t.Error("process metrics missing")
		}
	}
}

func TestInstrumentTimestamperCountsFailures(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	roots := x509.NewCertPool()
	roots.AddCert(getBank(t).ca.Certificate())
	client, err := tsa.NewClient([]string{dead}, roots, tsa.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	ts := InstrumentTimestamper(client, m)
	if _, err := ts.Timestamp(context.Background(), []byte("signature value")); !errors.Is(err, tsa.ErrUnavailable) {
		t.Fatalf("got %v, want tsa.ErrUnavailable through the wrapper", err)
	}
	_, base := startServer(t, WithMetrics(m))
	s := scrapeMetrics(t, base)
	if s["sealpost_tsa_errors_total"] != 1 || s["sealpost_tsa_request_duration_seconds_count"] != 1 {
		t.Fatalf("errors %v, requests %v; want 1, 1", s["sealpost_tsa_errors_total"], s["sealpost_tsa_request_duration_seconds_count"])
	}
	if InstrumentTimestamper(client, nil) != tsa.Timestamper(client) {
		t.Error("without metrics the timestamper is not returned as is")
	}
}

func TestReadinessFollowsTheSpool(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	openSpool(t, dir, hop(busy))
	signer := getBank(t).signer
	_, base := startServer(t, WithReadiness("spool writable", SpoolWritable(dir)), WithReadiness("keys loaded", CertificateValid(signer.Certificate())))
	if code, _, body := call(t, "GET", base+"/healthz", nil); code != 200 {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	var r Readiness
	if code, _, body := call(t, "GET", base+"/readyz", &r); code != 200 || r.Status != "ready" || r.Checks["spool writable"] != "ok" {
		t.Fatalf("/readyz with a writable spool: %d %s", code, body)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Fatalf("the probe left %v in the spool's tmp", left)
	}
	// As root, chmod does not stop writes: the spool's directory goes away instead.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	r = Readiness{}
	if code, _, body := call(t, "GET", base+"/readyz", &r); code != 503 || r.Status != "not ready" || r.Checks["spool writable"] == "ok" || r.Checks["keys loaded"] != "ok" {
		t.Fatalf("/readyz without a spool: %d %s", code, body)
	}
	if code, _, _ := call(t, "GET", base+"/healthz", nil); code != 200 {
		t.Fatal("/healthz follows readiness")
	}
}

func TestCertificateValid(t *testing.T) {
	cert := *getBank(t).signer.Certificate()
	if err := CertificateValid(&cert)(context.Background()); err != nil {
		t.Fatal(err)
	}
	cert.NotAfter = time.Now().Add(-time.Minute)
	if err := CertificateValid(&cert)(context.Background()); err == nil {
		t.Fatal("an expired certificate is ready")
	}
	if err := CertificateValid(nil)(context.Background()); err == nil {
		t.Fatal("no certificate is ready")
	}
}

func TestQueueControl(t *testing.T) {
	outSpool := openSpool(t, t.TempDir(), hop(busy))
	desk := openSpool(t, t.TempDir(), hop(busy))
	_, base := startServer(t, WithSpool("outbound", outSpool), WithSpool("desk", desk))
	put := func(sp *queue.Spool, to ...string) string {
		id, err := sp.Put(context.Background(), &queue.Message{From: "statements@bank.example", Recipients: to,
			Data: []byte("Subject: s\r\n\r\nBODY-SECRET\r\n"), Class: "statement", Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "first attempt of "+id, func() bool { in, err := sp.Get(id); return err == nil && in.Recipients[0].Attempts == 1 })
		return id
	}
	a := put(outSpool, "alice@example.com", "Bob@Example.NET")
	b := put(outSpool, "carol@example.org")
	d := put(desk, "support@bank.example")

	var list EntryList
	code, _, body := call(t, "GET", base+"/queue", &list)
	if code != 200 || list.Queue != "outbound" || len(list.Entries) != 2 || list.Entries[0].ID != a || list.Entries[1].ID != b {
		t.Fatalf("GET /queue: %d %s", code, body)
	}
	if e := list.Entries[0]; strings.Join(e.Domains, ",") != "example.com,example.net" || e.SenderDomain != "bank.example" ||
		e.Attempts != 1 || e.Pending != 2 || e.Class != "statement" || e.Recipients != nil || !e.NextAttempt.After(e.Created) {
		t.Fatalf("entry %+v", e)
	}
	for _, secret := range []string{"alice", "Bob@", "bob@", "carol", "statements@", "BODY-SECRET"} {
		if strings.Contains(body, secret) {
			t.Fatalf("GET /queue shows %q: %s", secret, body)
		}
	}
	list = EntryList{}
	if code, _, body := call(t, "GET", base+"/queue?queue=desk", &list); code != 200 || len(list.Entries) != 1 || list.Entries[0].ID != d {
		t.Fatalf("GET /queue?queue=desk: %d %s", code, body)
	}

	var e Entry
	code, _, body = call(t, "GET", base+"/queue/"+a, &e)
	if code != 200 || len(e.Recipients) != 2 || e.Recipients[1].Domain != "example.net" || e.Recipients[1].Status != "pending" ||
		e.Recipients[1].LastError != "450 4.2.1 <*@Example.NET> mailbox busy" {
		t.Fatalf("GET /queue/%s: %d %s", a, code, body)
	}
	if strings.Contains(body, "alice") || strings.Contains(body, "Bob@") {
		t.Fatalf("GET /queue/%s shows an address: %s", a, body)
	}

	var act Action
	if code, _, body := call(t, "POST", base+"/queue/"+a+"/retry", &act); code != 200 || act != (Action{Queue: "outbound", ID: a, Action: "retry"}) {
		t.Fatalf("retry: %d %s", code, body)
	}
	waitFor(t, "retried attempt", func() bool { in, _ := outSpool.Get(a); return in.Recipients[0].Attempts == 2 })

	if code, _, body := call(t, "DELETE", base+"/queue/"+a, &act); code != 200 || act.Action != "delete" {
		t.Fatalf("delete: %d %s", code, body)
	}
	if _, err := outSpool.Get(a); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("after DELETE the spool still has %s: %v", a, err)
	}
	for _, m := range []string{"GET", "DELETE"} {
		var eb errorBody
		if code, _, body := call(t, m, base+"/queue/"+a, &eb); code != 404 || !strings.Contains(eb.Error, a) {
			t.Fatalf("%s of a deleted entry: %d %s", m, code, body)
		}
	}
	if code, _, body := call(t, "POST", base+"/queue/"+a+"/retry", nil); code != 404 {
		t.Fatalf("retry of a deleted entry: %d %s", code, body)
	}
	if code, _, body := call(t, "GET", base+"/queue/"+d, nil); code != 404 {
		t.Fatalf("the desk's entry found in the outSpool queue: %d %s", code, body)
	}

	act = Action{}
	if code, _, body := call(t, "POST", base+"/queue/flush?queue=outbound", &act); code != 200 || act != (Action{Queue: "outbound", Action: "flush"}) {
		t.Fatalf("flush: %d %s", code, body)
	}
	waitFor(t, "flushed attempt", func() bool { in, _ := outSpool.Get(b); return in.Recipients[0].Attempts == 2 })
	if in, _ := desk.Get(d); in.Recipients[0].Attempts != 1 {
		t.Fatal("flushing the outSpool queue flushed the desk's")
	}
}

func TestRequestErrors(t *testing.T) {
	sp := openSpool(t, t.TempDir(), hop(busy))
	_, base := startServer(t, WithMetrics(NewMetrics()), WithSpool("outbound", sp))
	token := map[string]string{"Authorization": "Bearer " + testSecret}
	withToken := func(h map[string]string) map[string]string {
		h["Authorization"] = token["Authorization"]
		return h
	}
	tests := []struct {
		method, path string
		header       map[string]string
		code         int
		allow        string
	}{
		{"GET", "/queue/AAAAAAAAAAAAAAAA", token, 404, ""},
		{"GET", "/queue?queue=nope", token, 404, ""},
		{"GET", "/nothing", nil, 404, ""},
		{"PUT", "/queue", nil, 405, "GET, HEAD"},
		{"POST", "/metrics", nil, 405, "GET, HEAD"},
		{"POST", "/healthz", nil, 405, "GET, HEAD"},
		{"GET", "/queue/flush", token, 405, "POST"},
		{"DELETE", "/queue/flush", token, 405, "POST"},
		{"GET", "/queue/AAAAAAAAAAAAAAAA/retry", nil, 405, "POST"},
		{"POST", "/queue/flush", withToken(map[string]string{"Sec-Fetch-Site": "cross-site"}), 403, ""},
		{"DELETE", "/queue/AAAAAAAAAAAAAAAA", withToken(map[string]string{"Origin": "https://evil.example"}), 403, ""},
		{"GET", "/queue", withToken(map[string]string{"Host": "rebound.evil.example:9925"}), 421, ""},
		// Without the token, or with a wrong one, nothing of queue control answers but 401.
		{"GET", "/queue", nil, 401, ""},
		{"GET", "/queue/AAAAAAAAAAAAAAAA", nil, 401, ""},
		{"GET", "/queue?queue=nope", nil, 401, ""},
		{"GET", "/queue/corrupt", nil, 401, ""},
		{"POST", "/queue/flush", map[string]string{"Authorization": "Bearer wrong"}, 401, ""},
		{"DELETE", "/queue/AAAAAAAAAAAAAAAA", map[string]string{"Authorization": "Basic " + testSecret}, 401, ""},
		{"POST", "/queue/AAAAAAAAAAAAAAAA/retry", map[string]string{"Authorization": "Bearer " + testSecret + "x"}, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				if k == "Host" {
					req.Host = v
				}
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code || resp.Header.Get("Allow") != tt.allow {
				t.Fatalf("%d, Allow %q (%s); want %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"), body, tt.code, tt.allow)
			}
			if tt.code != 403 { // CrossOriginProtection answers in text
				var eb errorBody
				if err := json.Unmarshal(body, &eb); err != nil || eb.Error == "" {
					t.Fatalf("error answer is not JSON: %q", body)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg     Config
		addr    string
		wantErr error
	}{
		{DefaultConfig(), DefaultAddr, nil},
		{Config{}, "", nil}, // "" is not host:port
		{Config{Addr: "127.0.0.1:9925"}, "127.0.0.1:9925", nil},
		{Config{Addr: "[::1]:9925"}, "[::1]:9925", nil},
		{Config{Addr: "localhost:9925"}, "localhost:9925", nil},
		{Config{Addr: "127.3.4.5:1"}, "127.3.4.5:1", nil},
		{Config{Addr: ":9925"}, "", ErrNotLoopback},
		{Config{Addr: "0.0.0.0:9925"}, "", ErrNotLoopback},
		{Config{Addr: "[::]:9925"}, "", ErrNotLoopback},
		{Config{Addr: "10.1.2.3:9925"}, "", ErrNotLoopback},
		{Config{Addr: "ops.bank.example:9925"}, "", ErrNotLoopback},
		{Config{Addr: "10.1.2.3:9925", AllowRemote: true}, "10.1.2.3:9925", nil},
		{Config{Addr: ":9925", AllowRemote: true}, ":9925", nil},
	}
	for _, tt := range tests {
		t.Run(tt.cfg.Addr, func(t *testing.T) {
			c := tt.cfg
			err := c.Validate()
			if tt.addr == "" && tt.wantErr == nil {
				if err == nil {
					t.Fatal("Validate accepted an empty addr")
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate: %v, want %v", err, tt.wantErr)
			}
			var fe *config.FieldError
			if err != nil && (!errors.As(err, &fe) || fe.Path != "addr") {
				t.Fatalf("Validate: %#v, want a problem at addr", err)
			}
			if err == nil && c.Addr != tt.addr {
				t.Fatalf("addr %q, want %q", c.Addr, tt.addr)
			}
		})
	}
	c := Config{Addr: "no-port"}
	var fe *config.FieldError
	if err := c.Validate(); !errors.As(err, &fe) || fe.Path != "addr" || errors.Is(err, ErrNotLoopback) {
		t.Fatalf("an address without a port: %v", err)
	}
	if _, err := NewServer(Config{Addr: "0.0.0.0:0"}); !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("NewServer on every interface: %v", err)
	}
}

func ExampleNewServer() {
	m := NewMetrics()
	srv, err := NewServer(Config{Enabled: true, Addr: "127.0.0.1:0"}, WithMetrics(m), WithLogger(quiet))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := srv.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	resp, err := http.Get("http://" + srv.Addr().String() + "/healthz")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 200 OK
}

// TestReadinessNotices: a notice (development identities) is in /readyz's body and the gauge, and
// does not make the gateway unready.
func TestReadinessNotices(t *testing.T) {
	m := NewMetrics()
	m.SetDevelopmentIdentities(true)
	_, base := startServer(t, WithMetrics(m), WithNotice("identities", "development"))
	var r Readiness
	if code, _, body := call(t, "GET", base+"/readyz", &r); code != 200 || r.Notices["identities"] != "development" {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if s := scrapeMetrics(t, base); s["sealpost_development_identities"] != 1 {
		t.Fatalf("sealpost_development_identities = %v, want 1", s["sealpost_development_identities"])
	}
	m.SetDevelopmentIdentities(false)
	if s := scrapeMetrics(t, base); s["sealpost_development_identities"] != 0 {
		t.Fatalf("sealpost_development_identities = %v, want 0", s["sealpost_development_identities"])
	}
	_, base = startServer(t)
	r = Readiness{}
	if _, _, body := call(t, "GET", base+"/readyz", &r); r.Notices != nil || strings.Contains(body, "notices") {
		t.Fatalf("/readyz without notices: %s", body)
	}
}

// testSpoolConfig is queue.DefaultConfig with the directory, workers and scan interval of a test.
func testSpoolConfig(dir string, workers int, scan time.Duration) queue.Config {
	c := queue.DefaultConfig()
	c.Dir, c.Workers, c.ScanInterval = dir, workers, config.Duration(scan)
	return c
}
