package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentCaseVariants: two handles (processes, nodes) registering one
// customer's key in two spellings at once, and recording their capabilities,
// still store one spelling: one registration row, one capabilities row.
func TestConcurrentCaseVariants(t *testing.T) { forEachStore(t, testConcurrentCaseVariants) }

func testConcurrentCaseVariants(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	handles := []contract{s, reopen(t)}
	const rounds = 20
	for i := range rounds {
		addrs := []string{fmt.Sprintf("user%d@example.com", i), fmt.Sprintf("USER%d@example.com", i)}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for h := range handles {
			wg.Go(func() {
				errs[h] = handles[h].Register(ctx, Registration{Address: addrs[h], Method: MethodPGP, Fingerprint: fpB})
			})
			wg.Go(func() {
				errs[2+h] = handles[h].SetCapabilities(ctx, Capabilities{Address: addrs[h], SMIMEGCM: true})
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	if n := countRows(t, s, "registrations"); n != rounds {
		t.Errorf("%d registrations; want %d (one per customer)", n, rounds)
	}
	if n := countRows(t, s, "capabilities"); n != rounds {
		t.Errorf("%d capabilities rows; want %d (one per customer)", n, rounds)
	}
}

// TestReleaseRace: of two handles releasing one held message at once, one
// succeeds and the other gets ErrConflict.
func TestReleaseRace(t *testing.T) { forEachStore(t, testReleaseRace) }

func testReleaseRace(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	handles := []contract{s, reopen(t)}
	for i := range 20 {
		id := fmt.Sprintf("h%d", i)
		if err := s.Hold(ctx, Held{ID: id, Ref: "r"}); err != nil {
			t.Fatal(err)
		}
		errs := make([]error, len(handles))
		var wg sync.WaitGroup
		for h := range handles {
			wg.Go(func() { errs[h] = handles[h].Release(ctx, id, testDecision()) })
		}
		wg.Wait()
		ok, conflict := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrConflict):
				conflict++
			default:
				t.Errorf("Release(%s): %v", id, err)
			}
		}
		if ok != 1 || conflict != 1 {
			t.Errorf("Release(%s) twice at once: %d successes, %d conflicts; want 1, 1", id, ok, conflict)
		}
	}
}

// TestArbitraryBytes: strings from mail round-trip byte for byte, invalid
// UTF-8 and NUL included (held mail is often malformed).
func TestArbitraryBytes(t *testing.T) { forEachStore(t, testArbitraryBytes) }

func testArbitraryBytes(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	const odd = "\xff\xfe\x00Ä\x80"
	h := Held{ID: "id" + odd, From: "From: " + odd, Reason: odd, Verdict: odd, Ref: "spool/" + odd}
	if err := s.Hold(ctx, h); err != nil {
		t.Fatal(err)
	}
	if got, err := s.HeldGet(ctx, h.ID); err != nil || got.ID != h.ID || got.From != h.From || got.Reason != h.Reason || got.Verdict != h.Verdict || got.Ref != h.Ref {
		t.Errorf("HeldGet = %#v, %v; want %#v", got, err, h)
	}
	th, err := s.NewThread(ctx, "c\xff@example.com", "", "", "Subject "+odd)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Thread(ctx, th.Token); err != nil || got != th {
		t.Errorf("Thread = %#v, %v; want %#v", got, err, th)
	}
	m := ThreadMessage{Token: th.Token, MessageID: "<" + odd + "@client>", Inbound: true, Verdict: odd}
	if err := s.AddMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMessage(ctx, m); err != nil {
		t.Errorf("re-AddMessage: %v", err)
	}
	if got, err := s.ThreadForMessageIDs(ctx, []string{m.MessageID}); err != nil || got.Token != th.Token {
		t.Errorf("ThreadForMessageIDs = %+v, %v", got, err)
	}
	if msgs, err := s.Messages(ctx, th.Token); err != nil || len(msgs) != 1 || msgs[0].MessageID != m.MessageID || msgs[0].Verdict != m.Verdict {
		t.Errorf("Messages = %#v, %v", msgs, err)
	}
	if _, err := s.Thread(ctx, odd); !errors.Is(err, ErrNotFound) {
		t.Errorf("Thread(%q) = %v; want ErrNotFound", odd, err)
	}
	if err := s.Release(ctx, odd, testDecision()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Release(%q) = %v; want ErrNotFound", odd, err)
	}
}

// heldBlobs is what both stores keep of held messages' bytes (quarantine.Blobs).
type heldBlobs interface {
	PutHeld(ctx context.Context, id string, data []byte) error
	GetHeld(ctx context.Context, id string) ([]byte, error)
	RemoveHeld(ctx context.Context, id string) error
}

var (
	_ heldBlobs = (*SQLite)(nil)
	_ heldBlobs = (*Postgres)(nil)
)

// TestHeldBlobs: held bytes round-trip byte for byte (NUL and invalid UTF-8
// included) and are seen by another handle (another node); a second put under
// one ID is ErrConflict and keeps the first bytes; removing them is durable and
// removing them again is not an error; an empty ID is ErrInvalid.
func TestHeldBlobs(t *testing.T) { forEachStore(t, testHeldBlobs) }

func testHeldBlobs(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	bs, other := s.(heldBlobs), reopen(t).(heldBlobs)
	data := []byte("sealpost-held-v2\r\n\x00\xff\xfe sealed bytes")
	if _, err := bs.GetHeld(ctx, "h1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetHeld before PutHeld: %v; want ErrNotFound", err)
	}
	if err := bs.PutHeld(ctx, "h1", data); err != nil {
		t.Fatal(err)
	}
	if err := other.PutHeld(ctx, "h1", []byte("other")); !errors.Is(err, ErrConflict) {
		t.Fatalf("second PutHeld: %v; want ErrConflict", err)
	}
	if got, err := other.GetHeld(ctx, "h1"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetHeld from another handle = %q, %v; want %q", got, err, data)
	}
	if err := bs.PutHeld(ctx, "h2", nil); err != nil {
		t.Fatalf("PutHeld of no bytes: %v", err)
	}
	if got, err := bs.GetHeld(ctx, "h2"); err != nil || len(got) != 0 {
		t.Fatalf("GetHeld of no bytes = %q, %v", got, err)
	}
	if err := bs.PutHeld(ctx, "", data); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PutHeld with an empty ID: %v; want ErrInvalid", err)
	}
	if err := other.RemoveHeld(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.GetHeld(ctx, "h1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetHeld after RemoveHeld: %v; want ErrNotFound", err)
	}
	if err := bs.RemoveHeld(ctx, "h1"); err != nil {
		t.Fatalf("RemoveHeld twice: %v", err)
	}
	if err := bs.RemoveHeld(ctx, "never"); err != nil {
		t.Fatalf("RemoveHeld of an unknown ID: %v", err)
	}
	if got, err := bs.GetHeld(ctx, "h2"); err != nil || got == nil {
		t.Fatalf("removing h1 touched h2: %q, %v", got, err)
	}
}

// TestHeldBlobsLarge: a held message of about 10 MB round-trips whole.
func TestHeldBlobsLarge(t *testing.T) { forEachStore(t, testHeldBlobsLarge) }

func testHeldBlobsLarge(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	data := make([]byte, 10<<20+7)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := s.(heldBlobs).PutHeld(ctx, "big", data); err != nil {
		t.Fatal(err)
	}
	got, err := reopen(t).(heldBlobs).GetHeld(ctx, "big")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetHeld of %d bytes: %d bytes, %v", len(data), len(got), err)
	}
}

// TestRecipientKeys: the directory stores, replaces (keeping Added), lists
// by method and fingerprint, and removes keys, seen by another handle;
// fingerprints are found in any spelling; bad methods, fingerprints and
// sizes are ErrInvalid, absent keys ErrNotFound.
func TestRecipientKeys(t *testing.T) { forEachStore(t, testRecipientKeys) }

func testRecipientKeys(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	other := reopen(t)
	pem := []byte("-----BEGIN CERTIFICATE-----\nMIIB\x00\xff\n-----END CERTIFICATE-----\n")
	keys := []RecipientKey{
		{Method: MethodSMIME, Fingerprint: fpB, Data: pem},
		{Method: MethodPGP, Fingerprint: fpA, Data: []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")},
		{Method: MethodSMIME, Fingerprint: strings.ToLower(fpA[:40]), Data: bytes.Repeat([]byte{'k'}, MaxRecipientKey)},
	}
	before := time.Now()
	for _, k := range keys {
		if err := s.PutRecipientKey(ctx, k); err != nil {
			t.Fatalf("PutRecipientKey(%s %s): %v", k.Method, k.Fingerprint, err)
		}
	}
	list, err := other.RecipientKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := [][2]string{{MethodPGP, fpA}, {MethodSMIME, fpB}, {MethodSMIME, fpA[:40]}}
	if len(list) != len(wantOrder) {
		t.Fatalf("RecipientKeys = %d keys; want %d", len(list), len(wantOrder))
	}
	for i, k := range list {
		if [2]string{k.Method, k.Fingerprint} != wantOrder[i] {
			t.Errorf("RecipientKeys[%d] = %s %s; want %v", i, k.Method, k.Fingerprint, wantOrder[i])
		}
		if k.Added.Before(before.Add(-time.Second)) || len(k.Data) == 0 {
			t.Errorf("RecipientKeys[%d]: Added %v, %d bytes", i, k.Added, len(k.Data))
		}
	}
	got, err := other.RecipientKey(ctx, MethodSMIME, "  "+colons(strings.ToLower(fpB)))
	if err != nil || !bytes.Equal(got.Data, pem) || got.Fingerprint != fpB {
		t.Fatalf("RecipientKey by a pasted fingerprint = %+v, %v", got, err)
	}
	if err := other.PutRecipientKey(ctx, RecipientKey{Method: MethodSMIME, Fingerprint: fpB, Data: []byte("renewed"), Added: before.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	renewed, err := s.RecipientKey(ctx, MethodSMIME, fpB)
	if err != nil || string(renewed.Data) != "renewed" || !renewed.Added.Equal(got.Added) {
		t.Errorf("after replacing: %+v, %v; want the new data and Added %v", renewed, err, got.Added)
	}
	if _, err := s.RecipientKey(ctx, MethodPGP, fpB); !errors.Is(err, ErrNotFound) {
		t.Errorf("RecipientKey of another method's fingerprint: %v; want ErrNotFound", err)
	}
	if err := other.RemoveRecipientKey(ctx, MethodSMIME, strings.ToLower(fpB)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecipientKey(ctx, MethodSMIME, fpB); !errors.Is(err, ErrNotFound) {
		t.Errorf("RecipientKey after removing: %v; want ErrNotFound", err)
	}
	if err := s.RemoveRecipientKey(ctx, MethodSMIME, fpB); !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoveRecipientKey twice: %v; want ErrNotFound", err)
	}
	if list, err := s.RecipientKeys(ctx); err != nil || len(list) != 2 {
		t.Errorf("RecipientKeys after removing one = %d keys, %v; want 2", len(list), err)
	}
	testRecipientKeysInvalid(t, s)
}

// colons writes a hex fingerprint as people paste it: pairs with colons.
func colons(fp string) string {
	var pairs []string
	for i := 0; i+2 <= len(fp); i += 2 {
		pairs = append(pairs, fp[i:i+2])
	}
	return strings.Join(pairs, ":")
}

func testRecipientKeysInvalid(t *testing.T, s contract) {
	ctx := context.Background()
	data := []byte("key")
	bad := map[string]RecipientKey{
		"unknown method":     {Method: "x509", Fingerprint: fpA, Data: data},
		"no method":          {Fingerprint: fpA, Data: data},
		"not hex":            {Method: MethodPGP, Fingerprint: "XYZ", Data: data},
		"empty fingerprint":  {Method: MethodPGP, Fingerprint: " : ", Data: data},
		"129 digits":         {Method: MethodPGP, Fingerprint: strings.Repeat("A", 129), Data: data},
		"no data":            {Method: MethodPGP, Fingerprint: fpA},
		"one byte too large": {Method: MethodPGP, Fingerprint: fpB, Data: make([]byte, MaxRecipientKey+1)},
	}
	for name, k := range bad {
		if err := s.PutRecipientKey(ctx, k); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutRecipientKey with %s: %v; want ErrInvalid", name, err)
		}
	}
	for _, id := range [][2]string{{"x509", fpA}, {"", fpA}, {MethodPGP, "XYZ"}, {MethodPGP, ""}, {MethodSMIME, strings.Repeat("A", 129)}} {
		if _, err := s.RecipientKey(ctx, id[0], id[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("RecipientKey(%q, %q): %v; want ErrInvalid", id[0], id[1], err)
		}
		if err := s.RemoveRecipientKey(ctx, id[0], id[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("RemoveRecipientKey(%q, %q): %v; want ErrInvalid", id[0], id[1], err)
		}
	}
	if _, err := s.RecipientKey(ctx, MethodPGP, fpB); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused key was stored: %v", err)
	}
}

// TestChangeVersions: each write bumps its topic's version and no other's,
// in a way every handle reads; writes that change nothing, and failed ones,
// bump nothing.
func TestChangeVersions(t *testing.T) { forEachStore(t, testChangeVersions) }

func testChangeVersions(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	other := reopen(t)
	want := map[string]int64{TopicRegistrations: 0, TopicDirectory: 0, TopicHeld: 0, TopicTokens: 0}
	check := func(step string) {
		t.Helper()
		if got, err := other.ChangeVersions(ctx); err != nil || !maps.Equal(got, want) {
			t.Errorf("after %s: ChangeVersions = %v, %v; want %v", step, got, err, want)
		}
	}
	check("nothing")
	key := RecipientKey{Method: MethodPGP, Fingerprint: fpA, Data: []byte("k")}
	steps := []struct {
		name  string
		topic string // "" when the step changes nothing
		do    func() error
	}{
		{"Register", TopicRegistrations, func() error {
			return s.Register(ctx, Registration{Address: "a@b.c", Method: MethodPGP, Fingerprint: fpA})
		}},
		{"Register again", "", func() error {
			return s.Register(ctx, Registration{Address: "A@b.c", Method: MethodPGP, Fingerprint: fpA})
		}},
		{"Unregister", TopicRegistrations, func() error { return s.Unregister(ctx, "a@b.c", fpA) }},
		{"Unregister unknown", "", func() error { _ = s.Unregister(ctx, "a@b.c", fpA); return nil }},
		{"PutRecipientKey", TopicDirectory, func() error { return s.PutRecipientKey(ctx, key) }},
		{"PutRecipientKey same", "", func() error { return s.PutRecipientKey(ctx, key) }},
		{"PutRecipientKey new data", TopicDirectory, func() error { key.Data = []byte("k2"); return s.PutRecipientKey(ctx, key) }},
		{"RemoveRecipientKey", TopicDirectory, func() error { return s.RemoveRecipientKey(ctx, MethodPGP, fpA) }},
		{"RemoveRecipientKey unknown", "", func() error { _ = s.RemoveRecipientKey(ctx, MethodPGP, fpA); return nil }},
		{"Hold", TopicHeld, func() error { return s.Hold(ctx, Held{ID: "h1", Ref: "r"}) }},
		{"Hold duplicate", "", func() error { _ = s.Hold(ctx, Held{ID: "h1", Ref: "r"}); return nil }},
		{"Release", TopicHeld, func() error { return s.Release(ctx, "h1", testDecision()) }},
		{"Release again", "", func() error { _ = s.Release(ctx, "h1", testDecision()); return nil }},
		{"ClaimReleased", "", func() error { _, err := s.ClaimReleased(ctx, "n1", time.Hour, 5); return err }},
		{"MarkDelivered", "", func() error { return s.MarkDelivered(ctx, "h1") }},
		{"NewThread", "", func() error { _, err := s.NewThread(ctx, "a@b.c", "", "", "s"); return err }},
		{"SetCapabilities", "", func() error { return s.SetCapabilities(ctx, Capabilities{Address: "a@b.c"}) }},
		{"PutAPIToken", TopicTokens, func() error { return s.PutAPIToken(ctx, testToken(1)) }},
		{"PutAPIToken taken", "", func() error { _ = s.PutAPIToken(ctx, testToken(1)); return nil }},
		{"RevokeAPIToken", TopicTokens, func() error { return s.RevokeAPIToken(ctx, tokenID(1), time.Time{}) }},
		{"RevokeAPIToken again", "", func() error { _ = s.RevokeAPIToken(ctx, tokenID(1), time.Time{}); return nil }},
		{"AppendAudit", "", func() error { _, err := s.AppendAudit(ctx, AuditRecord{Actor: "a", Action: "b"}); return err }},
		{"PutIssuedCert", "", func() error { return s.PutIssuedCert(ctx, testCert(1, "a@b.c")) }},
		{"PutMailboxItem", "", func() error { return s.PutMailboxItem(ctx, testItem("m", "a@b.c", 0)) }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.topic != "" {
			want[st.topic]++
		}
		check(st.name)
	}
}

// watchEvents runs s.Watch (without a baseline) until the end of the test
// and returns the topics it reports.
func watchEvents(t *testing.T, s contract, poll time.Duration) <-chan string {
	return watchEventsSince(t, s, poll, nil)
}

// watchEventsSince is watchEvents with since as Watch's baseline.
func watchEventsSince(t *testing.T, s contract, poll time.Duration, since map[string]int64) <-chan string {
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan string, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, poll, since, func(topic string) {
			select {
			case events <- topic:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Watch did not return when its context ended")
		}
	})
	return events
}

// awaitTopic writes through write every 50 ms until events reports topic
// (a write before Watch has its baseline, or LISTENs, is not reported).
func awaitTopic(t *testing.T, events <-chan string, topic string, write func(i int) error) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		if err := write(i); err != nil {
			t.Fatalf("write for %s: %v", topic, err)
		}
		for waiting := true; waiting; {
			select {
			case got := <-events:
				if got == topic {
					return
				}
			case <-tick.C:
				waiting = false
			case <-deadline:
				t.Fatalf("Watch did not report %s", topic)
			}
		}
	}
}

// watchPoll is the poll for Watch in the tests: on PostgreSQL an hour, so
// that only NOTIFY can wake it within the test's wait.
func watchPoll(s contract) time.Duration {
	if _, ok := s.(*Postgres); ok {
		return time.Hour
	}
	return 20 * time.Millisecond
}

// TestWatch: Watch reports each topic written through another handle (on
// PostgreSQL, another node: woken by NOTIFY alone), and returns when its
// context ends.
func TestWatch(t *testing.T) { forEachStore(t, testWatch) }

func testWatch(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	other := reopen(t)
	events := watchEvents(t, s, watchPoll(s))
	awaitTopic(t, events, TopicRegistrations, func(i int) error {
		return other.Register(ctx, Registration{Address: fmt.Sprintf("w%d@example.com", i), Method: MethodPGP, Fingerprint: fpA})
	})
	awaitTopic(t, events, TopicDirectory, func(i int) error {
		return other.PutRecipientKey(ctx, RecipientKey{Method: MethodSMIME, Fingerprint: fpB, Data: fmt.Appendf(nil, "cert %d", i)})
	})
	awaitTopic(t, events, TopicHeld, func(i int) error {
		id := fmt.Sprintf("w%d", i)
		if err := other.Hold(ctx, Held{ID: id, Ref: "r"}); err != nil {
			return err
		}
		return other.Release(ctx, id, testDecision())
	})
	awaitTopic(t, events, TopicTokens, func(i int) error {
		return other.PutAPIToken(ctx, testToken(i))
	})
}

// TestWatchFromBaseline: a write made after the baseline was read but
// before Watch started — a key learned while serve was still starting — is
// reported at Watch's first read, and a topic nobody wrote is not. (Without
// a baseline such a write was taken into Watch's own first read, unseen:
// the directory was never reloaded for it.)
func TestWatchFromBaseline(t *testing.T) { forEachStore(t, testWatchFromBaseline) }

func testWatchFromBaseline(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	since, err := s.ChangeVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := reopen(t).PutRecipientKey(ctx, RecipientKey{Method: MethodSMIME, Fingerprint: fpB, Data: []byte("cert")}); err != nil {
		t.Fatal(err)
	}
	events := watchEventsSince(t, s, time.Hour, since) // no poll or NOTIFY: the first read alone
	select {
	case got := <-events:
		if got != TopicDirectory {
			t.Fatalf("Watch reported %s first; want %s", got, TopicDirectory)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("Watch did not report the %s write made before it started", TopicDirectory)
	}
	select {
	case got := <-events:
		t.Errorf("Watch also reported %s, which nobody wrote", got)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestClaimReleased: claims go to released, undelivered messages, oldest
// first, up to the limit; a live claim keeps the message from other
// claimers but not from its owner; a delivered message is claimed by no one.
func TestClaimReleased(t *testing.T) { forEachStore(t, testClaimReleased) }

func testClaimReleased(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	other := reopen(t)
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for i, id := range []string{"h3", "h1", "h2", "h0"} {
		// Received order h0 < h1 < h2 < h3, inserted out of it.
		n := map[string]int{"h0": 0, "h1": 1, "h2": 2, "h3": 3}[id]
		if err := s.Hold(ctx, Held{ID: id, Received: at.Add(time.Duration(n) * time.Minute), Ref: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"h3", "h1", "h2"} { // h0 stays held
		if err := s.Release(ctx, id, testDecision()); err != nil {
			t.Fatal(err)
		}
	}
	claim := func(s contract, owner string, limit int, want ...string) {
		t.Helper()
		got, err := s.ClaimReleased(ctx, owner, time.Hour, limit)
		if err != nil {
			t.Fatalf("ClaimReleased(%s, %d): %v", owner, limit, err)
		}
		if ids := heldIDs(got); !slices.Equal(ids, want) {
			t.Errorf("ClaimReleased(%s, %d) = %v; want %v", owner, limit, ids, want)
		}
		for _, h := range got {
			if !h.Released || h.Delivered {
				t.Errorf("claimed %+v", h)
			}
		}
	}
	claim(s, "node-a", 2, "h1", "h2")
	claim(other, "node-b", 10, "h3")
	claim(other, "node-b", 10, "h3")
	claim(s, "node-a", 10, "h1", "h2")
	claim(s, "node-c", 10)
	if err := other.MarkDelivered(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	claim(s, "node-a", 10, "h2")
	if h, err := other.HeldGet(ctx, "h1"); err != nil || !h.Delivered || !h.Released {
		t.Errorf("HeldGet of a delivered message = %+v, %v", h, err)
	}
	if h, err := other.HeldGet(ctx, "h2"); err != nil || h.Delivered {
		t.Errorf("HeldGet of a claimed message = %+v, %v", h, err)
	}
	if list, err := s.HeldList(ctx, true); err != nil || len(list) != 4 || !list[1].Delivered || list[2].Delivered {
		t.Errorf("HeldList = %+v, %v; want h1 delivered", list, err)
	}
	invalid := []struct {
		owner string
		lease time.Duration
		limit int
	}{{"", time.Hour, 1}, {"n", 0, 1}, {"n", -time.Second, 1}, {"n", time.Hour, 0}, {"n", time.Hour, -1}}
	for _, c := range invalid {
		if _, err := s.ClaimReleased(ctx, c.owner, c.lease, c.limit); !errors.Is(err, ErrInvalid) {
			t.Errorf("ClaimReleased(%q, %v, %d): %v; want ErrInvalid", c.owner, c.lease, c.limit, err)
		}
	}
	if err := s.Hold(ctx, Held{ID: "bad", Delivered: true}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Hold delivered but not released: %v; want ErrInvalid", err)
	}
}

func heldIDs(hs []Held) []string {
	ids := []string{}
	for _, h := range hs {
		ids = append(ids, h.ID)
	}
	return ids
}

// TestClaimExpires: a message whose claim lapsed (its owner died) is
// claimed by another node.
func TestClaimExpires(t *testing.T) { forEachStore(t, testClaimExpires) }

func testClaimExpires(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	other := reopen(t)
	if err := s.Hold(ctx, Held{ID: "h1", Ref: "r", Released: true}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClaimReleased(ctx, "dying", time.Hour, 1); err != nil || len(got) != 1 {
		t.Fatalf("first claim = %v, %v", got, err)
	}
	if got, err := other.ClaimReleased(ctx, "survivor", time.Hour, 1); err != nil || len(got) != 0 {
		t.Fatalf("claim during a live lease = %v, %v; want none", got, err)
	}
	// The owner renews its claim for a millisecond, then dies.
	if got, err := s.ClaimReleased(ctx, "dying", time.Millisecond, 1); err != nil || len(got) != 1 {
		t.Fatalf("renewed claim = %v, %v", got, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := other.ClaimReleased(ctx, "survivor", time.Hour, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 && got[0].ID == "h1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lapsed claim was never taken over")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got, err := s.ClaimReleased(ctx, "dying", time.Hour, 1); err != nil || len(got) != 0 {
		t.Errorf("the old owner claimed it back during the new lease: %v, %v", got, err)
	}
}

// TestMarkDelivered: unknown is ErrNotFound, not released ErrConflict,
// twice is fine; a delivered message is no longer claimed.
func TestMarkDelivered(t *testing.T) { forEachStore(t, testMarkDelivered) }

func testMarkDelivered(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	if err := s.MarkDelivered(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkDelivered unknown: %v; want ErrNotFound", err)
	}
	if err := s.Hold(ctx, Held{ID: "h1", Ref: "r"}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(ctx, "h1"); !errors.Is(err, ErrConflict) {
		t.Errorf("MarkDelivered of a held message: %v; want ErrConflict", err)
	}
	if h, err := s.HeldGet(ctx, "h1"); err != nil || h.Delivered {
		t.Errorf("refused MarkDelivered changed %+v, %v", h, err)
	}
	if err := s.Release(ctx, "h1", testDecision()); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClaimReleased(ctx, "n", time.Hour, 1); err != nil || len(got) != 1 {
		t.Fatalf("ClaimReleased = %v, %v", got, err)
	}
	for range 2 {
		if err := s.MarkDelivered(ctx, "h1"); err != nil {
			t.Errorf("MarkDelivered: %v", err)
		}
	}
	if got, err := s.ClaimReleased(ctx, "n", time.Hour, 1); err != nil || len(got) != 0 {
		t.Errorf("ClaimReleased of a delivered message = %v, %v", got, err)
	}
}

// TestConcurrentClaims: claimers on two handles (nodes), several on each,
// claiming at once round after round, never get the same message, and
// deliver every message once.
func TestConcurrentClaims(t *testing.T) { forEachStore(t, testConcurrentClaims) }

func testConcurrentClaims(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	handles := []contract{s, reopen(t)}
	const messages, claimers, limit = 120, 6, 4
	at := time.Now()
	for i := range messages {
		if err := s.Hold(ctx, Held{ID: fmt.Sprintf("h%03d", i), Received: at.Add(time.Duration(i)), Ref: "r", Released: true}); err != nil {
			t.Fatal(err)
		}
	}
	delivered := map[string]string{}
	for round := 0; len(delivered) < messages; round++ {
		if round > messages {
			t.Fatalf("%d of %d messages delivered after %d rounds", len(delivered), messages, round)
		}
		got := make([][]Held, claimers)
		errs := make([]error, claimers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for c := range claimers {
			wg.Go(func() {
				<-start
				got[c], errs[c] = handles[c%len(handles)].ClaimReleased(ctx, fmt.Sprintf("node%d-worker%d", c%len(handles), c), time.Hour, limit)
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		for c, hs := range got {
			for _, h := range hs {
				if prev, dup := delivered[h.ID]; dup {
					t.Fatalf("round %d: %s claimed by worker %d and %s", round, h.ID, c, prev)
				}
				delivered[h.ID] = fmt.Sprint("worker ", c)
				if err := handles[c%len(handles)].MarkDelivered(ctx, h.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}
