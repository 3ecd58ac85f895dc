package mime

import (
	"bytes"
	"errors"
	stdmime "mime"
	"net/mail"
	"strings"
	"testing"
)

// eightBitHeaders is a message whose header fields are raw UTF-8, as a submitter without SMTPUTF8
// sends them: unstructured text, address display names (in a phrase, a quoted string, a comment
// and a group), Keywords phrases, and an unknown field.
const eightBitHeaders = "From: Bänk Zürich <statements@bank.example>\r\n" +
	"To: \"Müller, Jörg\" <joerg@example.com>, alice@example.com (Alice Ärger), Team: bob@example.net;\r\n" +
	"Cc: Émile <emile@example.org>\r\n" +
	"Reply-To: Kundendienst für Sie <support@bank.example>\r\n" +
	"Subject: Ihr Kontoauszug für November — 1 234,56 € and a long tail that needs folding, really long\r\n" +
	"Comments: geprüft\r\n" +
	"Keywords: Auszug, \"Grüße, Ihr Team\", plain\r\n" +
	"X-Bank-Note: Überweisung bestätigt\r\n" +
	"Thread-Topic: Kontoauszüge\r\n" +
	"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <stmt-8@bank.example>\r\n" +
	"\r\nHallo\r\n"

// TestEightBitHeaderFieldsAreEncoded (issue 11 item 14): in every protected message, outer and
// inner, with and without header protection, every 8-bit header field leaves RFC 2047 encoded and
// decodes to what was submitted; addresses are never touched, only the phrases around them. Before,
// only Content-* fields and the protected copies were encoded: the outer header went out as
// submitted, raw UTF-8.
func TestEightBitHeaderFieldsAreEncoded(t *testing.T) {
	h, _, err := SplitEntity([]byte(eightBitHeaders))
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []Options{{}, {Encrypted: true}, {HeaderProtection: true}, {HeaderProtection: true, Encrypted: true}} {
		p, err := Prepare([]byte(eightBitHeaders), opts)
		if err != nil {
			t.Fatalf("%+v: %v", opts, err)
		}
		content := p.Content()
		inner, _, _ := SplitEntity(content)
		for where, hdr := range map[string]Header{"outer": p.Outer, "inner": inner} {
			var b bytes.Buffer
			hdr.WriteTo(&b)
			if !SignatureSafe(b.Bytes()) {
				t.Errorf("%+v %s header is not 7-bit and safe:\n%s", opts, where, b.Bytes())
			}
			for _, f := range hdr {
				if len(f.Raw) > 80 && bytes.Count(f.Raw, []byte("\r\n")) == 1 && !strings.EqualFold(f.Name, "Content-Type") && f.Name != "HP-Outer" {
					t.Errorf("%+v %s: %d-octet field not folded: %q", opts, where, len(f.Raw), f.Raw)
				}
			}
			for _, orig := range h {
				if strings.EqualFold(orig.Name, "Subject") && opts.HeaderProtection && opts.Encrypted && where == "outer" {
					continue // "[...]"
				}
				got := hdr.Get(orig.Name)
				if got == "" {
					continue // not shown outside under header protection
				}
				if addressFields[strings.ToLower(orig.Name)] {
					sameAddresses(t, where, orig, got, opts.HeaderProtection && opts.Encrypted && where == "outer")
					continue
				}
				if d, err := new(stdmime.WordDecoder).DecodeHeader(got); err != nil || d != orig.Value() &&
					!strings.EqualFold(orig.Name, "Keywords") {
					t.Errorf("%+v %s %s decodes to %q (%v), want %q", opts, where, orig.Name, d, err, orig.Value())
				}
			}
		}
		kw := p.Inner.Get("Keywords")
		if kw == "" {
			kw = p.Outer.Get("Keywords")
		}
		kw, _ = new(stdmime.WordDecoder).DecodeHeader(kw)
		if kw != "Auszug, Grüße, Ihr Team, plain" {
			t.Errorf("Keywords decode to %q", kw)
		}
	}
}

func sameAddresses(t *testing.T, where string, orig Field, got string, bare bool) {
	t.Helper()
	want, err := mail.ParseAddressList(orig.Value())
	if err != nil {
		t.Fatal(err)
	}
	have, err := mail.ParseAddressList(got)
	if err != nil || len(have) != len(want) {
		t.Fatalf("%s %s %q: %v", where, orig.Name, got, err)
	}
	for i := range want {
		wantName := want[i].Name
		if bare {
			wantName = ""
		}
		if have[i].Address != want[i].Address || have[i].Name != wantName {
			t.Errorf("%s %s: %q <%s>, want %q <%s>", where, orig.Name, have[i].Name, have[i].Address, wantName, want[i].Address)
		}
	}
}

// TestEightBitHeaderFieldsRefused: what has no encoded form is refused, whichever side it is on.
func TestEightBitHeaderFieldsRefused(t *testing.T) {
	for _, tt := range []struct{ name, field string }{
		{"MessageID", "Message-ID: <grüße@bank.example>"},
		{"References", "References: <a@b> <grüße@bank.example>"},
		{"Date", "Date: So, 22 Nov 2026 10:00:00 +0000 März"},
		{"NonASCIIAddress", "To: jörg@example.com"},
		{"NotUTF8", "Subject: Gr\xfc\xdfe"},
		{"NUL", "Subject: a\x00b ü"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, hp := range []bool{false, true} {
				msg := "From: statements@bank.example\r\n" + tt.field + "\r\n\r\nx\r\n"
				if _, err := Prepare([]byte(msg), Options{HeaderProtection: hp, Encrypted: hp}); !errors.Is(err, ErrMalformed) {
					t.Errorf("hp=%v: got %v, want ErrMalformed", hp, err)
				}
			}
		})
	}
}

func TestSevenBitFieldForms(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Subject: für", "Subject: =?utf-8?q?f=C3=BCr?=\r\n"},
		{"X-Anything: für", "X-Anything: =?utf-8?q?f=C3=BCr?=\r\n"},
		{"To: Jörgensen Andersson <j@example.com>", "To: =?utf-8?q?J=C3=B6rgensen_Andersson?= <j@example.com>\r\n"},
		// Q or B, whichever is shorter.
		{"To: Jörg <j@example.com>", "To: =?utf-8?b?SsO2cmc=?= <j@example.com>\r\n"},
		// A phrase may not hold "," or "." from a Q-word: B is used instead.
		{"To: \"Müller, J.\" <j@example.com>", "To: =?utf-8?b?TcO8bGxlciwgSi4=?= <j@example.com>\r\n"},
		{"To: Empfänger:;", "To: =?utf-8?q?Empf=C3=A4nger?=:;\r\n"},
		{"To: Jörgensen <\"j doe\"@example.com>", "To: =?utf-8?q?J=C3=B6rgensen?= <\"j doe\"@example.com>\r\n"},
		{"Content-Type: text/plain; name=\"März.txt\"", "Content-Type: text/plain; name*=utf-8''M%C3%A4rz.txt\r\n"},
	} {
		h, _, err := SplitEntity([]byte(tt.in + "\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := sevenBitField(h[0])
		if err != nil || string(got.Raw) != tt.want {
			t.Errorf("%q: got %q (%v), want %q", tt.in, got.Raw, err, tt.want)
		}
	}
}
