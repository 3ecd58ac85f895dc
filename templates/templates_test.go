package templates

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/mime"
)

func TestNoticeSaysOnlyWhatItMay(t *testing.T) {
	for _, loc := range append(Locales(), "") {
		n := Notice{Bank: "Example <Bank>", URL: "https://online.bank.example/", To: "alice@example.com", Locale: loc}
		r, err := n.Render()
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range []string{r.Subject, r.Text, r.HTML} {
			if !strings.Contains(part, "Example") {
				t.Errorf("%s: the bank is not named: %q", loc, part)
			}
		}
		if !strings.Contains(r.Text, n.URL) || !strings.Contains(r.HTML, n.URL) || !strings.Contains(r.Text, n.To) {
			t.Errorf("%s: the notice does not say where and for whom", loc)
		}
		if strings.Contains(r.HTML, "<Bank>") || !strings.Contains(r.HTML, "&lt;Bank&gt;") {
			t.Errorf("%s: the HTML does not escape the bank's name", loc)
		}
		if strings.Contains(strings.ToLower(r.HTML), "<a ") || strings.Contains(r.HTML, "href") {
			t.Errorf("%s: the notice carries a link", loc)
		}
		msg, err := r.Message("statements@bank.example", n.To, time.Unix(1e9, 0), "<n1@bank.example>")
		if err != nil {
			t.Fatal(err)
		}
		e, err := mime.Parse(msg)
		if err != nil || e.MediaType != "multipart/alternative" || len(e.Parts) != 2 {
			t.Fatalf("%s: the notice does not parse as multipart/alternative: %v", loc, err)
		}
		if !mime.IsASCII(msg) || strings.Contains(strings.ReplaceAll(string(msg), "\r\n", ""), "\n") {
			t.Errorf("%s: the notice is not 7-bit CRLF", loc)
		}
	}
}

func TestNoticeRefusesWhatItCannotSay(t *testing.T) {
	if _, err := (Notice{Bank: "B", URL: "u", To: "a@b", Locale: "xx"}).Render(); !errors.Is(err, ErrLocale) {
		t.Errorf("unknown locale: %v", err)
	}
	if _, err := (Notice{Bank: "B\r\nBcc: x@evil.example", URL: "u", To: "a@b"}).Render(); err == nil {
		t.Error("a bank name with a line break was rendered")
	}
}
