package smtpd

import (
	"bufio"
	"fmt"
	"github.com/sealpost/sealpost/config"
	"net"
	"strings"
	"testing"
	"time"
)

// sized returns a valid CRLF message of exactly n bytes (n >= 16).
func sized(n int) string {
	var b strings.Builder
	b.WriteString("Subject: x\r\n\r\n")
	for rest := n - b.Len(); rest > 0; rest = n - b.Len() {
		l := min(rest, 72) - 2
		if rest-(l+2) == 1 || rest-(l+2) == 2 { // never leave a remainder too short for a line
			l--
		}
		b.WriteString(strings.Repeat("a", max(l, 0)) + "\r\n")
	}
	return b.String()
}

func TestSized(t *testing.T) {
	for n := 16; n < 300; n++ {
		if s := sized(n); len(s) != n || bareCRLF([]byte(s)) >= 0 || !strings.HasSuffix(s, "\r\n") {
			t.Fatalf("sized(%d) = %d bytes %q", n, len(s), s)
		}
	}
}

// TestMessageSize: SIZE= over the limit is refused at MAIL, a message over the limit after
// its end (DATA) or at the chunk that crosses it (BDAT); the gateway never sees it and the
// connection stays usable.
func TestMessageSize(t *testing.T) {
	const limit = 1024
	tests := []struct {
		name string
		run  func(c *client)
		// gateway: whether the gateway's Data may have been reached
		delivered bool
	}{
		{"SIZE over the limit", func(c *client) {
			c.do(fmt.Sprintf("MAIL FROM:<a@bank.example> SIZE=%d", limit+1), "552 5.3.4 Max message size exceeded")
		}, false},
		{"SIZE at the limit", func(c *client) {
			c.do(fmt.Sprintf("MAIL FROM:<a@bank.example> SIZE=%d", limit), "250 ")
		}, false},
		{"DATA over the limit", func(c *client) {
			c.script("MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ", "DATA", "354 ")
			c.send(sized(3*limit) + ".\r\n")
			c.expect("552 5.3.4 Message exceeds fixed maximum message size of 1024 bytes")
		}, false},
		{"DATA one byte under the limit", func(c *client) {
			c.script("MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ", "DATA", "354 ")
			c.send(sized(limit-1) + ".\r\n")
			c.expect("250 2.0.0 queued as")
		}, true},
		{"DATA at the limit (go-smtp refuses it)", func(c *client) {
			c.script("MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ", "DATA", "354 ")
			c.send(sized(limit) + ".\r\n")
			c.expect("552 5.3.4")
		}, false},
		{"BDAT over the limit", func(c *client) {
			c.script("MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ")
			c.send(bdat(sized(limit+1), true))
			c.expect("552 5.3.4 Max message size exceeded")
		}, false},
		{"BDAT crossing the limit in the second chunk", func(c *client) {
			c.script("MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ")
			c.send(bdat(sized(limit/2), false))
			c.expect("250 2.0.0")
			c.send(bdat(sized(limit/2+1), true))
			c.expect("552 5.3.4 Max message size exceeded")
		}, false},
		{"BDAT at the limit", func(c *client) {
			c.script("MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ")
			c.send(bdat(sized(limit), true))
			c.expect("250 2.0.0 queued as")
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Config{MaxMessageBytes: limit}, nil)
			c := dial(t, srv.addr)
			if r := c.do("EHLO client.example", "250"); !strings.Contains(r, "SIZE 1024") {
				t.Fatalf("EHLO does not advertise SIZE 1024: %q", r)
			}
			tt.run(c)
			if n := len(srv.rec.msgs()); n != 0 != tt.delivered {
				t.Fatalf("%d messages reached the gateway", n)
			}
			c.do("RSET", "250 ")
			if r := c.transaction("a@bank.example", "x@example.com", message); !strings.HasPrefix(r, "250 2.0.0 queued as") {
				t.Fatalf("next transaction: %q", r)
			}
		})
	}
}

// TestTooManyRecipients: RCPT beyond MaxRecipients gets go-smtp's 452 4.5.3 and does not
// reach the gateway; the message goes to the accepted recipients.
func TestTooManyRecipients(t *testing.T) {
	srv := startServer(t, Config{MaxRecipients: 2}, nil)
	c := dial(t, srv.addr)
	c.script(
		"EHLO client.example", "250",
		"MAIL FROM:<a@bank.example>", "250 ",
		"RCPT TO:<x1@example.com>", "250 ",
		"RCPT TO:<x2@example.com>", "250 ",
		"RCPT TO:<x3@example.com>", "452 4.5.3 Maximum limit of 2 recipients reached",
		"DATA", "354 ",
	)
	c.send(message + ".\r\n")
	c.expect("250 2.0.0 queued as")
	m := srv.rec.msgs()
	if len(m) != 1 || len(m[0].to) != 2 {
		t.Fatalf("gateway got %+v", m)
	}
}

// TestLineTooLong: a command or DATA line over MaxLineLength (998 + CRLF) gets "500 5.4.0 Too
// long line, closing connection" once, and the connection is closed; 998 + CRLF is fine.
func TestLineTooLong(t *testing.T) {
	long := strings.Repeat("a", 999)
	tests := []struct {
		name string
		run  func(c *client)
	}{
		{"command", func(c *client) {
			c.send("MAIL FROM:<" + long + "@bank.example>\r\n")
		}},
		{"DATA line", func(c *client) {
			c.script("MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ", "DATA", "354 ")
			c.send("Subject: x\r\n\r\n" + long + "\r\n.\r\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Config{}, nil)
			c := dial(t, srv.addr)
			c.do("EHLO client.example", "250")
			tt.run(c)
			c.expect("500 5.4.0 Too long line, closing connection")
			c.expectClosed()
			if len(srv.rec.msgs()) != 0 {
				t.Fatal("gateway got a message")
			}
		})
	}
	t.Run("998 octets", func(t *testing.T) {
		srv := startServer(t, Config{}, nil)
		c := dial(t, srv.addr)
		c.do("EHLO client.example", "250")
		body := "Subject: x\r\n\r\n" + long[:998] + "\r\n"
		if r := c.transaction("a@bank.example", "x@example.com", body); !strings.HasPrefix(r, "250 2.0.0 queued as") {
			t.Fatalf("998-octet line: %q", r)
		}
	})
}

// TestReadTimeout: a client that stops sending gets 421 4.4.2 and the connection is closed,
// whether it is idle between commands or stalls inside a message; nothing reaches the
// gateway's Data and nothing after the stall is read as a command.
func TestReadTimeout(t *testing.T) {
	tests := []struct {
		name, send string
		want       []string
	}{
		{"idle", "EHLO client.example\r\n", []string{"250", "421 4.4.2 Idle timeout"}},
		{"DATA stalls", "EHLO client.example\r\nMAIL FROM:<a@bank.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\nSubject: x\r\n\r\npartial",
			[]string{"250", "250 ", "250 ", "354 ", "421 4.4.2 Timeout waiting for message data, closing connection"}},
		{"BDAT stalls", "EHLO client.example\r\nMAIL FROM:<a@bank.example>\r\nRCPT TO:<x@example.com>\r\nBDAT 1000 LAST\r\nSubject: x\r\n",
			[]string{"250", "250 ", "250 ", "421 4.4.2 Timeout waiting for message data, closing connection"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Config{ReadTimeout: config.Duration(300 * time.Millisecond)}, nil)
			c := dial(t, srv.addr)
			c.send(tt.send)
			for _, w := range tt.want {
				c.expect(w)
			}
			c.expectClosed()
			_, events, _ := srv.rec.snapshot()
			for _, e := range events {
				if strings.HasPrefix(e, "data") {
					t.Fatalf("gateway Data called: %q", events)
				}
			}
		})
	}
}

// dialFrom connects from a given loopback source address, to act as different clients.
func dialFrom(t *testing.T, addr, from string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from %s: %v", from, err)
	}
	_ = conn.SetDeadline(time.Now().Add(hangGuard))
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// TestConnectionLimits: over MaxConnectionsPerClient (same IP) a client gets "421 4.7.0 Too
// many connections, try again later" and is closed; a slot freed by QUIT is usable again.
// (Over MaxConnections a new client takes the slot of a waiting one: TestShedding.)
func TestConnectionLimits(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		from     []string // the first two, admitted
		third    string   // refused
		other    string   // admitted alongside (per-client limit) or "" (total limit)
		afterOne string   // admitted after one QUIT
	}{
		{"per client", Config{MaxConnections: 10, MaxConnectionsPerClient: 2}, []string{"127.0.0.1", "127.0.0.1"}, "127.0.0.1", "127.0.0.2", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, tt.cfg, nil)
			var open []*client
			for _, ip := range tt.from {
				c := dialFrom(t, srv.addr, ip)
				c.expect("220 ")
				open = append(open, c)
			}
			c3 := dialFrom(t, srv.addr, tt.third)
			c3.expect("421 4.7.0 Too many connections, try again later")
			c3.expectClosed()
			if tt.other != "" {
				c := dialFrom(t, srv.addr, tt.other)
				c.expect("220 ")
				c.do("QUIT", "221 ")
				c.expectClosed()
			}
			open[0].do("QUIT", "221 ")
			open[0].expectClosed()
			c4 := dialFrom(t, srv.addr, tt.afterOne)
			c4.expect("220 ")
			if !strings.Contains(srv.logs.String(), "smtp connection refused") {
				t.Error("refusal not logged")
			}
		})
	}
}
