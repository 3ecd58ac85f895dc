package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRecipientKeySources: a key is registered unless stored as learned; a learned copy of a
// registered key leaves it registered, registering a learned key promotes it, and the export
// carries the source through an import.
func TestRecipientKeySources(t *testing.T) { forEachStore(t, testRecipientKeySources) }

func testRecipientKeySources(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	pem := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	put := func(fp, source string) {
		t.Helper()
		if err := s.PutRecipientKey(ctx, RecipientKey{Method: MethodSMIME, Fingerprint: fp, Data: pem, Source: source}); err != nil {
			t.Fatalf("PutRecipientKey(%s, %q): %v", fp[:4], source, err)
		}
	}
	source := func(fp string) string {
		t.Helper()
		k, err := reopen(t).RecipientKey(ctx, MethodSMIME, fp)
		if err != nil {
			t.Fatal(err)
		}
		return k.Source
	}
	put(fpA, "")
	put(fpB, SourceLearned)
	if a, b := source(fpA), source(fpB); a != SourceRegistered || b != SourceLearned {
		t.Fatalf("sources %q, %q; want registered, learned", a, b)
	}
	put(fpA, SourceLearned) // a reply signed with a registered certificate
	if got := source(fpA); got != SourceRegistered {
		t.Errorf("a learned copy demoted a registered key to %q", got)
	}
	put(fpB, SourceRegistered) // the customer registers the certificate they signed with
	if got := source(fpB); got != SourceRegistered {
		t.Errorf("registering a learned key left it %q", got)
	}
	if err := s.PutRecipientKey(ctx, RecipientKey{Method: MethodSMIME, Fingerprint: fpA, Data: pem, Source: "discovered"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("an unknown source: %v, want ErrInvalid", err)
	}
}

// TestDiscoveredKeys: what a WKD lookup found (a key, or none with the reason) is stored per
// address, replaced by the next lookup, seen by another handle, listed by address and removed;
// bad bounds are ErrInvalid and nothing is stored.
func TestDiscoveredKeys(t *testing.T) { forEachStore(t, testDiscoveredKeys) }

func testDiscoveredKeys(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	other := reopen(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	found := DiscoveredKey{Address: "carol@provider.example", Fingerprint: strings.ToLower(fpA[:40]), Data: []byte{0x99, 0x01, 0x0d},
		Fetched: now, Expires: now.Add(24 * time.Hour)}
	none := DiscoveredKey{Address: "dave@provider.example", Reason: "no key published", Fetched: now, Expires: now.Add(time.Hour)}
	for _, k := range []DiscoveredKey{found, none} {
		if err := s.PutDiscoveredKey(ctx, k); err != nil {
			t.Fatalf("PutDiscoveredKey(%s): %v", k.Address, err)
		}
	}
	got, err := other.DiscoveredKey(ctx, found.Address)
	if err != nil || got.Fingerprint != fpA[:40] || !bytes.Equal(got.Data, found.Data) || !got.Fetched.Equal(now) || !got.Expires.Equal(found.Expires) {
		t.Fatalf("DiscoveredKey = %+v, %v; want %+v with the fingerprint upper-case", got, err, found)
	}
	if got, err := other.DiscoveredKey(ctx, none.Address); err != nil || got.Data != nil || got.Reason != none.Reason {
		t.Fatalf("DiscoveredKey of none = %+v, %v", got, err)
	}
	// The next lookup found the key revoked: what was stored is replaced.
	revoked := DiscoveredKey{Address: found.Address, Reason: "key revoked", Fetched: now.Add(time.Hour), Expires: now.Add(2 * time.Hour)}
	if err := other.PutDiscoveredKey(ctx, revoked); err != nil {
		t.Fatal(err)
	}
	if got, err := s.DiscoveredKey(ctx, found.Address); err != nil || got.Data != nil || got.Fingerprint != "" || got.Reason != "key revoked" {
		t.Fatalf("after the refresh: %+v, %v", got, err)
	}
	list, err := s.DiscoveredKeys(ctx)
	if err != nil || len(list) != 2 || list[0].Address != found.Address || list[1].Address != none.Address {
		t.Fatalf("DiscoveredKeys = %+v, %v", list, err)
	}
	if err := s.RemoveDiscoveredKey(ctx, none.Address); err != nil {
		t.Fatal(err)
	}
	if _, err := other.DiscoveredKey(ctx, none.Address); !errors.Is(err, ErrNotFound) {
		t.Errorf("after removing: %v, want ErrNotFound", err)
	}
	if err := s.RemoveDiscoveredKey(ctx, none.Address); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing twice: %v, want ErrNotFound", err)
	}
	for name, k := range map[string]DiscoveredKey{
		"no address":           {Reason: "x"},
		"address of 321 bytes": {Address: strings.Repeat("a", 321)},
		"data without a print": {Address: "e@x.example", Data: []byte{1}},
		"print without data":   {Address: "e@x.example", Fingerprint: fpA},
		"fingerprint not hex":  {Address: "e@x.example", Fingerprint: "XYZ", Data: []byte{1}},
		"key over the limit":   {Address: "e@x.example", Fingerprint: fpA, Data: make([]byte, MaxRecipientKey+1)},
		"reason of 201 bytes":  {Address: "e@x.example", Reason: strings.Repeat("r", 201)},
	} {
		if err := s.PutDiscoveredKey(ctx, k); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.DiscoveredKey(ctx, "e@x.example"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused key was stored: %v", err)
	}
}
