package templates

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/mime"
)

// TestEveryMessageKeepsTheRules renders every sample in every locale and checks the rules from the
// outside, independent of the checks Render makes itself.
func TestEveryMessageKeepsTheRules(t *testing.T) {
	for _, loc := range Locales() {
		for file, m := range goldenMessages(loc) {
			r, err := Default().Render(m)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			for _, s := range []string{"123456", "98765432", "418203", "905716", "1250.00", "1250"} {
				if strings.Contains(r.Subject, s) {
					t.Errorf("%s: the subject %q holds a code or an amount", file, r.Subject)
				}
			}
			if l := strings.ToLower(r.HTML); strings.Contains(l, "<a ") || strings.Contains(l, "href") {
				t.Errorf("%s: the HTML carries a link", file)
			}
			msg, err := r.Message("noreply@bank.example", "alice@example.com", time.Unix(1e9, 0), "<t@bank.example>")
			if err != nil {
				t.Fatal(err)
			}
			e, err := mime.Parse(msg)
			if err != nil || e.MediaType != "multipart/alternative" || len(e.Parts) != 2 {
				t.Fatalf("%s: not multipart/alternative: %v", file, err)
			}
			if !mime.IsASCII(msg) || strings.Contains(strings.ReplaceAll(string(msg), "\r\n", ""), "\n") {
				t.Errorf("%s: not 7-bit CRLF", file)
			}
			if o, ok := m.(OTPMessage); ok {
				lines := strings.Split(strings.TrimRight(r.Text, "\n"), "\n")
				if last := lines[len(lines)-1]; last != "@bank.example #"+o.Code {
					t.Errorf("%s: the text's last line is %q", file, last)
				}
				if o.Transaction != nil {
					for _, s := range []string{"1250.00", "EUR", "ACME Utilities", "DE89370400440532013000"} {
						if !strings.Contains(r.Text, s) || !strings.Contains(r.HTML, s) {
							t.Errorf("%s: the payment's %q is not shown", file, s)
						}
					}
				}
			}
		}
	}
}

func TestCallVerificationSaysHangUp(t *testing.T) {
	for loc, want := range map[string]string{"en": "hang up and call the number on", "de": "legen Sie auf"} {
		r, err := Default().Render(samples(CallVerification, loc)[0])
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Text, want) || !strings.Contains(r.HTML, want) {
			t.Errorf("%s: no %q", loc, want)
		}
	}
}

func TestRenderRefusesBadData(t *testing.T) {
	otp := samples(OTP, "en")[0].(OTPMessage)
	cv := samples(CallVerification, "en")[0].(CallVerificationMessage)
	for name, m := range map[string]Message{
		"code with a letter":  func() OTPMessage { o := otp; o.Code = "12345a"; return o }(),
		"domain with a space": func() OTPMessage { o := otp; o.Domain = "bank.example #1"; return o }(),
		"payee with a newline": func() OTPMessage {
			o := otp
			o.Transaction = &Transaction{"1", "EUR", "x\r\nBcc: e@evil.example", "DE1"}
			return o
		}(),
		"transaction half": func() OTPMessage { o := otp; o.Transaction = &Transaction{Amount: "1"}; return o }(),
		"no lifetime":      func() OTPMessage { o := otp; o.ExpiresIn = 0; return o }(),
		"bank too long":    func() OTPMessage { o := otp; o.Bank = strings.Repeat("B", maxValue+1); return o }(),
		"same codes":       func() CallVerificationMessage { c := cv; c.AgentCode = c.CustomerCode; return c }(),
		"agent with NUL":   func() CallVerificationMessage { c := cv; c.Agent = "a\x00b"; return c }(),
		"statement URL LF": StatementMessage{Bank: "B", URL: "u\n", To: "a@b"},
	} {
		if _, err := Default().Render(m); !errors.Is(err, ErrData) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Default().Render(StatementMessage{Bank: "B", URL: "u", To: "a@b", Locale: "fr"}); !errors.Is(err, ErrLocale) {
		t.Errorf("unknown locale: %v", err)
	}
	if _, err := (Rendered{Subject: "s", Text: "t", HTML: "h"}).Message("a@b", "c@d\r\nBcc: e@evil.example", time.Now(), "<i@b>"); err == nil {
		t.Error("a To with a line break was written")
	}
}

func TestFallback(t *testing.T) {
	for in, want := range map[string]string{"": "en", "de": "de", "de-AT": "de", "DE_ch": "de", "fr": "en", "en-GB": "en"} {
		if got := Fallback(in); got != want {
			t.Errorf("Fallback(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadWithoutDirectoryIsTheDefault(t *testing.T) {
	s, err := Load("")
	if err != nil || s != Default() {
		t.Fatalf("Load(\"\") = %p, %v", s, err)
	}
}

func TestLoadOverrides(t *testing.T) {
	dir := t.TempDir()
	src, err := embedded.ReadFile("messages/statement.de.txt")
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "statement.de.txt", strings.Replace(string(src), "Guten Tag,", "Sehr geehrte Kundin, sehr geehrter Kunde,", 1))
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := StatementMessage{Bank: "B", URL: "https://online.bank.example/", To: "a@b", Locale: "de"}
	r, err := s.Render(m)
	if err != nil || !strings.HasPrefix(r.Text, "Sehr geehrte Kundin") {
		t.Fatalf("the override is not used: %q, %v", r.Text, err)
	}
	m.Locale = "en"
	if r, err := s.Render(m); err != nil || !strings.HasPrefix(r.Text, "Hello,") {
		t.Fatalf("a template not overridden is not the embedded one: %q, %v", r.Text, err)
	}
}

// TestLoadRefusesBadOverrides: each override that would send a broken or unsafe message stops the
// load with an error naming the file.
func TestLoadRefusesBadOverrides(t *testing.T) {
	otpText := func(t *testing.T) string {
		b, err := embedded.ReadFile("messages/otp.en.txt")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct {
		name, file string
		content    func(t *testing.T) string
		want       string // in the error, besides the file
		is         error
	}{
		{"typo in the name", "opt.en.txt", func(*testing.T) string { return "" }, "not a template sealpost knows", nil},
		{"unknown locale", "otp.fr.txt", func(*testing.T) string { return "" }, "not a template sealpost knows", nil},
		{"parse error with line", "otp.en.txt", func(*testing.T) string {
			return "{{define \"subject\"}}x{{end}}\n{{define \"text\"}}\n{{.Code}\n{{end}}"
		}, "otp.en.txt:3", nil},
		{"no subject", "otp.de.txt", func(*testing.T) string { return "{{define \"text\"}}x{{end}}" }, "subject", nil},
		{"unknown field", "notice.en.txt", func(*testing.T) string {
			return "{{define \"subject\"}}x{{end}}{{define \"text\"}}\n{{.Bank}} {{.URL}} {{.To}}\n{{.Customer}}{{end}}"
		}, "notice.en.txt:3:2", nil},
		{"code in the subject", "otp.en.txt", func(t *testing.T) string {
			return strings.Replace(otpText(t), "Your one-time code from {{.Bank}}", "Your code {{.Code}}", 1)
		}, "subject", ErrTemplate},
		{"amount in the subject", "otp.en.txt", func(t *testing.T) string {
			return strings.Replace(otpText(t), "Your one-time code from {{.Bank}}", "Code{{with .Transaction}} for {{.Amount}}{{end}}", 1)
		}, "subject", ErrTemplate},
		{"code line not last", "otp.en.txt", func(t *testing.T) string {
			return strings.Replace(otpText(t), "@{{.Domain}} #{{.Code}}\n", "@{{.Domain}} #{{.Code}}\nThank you.\n", 1)
		}, "origin-bound", ErrTemplate},
		{"payee not shown", "otp.en.txt", func(t *testing.T) string {
			return strings.Replace(otpText(t), "{{.PayeeName}}", "", 1)
		}, "ACME", ErrTemplate},
		{"a link", "statement.en.html", func(*testing.T) string {
			return "{{define \"html\"}}<p>{{.URL}} <a href=\"{{.URL}}\">log in</a></p>{{end}}"
		}, "link", ErrTemplate},
		{"no html", "statement.de.html", func(*testing.T) string { return "<p>hi</p>" }, "html", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tc.file, tc.content(t))
			_, err := Load(dir)
			var fe *FileError
			if !errors.As(err, &fe) || fe.File != filepath.Join(dir, tc.file) {
				t.Fatalf("error does not name %s: %v", tc.file, err)
			}
			if !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("error does not say %q (%v): %v", tc.want, tc.is, err)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing directory was loaded")
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSubjectFolds(t *testing.T) {
	for _, subject := range []string{strings.Repeat("word ", 40), strings.Repeat("Wörter ", 30), "short", " two  spaces "} {
		f := subjectField(subject)
		for _, line := range strings.Split(strings.TrimSuffix(string(f.Raw), "\r\n"), "\r\n") {
			if len(line) > 78 || strings.TrimSpace(line) == "" {
				t.Errorf("%q: line %q", subject, line)
			}
		}
		if got := mime.HeaderValue(append(f.Raw, "\r\n"...), "Subject"); strings.TrimSpace(got) != strings.TrimSpace(subject) {
			t.Errorf("%q unfolds to %q", subject, got)
		}
	}
}
