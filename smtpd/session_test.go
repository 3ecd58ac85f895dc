package smtpd

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/gateway"
)

// TestTransaction: a trusted client's envelope and message reach the gateway unchanged,
// the 250 carries the gateway's queue ID, RSET and QUIT reach it too.
func TestTransaction(t *testing.T) {
	srv := startServer(t, Config{MaxMessageBytes: 1 << 20}, nil)
	c := dial(t, srv.addr)
	ehlo := c.do("EHLO client.example", "250")
	for _, want := range []string{"PIPELINING", "8BITMIME", "CHUNKING", "SIZE 1048576", "LIMITS RCPTMAX=100"} {
		if !strings.Contains(ehlo, want) {
			t.Errorf("EHLO reply lacks %s:\n%s", want, ehlo)
		}
	}
	for _, unwanted := range []string{"STARTTLS", "AUTH"} {
		if strings.Contains(ehlo, unwanted) {
			t.Errorf("EHLO offers %s without TLS configured:\n%s", unwanted, ehlo)
		}
	}
	c.script(
		"MAIL FROM:<statements@bank.example> SIZE=100", "250 ",
		"RCPT TO:<a@example.com>", "250 ",
		"RCPT TO:<b@example.org>", "250 ",
		"DATA", "354 ",
	)
	c.send(message + ".\r\n")
	c.expect("250 2.0.0 queued as Q0001")
	c.script(
		"MAIL FROM:<statements@bank.example>", "250 ",
		"RSET", "250 ",
		"QUIT", "221 ",
	)
	c.expectClosed()

	if logs := srv.logs.String(); !strings.Contains(logs, "smtp connect") || !strings.Contains(logs, "smtp disconnect") {
		t.Errorf("connection not logged:\n%s", logs)
	}
	clients, events, msgs := srv.rec.snapshot()
	wantEvents := []string{
		"new", "mail statements@bank.example 100", "rcpt a@example.com", "rcpt b@example.org",
		fmt.Sprintf("data %d", len(message)), "reset", "mail statements@bank.example 0", "reset", "close",
	}
	if !slices.Equal(events, wantEvents) {
		t.Errorf("gateway saw\n%q\nwant\n%q", events, wantEvents)
	}
	if len(msgs) != 1 || string(msgs[0].data) != message || !slices.Equal(msgs[0].to, []string{"a@example.com", "b@example.org"}) {
		t.Fatalf("gateway got %+v", msgs)
	}
	cl := clients[0]
	if cl.Helo != "client.example" || cl.TLS || cl.Authenticated || cl.User != "" || !cl.Trusted {
		t.Errorf("gateway.Client = %+v, want helo client.example, trusted (loopback), no TLS, no AUTH", cl)
	}
	if ip := remoteIP(cl.Addr); !ip.IsLoopback() {
		t.Errorf("gateway.Client.Addr = %v, want the loopback client", cl.Addr)
	}
}

// TestNestedMail: a second MAIL inside a transaction is refused, so the gateway's
// transaction and go-smtp's recipient list cannot diverge.
func TestNestedMail(t *testing.T) {
	srv := startServer(t, Config{}, nil)
	c := dial(t, srv.addr)
	c.script(
		"EHLO client.example", "250",
		"MAIL FROM:<a@bank.example>", "250 ",
		"RCPT TO:<x@example.com>", "250 ",
		"MAIL FROM:<b@bank.example>", "503 5.5.1",
	)
	_, events, _ := srv.rec.snapshot()
	if slices.Contains(events, "mail b@bank.example 0") {
		t.Errorf("nested MAIL reached the gateway: %q", events)
	}
}

// TestGatewayErrorsGoThroughReply: refusals from the gateway reach the client as Reply maps
// them, internal errors as a bare 451 4.3.0 (logged with the session ID, not shown).
func TestGatewayErrorsGoThroughReply(t *testing.T) {
	const secret = "open /var/spool/sealpost/tmp/123: disk full"
	rec := &recorder{
		mailErr: func(from string) error {
			if strings.HasPrefix(from, "blocked") {
				return gateway.Refuse(550, [3]int{5, 7, 1}, "Sender not allowed", gateway.ErrRelayDenied)
			}
			return nil
		},
		rcptErr: func(to string) error {
			switch {
			case strings.HasPrefix(to, "nokey"):
				return fmt.Errorf("policy: %w", gateway.Refuse(550, [3]int{5, 7, 1}, "Recipient has no key", gateway.ErrNoKey))
			case strings.HasPrefix(to, "later"):
				return fmt.Errorf("tsa: %w", gateway.TempFail("Timestamp unavailable, try again later", gateway.ErrTimestampFailed))
			}
			return nil
		},
		dataErr: func([]byte) error { return errors.New(secret) },
	}
	srv := startServer(t, Config{}, rec)
	c := dial(t, srv.addr)
	c.script(
		"EHLO client.example", "250",
		"MAIL FROM:<blocked@bank.example>", "550 5.7.1 Sender not allowed",
		"MAIL FROM:<ok@bank.example>", "250 ",
		"RCPT TO:<nokey@example.com>", "550 5.7.1 Recipient has no key",
		"RCPT TO:<later@example.com>", "451 4.3.0 Timestamp unavailable, try again later",
		"RCPT TO:<fine@example.com>", "250 ",
		"DATA", "354 ",
	)
	c.send(message + ".\r\n")
	r := c.expect("451 4.3.0 Local error, try again later")
	if strings.Contains(r, "disk") || strings.Contains(r, "spool") {
		t.Errorf("reply leaks the internal error: %q", r)
	}
	if len(srv.rec.msgs()) != 0 {
		t.Error("a refused message was recorded")
	}
	logs := srv.logs.String()
	if !strings.Contains(logs, "disk full") || !strings.Contains(logs, "session=") {
		t.Errorf("internal error not logged with the session ID:\n%s", logs)
	}
}

// TestBareCRLF: a bare CR or LF in DATA or BDAT gets 550 5.5.2 after the real end of the
// message, the gateway never sees it, and the session stays in step (the next transaction
// on the same connection works).
func TestBareCRLF(t *testing.T) {
	tests := []struct {
		name string
		send []string // after MAIL and RCPT; each element one write, replies read in between
		want []string // reply prefixes, one per element of send
	}{
		{"DATA bare LF", []string{"DATA\r\n", "Subject: x\r\n\r\nline one\nline two\r\n.\r\n"}, []string{"354 ", "550 5.5.2 bare CR or LF in message (RFC 5321 2.3.8)"}},
		{"DATA bare CR", []string{"DATA\r\n", "Subject: x\r\n\r\nline one\rline two\r\n.\r\n"}, []string{"354 ", "550 5.5.2"}},
		{"DATA bare LF in header", []string{"DATA\r\n", "Subject: x\nBcc: y\r\n\r\nbody\r\n.\r\n"}, []string{"354 ", "550 5.5.2"}},
		{"DATA LF LF", []string{"DATA\r\n", "Subject: x\r\n\r\n\n\nbody\r\n.\r\n"}, []string{"354 ", "550 5.5.2"}},
		{"BDAT bare LF", []string{bdat("Subject: x\r\n\r\nline\nnext\r\n", true)}, []string{"550 5.5.2"}},
		{"BDAT bare CR", []string{bdat("Subject: x\r\n\r\nline\rnext\r\n", true)}, []string{"550 5.5.2"}},
		{"BDAT trailing CR", []string{bdat("Subject: x\r\n\r\nline\r", true)}, []string{"550 5.5.2"}},
		{"BDAT CR ending a chunk, no LF after", []string{bdat("Subject: x\r\n\r\nline\r", false), bdat("next\r\n", true)}, []string{"250 2.0.0", "550 5.5.2"}},
		{"BDAT bare LF in first chunk", []string{bdat("Subject: x\n\r\n", false), bdat("body\r\n", true)}, []string{"250 2.0.0", "550 5.5.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Config{}, nil)
			c := dial(t, srv.addr)
			c.script("EHLO client.example", "250", "MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ")
			for i, s := range tt.send {
				c.send(s)
				c.expect(tt.want[i])
			}
			if m := srv.rec.msgs(); len(m) != 0 {
				t.Fatalf("gateway got %q", m[0].data)
			}
			_, events, _ := srv.rec.snapshot()
			for _, e := range events {
				if strings.HasPrefix(e, "data") {
					t.Fatalf("gateway Data was called: %q", events)
				}
			}
			if r := c.transaction("a@bank.example", "x@example.com", message); !strings.HasPrefix(r, "250 2.0.0 queued as") {
				t.Fatalf("next transaction: %q", r)
			}
		})
	}
}

// TestBDAT: a message in chunks arrives whole, a CRLF split across chunks is fine, and a
// last line without CRLF gets one.
func TestBDAT(t *testing.T) {
	srv := startServer(t, Config{}, nil)
	c := dial(t, srv.addr)
	c.script("EHLO client.example", "250", "MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ")
	c.send(bdat("Subject: x\r", false))
	c.expect("250 2.0.0")
	c.send(bdat("\n\r\nline\r\nlast", true))
	c.expect("250 2.0.0 queued as Q0001")
	m := srv.rec.msgs()
	if len(m) != 1 || string(m[0].data) != "Subject: x\r\n\r\nline\r\nlast\r\n" {
		t.Fatalf("gateway got %d messages: %+v", len(m), m)
	}
}

func bdat(chunk string, last bool) string {
	if last {
		return fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk)
	}
	return fmt.Sprintf("BDAT %d\r\n%s", len(chunk), chunk)
}

// TestSmuggling is the SMTP smuggling regression test (CVE-2023-51764 family): a body with a
// false end-of-data sequence followed by a whole second transaction, all in one write, must
// never become two messages.
//
// With bare LF or CR in the sequence the whole input is one message with bare CR/LF: 550
// 5.5.2, and nothing reaches the gateway. With <CR><LF>.<CR> go-smtp's reader drops the "."
// and the CR (it takes them for the start of an end marker), so no bare CR remains: the whole
// input is one clean message (250), with the would-be second transaction inside its body.
func TestSmuggling(t *testing.T) {
	tests := []struct {
		name, seq, want string
	}{
		{"LF.LF", "\n.\n", "550 5.5.2"},
		{"CRLF.LF", "\r\n.\n", "550 5.5.2"},
		{"LF.CRLF", "\n.\r\n", "550 5.5.2"},
		{"CR.CR", "\r.\r", "550 5.5.2"},
		{"CR.CRLF", "\r.\r\n", "550 5.5.2"},
		{"CR.LF", "\r.\n", "550 5.5.2"},
		{"CRLF.CR", "\r\n.\r", "250 2.0.0 queued as"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Config{}, nil)
			c := dial(t, srv.addr)
			c.send("EHLO client.example\r\n" +
				"MAIL FROM:<statements@bank.example>\r\nRCPT TO:<customer@example.com>\r\nDATA\r\n" +
				"Subject: first\r\n\r\nfirst body" + tt.seq +
				"MAIL FROM:<attacker@evil.example>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n" +
				"From: <ceo@bank.example>\r\nSubject: smuggled\r\n\r\nsecond body\r\n.\r\n" +
				"QUIT\r\n")
			got := c.replies()
			codes := make([]string, len(got))
			for i, r := range got {
				codes[i] = r[strings.LastIndexByte(r, '\n')+1:]
			}
			want := []string{"250", "250 ", "250 ", "354 ", tt.want, "221 "}
			if len(codes) != len(want) {
				t.Fatalf("replies %q, want %q", codes, want)
			}
			for i := range want {
				if !strings.HasPrefix(codes[i], want[i]) {
					t.Fatalf("replies %q, want %q", codes, want)
				}
			}
			_, events, msgs := srv.rec.snapshot()
			if len(msgs) > 1 {
				t.Fatalf("%d messages reached the gateway", len(msgs))
			}
			for _, e := range events {
				if strings.Contains(e, "attacker") || strings.Contains(e, "victim") {
					t.Fatalf("the smuggled envelope reached the gateway: %q", events)
				}
			}
			if len(msgs) == 1 {
				d := string(msgs[0].data)
				if !strings.HasPrefix(d, "Subject: first\r\n") || !strings.Contains(d, "second body") {
					t.Fatalf("the message is not the whole input: %q", d)
				}
				if bareCRLF(msgs[0].data) >= 0 {
					t.Fatalf("the gateway got bare CR/LF: %q", d)
				}
			}
			if strings.HasPrefix(tt.want, "550") && len(msgs) != 0 {
				t.Fatal("a refused message reached the gateway")
			}
		})
	}
}

// TestPanicRecovered: a panic in any gateway call gives the client 451 4.3.0 and ends its
// connection; it is logged with its stack; the server keeps serving new connections.
func TestPanicRecovered(t *testing.T) {
	for _, op := range []string{"NewSession", "Mail", "Rcpt", "Data"} {
		t.Run(op, func(t *testing.T) {
			srv := startServer(t, Config{}, &recorder{panicIn: op})
			c := dial(t, srv.addr)
			c.do("EHLO client.example", "250")
			steps := []struct{ cmd, ok string }{
				{"MAIL FROM:<a@bank.example>", "250 "},
				{"RCPT TO:<x@example.com>", "250 "},
				{"DATA", "354 "},
			}
			panicked := false
			for _, s := range steps {
				c.send(s.cmd + "\r\n")
				if r := c.expect(""); strings.HasPrefix(r, "451 4.3.0 Local error, try again later") {
					panicked = true
					break
				} else if !strings.HasPrefix(r, s.ok) {
					t.Fatalf("%s: %q", s.cmd, r)
				}
			}
			if !panicked {
				c.send(message + ".\r\n")
				c.expect("451 4.3.0 Local error, try again later")
			}
			c.expectClosed()

			logs := srv.logs.String()
			if !strings.Contains(logs, "gateway panic") || !strings.Contains(logs, "goroutine") || !strings.Contains(logs, "test panic in "+op) {
				t.Errorf("panic not logged with a stack:\n%s", logs)
			}
			if len(srv.rec.msgs()) != 0 {
				t.Error("a message was recorded")
			}
			_, events, _ := srv.rec.snapshot()
			if op != "NewSession" && !slices.Contains(events, "close") {
				t.Errorf("gateway session not closed after the panic: %q", events)
			}

			c2 := dial(t, srv.addr)
			c2.do("EHLO client.example", "250")
			if r := c2.transaction("a@bank.example", "x@example.com", message); !strings.HasPrefix(r, "250 2.0.0 queued as") {
				t.Fatalf("second connection: %q", r)
			}
		})
	}
}

// TestPanicDuringBDAT: the same for a panic in Data reached through BDAT, where go-smtp runs
// Data in its own goroutine.
func TestPanicDuringBDAT(t *testing.T) {
	srv := startServer(t, Config{}, &recorder{panicIn: "Data"})
	c := dial(t, srv.addr)
	c.script("EHLO client.example", "250", "MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ")
	c.send(bdat(message, true))
	c.expect("451 4.3.0 Local error, try again later")
	c.expectClosed()
	c2 := dial(t, srv.addr)
	c2.script("EHLO client.example", "250", "MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ")
	c2.send(bdat(message, true))
	c2.expect("250 2.0.0 queued as")
}

// TestCloseDuringSession: Close ends open connections, closes their gateway sessions, and
// Serve returns ErrServerClosed (checked by startServer's cleanup).
func TestCloseDuringSession(t *testing.T) {
	srv := startServer(t, Config{}, nil)
	c := dial(t, srv.addr)
	c.script("EHLO client.example", "250", "MAIL FROM:<a@bank.example>", "250 ")
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
	_, events, _ := srv.rec.snapshot()
	if events[len(events)-1] != "close" {
		t.Errorf("gateway session not closed: %q", events)
	}
	if _, err := net.Dial("tcp", srv.addr); err == nil {
		t.Error("listener still accepts after Close")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close = %v", err)
	}
	if _, err := l.Accept(); err == nil {
		t.Error("Serve after Close left its listener open")
	}
}

// TestTruncatedMessage is a regression test: go-smtp ends a BDAT chunk at EOF without an
// error, so a client that disconnects inside the LAST chunk would hand the gateway a
// truncated message. Neither a truncated BDAT nor a truncated DATA may reach the gateway.
func TestTruncatedMessage(t *testing.T) {
	tests := []struct{ name, send string }{
		{"BDAT LAST cut short", bdat(message, true)[:40]},
		{"BDAT cut short, then LAST never sent", bdat(message, false)[:40]},
		{"BDAT 0 then EOF", "BDAT 0\r\n"},
		{"DATA cut short", "DATA\r\n" + message},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Config{}, nil)
			c := dial(t, srv.addr)
			c.script("EHLO client.example", "250", "MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ")
			c.send(tt.send)
			if err := c.conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			for _, r := range c.replies() {
				if strings.HasPrefix(r, "250 2.0.0 queued") {
					t.Fatalf("truncated message queued: %q", r)
				}
			}
			if m := srv.rec.msgs(); len(m) != 0 {
				t.Fatalf("gateway got a truncated message %q", m[0].data)
			}
		})
	}
}
