package smtpd

import (
	"net"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
)

// TestSwaksInterop: swaks, a real SMTP client, sends a message; it arrives intact with CRLF
// line ends (dot-stuffing undone) and swaks sees the 250 with the queue ID.
func TestSwaksInterop(t *testing.T) {
	interop.Tool(t, "swaks")
	srv := startServer(t, Config{}, nil)
	host, port, _ := net.SplitHostPort(srv.addr)
	// swaks turns the LF line ends of --data into CRLF, dot-stuffs, and ends the data with
	// CRLF.CRLF itself (so the last line has no LF here).
	data := "From: <statements@bank.example>\nTo: <customer@example.com>\nSubject: interop\n\nHello.\n.leading dot\n..two dots"
	want := strings.ReplaceAll(data, "\n", "\r\n") + "\r\n"
	out := string(interop.Run(t, []byte(data), "swaks",
		"--server", host, "--port", port, "--helo", "swaks.bank.example",
		"--from", "statements@bank.example", "--to", "customer@example.com",
		"--data", "-", "--timeout", "30"))
	if !strings.Contains(out, "<-  250 2.0.0 queued as Q0001") {
		t.Fatalf("swaks did not see the 250:\n%s", out)
	}
	m := srv.rec.msgs()
	if len(m) != 1 {
		t.Fatalf("gateway got %d messages", len(m))
	}
	if got := string(m[0].data); got != want {
		t.Fatalf("message arrived as\n%q\nwant\n%q", got, want)
	}
	if m[0].from != "statements@bank.example" || len(m[0].to) != 1 || m[0].to[0] != "customer@example.com" || m[0].client.Helo != "swaks.bank.example" {
		t.Fatalf("envelope %+v", m[0])
	}
}

// TestSwaksInteropTLSAuth: swaks with STARTTLS and AUTH PLAIN relays from an untrusted
// network; without AUTH it is refused.
func TestSwaksInteropTLSAuth(t *testing.T) {
	interop.Tool(t, "swaks")
	cfg, _ := authConfig(t)
	srv := startServer(t, cfg, nil)
	host, port, _ := net.SplitHostPort(srv.addr)
	args := []string{"--server", host, "--port", port, "--from", "statements@bank.example", "--to", "customer@example.com",
		"--data", "-", "--timeout", "30", "--tls"}
	data := []byte("Subject: interop\n\nHello.")

	out, _, err := interop.Try(t, data, "swaks", args...)
	if err == nil || !strings.Contains(string(out), "<~* 530 5.7.0 Authentication required") {
		t.Fatalf("swaks without AUTH: %v\n%s", err, out)
	}
	out = interop.Run(t, data, "swaks", append(args, "--auth", "PLAIN", "--auth-user", testUser, "--auth-password", testPassword)...)
	if !strings.Contains(string(out), "<~  250 2.0.0 queued as") {
		t.Fatalf("swaks did not see the 250:\n%s", out)
	}
	m := srv.rec.msgs()
	if len(m) != 1 || string(m[0].data) != "Subject: interop\r\n\r\nHello.\r\n" || !m[0].client.TLS || m[0].client.User != testUser {
		t.Fatalf("gateway got %+v", m)
	}
}
