package ca_test

import (
	"context"
	"encoding/pem"
	"testing"
)

// FuzzIssueFromCSR: no request panics the CA, and a refused one stores nothing; an accepted one
// stores exactly one certificate, for alice.
func FuzzIssueFromCSR(f *testing.F) {
	good := aliceCSR(f)
	f.Add(good)
	block, _ := pem.Decode(good)
	f.Add(block.Bytes)
	for _, tc := range hostile(f) {
		f.Add(tc.csr)
	}
	st := sqlite(f)
	c := newCA(f, st)
	f.Fuzz(func(t *testing.T, csr []byte) {
		before := issuedCount(t, st)
		got, err := c.IssueFromCSR(context.Background(), alice, csr)
		after := issuedCount(t, st)
		switch {
		case err != nil && after != before:
			t.Fatalf("refused (%v) but %d stored", err, after-before)
		case err == nil && (after != before+1 || got.Certificate.EmailAddresses[0] != alice || len(got.Certificate.EmailAddresses) != 1):
			t.Fatalf("accepted: %d stored, names %v", after-before, got.Certificate.EmailAddresses)
		}
	})
}
