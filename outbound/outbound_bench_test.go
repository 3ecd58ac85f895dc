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

// BenchmarkOutbound2KBEvidence: BenchmarkOutbound2KB from 16 concurrent sessions, as the relay
// takes mail, with the evidence log off and on (each message's record made durable before its
// 250, the appends of concurrent sessions sharing one sync): the cost of the evidence is the
// ratio of the two in one run.
func BenchmarkOutbound2KBEvidence(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "evidence=off", true: "evidence=on"}[on], func(b *testing.B) {
			f := pipelinetest.Get(b)
			qcfg := queue.DefaultConfig()
			qcfg.Dir = b.TempDir()
			sp, err := queue.Open(qcfg, heldHop{}, queue.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				b.Fatal(err)
			}
			defer sp.Close()
			opts := []Option{WithPGP(f.PGP), WithLogger(slog.New(slog.DiscardHandler))}
			if on {
				l, _ := evidenceLog(b)
				opts = append(opts, WithEvidence(l))
			}
			g, err := New(testConfig(), f.Direct, f.SMIME, sp, opts...)
			if err != nil {
				b.Fatal(err)
			}
			msg := []byte(outbound2KB())
			b.SetBytes(int64(len(msg)))
			b.SetParallelism(8) // 16 sessions on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s, err := g.NewSession(pipelinetest.Trusted)
					if err != nil {
						b.Fatal(err)
					}
					if err := s.Mail(context.Background(), "statements@bank.example", 0); err != nil {
						b.Fatal(err)
					}
					if err := s.Rcpt(context.Background(), "alice@example.com"); err != nil {
						b.Fatal(err)
					}
					if _, err := s.Data(context.Background(), msg); err != nil {
						b.Fatal(err)
					}
					s.Close()
				}
			})
		})
	}
}

// heldHop is never called: the spool is not started, so nothing is delivered.
type heldHop struct{}

func (heldHop) Deliver(context.Context, string, []string, []byte) []error { panic("not started") }
