package smtpd

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// BenchmarkSession2KB: one connection, b.N messages of 2 KB (MAIL, RCPT, DATA pipelined up to
// DATA) through a gateway that only counts. Client and server share the process, so the
// figure bounds the listener's own cost from above.
func BenchmarkSession2KB(b *testing.B) {
	gw := &sinkGateway{limit: 1 << 20}
	srv, err := New(withDefaults(Config{Domain: "bench.test"}), gw, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	expect := func(prefix string) {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(l) >= 4 && l[3] == '-' {
				continue
			}
			if !strings.HasPrefix(l, prefix) {
				b.Fatalf("got %q, want %q", l, prefix)
			}
			return
		}
	}
	expect("220 ")
	_, _ = io.WriteString(conn, "EHLO bench.example\r\n")
	expect("250")

	msg := sized(2048)
	envelope := "MAIL FROM:<statements@bank.example> SIZE=2048\r\nRCPT TO:<customer@example.com>\r\nDATA\r\n"
	body := msg + ".\r\n"
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = io.WriteString(conn, envelope)
		expect("250 ")
		expect("250 ")
		expect("354 ")
		_, _ = io.WriteString(conn, body)
		expect("250 2.0.0 queued as")
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if got := gw.messages.Load(); got != int64(b.N) {
		b.Fatalf("gateway got %d messages, want %d", got, b.N)
	}
}
