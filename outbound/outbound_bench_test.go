package outbound

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/queue"
)

// outbound2KB is a 2 KB statement: 8-bit UTF-8 text (re-encoded before signing) and a base64
// attachment.
func outbound2KB() string {
	var b strings.Builder
	b.WriteString("From: Example Bank <statements@bank.example>\r\nTo: alice@example.com, carol@example.org\r\n" +
		"Subject: Your statement\r\nMessage-ID: <bench@bank.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\nDear customer, your balance is 1 234,56 €.\r\n--b\r\n" +
		"Content-Type: application/pdf; name=s.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for b.Len() < 2<<10-len("--b--\r\n") {
		b.WriteString(strings.Repeat("QUJDRA", 12) + "\r\n")
	}
	b.WriteString("--b--\r\n")
	return b.String()
}

// BenchmarkOutbound2KB: one outbound message through the session (MAIL, two RCPT, DATA) to one
// S/MIME and one OpenPGP recipient, each copy signed, timestamped by the embedded TSA, encrypted
// and put durably in a real spool in a temp dir.
func BenchmarkOutbound2KB(b *testing.B) {
	f := pipelinetest.Get(b)
	qcfg := queue.DefaultConfig()
	qcfg.Dir = b.TempDir()
	sp, err := queue.Open(qcfg, heldHop{}, queue.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	g, err := New(testConfig(), f.Direct, f.SMIME, sp, WithPGP(f.PGP), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	msg := []byte(outbound2KB())
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		s, err := g.NewSession(pipelinetest.Trusted)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Mail(b.Context(), "statements@bank.example", 0); err != nil {
			b.Fatal(err)
		}
		for _, r := range []string{"alice@example.com", "carol@example.org"} {
			if err := s.Rcpt(b.Context(), r); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := s.Data(b.Context(), msg); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// heldHop is never called: the spool is not started, so nothing is delivered.
type heldHop struct{}

func (heldHop) Deliver(context.Context, string, []string, []byte) []error { panic("not started") }
