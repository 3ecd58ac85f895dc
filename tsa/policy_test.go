package tsa

import (
	"context"
	"errors"
	"testing"
)

func TestParsePolicy(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{DefaultPolicy, true},
		{"1.3.6.1.4.1.99999.1.2", true},
		{"2.999.1", true},
		{"0.4.0.2023.1.1", true}, // ETSI EN 319 421 best-practice policy
		{"", false},
		{"1", false},
		{"1..2", false},
		{"1.2.", false},
		{" 1.2.3", false},
		{"1.2.x", false},
		{"1.02.3", false},
		{"-1.2", false},
		{"3.1", false},
		{"1.40", false},
		{"1.2.99999999999", false},
	} {
		oid, err := ParsePolicy(tc.in)
		if tc.ok != (err == nil) {
			t.Errorf("ParsePolicy(%q) = %v, %v; want ok %v", tc.in, oid, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("ParsePolicy(%q): %v does not wrap ErrConfig", tc.in, err)
		}
		if err == nil && oid.String() != tc.in {
			t.Errorf("ParsePolicy(%q) = %v", tc.in, oid)
		}
	}
}

// TestAuthorityPolicy: a configured policy is what the tokens carry and what Verify reports; the
// default is DefaultPolicy.
func TestAuthorityPolicy(t *testing.T) {
	for _, policy := range []string{DefaultPolicy, "1.3.6.1.4.1.99999.3161.7"} {
		var opts []AuthorityOption
		if policy != DefaultPolicy {
			oid, err := ParsePolicy(policy)
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, WithPolicy(oid))
		}
		ts := newTestTSA(t, nil, opts...)
		tok, err := ts.a.Timestamp(context.Background(), []byte("m"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Verify(tok.DER, []byte("m"), ts.ca.roots)
		if err != nil || got.Policy.String() != policy || tok.Policy.String() != policy {
			t.Fatalf("policy %s: token says %v / %v (%v)", policy, tok.Policy, got, err)
		}
	}
}

// FuzzParsePolicy: the configuration's OID parser never panics, and what it accepts prints back
// as it was written.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{DefaultPolicy, "2.999", "1.40", "1.2.3.4294967296", "0..1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		oid, err := ParsePolicy(s)
		if err == nil && oid.String() != s {
			t.Fatalf("ParsePolicy(%q) = %v", s, oid)
		}
	})
}
