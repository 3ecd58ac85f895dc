package quarantine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealpost/sealpost/store"
)

func openTest(t *testing.T) (*Quarantine, *store.SQLite, string) {
	t.Helper()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "sealpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := filepath.Join(t.TempDir(), "quarantine")
	q, err := Open(dir, st)
	if err != nil {
		t.Fatal(err)
	}
	return q, st, dir
}

var heldMsg = Message{From: "alice@example.com", To: []string{"support@bank.example"},
	Data: []byte("From: Alice <alice@example.com>\r\nSubject: new payee\r\n\r\nPlease add IBAN XX00.\r\n")}

// TestHoldKeepsTheMessageAsReceived: Hold writes the envelope and the bytes as received, indexes
// the entry it is given with a fresh queue-shaped ID, and Get gives both back.
func TestHoldKeepsTheMessageAsReceived(t *testing.T) {
	q, _, _ := openTest(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	id, err := q.Hold(ctx, heldMsg, store.Held{Received: at, From: "Alice <alice@example.com>", Reason: "unsigned", Verdict: "unsigned", ID: "ignored", Released: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 16 || id == "ignored" {
		t.Fatalf("held ID %q is not a fresh queue-shaped ID", id)
	}
	h, m, err := q.Get(ctx, id)
	if err != nil || m == nil {
		t.Fatalf("Get: %+v %v %v", h, m, err)
	}
	if h.ID != id || h.Ref != id || h.Released || h.Reason != "unsigned" || !h.Received.Equal(at) {
		t.Fatalf("index entry %+v", h)
	}
	if m.From != heldMsg.From || len(m.To) != 1 || m.To[0] != heldMsg.To[0] || !bytes.Equal(m.Data, heldMsg.Data) {
		t.Fatalf("held message %+v, want %+v", m, heldMsg)
	}
	list, err := q.List(ctx, false)
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("List: %+v, %v", list, err)
	}
}

// TestHoldFailureLeavesNothingHeld: when the index refuses the entry, the bytes already written
// are taken back, so a 451 never leaves a held file behind.
func TestHoldFailureLeavesNothingHeld(t *testing.T) {
	q, st, dir := openTest(t)
	st.Close() // every index call now fails
	_, err := q.Hold(context.Background(), heldMsg, store.Held{Received: time.Now()})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Hold with a closed index: %v, want ErrUnavailable", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.eml")); len(left) != 0 {
		t.Fatalf("held files left after a failed Hold: %v", left)
	}
}

// TestDeliverReleasedAtLeastOnce: only released messages are delivered; a failed delivery keeps
// the bytes for the next pass; a delivered one is removed and never delivered again.
func TestDeliverReleasedAtLeastOnce(t *testing.T) {
	q, _, dir := openTest(t)
	ctx := context.Background()
	a, err := q.Hold(ctx, heldMsg, store.Held{Received: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := q.Hold(ctx, heldMsg, store.Held{Received: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var delivered []string
	fail := true
	deliver := func(_ context.Context, h store.Held, m *Message) error {
		if fail {
			return errors.New("desk queue full")
		}
		if !bytes.Equal(m.Data, heldMsg.Data) {
			t.Errorf("delivered %q", m.Data)
		}
		delivered = append(delivered, h.ID)
		return nil
	}
	if n, err := q.DeliverReleased(ctx, deliver); n != 0 || err != nil {
		t.Fatalf("before release: %d, %v", n, err)
	}
	if err := q.Release(ctx, a, testDecision()); err != nil {
		t.Fatal(err)
	}
	if err := q.Release(ctx, a, testDecision()); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second release: %v, want store.ErrConflict", err)
	}
	if n, err := q.DeliverReleased(ctx, deliver); n != 0 || err == nil {
		t.Fatalf("failing delivery: %d, %v; want 0 and the error", n, err)
	}
	if _, m, _ := q.Get(ctx, a); m == nil {
		t.Fatal("a failed delivery removed the held bytes")
	}
	fail = false
	if n, err := q.DeliverReleased(ctx, deliver); n != 1 || err != nil {
		t.Fatalf("delivery: %d, %v", n, err)
	}
	if n, err := q.DeliverReleased(ctx, deliver); n != 0 || err != nil {
		t.Fatalf("second pass: %d, %v", n, err)
	}
	if len(delivered) != 1 || delivered[0] != a {
		t.Fatalf("delivered %v, want only %s (not %s, never released)", delivered, a, b)
	}
	if h, m, err := q.Get(ctx, a); err != nil || m != nil || !h.Released {
		t.Fatalf("after delivery: %+v %v %v; want released and no bytes", h, m, err)
	}
	if _, err := os.Stat(filepath.Join(dir, b+".eml")); err != nil {
		t.Fatalf("the unreleased message's bytes: %v", err)
	}
}

// TestGetUnknownID: an unknown ID is store.ErrNotFound; an ID that is a path never reaches the disk.
func TestGetUnknownID(t *testing.T) {
	q, _, _ := openTest(t)
	if _, _, err := q.Get(context.Background(), "AAAAAAAAAAAAAAAA"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown ID: %v", err)
	}
}

// testDecision is an operator's decision on a held message, with a stand-in evidence record.
func testDecision() store.Decision {
	return store.Decision{By: "cli:tester", Why: "the sender called the desk", At: time.Now(), Evidence: []byte(`{"kind":"action"}`)}
}
