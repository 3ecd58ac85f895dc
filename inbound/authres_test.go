package inbound

import (
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"
)

// TestAuthServIDGrammar: the authserv-id is read by RFC 8601 (CFWS, quoted strings, version).
func TestAuthServIDGrammar(t *testing.T) {
	for _, c := range []struct {
		in, id, version string
		bad             bool
	}{
		{in: "mx.bank.example; spf=pass", id: "mx.bank.example"},
		{in: "mx.bank.example", id: "mx.bank.example"},
		{in: "  mx.bank.example  ;", id: "mx.bank.example"},
		{in: "(x) mx.bank.example; smime=pass", id: "mx.bank.example"},
		{in: "((nested) \\) comment) mx.bank.example (after) ; smime=pass", id: "mx.bank.example"},
		{in: `"mx.bank.example"; smime=pass`, id: "mx.bank.example"},
		{in: `"mx.bank\.example" ; smime=pass`, id: "mx.bank.example"},
		{in: "mx.bank.example 1; smime=pass", id: "mx.bank.example", version: "1"},
		{in: "mx.bank.example (v) 1 (c); smime=pass", id: "mx.bank.example", version: "1"},
		{in: "mx.bank.example(c); none", id: "mx.bank.example"},
		{in: "mx.bank.example.; smime=pass", id: "mx.bank.example."},
		{in: "", bad: true},
		{in: "; smime=pass", bad: true},
		{in: "(unterminated mx.bank.example; smime=pass", bad: true},
		{in: `"unterminated; smime=pass`, bad: true},
		{in: `""; smime=pass`, bad: true},
		{in: "mx.bank.example junk; smime=pass", bad: true},
		{in: "i=1; mx.bank.example; smime=pass", bad: true}, // ARC-Authentication-Results' instance tag
		{in: strings.Repeat("(", 100) + "x" + strings.Repeat(")", 100) + " id;", bad: true},
	} {
		id, version, err := authServID(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("%q: id %q, want an error", c.in, id)
			}
			continue
		}
		if err != nil || id != c.id || version != c.version {
			t.Errorf("%q: %q %q %v, want %q %q", c.in, id, version, err, c.id, c.version)
		}
	}
}

// TestForgedAuthenticationResultsSpellings: every RFC 8601 spelling of sealpost's authserv-id
// claims to be ours and is dropped; the MX's own results are kept. The code as it was (a cut at
// ";" and the first space or "(") kept the leading comment, quoted, trailing-dot and escaped
// spellings, and went by the first word only.
func TestForgedAuthenticationResultsSpellings(t *testing.T) {
	const ours = "sealpost.bank.example"
	for _, c := range []struct {
		name, value string
		claims      bool
	}{
		{"plain", "sealpost.bank.example; smime=pass", true},
		{"leading comment", "(x) sealpost.bank.example; smime=pass", true},
		{"comment between id and semicolon", "sealpost.bank.example (checked); smime=pass", true},
		{"quoted", `"sealpost.bank.example"; smime=pass`, true},
		{"quoted with quoted-pair", `"sealpost\.bank\.example"; smime=pass`, true},
		{"quoted with spaces", `" sealpost.bank.example "; smime=pass`, true},
		{"trailing dot", "sealpost.bank.example.; smime=pass", true},
		{"upper case", "SEALPOST.BANK.EXAMPLE; smime=pass", true},
		{"mixed case, comment, dot", "(a) SealPost.Bank.Example. (b); smime=pass", true},
		{"version", "sealpost.bank.example 1; smime=pass", true},
		{"version with comments", "sealpost.bank.example (v) 1 (w); smime=pass", true},
		{"folded", "\r\n\tsealpost.bank.example\r\n ; smime=pass", true},
		{"encoded-word", "=?us-ascii?q?sealpost.bank.example?=; smime=pass", true},
		{"id hidden behind another in a comment", "mx.bank.example (sealpost.bank.example); smime=pass", true},
		{"unparseable", "sealpost.bank.example junk; smime=pass", true},
		{"empty", "", true},
		{"the MX's own", "mx.bank.example; spf=pass smtp.mailfrom=customer.example", false},
		{"the MX's own with a comment", "(mx) mx.bank.example 1; dkim=pass header.d=customer.example", false},
		{"a subdomain of ours is not ours", "mx.sealpost.bank.example; spf=pass", false},
		{"ours only inside a result", "mx.bank.example; dkim=pass header.d=sealpost.bank.example", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := claimsAuthServID(c.value, ours); got != c.claims {
				t.Errorf("claimsAuthServID(%q) = %v, want %v", c.value, got, c.claims)
			}
		})
	}
}

func TestSealpostFieldNames(t *testing.T) {
	for name, want := range map[string]bool{
		"Sealpost-Verdict": true, "sealpost-verdict": true, "SEALPOST-RELEASED": true, "X-Sealpost-Verdict": true,
		"x-sealpost-anything": true, "Sealpost": false, "X-Sealposted": false, "Subject": false,
	} {
		if isSealpostField(name) != want {
			t.Errorf("isSealpostField(%q) = %v", name, !want)
		}
	}
}

// FuzzAuthResultsClaim: reading an Authentication-Results value never panics, and a field the
// desk keeps is one that no reader takes for ours: neither the RFC 8601 reading, nor go-msgauth's
// lenient authres.Parse (unquoted, normalised), nor a cut at the first ";" and white space.
func FuzzAuthResultsClaim(f *testing.F) {
	for _, s := range []string{
		"sealpost.bank.example; smime=pass", "(x) sealpost.bank.example; smime=pass", `"sealpost.bank.example"; smime=pass`,
		"sealpost.bank.example.; smime=pass", "SEALPOST.BANK.EXAMPLE; smime=pass", "sealpost.bank.example 1; smime=pass",
		"mx.bank.example; spf=pass smtp.mailfrom=customer.example", "mx.bank.example (sealpost.bank.example); x=y",
		"=?utf-8?q?sealpost.bank.example?=; smime=pass", "i=1; sealpost.bank.example; arc=pass",
	} {
		f.Add(s)
	}
	const ours = "sealpost.bank.example"
	f.Fuzz(func(t *testing.T, v string) {
		if claimsAuthServID(v, ours) {
			return
		}
		id, _, err := authServID(v)
		if err != nil || normAuthServID(id) == ours {
			t.Fatalf("kept %q: RFC 8601 reading %q, %v", v, id, err)
		}
		if lid, _, err := authres.Parse(v); err == nil && normAuthServID(strings.Trim(lid, `"`)) == ours {
			t.Fatalf("kept %q, which go-msgauth reads as ours (%q)", v, lid)
		}
		cut, _, _ := strings.Cut(v, ";")
		if fs := strings.Fields(cut); len(fs) > 0 && normAuthServID(strings.Trim(fs[0], `"`)) == ours {
			t.Fatalf("kept %q, whose first word is ours", v)
		}
	})
}
