package queue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sealpost/sealpost/config"
)

// TestConcurrencyAdapts: pushback halves the limit (once a second at most, never below one),
// every delivery the hop takes adds one over the limit, up to the lane's workers; acquire waits at
// the limit and a release lets a waiter in.
func TestConcurrencyAdapts(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	c := newConcurrency(8, func() time.Time { return now })
	step := func(v hopVerdict, want int) {
		t.Helper()
		if !c.acquire(context.Background()) {
			t.Fatal("acquire failed")
		}
		if _, got := c.release(v); got != want {
			t.Fatalf("after %v: limit %d; want %d", v, got, want)
		}
	}
	step(hopTook, 8) // at most the workers
	step(hopPushedBack, 4)
	step(hopPushedBack, 4) // the same second: one signal
	now = now.Add(cutEvery)
	step(hopPushedBack, 2)
	now = now.Add(cutEvery)
	step(hopPushedBack, 1)
	now = now.Add(cutEvery)
	step(hopPushedBack, 1) // never below one
	step(hopSilent, 1)
	step(hopTook, 2) // 1 + 1/1
	step(hopTook, 2) // 2.5
	step(hopTook, 2) // 2.9
	step(hopTook, 3) // 3.24
	for range 40 {   // whatever it grows to on the way
		c.acquire(context.Background())
		c.release(hopTook)
	}
	if got := c.Limit(); got != 8 {
		t.Fatalf("after many deliveries: limit %d; want the workers, 8", got)
	}

	// At the limit, acquire waits until a worker leaves.
	now = now.Add(cutEvery)
	c = newConcurrency(1, func() time.Time { return now })
	if !c.acquire(context.Background()) {
		t.Fatal("acquire failed")
	}
	entered := make(chan bool)
	go func() { entered <- c.acquire(context.Background()) }()
	select {
	case <-entered:
		t.Fatal("a second worker got in at a limit of one")
	case <-time.After(50 * time.Millisecond):
	}
	c.release(hopTook)
	if !<-entered {
		t.Fatal("the waiting worker was not let in")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c.acquire(ctx) {
		t.Error("acquire at the limit with its context ended returned true")
	}
}

// TestVerdictOf: which answers are the hop pushing back, and which are about recipients.
func TestVerdictOf(t *testing.T) {
	temp := func(code int, enh string) *DeliveryError {
		return &DeliveryError{Temporary: true, Code: code, Enhanced: enh}
	}
	perm := &DeliveryError{Code: 550, Enhanced: "5.1.1"}
	for _, tc := range []struct {
		name string
		errs []*DeliveryError
		want hopVerdict
	}{
		{"nothing asked", nil, hopSilent},
		{"accepted", []*DeliveryError{nil}, hopTook},
		{"refused for good", []*DeliveryError{perm}, hopTook},
		{"mailbox busy", []*DeliveryError{temp(450, "4.2.1")}, hopTook},
		{"connection failed", []*DeliveryError{temp(0, "4.4.1"), temp(0, "4.4.1")}, hopPushedBack},
		{"421 too many connections", []*DeliveryError{temp(421, "4.7.0")}, hopPushedBack},
		{"451 local error", []*DeliveryError{temp(451, "4.3.0")}, hopPushedBack},
		{"rate limited", []*DeliveryError{temp(450, "4.7.1")}, hopPushedBack},
		{"one accepted, one pushed back", []*DeliveryError{nil, temp(421, "4.7.0")}, hopTook},
		{"one busy mailbox, one pushed back", []*DeliveryError{temp(450, "4.2.1"), temp(421, "4.7.0")}, hopTook},
	} {
		if got := verdictOf(tc.errs); got != tc.want {
			t.Errorf("%s: %v; want %v", tc.name, got, tc.want)
		}
	}
}

// TestLaneConcurrencyFollowsTheRelay: a real SMTP relay that answers 421 ("too many
// connections") makes the lane deliver one at a time; once it takes mail again, every worker
// delivers again, and every message arrives.
func TestLaneConcurrencyFollowsTheRelay(t *testing.T) {
	sk := newSink(t, nil, nil)
	busy := smtpErr(421, smtp.EnhancedCode{4, 7, 0}, "too many connections, slow down")
	sk.setRcptReply(func(string) error { return busy })
	cfg := spoolConfig(t.TempDir(), 4, 20*time.Millisecond)
	cfg.MinBackoff, cfg.MaxBackoff = config.Duration(time.Second), config.Duration(time.Second)
	sp, err := Open(cfg, newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSNone}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	var ids []string
	for i := range 12 {
		id, err := sp.Put(context.Background(), testMessage("s@bank.example", fmt.Sprintf("c%d@c.example", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	go sp.Start(context.Background())
	limit := func() int { return sp.DeliveryConcurrency()[0].Limit }
	waitFor(t, "the lane to deliver one at a time", func() bool { return limit() == 1 })
	sk.setRcptReply(nil)
	waitFor(t, "every message delivered", func() bool { return len(sk.Messages()) == len(ids) })
	if got := sp.DeliveryConcurrency()[0]; got.Max != 4 || got.Limit < 2 {
		t.Errorf("after the relay took mail again: %+v; want the limit growing back toward 4", got)
	}
}
