package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sealpost/sealpost/internal/interop"
)

// TestServeRefusesBorrowedClass: through serve, with go-smtp's client and with swaks, a statement
// sent with the support desk's envelope sender (whose policy signs only, for customers without a
// key) is refused 550 5.7.1 with the reason, and nothing is queued. Before, it was queued under the
// support policy: signed but not encrypted to bob, who has no key.
func TestServeRefusesBorrowedClass(t *testing.T) {
	interop.Tool(t, "swaks")
	inst, _, _, _ := testInstance(t, nil)
	const statement = "From: statements@bank.example\r\nTo: bob@example.net\r\nSubject: Statement\r\n\r\nYour balance is 1 234,56 EUR.\r\n"
	res := submit(t, inst, "support@bank.example", []string{"bob@example.net", "alice@example.com"}, statement)
	var se *smtp.SMTPError
	if len(res.Refused) != 0 || !errors.As(res.Err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) ||
		se.Message != "the From address statements@bank.example is statement mail, but its envelope sender makes it support mail" {
		t.Fatalf("go-smtp client: refused at RCPT %v, DATA %q (%v); want 550 5.7.1 at DATA naming the class", res.Refused, res.Reply, res.Err)
	}
	host, port, _ := net.SplitHostPort(inst.Addr().String())
	out, _, err := interop.Try(t, nil, "swaks", "--server", host, "--port", port, "--from", "support@bank.example",
		"--to", "bob@example.net", "--header", "From: statements@bank.example", "--body", "Your balance is 1 234,56 EUR.")
	if err == nil || !bytes.Contains(out, []byte("550 5.7.1 the From address statements@bank.example is statement mail")) {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if infos, err := inst.spool.List(); err != nil || len(infos) != 0 {
		t.Fatalf("spool holds %d entries (%v)", len(infos), err)
	}
	// The same statement from its own envelope sender goes out (to alice, who has a key).
	if res := submit(t, inst, "statements@bank.example", []string{"alice@example.com"}, statement); res.Err != nil {
		t.Fatalf("statement from statements@: %q (%v)", res.Reply, res.Err)
	}
}

// TestServeRefusesHostileEnvelopeAddresses: every spelling of smtpd's table of hostile envelope
// addresses, sent raw over TCP to serve's submission and inbound listeners, gets its reply at the
// MAIL or RCPT that carries it (on the inbound listener an address that passes is then no support
// address: 550 5.1.1). Before, "<alice@example.com\r>" got 250 at RCPT and 451 at DATA on the
// submission listener, and "<support@bank.example\r>" the same on the inbound one.
func TestServeRefusesHostileEnvelopeAddresses(t *testing.T) {
	inst, _, _, _ := testInstance(t, nil)
	rows := envelopeTable(t, "../../smtpd/testdata/envelope-addresses.txt")
	for _, l := range []struct {
		name, addr, sender string
		inbound            bool
	}{
		{"submission", inst.Addr().String(), "support@bank.example", false},
		{"inbound", inst.InboundAddr().String(), "alice@example.com", true},
	} {
		t.Run(l.name, func(t *testing.T) {
			for _, r := range rows {
				c := dialScript(t, l.addr)
				if got := c.do("MAIL FROM:" + r.path); !strings.HasPrefix(got, r.mail) {
					t.Errorf("%s: MAIL FROM:%q: %q, want %s", r.why, r.path, got, r.mail)
				}
				c.close()
				want := r.rcpt
				if l.inbound && want == "250" {
					want = "550 5.1.1"
				}
				c = dialScript(t, l.addr)
				c.expect("MAIL FROM:<"+l.sender+">", "250 ")
				if got := c.do("RCPT TO:" + r.path); !strings.HasPrefix(got, want) {
					t.Errorf("%s: RCPT TO:%q: %q, want %s", r.why, r.path, got, want)
				}
				c.close()
			}
		})
	}
	// The probe of the issue, to the end of the transaction: refused at RCPT, and DATA has no
	// recipient left (502, permanent), on both listeners.
	for _, p := range []struct{ addr, from, rcpt string }{
		{inst.Addr().String(), "support@bank.example", "alice@example.com"},
		{inst.InboundAddr().String(), "alice@example.com", "support@bank.example"},
	} {
		c := dialScript(t, p.addr)
		c.expect("MAIL FROM:<"+p.from+">", "250 ")
		c.expect("RCPT TO:<"+p.rcpt+"\r>", "501 5.1.3")
		c.expect("DATA", "502 5.5.1")
		c.close()
	}
	if infos, err := inst.spool.List(); err != nil || len(infos) != 0 {
		t.Fatalf("spool holds %d entries (%v)", len(infos), err)
	}
}

// envelopeRow is one spelling of smtpd/testdata/envelope-addresses.txt (its header says the format).
type envelopeRow struct{ path, rcpt, mail, why string }

func envelopeTable(t *testing.T, name string) []envelopeRow {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	repeat := regexp.MustCompile(`\{(.)\*([0-9]+)\}`)
	var rows []envelopeRow
	for n, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" || line[0] == '#' {
			continue
		}
		var f [3]string
		for i := range f {
			q, err := strconv.QuotedPrefix(line)
			if err != nil {
				t.Fatalf("%s:%d: %v", name, n+1, err)
			}
			f[i], _ = strconv.Unquote(q)
			line = strings.TrimSpace(line[len(q):])
		}
		path := repeat.ReplaceAllStringFunc(f[0], func(m string) string {
			sub := repeat.FindStringSubmatch(m)
			k, _ := strconv.Atoi(sub[2])
			return strings.Repeat(sub[1], k)
		})
		rows = append(rows, envelopeRow{path, f[1], f[2], fmt.Sprintf("line %d (%s)", n+1, line)})
	}
	if len(rows) < 40 {
		t.Fatalf("%s: only %d rows", name, len(rows))
	}
	return rows
}

// scriptConn is a raw SMTP connection, for commands no SMTP client library would send.
type scriptConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// dialScript connects and says EHLO.
func dialScript(t *testing.T, addr string) *scriptConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &scriptConn{t: t, conn: conn, r: bufio.NewReader(conn)}
	if got := c.reply(); !strings.HasPrefix(got, "220 ") {
		t.Fatalf("greeting %q", got)
	}
	c.expect("EHLO client.example", "250 ")
	return c
}

// do sends one command line and returns the last line of its reply.
func (c *scriptConn) do(cmd string) string {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(cmd + "\r\n")); err != nil {
		c.t.Fatalf("send %q: %v", cmd, err)
	}
	return c.reply()
}

func (c *scriptConn) expect(cmd, prefix string) {
	c.t.Helper()
	if got := c.do(cmd); !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("%q: %q, want %s", cmd, got, prefix)
	}
}

func (c *scriptConn) reply() string {
	c.t.Helper()
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading a reply: %q, %v", l, err)
		}
		if l = strings.TrimSuffix(l, "\r\n"); len(l) < 4 || l[3] != '-' {
			return l
		}
	}
}

// close ends the session and waits for the server to close it, so that the next connection is
// not over the per-client limit.
func (c *scriptConn) close() {
	_, _ = c.conn.Write([]byte("QUIT\r\n"))
	_, _ = c.r.ReadString(0)
	c.conn.Close()
}
