package smtpd

import (
	"bufio"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/gateway"
)

// envelopeRow is one line of testdata/envelope-addresses.txt.
type envelopeRow struct {
	path      string // as sent after "RCPT TO:" / "MAIL FROM:"
	rcpt      string // reply prefix at RCPT
	mail      string // reply prefix at MAIL
	why, line string
}

var repeatMacro = regexp.MustCompile(`\{(.)\*([0-9]+)\}`)

// readEnvelopeRows reads the table of hostile envelope addresses; cmd/sealpost's test over serve
// reads the same file.
func readEnvelopeRows(t testing.TB, name string) []envelopeRow {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []envelopeRow
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var fields [3]string
		rest := line
		for i := range fields {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("%s:%d: field %d: %v", name, n, i+1, err)
			}
			fields[i], _ = strconv.Unquote(q)
			rest = strings.TrimSpace(rest[len(q):])
		}
		path := repeatMacro.ReplaceAllStringFunc(fields[0], func(m string) string {
			sub := repeatMacro.FindStringSubmatch(m)
			k, _ := strconv.Atoi(sub[2])
			return strings.Repeat(sub[1], k)
		})
		rows = append(rows, envelopeRow{path: path, rcpt: fields[1], mail: fields[2], why: rest, line: strconv.Itoa(n)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestHostileEnvelopeAddressesAreRefusedAtTheirCommand: every spelling of the table gets its
// reply at the MAIL or RCPT that carries it, on a submission and on a public (inbound) listener;
// a refused address never reaches the gateway. Before, the listener passed every address go-smtp
// parsed to the gateway: "<alice@example.com\r>" got 250 at RCPT (keys.NormalizeAddress trimmed
// the CR off before checking) and 451 at DATA (the queue refused the CR).
func TestHostileEnvelopeAddressesAreRefusedAtTheirCommand(t *testing.T) {
	rows := readEnvelopeRows(t, "testdata/envelope-addresses.txt")
	for _, listener := range []struct {
		name string
		cfg  Config
	}{{"submission", Config{}}, {"inbound", Config{Public: true}}} {
		t.Run(listener.name, func(t *testing.T) {
			srv := startServer(t, listener.cfg, nil)
			for _, row := range rows {
				c := dial(t, srv.addr)
				c.do("EHLO client.example", "250")
				got := c.do("MAIL FROM:"+row.path, "")
				if !strings.HasPrefix(got, row.mail) {
					t.Errorf("line %s (%s): MAIL FROM:%q got %q, want %s", row.line, row.why, row.path, got, row.mail)
				}
				c.conn.Close()

				c = dial(t, srv.addr)
				c.script("EHLO client.example", "250", "MAIL FROM:<sender@bank.example>", "250 ")
				got = c.do("RCPT TO:"+row.path, "")
				if !strings.HasPrefix(got, row.rcpt) {
					t.Errorf("line %s (%s): RCPT TO:%q got %q, want %s", row.line, row.why, row.path, got, row.rcpt)
				}
				if strings.Contains(got, "example.com") && !strings.HasPrefix(got, "250") {
					t.Errorf("line %s: the refusal %q repeats the address", row.line, got)
				}
				c.conn.Close()
			}
			// Every address that reached the gateway passes the rule, and as many as the table
			// says got 250.
			var mails, rcpts, wantMails, wantRcpts int
			for _, r := range rows {
				wantMails += btoi(r.mail == "250") + 1 // + the MAIL FROM:<sender@bank.example> of the RCPT run
				wantRcpts += btoi(r.rcpt == "250")
			}
			_, events, _ := srv.rec.snapshot()
			for _, e := range events {
				switch {
				case strings.HasPrefix(e, "mail "):
					mails++
					addr := strings.TrimPrefix(e[:strings.LastIndexByte(e, ' ')], "mail ")
					if err := gateway.CheckSender(addr, false); err != nil {
						t.Errorf("the gateway saw %q: %v", e, err)
					}
				case strings.HasPrefix(e, "rcpt "):
					rcpts++
					if err := gateway.CheckRecipient(strings.TrimPrefix(e, "rcpt "), false); err != nil {
						t.Errorf("the gateway saw %q: %v", e, err)
					}
				}
			}
			if mails != wantMails || rcpts != wantRcpts {
				t.Errorf("the gateway saw %d MAIL and %d RCPT, want %d and %d", mails, rcpts, wantMails, wantRcpts)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestRefusedRecipientLeavesTheTransaction: a recipient refused for its spelling does not end the
// transaction; the good recipients' message is still taken, and a transaction whose only
// recipient was refused ends at DATA with go-smtp's 502 5.5.1, not with 451 (which has the client
// retry for days).
func TestRefusedRecipientLeavesTheTransaction(t *testing.T) {
	srv := startServer(t, Config{}, nil)
	c := dial(t, srv.addr)
	c.script(
		"EHLO client.example", "250",
		"MAIL FROM:<statements@bank.example>", "250 ",
		"RCPT TO:<alice@example.com\r>", "501 5.1.3",
		"RCPT TO:<bob@example.com>", "250 ",
		"DATA", "354 ",
	)
	c.send(message + ".\r\n")
	c.expect("250 2.0.0 queued as")
	c.script(
		"MAIL FROM:<statements@bank.example>", "250 ",
		"RCPT TO:<alice@example.com\r>", "501 5.1.3",
		"DATA", "502 5.5.1",
	)
	if msgs := srv.rec.msgs(); len(msgs) != 1 || len(msgs[0].to) != 1 || msgs[0].to[0] != "bob@example.com" {
		t.Fatalf("gateway got %+v, want one message to bob only", msgs)
	}
}
