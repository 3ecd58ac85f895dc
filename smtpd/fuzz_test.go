package smtpd

import (
	"bufio"
	"context"
	"errors"
	"github.com/sealpost/sealpost/config"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sealpost/sealpost/gateway"
)

// sinkGateway accepts everything, keeps only counts, and records any breach of what the
// listener promises the gateway.
type sinkGateway struct {
	limit      int64
	messages   atomic.Int64
	violations atomic.Int64
	mu         sync.Mutex
	violation  string
}

func (g *sinkGateway) NewSession(c gateway.Client) (gateway.Session, error) {
	if !c.Trusted {
		g.fail("untrusted client reached the gateway")
	}
	return &sinkSession{g: g}, nil
}

func (g *sinkGateway) fail(msg string) {
	g.violations.Add(1)
	g.mu.Lock()
	g.violation = msg
	g.mu.Unlock()
}

type sinkSession struct {
	g    *sinkGateway
	from bool
	rcpt int
}

func (s *sinkSession) Mail(context.Context, string, int64) error {
	s.from, s.rcpt = true, 0
	return nil
}
func (s *sinkSession) Rcpt(context.Context, string) error {
	if !s.from {
		s.g.fail("RCPT before MAIL")
	}
	s.rcpt++
	return nil
}
func (s *sinkSession) Data(_ context.Context, msg []byte) (string, error) {
	switch {
	case !s.from || s.rcpt == 0:
		s.g.fail("Data without MAIL and RCPT")
	case bareCRLF(msg) >= 0:
		s.g.fail("bare CR or LF reached the gateway")
	case int64(len(msg)) > s.g.limit+2: // +2: the CRLF added to a BDAT message's last line
		s.g.fail("message over the limit reached the gateway")
	}
	s.g.messages.Add(1)
	return "Q1", nil
}
func (s *sinkSession) Reset() { s.from, s.rcpt = false, 0 }
func (s *sinkSession) Close() {}

// panicCounter is a slog handler that counts records about panics (ours or go-smtp's).
type panicCounter struct {
	n    atomic.Int64
	mu   sync.Mutex
	last string
}

func (h *panicCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		var b strings.Builder
		b.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
		if knownGoSMTPRace(b.String()) {
			return nil
		}
		h.n.Add(1)
		h.mu.Lock()
		h.last = b.String()
		h.mu.Unlock()
	}
	return nil
}
func (h *panicCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panicCounter) WithGroup(string) slog.Handler      { return h }

var replyLine = regexp.MustCompile(`^[2-5][0-9][0-9][ -]`)

// FuzzSession feeds arbitrary bytes as a client's whole input to a listener on loopback.
// Nothing may panic (in our code, or in go-smtp where it would be recovered and logged), every
// output line before STARTTLS must be a reply, nothing the listener promises the gateway may
// be broken, and the server must keep serving.
func FuzzSession(f *testing.F) {
	const base = "EHLO fuzz.example\r\nMAIL FROM:<a@bank.example> SIZE=100\r\nRCPT TO:<x@example.com>\r\n"
	f.Add([]byte(base + "DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n"))
	for _, seq := range []string{"\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r", "\r\n.\r", "\r.\n"} {
		f.Add([]byte(base + "DATA\r\nSubject: x\r\n\r\nfirst" + seq +
			"MAIL FROM:<evil@example.net>\r\nRCPT TO:<v@example.com>\r\nDATA\r\nsecond\r\n.\r\nQUIT\r\n"))
	}
	f.Add([]byte(base + "BDAT 12\r\nSubject: x\r\nBDAT 8 LAST\r\n\r\nbody\r\nQUIT\r\n"))
	f.Add([]byte(base + "BDAT 5 LAST\r\nab\ncd\r\nRSET\r\nBDAT 3 LAST\r\nxyz"))
	f.Add([]byte(base + "BDAT 4294967295 LAST\r\nabc"))
	f.Add([]byte("EHLO x\r\nSTARTTLS\r\n\x16\x03\x01\x00\x05hello\r\nEHLO x\r\n"))
	f.Add([]byte("EHLO x\r\nAUTH PLAIN AGEAYg==\r\nAUTH LOGIN\r\n*\r\nMAIL FROM:<a@b> SIZE=99999999999\r\n"))
	f.Add([]byte("HELO x\r\nMAIL FROM:<a@b>\r\nMAIL FROM:<c@d>\r\nRCPT TO:<>\r\nDATA\r\n..\r\n.\r\n"))
	f.Add([]byte(base + "DATA\r\n" + strings.Repeat("a", 1200) + "\r\n.\r\n"))
	f.Add([]byte("EHLO x\r\n\x00\xff\r\nNOOP\r\nVRFY x\r\nHELP\r\nEXPN\r\nQUIT\r\n"))

	certFile, keyFile, _ := testCert(f)
	hash, err := bcrypt.GenerateFromPassword([]byte("b"), bcrypt.MinCost)
	if err != nil {
		f.Fatal(err)
	}
	const limit = 4096
	gw := &sinkGateway{limit: limit}
	panics := &panicCounter{}
	srv, err := New(withDefaults(Config{
		Domain: "fuzz.test", TLSCert: certFile, TLSKey: keyFile, Users: map[string]string{"a": string(hash)},
		MaxMessageBytes: limit, MaxRecipients: 5, ReadTimeout: config.Duration(5 * time.Second), WriteTimeout: config.Duration(5 * time.Second),
		MaxConnections: 1000, MaxConnectionsPerClient: 1000,
	}), gw, WithLogger(slog.New(panics)))
	if err != nil {
		f.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	f.Cleanup(func() { _ = srv.Close() })
	addr := l.Addr().String()

	f.Fuzz(func(t *testing.T, in []byte) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(hangGuard))
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			_, _ = conn.Write(in)
			_ = conn.(*net.TCPConn).CloseWrite()
		}()
		// The fuzzing engine reuses in once the target returns.
		defer func() { conn.Close(); <-wrote }()
		r := bufio.NewReader(conn)
		for tlsStarted := false; ; {
			l, err := r.ReadString('\n')
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("server did not end the session")
				}
				break // EOF, or a reset when the server closed with input unread
			}
			if !tlsStarted && !replyLine.MatchString(l) {
				t.Fatalf("not a reply line: %q", l)
			}
			tlsStarted = tlsStarted || strings.HasPrefix(l, "220 2.0.0 Ready to start TLS")
		}
		if n := panics.n.Load(); n > 0 {
			panics.mu.Lock()
			defer panics.mu.Unlock()
			t.Fatalf("%d panics logged, the last: %s", n, panics.last)
		}
		if gw.violations.Load() > 0 {
			gw.mu.Lock()
			defer gw.mu.Unlock()
			t.Fatalf("gateway contract broken: %s", gw.violation)
		}

		// The server keeps serving.
		c := dialRaw(t, addr)
		c.expect("220 ")
		c.do("NOOP", "250 ")
		c.do("QUIT", "221 ")
		if _, err := io.Copy(io.Discard, c.r); err != nil && !isReset(err) {
			t.Fatal(err)
		}
	})
}
