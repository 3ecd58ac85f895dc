package address

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/sealpost/sealpost/store"
)

var normalizeCases = []struct {
	in, normalized, key string
}{
	{"alice@example.com", "alice@example.com", "alice@example.com"},
	{"Alice@Example.COM", "Alice@example.com", "alice@example.com"},
	{"  ALICE@EXAMPLE.COM ", "ALICE@example.com", "alice@example.com"},
	{"Alice.Smith+Statements@Bank.Example", "Alice.Smith+Statements@bank.example", "alice.smith+statements@bank.example"},
	{`"Alice..Smith"@Example.com`, `"Alice..Smith"@example.com`, `"alice..smith"@example.com`},
	{`"a@b"@Example.com`, `"a@b"@example.com`, `"a@b"@example.com`}, // the last "@" splits
	{"ÅSA@Bücher.Example", "ÅSA@bücher.example", "åsa@bücher.example"},
	{"JÖRG@example.com", "JÖRG@example.com", "jörg@example.com"},
	{" alice@Example.com  ", "alice@example.com", "alice@example.com"}, // spaces around are dropped
	{"STRAẞE@example.com", "STRAẞE@example.com", "straße@example.com"},
	{"straße@example.com", "straße@example.com", "straße@example.com"}, // not folded to "strasse"
	{"ſam@example.com", "ſam@example.com", "ſam@example.com"},          // long s stays apart from s
	{"ΣΟΦΙΑ@example.gr", "ΣΟΦΙΑ@example.gr", "σοφια@example.gr"},
}

var invalid = []string{
	"", "alice", "@example.com", "alice@", "Alice <alice@example.com>", "a b@example.com", "<alice@example.com>",
	"alice@example.com\r", "alice@example.com\r\n", "\talice@example.com", "ali\x00ce@example.com",
	"alice\x7f@example.com", "alice@example.com\u0085", "alice@exa mple.com", "alice@@example.com",
	// A control character makes an address invalid wherever it is, also at either end, where
	// strings.TrimSpace used to remove it before the check (and a caller kept the CR it checked).
	"alice@example.com\v", "alice@example.com\f", "alice@example.com\x00", "\u0085alice@example.com", "alice\x1b@example.com",
}

func TestNormalizeAndKey(t *testing.T) {
	for _, tt := range normalizeCases {
		if n, err := Normalize(tt.in); err != nil || n != tt.normalized {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, n, err, tt.normalized)
		}
		if k, err := Key(tt.in); err != nil || k != tt.key {
			t.Errorf("Key(%q) = %q, %v; want %q", tt.in, k, err, tt.key)
		}
		if k := Fold(tt.normalized); k != tt.key {
			t.Errorf("Fold(%q) = %q; want %q", tt.normalized, k, tt.key)
		}
	}
	for _, bad := range invalid {
		if n, err := Normalize(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Normalize(%q) = %q, %v; want ErrInvalid", bad, n, err)
		}
		if k, err := Key(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Key(%q) = %q, %v; want ErrInvalid", bad, k, err)
		}
	}
}

func TestSame(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"alice@example.com", "alice@example.com", true},
		{"alice@example.com", "Alice@Example.COM", true},
		{"ALICE@example.com", "alice@EXAMPLE.com", true},
		{"Åsa@example.com", "åSA@example.com", true},
		{"alice@example.com", "alicia@example.com", false},
		{"alice@example.com", "alice@example.org", false},
		{"straße@example.com", "strasse@example.com", false},
		{"ſam@example.com", "sam@example.com", false},
		{"alice@example.com\r", "alice@example.com", false},
		{"alice@example.com", "not an address", false},
		{"", "", false},
	} {
		if got := Same(tt.a, tt.b); got != tt.want {
			t.Errorf("Same(%q, %q) = %v; want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSplitAndDomain(t *testing.T) {
	for _, tt := range []struct {
		in, local, domain, lower string
		ok                       bool
	}{
		{"alice@Example.COM", "alice", "Example.COM", "example.com", true},
		{`"a@b"@Example.com`, `"a@b"`, "Example.com", "example.com", true},
		{"@example.com", "", "example.com", "example.com", true},
		{"alice@", "alice", "", "", true},
		{"postmaster", "", "", "", false},
		{"", "", "", "", false},
	} {
		l, d, ok := Split(tt.in)
		if l != tt.local || d != tt.domain || ok != tt.ok {
			t.Errorf("Split(%q) = %q, %q, %v; want %q, %q, %v", tt.in, l, d, ok, tt.local, tt.domain, tt.ok)
		}
		if got := Domain(tt.in); got != tt.lower {
			t.Errorf("Domain(%q) = %q; want %q", tt.in, got, tt.lower)
		}
	}
	got := Domains([]string{"a@X.example", "b@x.example", "c@y.example", "postmaster"})
	if want := []string{"x.example", "y.example", ""}; !slices.Equal(got, want) {
		t.Errorf("Domains = %q; want %q", got, want)
	}
}

// FuzzNormalize: Normalize never panics, and what it accepts is a fixed point with no control
// character or space, whose key, domain and comparison agree with it.
func FuzzNormalize(f *testing.F) {
	for _, tt := range normalizeCases {
		f.Add(tt.in)
	}
	for _, s := range invalid {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if l, d, ok := Split(addr); ok && l+"@"+d != addr {
			t.Fatalf("Split(%q) = %q, %q", addr, l, d)
		}
		n, err := Normalize(addr)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Normalize(%q): %v, not ErrInvalid", addr, err)
			}
			if _, kerr := Key(addr); !errors.Is(kerr, ErrInvalid) || Same(addr, addr) {
				t.Fatalf("%q refused by Normalize, not by Key or Same", addr)
			}
			return
		}
		if strings.ContainsFunc(n, unicode.IsControl) || strings.ContainsAny(n, " <>") {
			t.Fatalf("Normalize(%q) = %q holds a control character, space or bracket", addr, n)
		}
		if n2, err := Normalize(n); err != nil || n2 != n {
			t.Fatalf("Normalize is not idempotent: %q -> %q -> %q, %v", addr, n, n2, err)
		}
		k, err := Key(addr)
		if err != nil || k != Fold(n) || !Same(addr, n) {
			t.Fatalf("Key(%q) = %q, %v; Fold(%q) = %q", addr, k, err, n, Fold(n))
		}
		if _, d, _ := Split(n); d != Domain(n) || d != strings.ToLower(d) {
			t.Fatalf("domain of %q is %q, Domain gives %q", n, d, Domain(n))
		}
	})
}

// TestKeyAgreesWithStore: the store keeps its own copy of the folding (it imports no other
// sealpost package); it and package address must give every address the same key.
func TestKeyAgreesWithStore(t *testing.T) {
	for _, tt := range normalizeCases {
		k, err1 := Key(tt.in)
		sk, err2 := store.AddressKey(tt.in)
		if err1 != nil || err2 != nil || k != sk {
			t.Errorf("%q: address.Key %q, %v; store.AddressKey %q, %v", tt.in, k, err1, sk, err2)
		}
		n, _ := Normalize(tt.in)
		if sn, err := store.NormalizeAddress(tt.in); err != nil || sn != n {
			t.Errorf("%q: address.Normalize %q; store.NormalizeAddress %q, %v", tt.in, n, sn, err)
		}
	}
}
