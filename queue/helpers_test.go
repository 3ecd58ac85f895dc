package queue

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"github.com/sealpost/sealpost/config"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/sealpost/sealpost/internal/logtest"
	"github.com/sealpost/sealpost/internal/tlstest"
)

// testBody is a marker that must never leave the message: not into logs,
// not into a DSN.
const testBody = "BODY-SECRET-7f3a: your one-time code is 493817"

func testMessage(from string, rcpts ...string) *Message {
	return &Message{
		From:       from,
		Recipients: rcpts,
		Data: []byte("From: Bank <noreply@bank.example>\r\nTo: customer\r\nSubject: Statement\r\n" +
			"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\r\n" + testBody + "\r\n"),
		Class:   "statement",
		Expires: time.Now().Add(24 * time.Hour),
	}
}

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type testSpool struct {
	*Spool
	logs *logtest.Buffer
}

// openSpool opens a spool in dir for a test, logging at debug level into a
// buffer. It is closed at cleanup.
func openSpool(t testing.TB, dir string, next NextHop, opts ...Option) *testSpool {
	t.Helper()
	logs := &logtest.Buffer{}
	opts = append([]Option{
		WithLogger(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithHostname("mx.sealpost.test"),
	}, opts...)
	s, err := Open(spoolConfig(dir, 2, 5*time.Millisecond), next, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return &testSpool{Spool: s, logs: logs}
}

// crash abandons a spool the way a dead process does: no Close, nothing
// written; only the lock the kernel would drop is released. It must not
// have been started.
func crash(s *testSpool) {
	s.lock.Close()
}

func start(t testing.TB, s *testSpool) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s.Start(ctx)
}

// waitFor polls cond until it holds; it fails the test after 60 s. It waits
// for an outcome, it does not time anything.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // a hang guard (CI runs packages side by side under -race)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func gone(s *testSpool, id string) func() bool {
	return func() bool {
		_, err := s.Get(id)
		return errors.Is(err, ErrNotFound)
	}
}

func attempts(s *testSpool, id string, n int) func() bool {
	return func() bool {
		in, err := s.Get(id)
		if err != nil {
			return false
		}
		for _, r := range in.Recipients {
			if r.Attempts >= n {
				return true
			}
		}
		return false
	}
}

// recordingHop is a NextHop that records what it is given and answers with
// reply (nil reply: accept everything).
type recordingHop struct {
	mu    sync.Mutex
	calls []hopCall
	reply func(to string) error
}

type hopCall struct {
	From string
	To   []string
	Data []byte
}

func (h *recordingHop) Deliver(_ context.Context, from string, to []string, data []byte) []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, hopCall{from, append([]string(nil), to...), append([]byte(nil), data...)})
	errs := make([]error, len(to))
	if h.reply != nil {
		for i, r := range to {
			errs[i] = h.reply(r)
		}
	}
	return errs
}

func (h *recordingHop) setReply(f func(string) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reply = f
}

func (h *recordingHop) Calls() []hopCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hopCall(nil), h.calls...)
}

func spoolFiles(t testing.TB, dir, sub string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(dir, sub))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// --- a real SMTP server on loopback, as the sink ---

type sinkMsg struct {
	From string
	To   []string
	Data []byte
	TLS  bool
}

type sink struct {
	Addr  string
	conns atomic.Int32

	mu   sync.Mutex
	msgs []sinkMsg
	// rcptReply answers RCPT TO (nil: 250); dataReply answers the end of
	// DATA (nil: 250).
	rcptReply func(to string) error
	dataReply func() error
	// user/pass, when set, are required (AUTH PLAIN, offered over TLS only).
	user, pass string
}

type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// newSink starts a go-smtp server on 127.0.0.1; with tlsConfig it offers
// STARTTLS.
func newSink(t testing.TB, tlsConfig *tls.Config, setup func(*sink)) *sink {
	t.Helper()
	sk := &sink{}
	if setup != nil {
		setup(sk)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &sinkSession{sink: sk, conn: c}, nil
	}))
	srv.Domain = "sink.test"
	srv.MaxMessageBytes = 32 << 20
	srv.MaxRecipients = 100
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.TLSConfig = tlsConfig
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sk.Addr = ln.Addr().String()
	go srv.Serve(countingListener{ln, &sk.conns})
	t.Cleanup(func() { srv.Close() })
	return sk
}

func (sk *sink) Messages() []sinkMsg {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	return append([]sinkMsg(nil), sk.msgs...)
}

func (sk *sink) setRcptReply(f func(string) error) {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	sk.rcptReply = f
}

// received counts messages that reached rcpt.
func (sk *sink) received(rcpt string) int {
	n := 0
	for _, m := range sk.Messages() {
		for _, r := range m.To {
			if r == rcpt {
				n++
			}
		}
	}
	return n
}

type sinkSession struct {
	sink   *sink
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (s *sinkSession) Reset()        { s.from, s.to = "", nil }
func (s *sinkSession) Logout() error { return nil }

func (s *sinkSession) AuthMechanisms() []string {
	if s.sink.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *sinkSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.sink.user || pass != s.sink.pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.authed = true
		return nil
	}), nil
}

func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.sink.user != "" && !s.authed {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	s.from = from
	return nil
}

func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.sink.mu.Lock()
	f := s.sink.rcptReply
	s.sink.mu.Unlock()
	if f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	if s.sink.dataReply != nil {
		if err := s.sink.dataReply(); err != nil {
			return err
		}
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.sink.msgs = append(s.sink.msgs, sinkMsg{From: s.from, To: append([]string(nil), s.to...), Data: b, TLS: isTLS})
	return nil
}

func smtpErr(code int, enh smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	c := tlstest.New(t)
	return c.TLS, c.Pool
}

func newSmarthost(t testing.TB, cfg SmarthostConfig) *Smarthost {
	t.Helper()
	if cfg.HelloName == "" {
		cfg.HelloName = "relay.sealpost.test"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxIdle == 0 {
		cfg.MaxIdle = DefaultSmarthostMaxIdle
	}
	h, err := NewSmarthost(cfg)
	if err != nil {
		t.Fatalf("NewSmarthost: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func containsAny(s string, subs ...string) string {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return sub
		}
	}
	return ""
}

// spoolConfig is DefaultConfig with the directory, workers and scan interval of a test.
func spoolConfig(dir string, workers int, scan time.Duration) Config {
	c := DefaultConfig()
	c.Dir, c.Workers, c.ScanInterval = dir, workers, config.Duration(scan)
	return c
}
