package queue

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// TestPutWithID: a queue ID given with the message is the entry's; one NewID would not make, or
// one in use, is refused and nothing is queued.
func TestPutWithID(t *testing.T) {
	s := openSpool(t, t.TempDir(), &recordingHop{})
	id := NewID()
	m := testMessage("statements@bank.example", "a@example.com")
	m.ID = id
	got, err := s.Put(context.Background(), m)
	if err != nil || got != id {
		t.Fatalf("Put with ID %s = %s, %v", id, got, err)
	}
	if _, err := s.Put(context.Background(), m); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("the same ID again: %v", err)
	}
	m.ID = "../../etc/passwd"
	if _, err := s.Put(context.Background(), m); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("a malformed ID: %v", err)
	}
	if n := len(spoolFiles(t, s.qDir, "")); n != 1 {
		t.Errorf("%d entries queued; want 1", n)
	}
}

// TestOutcomes: each recipient's outcome reaches WithOutcomes with the next hop's code and text:
// delivered by a real SMTP sink (with its address and its 250 to DATA), refused for good (550),
// deferred (451).
func TestOutcomes(t *testing.T) {
	sk := newSink(t, nil, func(sk *sink) {
		sk.rcptReply = func(to string) error {
			switch {
			case strings.HasPrefix(to, "gone"):
				return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "no such user here")
			case strings.HasPrefix(to, "busy"):
				return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "try later")
			}
			return nil
		}
	})
	var mu sync.Mutex
	got := map[string]Outcome{}
	s := openSpool(t, t.TempDir(), newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSNone}), WithOutcomes(func(o Outcome) {
		mu.Lock()
		defer mu.Unlock()
		if _, seen := got[o.Recipient]; !seen {
			got[o.Recipient] = o
		}
	}))
	start(t, s)
	id, err := s.Put(context.Background(), testMessage("statements@bank.example", "ok@example.com", "gone@example.com", "busy@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	// The bounce's DSN to the sender has an outcome of its own, which may come before the last of
	// the three: wait for the three recipients, not for a count.
	waitFor(t, "three outcomes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		_, ok := got["ok@example.com"]
		_, gone := got["gone@example.com"]
		_, busy := got["busy@example.com"]
		return ok && gone && busy
	})
	mu.Lock()
	defer mu.Unlock()
	for rcpt, want := range map[string]Outcome{
		"ok@example.com":   {Result: OutcomeDelivered, Code: 250, Host: sk.Addr, Text: "OK"},
		"gone@example.com": {Result: OutcomeBounced, Code: 550, Enhanced: "5.1.1", Text: "no such user here"},
		"busy@example.com": {Result: OutcomeDeferred, Code: 451, Enhanced: "4.3.0", Text: "try later"},
	} {
		o := got[rcpt]
		if o.ID != id || o.Class != "statement" || o.Result != want.Result || o.Code != want.Code || o.Enhanced != want.Enhanced ||
			!strings.Contains(o.Text, want.Text) || o.Host != want.Host || o.Time.IsZero() {
			t.Errorf("%s: %+v; want %+v", rcpt, o, want)
		}
	}
}

// TestDeletedOutcomes: an operator's delete tells WithOutcomes that each recipient still pending
// will not get the message ("deleted"); a recipient delivered before is not reported again.
func TestDeletedOutcomes(t *testing.T) {
	sk := newSink(t, nil, func(sk *sink) {
		sk.rcptReply = func(to string) error {
			if strings.HasPrefix(to, "busy") {
				return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "try later")
			}
			return nil
		}
	})
	var mu sync.Mutex
	var got []Outcome
	s := openSpool(t, t.TempDir(), newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSNone}), WithOutcomes(func(o Outcome) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, o)
	}))
	start(t, s)
	id, err := s.Put(context.Background(), testMessage("statements@bank.example", "ok@example.com", "busy@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first attempt's outcomes", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	waitFor(t, "the entry back in the queue", func() bool { _, err := s.Get(id); return err == nil })
	if err := s.Delete(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deletion's outcome", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })
	mu.Lock()
	defer mu.Unlock()
	if o := got[2]; o.ID != id || o.Recipient != "busy@example.com" || o.Result != OutcomeDeleted || !strings.Contains(o.Text, "deleted") {
		t.Fatalf("after the delete: %+v", o)
	}
	for _, o := range got[:2] {
		if o.Result == OutcomeDeleted {
			t.Errorf("reported deleted before the delete: %+v", o)
		}
	}
}
