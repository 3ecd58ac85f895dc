package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
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
			wg.Go(func() { errs[h] = handles[h].Release(ctx, id) })
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
	if err := s.Release(ctx, odd); !errors.Is(err, ErrNotFound) {
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
