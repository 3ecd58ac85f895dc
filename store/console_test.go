package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestConsoleAccounts: accounts are added once, with names and roles checked; failed sign-ins
// lock an account at the limit; a TOTP step is used once (of two sign-ins racing with one code,
// one wins); a reset gives new credentials and ends the sessions, as disabling does.
func TestConsoleAccounts(t *testing.T) { forEachStore(t, testConsoleAccounts) }

func testConsoleAccounts(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	a := ConsoleAccount{Name: "zoe.lead", Role: RoleAgent, Password: []byte("$argon2id$..."), TOTP: []byte("sealed"), Created: now}
	if err := s.PutConsoleAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		err  error
		a    ConsoleAccount
	}{
		{"taken", ErrConflict, a},
		{"upper case", ErrInvalid, ConsoleAccount{Name: "Zoe", Role: RoleAgent, Password: a.Password, TOTP: a.TOTP}},
		{"space", ErrInvalid, ConsoleAccount{Name: "zoe lead", Role: RoleAgent, Password: a.Password, TOTP: a.TOTP}},
		{"too long", ErrInvalid, ConsoleAccount{Name: "z" + string(make([]byte, 64)), Role: RoleAgent, Password: a.Password, TOTP: a.TOTP}},
		{"unknown role", ErrInvalid, ConsoleAccount{Name: "eve", Role: "root", Password: a.Password, TOTP: a.TOTP}},
		{"no password", ErrInvalid, ConsoleAccount{Name: "eve", Role: RoleAgent, TOTP: a.TOTP}},
		{"no TOTP", ErrInvalid, ConsoleAccount{Name: "eve", Role: RoleAgent, Password: a.Password}},
	} {
		if err := s.PutConsoleAccount(ctx, c.a); !errors.Is(err, c.err) {
			t.Errorf("%s: %v; want %v", c.name, err, c.err)
		}
	}
	if err := s.PutConsoleAccount(ctx, ConsoleAccount{Name: "ops", Role: RoleOperator, Password: []byte("h"), TOTP: []byte("t")}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ConsoleAccounts(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "ops" || list[1].Name != "zoe.lead" {
		t.Fatalf("accounts %+v, %v", list, err)
	}
	got, err := s.ConsoleAccount(ctx, "zoe.lead")
	if err != nil || got.Role != RoleAgent || string(got.TOTP) != "sealed" || !got.Created.Equal(now) || got.Failures != 0 || !got.Disabled.IsZero() {
		t.Fatalf("account %+v, %v", got, err)
	}
	if _, err := s.ConsoleAccount(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown account: %v", err)
	}

	// Lockout at the third failure in a row; a failure for an unknown name counts nowhere.
	for i, want := range []bool{false, false, true} {
		locked, err := s.ConsoleSignInFailed(ctx, "zoe.lead", now, 3, 15*time.Minute)
		if err != nil || locked != want {
			t.Fatalf("failure %d: locked %v, %v; want %v", i+1, locked, err, want)
		}
	}
	if locked, err := s.ConsoleSignInFailed(ctx, "nobody", now, 3, time.Minute); err != nil || locked {
		t.Fatalf("an unknown name: %v %v", locked, err)
	}
	if got, _ := s.ConsoleAccount(ctx, "zoe.lead"); !got.LockedUntil.Equal(now.Add(15*time.Minute)) || got.Failures != 0 {
		t.Fatalf("after the lockout: %+v", got)
	}

	// A TOTP step is used once, even by two sign-ins at once.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = s.ConsoleSignedIn(ctx, "zoe.lead", 1000) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), ErrConflict) {
		t.Fatalf("two sign-ins with one code: %v; want one to succeed, one ErrConflict", errs)
	}
	if err := s.ConsoleSignedIn(ctx, "zoe.lead", 999); !errors.Is(err, ErrConflict) {
		t.Fatalf("an earlier step: %v; want ErrConflict", err)
	}
	if err := s.ConsoleSignedIn(ctx, "nobody", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an unknown account: %v; want ErrNotFound", err)
	}

	// Sessions end with a reset and with disabling.
	session := func(n byte) ConsoleSession {
		h := sha256.Sum256([]byte{n})
		return ConsoleSession{IDHash: h[:], Account: "zoe.lead", Created: now, Expires: now.Add(8 * time.Hour)}
	}
	for _, n := range []byte{1, 2} {
		if err := s.PutConsoleSession(ctx, session(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ResetConsoleAccount(ctx, "zoe.lead", []byte("new hash"), []byte("new secret"), now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsoleSession(ctx, session(1).IDHash, now, time.Hour); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a session after the reset: %v; want ErrNotFound", err)
	}
	got, _ = s.ConsoleAccount(ctx, "zoe.lead")
	if string(got.Password) != "new hash" || string(got.TOTP) != "new secret" || got.TOTPStep != 0 || !got.LockedUntil.IsZero() {
		t.Fatalf("after the reset: %+v", got)
	}
	if err := s.PutConsoleSession(ctx, session(3)); err != nil {
		t.Fatal(err)
	}
	if err := s.DisableConsoleAccount(ctx, "zoe.lead", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsoleSession(ctx, session(3).IDHash, now, time.Hour); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a session after disabling: %v; want ErrNotFound", err)
	}
	if got, _ := s.ConsoleAccount(ctx, "zoe.lead"); !got.Disabled.Equal(now) {
		t.Fatalf("disabled %v", got.Disabled)
	}
	for _, err := range []error{s.DisableConsoleAccount(ctx, "nobody", now), s.ResetConsoleAccount(ctx, "nobody", []byte("h"), []byte("t"), now)} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("an unknown account: %v; want ErrNotFound", err)
		}
	}
}

// TestConsoleSessions: a session lives while used within the idle time and until its end; an
// idle or ended one is gone; signing out ends it; malformed ones are refused.
func TestConsoleSessions(t *testing.T) { forEachStore(t, testConsoleSessions) }

func testConsoleSessions(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	if err := s.PutConsoleAccount(ctx, ConsoleAccount{Name: "ops", Role: RoleOperator, Password: []byte("h"), TOTP: []byte("t")}); err != nil {
		t.Fatal(err)
	}
	id := func(n byte) []byte { h := sha256.Sum256([]byte{n}); return h[:] }
	put := func(n byte, end time.Duration) {
		t.Helper()
		if err := s.PutConsoleSession(ctx, ConsoleSession{IDHash: id(n), Account: "ops", Created: now, Expires: now.Add(end)}); err != nil {
			t.Fatal(err)
		}
	}
	put(1, 8*time.Hour)
	put(2, 8*time.Hour)
	put(3, time.Hour)
	idle := 30 * time.Minute
	for _, at := range []time.Duration{20 * time.Minute, 40 * time.Minute, 65 * time.Minute} {
		got, err := s.ConsoleSession(ctx, id(1), now.Add(at), idle)
		if err != nil || got.Account != "ops" || !got.LastSeen.Equal(now.Add(at)) {
			t.Fatalf("session 1 used at +%v: %+v, %v", at, got, err)
		}
	}
	if _, err := s.ConsoleSession(ctx, id(2), now.Add(31*time.Minute), idle); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an idle session: %v; want ErrNotFound", err)
	}
	if _, err := s.ConsoleSession(ctx, id(2), now.Add(time.Minute), idle); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an idle session is gone once found idle: %v", err)
	}
	if _, err := s.ConsoleSession(ctx, id(3), now.Add(61*time.Minute), 2*time.Hour); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a session past its end: %v; want ErrNotFound", err)
	}
	if err := s.DeleteConsoleSession(ctx, id(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsoleSession(ctx, id(1), now.Add(66*time.Minute), idle); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a session after signing out: %v", err)
	}
	for _, bad := range []ConsoleSession{
		{IDHash: []byte("short"), Account: "ops", Created: now, Expires: now.Add(time.Hour)},
		{IDHash: id(9), Account: "Not A Name", Created: now, Expires: now.Add(time.Hour)},
		{IDHash: id(9), Account: "ops", Created: now, Expires: now.Add(-time.Hour)},
	} {
		if err := s.PutConsoleSession(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("session %+v: %v; want ErrInvalid", bad, err)
		}
	}
	if _, err := s.ConsoleSession(ctx, []byte("short"), now, idle); !errors.Is(err, ErrNotFound) {
		t.Errorf("a malformed hash: %v", err)
	}
}

// TestCustomerThreads: a customer's threads, newest first, at most limit; another customer's are
// not among them; a malformed address or limit is ErrInvalid.
func TestCustomerThreads(t *testing.T) { forEachStore(t, testCustomerThreads) }

func testCustomerThreads(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	var tokens []string
	for i, who := range []string{"alice@example.com", "bob@example.com", "alice@example.com", "alice@example.com"} {
		th, err := s.NewThread(ctx, who, "", "", "case "+string(rune('1'+i)))
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, th.Token)
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}
	got, err := s.CustomerThreads(ctx, "alice@example.com", 2)
	if err != nil || len(got) != 2 || got[0].Token != tokens[3] || got[1].Token != tokens[2] || got[0].Subject != "case 4" {
		t.Fatalf("alice's newest two threads: %+v, %v", got, err)
	}
	if got, err := s.CustomerThreads(ctx, "alice@example.com", 10); err != nil || len(got) != 3 {
		t.Fatalf("alice's threads: %d, %v; want 3", len(got), err)
	}
	if got, err := s.CustomerThreads(ctx, "carol@example.org", 10); err != nil || len(got) != 0 {
		t.Fatalf("an unknown customer: %+v, %v", got, err)
	}
	for _, bad := range []func() error{
		func() error { _, err := s.CustomerThreads(ctx, "not an address", 10); return err },
		func() error { _, err := s.CustomerThreads(ctx, "alice@example.com", 0); return err },
		func() error { _, err := s.CustomerThreads(ctx, "alice@example.com", 1000); return err },
	} {
		if err := bad(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%v; want ErrInvalid", err)
		}
	}
}
