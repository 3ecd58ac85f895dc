package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	fpA = "AA11BB22CC33DD44EE55FF6600112233445566778899AABBCCDDEEFF00112233"
	fpB = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
)

func openTemp(t testing.TB) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestNormalizeAddress(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"alice@example.com", "alice@example.com", nil},
		{"Alice@Example.COM", "Alice@example.com", nil},
		{"  bob@EXAMPLE.org ", "bob@example.org", nil},
		{`"a@b"@Example.com`, `"a@b"@example.com`, nil},
		{"nodomain", "", ErrInvalid},
		{"@example.com", "", ErrInvalid},
		{"alice@", "", ErrInvalid},
		{"alice@exa mple.com", "", ErrInvalid},
		{"", "", ErrInvalid},
	}
	for _, tt := range tests {
		got, err := NormalizeAddress(tt.in)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("NormalizeAddress(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestRegistrations(t *testing.T) { forEachStore(t, testRegistrations) }

func testRegistrations(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	if err := s.Register(ctx, Registration{Address: "alice@Example.COM", Method: MethodSMIME, Fingerprint: strings.ToLower(fpA), Registered: at}); err != nil {
		t.Fatal(err)
	}
	// Idempotent: same (address, method, fingerprint) again, different spelling.
	if err := s.Register(ctx, Registration{Address: "alice@example.com", Method: MethodSMIME, Fingerprint: fpA}); err != nil {
		t.Fatal(err)
	}
	if err := s.Register(ctx, Registration{Address: "alice@example.com", Method: MethodPGP, Fingerprint: fpB, Registered: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	want := []Registration{
		{Address: "alice@example.com", Method: MethodSMIME, Fingerprint: fpA, Registered: at},
		{Address: "alice@example.com", Method: MethodPGP, Fingerprint: fpB, Registered: at.Add(time.Hour)},
	}
	tests := []struct {
		lookup string
		want   []Registration
	}{
		{"alice@example.com", want},
		{"alice@EXAMPLE.com", want}, // domain is case-insensitive
		{"Alice@example.com", want}, // and so is the local part
		{"ALICE@EXAMPLE.COM", want},
		{"bob@example.com", nil},
	}
	for _, tt := range tests {
		got, err := s.Registrations(ctx, tt.lookup)
		if err != nil {
			t.Fatalf("Registrations(%q): %v", tt.lookup, err)
		}
		if !sameRegistrations(got, tt.want) {
			t.Errorf("Registrations(%q) = %+v; want %+v", tt.lookup, got, tt.want)
		}
	}
	// The other direction: a registration under an upper-case local part is
	// found under the lower-case one.
	if err := s.Register(ctx, Registration{Address: "Carol@example.com", Method: MethodPGP, Fingerprint: fpB}); err != nil {
		t.Fatal(err)
	}
	for addr, n := range map[string]int{"Carol@EXAMPLE.COM": 1, "carol@example.com": 1} {
		got, err := s.Registrations(ctx, addr)
		if err != nil || len(got) != n {
			t.Errorf("Registrations(%q) = %d, %v; want %d", addr, len(got), err, n)
		}
	}

	if err := s.Unregister(ctx, "alice@EXAMPLE.com", fpA); err != nil {
		t.Fatal(err)
	}
	if err := s.Unregister(ctx, "alice@example.com", fpA); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Unregister: %v; want ErrNotFound", err)
	}
	got, err := s.Registrations(ctx, "alice@example.com")
	if err != nil || !sameRegistrations(got, want[1:]) {
		t.Errorf("after Unregister: %+v, %v", got, err)
	}
}

func sameRegistrations(a, b []Registration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Address != b[i].Address || a[i].Method != b[i].Method || a[i].Fingerprint != b[i].Fingerprint || !a[i].Registered.Equal(b[i].Registered) {
			return false
		}
	}
	return true
}

func TestRegisterInvalid(t *testing.T) { forEachStore(t, testRegisterInvalid) }

func testRegisterInvalid(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	tests := []Registration{
		{Address: "alice", Method: MethodSMIME, Fingerprint: fpA},
		{Address: "alice@example.com", Method: "x509", Fingerprint: fpA},
		{Address: "alice@example.com", Method: MethodPGP, Fingerprint: "not hex"},
		{Address: "alice@example.com", Method: MethodPGP, Fingerprint: ""},
	}
	for _, r := range tests {
		if err := s.Register(ctx, r); !errors.Is(err, ErrInvalid) {
			t.Errorf("Register(%+v) = %v; want ErrInvalid", r, err)
		}
	}
}

func TestThreads(t *testing.T) { forEachStore(t, testThreads) }

func testThreads(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	th, err := s.NewThread(ctx, "Alice@Example.COM", MethodSMIME, fpA, "Card blocked")
	if err != nil {
		t.Fatal(err)
	}
	if th.Customer != "Alice@example.com" || th.Method != MethodSMIME || th.Fingerprint != fpA || th.Subject != "Card blocked" || th.Created.IsZero() {
		t.Errorf("NewThread = %+v", th)
	}
	got, err := s.Thread(ctx, th.Token)
	if err != nil || got != th {
		t.Errorf("Thread = %+v, %v; want %+v", got, err, th)
	}
	if _, err := s.Thread(ctx, newToken()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Thread(unknown) = %v; want ErrNotFound", err)
	}
	// A customer without a registered key.
	bare, err := s.NewThread(ctx, "bob@example.com", "", "", "Hello")
	if err != nil || bare.Method != "" || bare.Fingerprint != "" {
		t.Errorf("NewThread without key = %+v, %v", bare, err)
	}
	if _, err := s.NewThread(ctx, "bob@example.com", "", fpA, "x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewThread with fingerprint and no method = %v; want ErrInvalid", err)
	}

	out := MessageIDForThread(th.Token, "mail.bank.example")
	in := "<reply-1@client.example>"
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	msgs := []ThreadMessage{
		{Token: th.Token, MessageID: out, Verdict: "", At: at},
		{Token: th.Token, MessageID: in, Inbound: true, Verdict: "verified", At: at.Add(time.Minute)},
	}
	for _, m := range msgs {
		if err := s.AddMessage(ctx, m); err != nil {
			t.Fatalf("AddMessage(%+v): %v", m, err)
		}
	}
	// Re-adding the same message is a no-op; a different record is a conflict.
	if err := s.AddMessage(ctx, msgs[1]); err != nil {
		t.Errorf("re-AddMessage: %v", err)
	}
	changed := msgs[1]
	changed.Verdict = "forged"
	if err := s.AddMessage(ctx, changed); !errors.Is(err, ErrConflict) {
		t.Errorf("AddMessage(changed) = %v; want ErrConflict", err)
	}
	moved := msgs[1]
	moved.Token = bare.Token
	if err := s.AddMessage(ctx, moved); !errors.Is(err, ErrConflict) {
		t.Errorf("AddMessage(other thread) = %v; want ErrConflict", err)
	}
	if err := s.AddMessage(ctx, ThreadMessage{Token: newToken(), MessageID: "<x@y>"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddMessage(unknown thread) = %v; want ErrNotFound", err)
	}
	gotMsgs, err := s.Messages(ctx, th.Token)
	if err != nil || len(gotMsgs) != 2 {
		t.Fatalf("Messages = %+v, %v", gotMsgs, err)
	}
	for i := range msgs {
		g, w := gotMsgs[i], msgs[i]
		if g.Token != w.Token || g.MessageID != w.MessageID || g.Inbound != w.Inbound || g.Verdict != w.Verdict || !g.At.Equal(w.At) {
			t.Errorf("Messages[%d] = %+v; want %+v", i, g, w)
		}
	}
	if _, err := s.Messages(ctx, newToken()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Messages(unknown) = %v; want ErrNotFound", err)
	}

	// A foreign Message-ID that was stored, linked to the bare thread.
	if err := s.AddMessage(ctx, ThreadMessage{Token: bare.Token, MessageID: "<stored@client.example>", Inbound: true}); err != nil {
		t.Fatal(err)
	}
	lookups := []struct {
		name string
		ids  []string
		want string
		err  error
	}{
		{"stored inbound id", []string{in}, th.Token, nil},
		{"stored id without brackets", []string{"reply-1@client.example"}, th.Token, nil},
		{"stored outbound id", []string{out}, th.Token, nil},
		{"embedded token, new random part", []string{MessageIDForThread(th.Token, "other.host")}, th.Token, nil},
		{"first known wins", []string{"<unknown@x>", "<stored@client.example>", in}, bare.Token, nil},
		{"unknown ids", []string{"<unknown@x>", "<" + newToken() + ".abc@bank.example>"}, "", ErrNotFound},
		{"no ids", nil, "", ErrNotFound},
	}
	for _, tt := range lookups {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ThreadForMessageIDs(ctx, tt.ids)
			if !errors.Is(err, tt.err) || got.Token != tt.want {
				t.Errorf("ThreadForMessageIDs(%q) = %q, %v; want %q, %v", tt.ids, got.Token, err, tt.want, tt.err)
			}
			if err == nil { // the whole thread, as Thread reads it
				want, err := s.Thread(ctx, tt.want)
				if err != nil || got.Customer != want.Customer || got.Method != want.Method || got.Fingerprint != want.Fingerprint ||
					got.Subject != want.Subject || !got.Created.Equal(want.Created) {
					t.Errorf("ThreadForMessageIDs(%q) = %+v; Thread gives %+v, %v", tt.ids, got, want, err)
				}
			}
		})
	}
}

func TestTokenUnguessable(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok := newToken()
		if len(tok) < 20 || len(tok) != tokenLen {
			t.Fatalf("token %q has length %d", tok, len(tok))
		}
		for _, c := range tok {
			if !strings.ContainsRune(tokenAlphabet, c) {
				t.Fatalf("token %q has %q outside the base32 alphabet", tok, c)
			}
		}
		if seen[tok] {
			t.Fatalf("token %q repeated", tok)
		}
		seen[tok] = true
	}
}

func TestTokenFromMessageID(t *testing.T) {
	tok := newToken()
	tests := []struct {
		id   string
		want string
		ok   bool
	}{
		{MessageIDForThread(tok, "bank.example"), tok, true},
		{"<" + tok + ".x@h>", tok, true},
		{tok + ".x@h", tok, true},
		{"<" + tok + "@h>", tok, true},
		{" <" + tok + ".a.b.c@h> ", tok, true},
		{"<" + strings.ToUpper(tok) + ".x@h>", "", false},
		{"<" + tok[:tokenLen-1] + ".x@h>", "", false},
		{"<" + tok + "a.x@h>", "", false},
		{"<" + tok + ".@h>", "", false},
		{"<" + tok + ".x@>", "", false},
		{"<" + tok + ".x>", "", false},
		{"<" + tok + ".x@h@i>", "", false},
		{"<" + tok[:tokenLen-1] + "1.x@h>", "", false}, // '1' is not base32
		{"<" + tok + ".x@h", "", false},
		{"", "", false},
		{"<>", "", false},
	}
	for _, tt := range tests {
		got, ok := TokenFromMessageID(tt.id)
		if got != tt.want || ok != tt.ok {
			t.Errorf("TokenFromMessageID(%q) = %q, %v; want %q, %v", tt.id, got, ok, tt.want, tt.ok)
		}
	}
	a, b := MessageIDForThread(tok, "h"), MessageIDForThread(tok, "h")
	if a == b {
		t.Errorf("MessageIDForThread returned %q twice", a)
	}
}

func FuzzTokenFromMessageID(f *testing.F) {
	f.Add(MessageIDForThread("abcdefghijklmnopqrstuvwx", "bank.example"))
	f.Add("<abcdefghijklmnopqrstuvwx@h>")
	f.Add("<abcdefghijklmnopqrstuvw.x@h>")
	f.Add("<reply@client.example>")
	f.Add("<@>")
	f.Add("")
	f.Fuzz(func(t *testing.T, id string) {
		tok, ok := TokenFromMessageID(id)
		if !ok {
			if tok != "" {
				t.Fatalf("rejected %q but returned %q", id, tok)
			}
			return
		}
		if !validToken(tok) {
			t.Fatalf("accepted %q with malformed token %q", id, tok)
		}
		if !strings.Contains(id, tok) {
			t.Fatalf("token %q not in %q", tok, id)
		}
		// What we accept, we also produce and accept again.
		again, ok := TokenFromMessageID(MessageIDForThread(tok, "h"))
		if !ok || again != tok {
			t.Fatalf("round trip of %q: %q, %v", tok, again, ok)
		}
	})
}

func TestQuarantine(t *testing.T) { forEachStore(t, testQuarantine) }

func testQuarantine(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	at := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	held := []Held{
		{ID: "h1", Received: at, From: "Eve@Example.com", Reason: "cbc-unsigned", Verdict: "none", Ref: "spool/h1"},
		{ID: "h2", Received: at.Add(time.Second), From: "not an address", Reason: "key-mismatch", Verdict: "fail", Ref: "spool/h2"},
	}
	for _, h := range held {
		if err := s.Hold(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Hold(ctx, Held{ID: "h1", Ref: "elsewhere"}); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate Hold = %v; want ErrConflict", err)
	}
	if err := s.Hold(ctx, Held{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Hold without ID = %v; want ErrInvalid", err)
	}
	got, err := s.HeldGet(ctx, "h1")
	if err != nil || !sameHeld(got, held[0]) {
		t.Errorf("HeldGet = %+v, %v; want %+v", got, err, held[0])
	}
	d := testDecision()
	if err := s.Release(ctx, "h1", d); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		err  error
		do   func() error
	}{
		{"release twice", ErrConflict, func() error { return s.Release(ctx, "h1", testDecision()) }},
		{"release unknown", ErrNotFound, func() error { return s.Release(ctx, "nope", testDecision()) }},
		{"get unknown", ErrNotFound, func() error { _, err := s.HeldGet(ctx, "nope"); return err }},
		{"delete released", ErrConflict, func() error { return s.Delete(ctx, "h1", testDecision()) }},
		{"delete unknown", ErrNotFound, func() error { return s.Delete(ctx, "nope", testDecision()) }},
		{"release by nobody", ErrInvalid, func() error { x := testDecision(); x.By = ""; return s.Release(ctx, held[1].ID, x) }},
		{"release without reason", ErrInvalid, func() error { x := testDecision(); x.Why = ""; return s.Release(ctx, held[1].ID, x) }},
		{"release by a two-line name", ErrInvalid, func() error { x := testDecision(); x.By = "eve\nroot"; return s.Delete(ctx, held[1].ID, x) }},
		{"delete with an empty evidence record", ErrInvalid, func() error { x := testDecision(); x.Evidence = []byte{}; return s.Delete(ctx, held[1].ID, x) }},
		{"delete without time", ErrInvalid, func() error { x := testDecision(); x.At = time.Time{}; return s.Delete(ctx, held[1].ID, x) }},
	}
	for _, st := range steps {
		if err := st.do(); !errors.Is(err, st.err) {
			t.Errorf("%s: %v; want %v", st.name, err, st.err)
		}
	}
	released := held[0]
	released.Released, released.DecidedBy, released.DecidedWhy, released.DecidedAt = true, d.By, d.Why, d.At
	lists := []struct {
		include bool
		want    []Held
	}{
		{false, held[1:]},
		{true, []Held{released, held[1]}},
	}
	for _, l := range lists {
		got, err := s.HeldList(ctx, l.include)
		if err != nil || len(got) != len(l.want) {
			t.Fatalf("HeldList(%v) = %+v, %v", l.include, got, err)
		}
		for i := range got {
			if !sameHeld(got[i], l.want[i]) {
				t.Errorf("HeldList(%v)[%d] = %+v; want %+v", l.include, i, got[i], l.want[i])
			}
		}
	}
}

func sameHeld(a, b Held) bool {
	ra, rb, da, db := a.Received, b.Received, a.DecidedAt, b.DecidedAt
	a.Received, b.Received, a.DecidedAt, b.DecidedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b && ra.Equal(rb) && da.Equal(db)
}

func TestCapabilities(t *testing.T) { forEachStore(t, testCapabilities) }

func testCapabilities(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	c, err := s.Capabilities(ctx, "alice@example.com")
	if !errors.Is(err, ErrNotFound) || c != (Capabilities{}) {
		t.Errorf("Capabilities(unknown) = %+v, %v; want zero, ErrNotFound", c, err)
	}
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		set  Capabilities
		want Capabilities
	}{
		{Capabilities{Address: "alice@EXAMPLE.com", SMIMEGCM: true, Updated: t0},
			Capabilities{Address: "alice@example.com", SMIMEGCM: true, Updated: t0}},
		{Capabilities{Address: "alice@example.com", SMIMEGCM: true, PGPSEIPDv2: true, Updated: t0.Add(time.Hour)},
			Capabilities{Address: "alice@example.com", SMIMEGCM: true, PGPSEIPDv2: true, Updated: t0.Add(time.Hour)}},
		// An older observation does not overwrite a newer one.
		{Capabilities{Address: "alice@example.com", Updated: t0.Add(time.Minute)},
			Capabilities{Address: "alice@example.com", SMIMEGCM: true, PGPSEIPDv2: true, Updated: t0.Add(time.Hour)}},
	}
	for i, st := range steps {
		if err := s.SetCapabilities(ctx, st.set); err != nil {
			t.Fatal(err)
		}
		got, err := s.Capabilities(ctx, "alice@Example.Com")
		if err != nil || got.Address != st.want.Address || got.SMIMEGCM != st.want.SMIMEGCM ||
			got.PGPSEIPDv2 != st.want.PGPSEIPDv2 || !got.Updated.Equal(st.want.Updated) {
			t.Errorf("step %d: Capabilities = %+v, %v; want %+v", i, got, err, st.want)
		}
	}
	if got, err := s.Capabilities(ctx, "Alice@example.com"); err != nil || got.Address != "alice@example.com" {
		t.Errorf("Capabilities with other local-part case = %+v, %v; want alice@example.com's", got, err)
	}
	if _, err := s.Capabilities(ctx, "bob@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Capabilities of another address = %v; want ErrNotFound", err)
	}
}

func TestPersistence(t *testing.T) { forEachStore(t, testPersistence) }

func testPersistence(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	if err := s.Register(ctx, Registration{Address: "alice@example.com", Method: MethodPGP, Fingerprint: fpB}); err != nil {
		t.Fatal(err)
	}
	th, err := s.NewThread(ctx, "alice@example.com", MethodPGP, fpB, "Statement")
	if err != nil {
		t.Fatal(err)
	}
	mid := MessageIDForThread(th.Token, "bank.example")
	if err := s.AddMessage(ctx, ThreadMessage{Token: th.Token, MessageID: mid}); err != nil {
		t.Fatal(err)
	}
	if err := s.Hold(ctx, Held{ID: "h1", Ref: "r"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCapabilities(ctx, Capabilities{Address: "alice@example.com", PGPSEIPDv2: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := reopen(t)
	checks := []struct {
		name string
		ok   func() error
	}{
		{"registration", func() error {
			r, err := s2.Registrations(ctx, "alice@example.com")
			if err == nil && (len(r) != 1 || r[0].Fingerprint != fpB) {
				err = fmt.Errorf("got %+v", r)
			}
			return err
		}},
		{"thread", func() error {
			got, err := s2.Thread(ctx, th.Token)
			if err == nil && got != th {
				err = fmt.Errorf("got %+v, want %+v", got, th)
			}
			return err
		}},
		{"message", func() error {
			got, err := s2.ThreadForMessageIDs(ctx, []string{mid})
			if err == nil && got.Token != th.Token {
				err = fmt.Errorf("got %+v", got)
			}
			return err
		}},
		{"held", func() error { _, err := s2.HeldGet(ctx, "h1"); return err }},
		{"capabilities", func() error {
			c, err := s2.Capabilities(ctx, "alice@example.com")
			if err == nil && !c.PGPSEIPDv2 {
				err = fmt.Errorf("got %+v", c)
			}
			return err
		}},
	}
	for _, c := range checks {
		if err := c.ok(); err != nil {
			t.Errorf("%s after reopen: %v", c.name, err)
		}
	}
}

func TestFileMode(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	// Write something so the WAL exists.
	if err := s.Hold(ctx, Held{ID: "x", Ref: "r"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %o; want 600", filepath.Base(p), m)
		}
	}
	var mode string
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := s.db.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
}

func TestSchemaTooNew(t *testing.T) {
	s, path := openTemp(t)
	if _, err := s.db.Exec(`UPDATE schema_version SET version = ?`, schemaVersion+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := OpenSQLite(path)
	if err == nil {
		s2.Close()
		t.Fatal("OpenSQLite accepted a newer schema")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("OpenSQLite = %v; want ErrSchemaTooNew", err)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprint(schemaVersion+1)) || !strings.Contains(msg, "upgrade sealpost") {
		t.Errorf("error %q does not say which version and what to do", msg)
	}
}

func TestSchemaVersionRecorded(t *testing.T) {
	s, path := openTemp(t)
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v, n int
	if err := db.QueryRow(`SELECT MAX(version), COUNT(*) FROM schema_version`).Scan(&v, &n); err != nil || v != schemaVersion || n != 1 {
		t.Errorf("schema_version = %d (%d rows), %v; want %d (1 row)", v, n, err, schemaVersion)
	}
}

func TestOpenInvalidPath(t *testing.T) {
	for _, p := range []string{"", "a?mode=ro", filepath.Join(t.TempDir(), "missing", "dir", "x.db")} {
		if s, err := OpenSQLite(p); err == nil {
			s.Close()
			t.Errorf("OpenSQLite(%q) succeeded", p)
		}
	}
}

func TestConcurrent(t *testing.T) { forEachStore(t, testConcurrent) }

func testConcurrent(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	// A second handle on the same storage stands in for another process
	// (SQLite) or another node (PostgreSQL: another pool).
	other := reopen(t)
	th, err := s.NewThread(ctx, "alice@example.com", MethodSMIME, fpA, "load")
	if err != nil {
		t.Fatal(err)
	}
	const workers, ops = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers*ops*3) // up to three failures per iteration
	for w := range workers {
		st := s
		if w%2 == 1 {
			st = other
		}
		wg.Go(func() {
			for i := range ops {
				addr := fmt.Sprintf("user%d@example.com", w)
				fp := fmt.Sprintf("%064X", w*ops+i)
				if err := st.Register(ctx, Registration{Address: addr, Method: MethodPGP, Fingerprint: fp}); err != nil {
					errs <- err
				}
				if err := st.AddMessage(ctx, ThreadMessage{Token: th.Token, MessageID: fmt.Sprintf("<%d.%d@load>", w, i), Inbound: true}); err != nil {
					errs <- err
				}
				if _, err := st.ThreadForMessageIDs(ctx, []string{fmt.Sprintf("<%d.%d@load>", w, i)}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	msgs, err := s.Messages(ctx, th.Token)
	if err != nil || len(msgs) != workers*ops {
		t.Errorf("Messages = %d, %v; want %d", len(msgs), err, workers*ops)
	}
	for w := range workers {
		r, err := s.Registrations(ctx, fmt.Sprintf("user%d@example.com", w))
		if err != nil || len(r) != ops {
			t.Errorf("worker %d: %d registrations, %v; want %d", w, len(r), err, ops)
		}
	}
}

func BenchmarkThreadLookup(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s, _ := be.open(b)
			benchmarkThreadLookup(b, s)
		})
	}
}

func benchmarkThreadLookup(b *testing.B, s contract) {
	ctx := context.Background()
	var ids []string
	for i := range 1000 {
		th, err := s.NewThread(ctx, fmt.Sprintf("c%d@example.com", i), MethodSMIME, fpA, "s")
		if err != nil {
			b.Fatal(err)
		}
		id := fmt.Sprintf("<reply%d@client.example>", i)
		if err := s.AddMessage(ctx, ThreadMessage{Token: th.Token, MessageID: id, Inbound: true}); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id, MessageIDForThread(th.Token, "bank.example"))
	}
	i := 0
	for b.Loop() {
		// Alternate a stored Message-ID and an embedded token; each lookup
		// starts with one unknown ID, as References usually does.
		if _, err := s.ThreadForMessageIDs(ctx, []string{"<unknown@x>", ids[i%len(ids)]}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// testDecision is an operator's decision on a held message, with a stand-in evidence record.
func testDecision() Decision {
	return Decision{By: "cli:tester", Why: "the sender called the desk", At: time.Now(), Evidence: []byte(`{"kind":"action"}`)}
}

// TestDecisionsQueueTheirEvidence: each release or deletion queues its evidence record in the
// same transaction; a refused decision queues nothing; the outbox hands the records oldest first,
// keeps them when the taker fails, and removes them when it succeeds.
func TestDecisionsQueueTheirEvidence(t *testing.T) { forEachStore(t, testDecisionsQueueTheirEvidence) }

func testDecisionsQueueTheirEvidence(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if err := s.Hold(ctx, Held{ID: id, Received: time.Now(), From: "x@example.com", Reason: "unsigned", Verdict: "none", Ref: id}); err != nil {
			t.Fatal(err)
		}
	}
	dec := func(rec string) Decision { d := testDecision(); d.Evidence = []byte(rec); return d }
	// Without an evidence log (Evidence nil) a decision is kept on the entry and queues nothing.
	if err := s.Delete(ctx, "c", dec("")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a decision with an empty record: %v; want ErrInvalid", err)
	}
	noLog := testDecision()
	noLog.Evidence = nil
	if err := s.Delete(ctx, "c", noLog); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "a", dec("delete a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "a", dec("release a")); !errors.Is(err, ErrConflict) {
		t.Fatalf("release of a deleted message: %v; want ErrConflict", err)
	}
	if err := s.Release(ctx, "b", dec("release b")); err != nil {
		t.Fatal(err)
	}
	h, err := s.HeldGet(ctx, "a")
	if err != nil || !h.Deleted || h.Released || h.DecidedBy != "cli:tester" || h.DecidedWhy == "" || h.DecidedAt.IsZero() {
		t.Fatalf("deleted entry %+v, %v", h, err)
	}
	if list, err := s.HeldList(ctx, false); err != nil || len(list) != 0 {
		t.Fatalf("held list %+v, %v; want neither the deleted nor the released one", list, err)
	}
	if claimed, err := s.ClaimReleased(ctx, "n1", time.Minute, 10); err != nil || len(claimed) != 1 || claimed[0].ID != "b" {
		t.Fatalf("claimed %+v, %v; want b only (a deleted message is never delivered)", claimed, err)
	}
	// A request for another node's gateway is left for it.
	if err := s.QueueEvidence(ctx, "n2", []byte("renew n2")); err != nil {
		t.Fatal(err)
	}
	if err := s.QueueEvidence(ctx, "n 2", []byte("x")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a node name with a space: %v; want ErrInvalid", err)
	}
	if err := s.QueueEvidence(ctx, "n2", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an empty line: %v; want ErrInvalid", err)
	}
	boom := errors.New("the log is down")
	if _, err := s.EvidenceOutboxTake(ctx, "n1", 10, func([][]byte) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("take with a failing taker: %v", err)
	}
	var got []string
	n, err := s.EvidenceOutboxTake(ctx, "n1", 1, func(lines [][]byte) error {
		for _, l := range lines {
			got = append(got, string(l))
		}
		return nil
	})
	if err != nil || n != 1 {
		t.Fatal(n, err)
	}
	n, err = s.EvidenceOutboxTake(ctx, "n1", 10, func(lines [][]byte) error {
		for _, l := range lines {
			got = append(got, string(l))
		}
		return nil
	})
	if err != nil || n != 1 || strings.Join(got, ",") != "delete a,release b" {
		t.Fatalf("took %q (%d, %v); want the two decisions' records once each, in order", got, n, err)
	}
	if n, err := s.EvidenceOutboxTake(ctx, "n1", 10, func([][]byte) error { t.Error("an empty outbox handed records"); return nil }); err != nil || n != 0 {
		t.Fatal(n, err)
	}
	got = nil
	if n, err := s.EvidenceOutboxTake(ctx, "n2", 10, func(lines [][]byte) error {
		for _, l := range lines {
			got = append(got, string(l))
		}
		return nil
	}); err != nil || n != 1 || got[0] != "renew n2" {
		t.Fatalf("node n2 took %q (%d, %v); want its request", got, n, err)
	}
}

// BenchmarkCapabilities: the store's lookup on the outbound hot path, one per S/MIME recipient
// (among 1,000 customers' capabilities).
func BenchmarkCapabilities(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s, _ := be.open(b)
			ctx := context.Background()
			for i := range 1000 {
				if err := s.SetCapabilities(ctx, Capabilities{Address: fmt.Sprintf("c%d@example.com", i), SMIMEGCM: true, Updated: time.Now()}); err != nil {
					b.Fatal(err)
				}
			}
			i := 0
			for b.Loop() {
				if _, err := s.Capabilities(ctx, fmt.Sprintf("C%d@Example.com", i%1000)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
