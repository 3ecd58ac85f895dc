package gateway

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/sealpost/sealpost/address"
)

// TestCheckEnvelopeAddresses: the rule for MAIL FROM and RCPT TO addresses as go-smtp hands them
// over (brackets and source route removed, quotes of a quoted local part removed), with and without
// SMTPUTF8. The wire-level table, go-smtp's own refusals included, is smtpd's
// testdata/envelope-addresses.txt.
func TestCheckEnvelopeAddresses(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	tests := []struct {
		addr string
		utf8 bool
		rcpt string // "" accepted, else the reply's code and enhanced code
		mail string
	}{
		{"alice@example.com", false, "", ""},
		{"Alice.Smith+x@Example.COM", false, "", ""},
		{"o'brien@example.ie", false, "", ""},
		{"x@localhost", false, "", ""}, // RFC 5321 asks for no dot
		{"", false, "501 5.1.3", ""},   // the null path is a sender only
		{"alice@example.com\r", false, "501 5.1.3", "501 5.1.7"},
		{"alice@example.com\n", false, "501 5.1.3", "501 5.1.7"},
		{"\talice@example.com", false, "501 5.1.3", "501 5.1.7"},
		{"alice@example.com\x00", false, "501 5.1.3", "501 5.1.7"},
		{"alice\x7f@example.com", false, "501 5.1.3", "501 5.1.7"},
		{"alice@example.com\x1f", true, "501 5.1.3", "501 5.1.7"},
		{"jörg@example.com", false, "553 5.6.7", "553 5.6.7"},
		{"jörg@example.com", true, "", ""},
		{"alice@bücher.example", true, "", ""},
		{"alice@example.com\u0085", true, "501 5.1.3", "501 5.1.7"}, // C1 control, valid UTF-8
		{"alice\xff@example.com", true, "501 5.1.3", "501 5.1.7"},   // not UTF-8
		{"alice\xff@example.com", false, "553 5.6.7", "553 5.6.7"},
		{"alice", false, "501 5.1.3", "501 5.1.7"},
		{"@example.com", false, "501 5.1.3", "501 5.1.7"},
		{"alice@", false, "501 5.1.3", "501 5.1.7"},
		{"alice smith@example.com", false, "501 5.1.3", "501 5.1.7"}, // once quoted
		{`ali"ce@example.com`, false, "501 5.1.3", "501 5.1.7"},
		{"alice@evil@example.com", false, "501 5.1.3", "501 5.1.7"},
		{".alice@example.com", false, "501 5.1.3", "501 5.1.7"},
		{"alice..smith@example.com", false, "501 5.1.3", "501 5.1.7"},
		{long("a", 64) + "@example.com", false, "", ""},
		{long("a", 65) + "@example.com", false, "501 5.1.3", "501 5.1.7"},
		{long("a", 64) + "@" + long("b", 63) + "." + long("c", 63) + "." + long("d", 57) + ".com", false, "", ""},
		{long("a", 64) + "@" + long("b", 63) + "." + long("c", 63) + "." + long("d", 58) + ".com", false, "501 5.1.3", "501 5.1.7"},
		{"alice@" + long("b", 64) + ".example", false, "501 5.1.3", "501 5.1.7"},
		{"alice@example.com.", false, "501 5.1.3", "501 5.1.7"},
		{"alice@example..com", false, "501 5.1.3", "501 5.1.7"},
		{"alice@-example.com", false, "501 5.1.3", "501 5.1.7"},
		{"alice@example-.com", false, "501 5.1.3", "501 5.1.7"},
		{"alice@exa_mple.com", false, "501 5.1.3", "501 5.1.7"},
		{"alice@exa<mple.com", false, "501 5.1.3", "501 5.1.7"},
		{"alice@192.0.2.1", false, "501 5.1.3", "501 5.1.7"},
		{"alice@[192.0.2.1]", false, "553 5.1.2", "553 5.1.8"},
		{"alice@[IPv6:2001:db8::1]", false, "553 5.1.2", "553 5.1.8"},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			cmd   string
			check func(string, bool) error
			want  string
		}{{"RCPT", CheckRecipient, tt.rcpt}, {"MAIL", CheckSender, tt.mail}} {
			err := c.check(tt.addr, tt.utf8)
			got := ""
			if err != nil {
				got = ReplyFor(err).String()
				if !errors.Is(err, ErrBadEnvelopeAddress) || ReasonCode(err) != "bad_address" {
					t.Errorf("%s %q: %v is not ErrBadEnvelopeAddress", c.cmd, tt.addr, err)
				}
				if strings.Contains(got, "example") {
					t.Errorf("%s %q: reply %q repeats the address", c.cmd, tt.addr, got)
				}
			}
			if c.want == "" && got != "" || !strings.HasPrefix(got, c.want) {
				t.Errorf("%s %q (SMTPUTF8 %v): %q, want %q", c.cmd, tt.addr, tt.utf8, got, c.want)
			}
		}
	}
}

// FuzzCheckRecipient: the envelope rule never panics, and what it accepts is what the rest of
// the pipeline can hold: at most 254 octets, no control character, ASCII unless SMTPUTF8, one the
// directory's rule (address.Normalize) accepts unchanged but for the domain's case, and the
// same verdict for MAIL and RCPT.
func FuzzCheckRecipient(f *testing.F) {
	for _, s := range []string{"alice@example.com", "alice@example.com\r", "jörg@bücher.example", "alice@[192.0.2.1]",
		"a..b@example.com", "alice@example.com.", "\"a b\"@example.com", "alice@exa\x00mple.com", strings.Repeat("a", 65) + "@x.example"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, addr string, smtputf8 bool) {
		err := CheckRecipient(addr, smtputf8)
		if errS := CheckSender(addr, smtputf8); addr != "" && (err == nil) != (errS == nil) {
			t.Fatalf("%q: RCPT %v, MAIL %v", addr, err, errS)
		}
		if err != nil {
			if !errors.Is(err, ErrBadEnvelopeAddress) {
				t.Fatalf("%q: %v is not ErrBadEnvelopeAddress", addr, err)
			}
			return
		}
		if len(addr) > 254 || strings.ContainsFunc(addr, unicode.IsControl) || !utf8.ValidString(addr) {
			t.Fatalf("accepted %q", addr)
		}
		if !smtputf8 && strings.ContainsFunc(addr, func(r rune) bool { return r >= utf8.RuneSelf }) {
			t.Fatalf("accepted 8-bit %q without SMTPUTF8", addr)
		}
		// Unchanged but for the domain's case, as address's rule lower-cases it (strings.ToLower:
		// not strings.EqualFold, a different rule that does not equate İ with i).
		n, err := address.Normalize(addr)
		local, domain, _ := address.Split(addr)
		if err != nil || n != local+"@"+strings.ToLower(domain) {
			t.Fatalf("accepted %q, which address.Normalize makes %q, %v", addr, n, err)
		}
	})
}

// TestEnvelopeRefusesUnicodeWhiteSpace: U+2029 or NO-BREAK SPACE around an SMTPUTF8 address is
// not a control character, and address.Normalize trimmed it, so the check passed while the
// session kept the untrimmed string (the class of "250 at RCPT, 451 at DATA"). The fuzzer found
// "\u2029瀩@é"; the rule now refuses any address Normalize would change beyond the domain's case.
func TestEnvelopeRefusesUnicodeWhiteSpace(t *testing.T) {
	for _, addr := range []string{"\u2029瀩@é.example", "alice@example.com\u2029", "\u00a0alice@example.com", "alice@example.com\u3000", "\u2028jörg@example.com"} {
		for name, check := range map[string]func(string, bool) error{"MAIL": CheckSender, "RCPT": CheckRecipient} {
			if err := check(addr, true); !errors.Is(err, ErrBadEnvelopeAddress) {
				t.Errorf("%s %q: %v, want ErrBadEnvelopeAddress", name, addr, err)
			}
		}
	}
	if err := CheckRecipient("jörg@Bücher.example", true); err != nil {
		t.Fatalf("a plain SMTPUTF8 address with an upper-case domain: %v", err)
	}
}
