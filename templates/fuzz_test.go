package templates

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/mime"
)

// FuzzRender: hostile data values either are refused or give a message with exactly the header
// fields sealpost writes, one multipart/alternative with two parts, in 7-bit CRLF lines.
func FuzzRender(f *testing.F) {
	f.Add("Example Bank", "Jana", "ACME", "https://online.bank.example/", "a***e@e*****e.com", uint8(0))
	f.Add("B\r\nBcc: x@evil.example", "--sealpost-golden--", "x\nContent-Type: text/html", "\r\n\r\n", "=?utf-8?q?x?=", uint8(1))
	f.Add(strings.Repeat("Bänk ", 40), "<a href=x>", "\u2028", "u\x00", "é", uint8(2))
	f.Add("--sealpost-golden", "Agent\r", "Payee--", "URL", "@evil.example #000000", uint8(3))
	f.Fuzz(func(t *testing.T, bank, agent, payee, url, masked string, which uint8) {
		loc := Locales()[int(which)%len(Locales())]
		var m Message
		switch which % 4 {
		case 0:
			m = OTPMessage{Bank: bank, Code: "123456", Purpose: agent, ExpiresIn: time.Minute, MaskedAddress: masked, Domain: "bank.example", Locale: loc,
				Transaction: &Transaction{Amount: "1.00", Currency: "EUR", PayeeName: payee, PayeeAccount: url}}
		case 1:
			m = CallVerificationMessage{Bank: bank, Agent: agent, CustomerCode: "111111", AgentCode: "222222", ExpiresIn: time.Minute, Locale: loc}
		case 2:
			m = Notice{Bank: bank, URL: url, To: masked, Locale: loc}
		default:
			m = StatementMessage{Bank: bank, URL: url, To: payee, Locale: loc}
		}
		r, err := Default().Render(m)
		if err != nil {
			return
		}
		msg, err := r.Message("noreply@bank.example", "alice@example.com", time.Unix(1e9, 0), "<f@bank.example>",
			WithBoundary(func() (string, error) { return "sealpost-golden", nil }))
		if err != nil {
			return
		}
		checkStructure(t, msg)
	})
}

func checkStructure(t *testing.T, msg []byte) {
	t.Helper()
	if !mime.IsASCII(msg) || bytes.Contains(bytes.ReplaceAll(msg, []byte("\r\n"), nil), []byte("\n")) ||
		bytes.Contains(bytes.ReplaceAll(msg, []byte("\r\n"), nil), []byte("\r")) {
		t.Fatalf("not 7-bit CRLF:\n%q", msg)
	}
	for _, line := range bytes.Split(msg, []byte("\r\n")) {
		if len(line) > 998 {
			t.Fatalf("a line of %d bytes", len(line))
		}
	}
	h, _, err := mime.SplitEntity(msg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range h {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "From,To,Subject,Date,Message-ID,MIME-Version,Content-Type" {
		t.Fatalf("header fields %s", got)
	}
	e, err := mime.Parse(msg)
	if err != nil || e.MediaType != "multipart/alternative" || len(e.Parts) != 2 ||
		e.Parts[0].MediaType != "text/plain" || e.Parts[1].MediaType != "text/html" {
		t.Fatalf("MIME structure broken: %v\n%s", err, msg)
	}
}
