package queue

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// observed records what a spool reports to its Observer, one line per call.
type observed struct {
	mu     sync.Mutex
	calls  []string
	delays []time.Duration
}

func (o *observed) Delivered(class string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, "delivered "+class)
	o.delays = append(o.delays, d)
}

func (o *observed) Deferred(class, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, "deferred "+class+" "+reason)
}

func (o *observed) Bounced(class string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, "bounced "+class)
}

func (o *observed) Calls() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.calls)
}

func (o *observed) count(call string) int {
	n := 0
	for _, c := range o.Calls() {
		if c == call {
			n++
		}
	}
	return n
}

func TestObserverSeesEachRecipientsOutcome(t *testing.T) {
	tests := []struct {
		name  string
		reply func(to string) error
		// want: how many times each call is made once the entry and its DSN (if any) are done.
		want map[string]int
	}{
		{"Delivered", nil, map[string]int{"delivered statement": 2}},
		{"PermanentFailureBouncesAndTheDSNIsDelivered", func(to string) error {
			if to == "gone@b.example" {
				return &DeliveryError{Code: 550, Enhanced: "5.1.1", Message: "no such user gone@b.example"}
			}
			return nil
		}, map[string]int{"delivered statement": 1, "bounced statement": 1, "delivered dsn": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := &observed{}
			s := openSpool(t, t.TempDir(), &recordingHop{reply: tt.reply}, WithObserver(obs))
			id, err := s.Put(context.Background(), testMessage("s@bank.example", "ok@a.example", "gone@b.example"))
			if err != nil {
				t.Fatal(err)
			}
			start(t, s)
			waitFor(t, "entry done", gone(s, id))
			waitFor(t, "spool empty", func() bool { n, _ := s.Stats(); return n == 0 })
			for call, n := range tt.want {
				if got := obs.count(call); got != n {
					t.Errorf("%q reported %d times, want %d; all calls: %q", call, got, n, obs.Calls())
				}
			}
			if got, want := len(obs.Calls()), sum(tt.want); got != want {
				t.Errorf("%d calls, want %d: %q", got, want, obs.Calls())
			}
			for _, d := range obs.delays {
				if d < 0 || d > time.Minute {
					t.Errorf("enqueue→delivery %v", d)
				}
			}
		})
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func TestObserverSeesDeferralThenExpiry(t *testing.T) {
	obs := &observed{}
	clock := newFakeClock()
	hop := &recordingHop{reply: func(to string) error {
		if to == "plain@a.example" {
			return errors.New("connection reset") // not a DeliveryError: temporary, 4.0.0
		}
		return &DeliveryError{Temporary: true, Code: 452, Enhanced: "4.2.2", Message: "mailbox full"}
	}}
	s := openSpool(t, t.TempDir(), hop, WithClock(clock.Now), WithObserver(obs))
	m := testMessage("", "full@a.example", "plain@a.example") // null sender: no DSN to count
	m.Class = "otp"
	m.Expires = clock.Now().Add(3 * time.Minute)
	id, err := s.Put(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	waitFor(t, "first attempt", attempts(s, id, 1))
	if got, want := obs.Calls(), []string{"deferred otp 4.2.2", "deferred otp 4.0.0"}; !slices.Equal(got, want) {
		t.Fatalf("after the first attempt: %q, want %q", got, want)
	}
	clock.Set(m.Expires)
	waitFor(t, "expired entry removed", gone(s, id))
	if n := obs.count("bounced otp"); n != 2 {
		t.Fatalf("bounced %d times at expiry, want 2: %q", n, obs.Calls())
	}
}

func TestStats(t *testing.T) {
	clock := newFakeClock()
	s := openSpool(t, t.TempDir(), &recordingHop{}, WithClock(clock.Now))
	if n, oldest := s.Stats(); n != 0 || !oldest.IsZero() {
		t.Fatalf("empty spool: %d entries, oldest %v", n, oldest)
	}
	first := clock.Now()
	a, err := s.Put(context.Background(), testMessage("s@bank.example", "a@a.example"))
	if err != nil {
		t.Fatal(err)
	}
	clock.Set(first.Add(time.Hour))
	if _, err := s.Put(context.Background(), testMessage("s@bank.example", "b@a.example")); err != nil {
		t.Fatal(err)
	}
	if n, oldest := s.Stats(); n != 2 || !oldest.Equal(first) {
		t.Fatalf("got %d entries, oldest %v; want 2, %v", n, oldest, first)
	}
	if err := s.Delete(a); err != nil {
		t.Fatal(err)
	}
	if n, oldest := s.Stats(); n != 1 || !oldest.Equal(first.Add(time.Hour)) {
		t.Fatalf("after Delete: %d entries, oldest %v", n, oldest)
	}
}
