package queue

import "time"

// Observer is told the outcome of each recipient's delivery attempt, for metrics. Its methods are
// called from the delivery workers, so they must be safe for concurrent use and return quickly;
// they never see addresses or message content.
type Observer interface {
	// Delivered: one recipient accepted by the next hop; d is the time from Put to delivery.
	Delivered(class string, d time.Duration)
	// Deferred: one recipient failed temporarily and will be retried. reason is the RFC 3463
	// status code ("4.4.1"), which has few values, never the reply text.
	Deferred(class, reason string)
	// Bounced: one recipient failed for good (a permanent failure, or expiry).
	Bounced(class string)
}

// WithObserver reports delivery outcomes to o (default, and with nil: none).
func WithObserver(o Observer) Option {
	return func(opts *options) {
		if o != nil {
			opts.observer = o
		}
	}
}

// nopObserver is the Observer of a spool opened without one.
type nopObserver struct{}

func (nopObserver) Delivered(string, time.Duration) {}
func (nopObserver) Deferred(string, string)         {}
func (nopObserver) Bounced(string)                  {}

// Stats returns how many entries the spool holds and when the oldest of them was queued (zero
// when there are none). It is cheap enough to call on every metrics scrape: no copy, no sort.
func (s *Spool) Stats() (depth int, oldest time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if e.deleted {
			continue
		}
		depth++
		if oldest.IsZero() || e.meta.Created.Before(oldest) {
			oldest = e.meta.Created
		}
	}
	return depth, oldest
}

// Outcome is one recipient's delivery attempt, with the address and the next hop's answer: what
// the evidence log records (never the message).
type Outcome struct {
	ID        string
	Class     string
	Recipient string
	Result    string // delivered, deferred, bounced, deleted
	Code      int    // the next hop's reply code (a ReplyingHop's 250 when delivered); 0 when none
	Enhanced  string
	Text      string // the reply text or the local reason (bounded)
	Host      string // the next hop that accepted it (a ReplyingHop's), when delivered
	Time      time.Time
}

// Outcome results.
const (
	OutcomeDelivered = "delivered"
	OutcomeDeferred  = "deferred"
	OutcomeBounced   = "bounced"
	OutcomeDeleted   = "deleted" // an operator deleted the entry before this recipient had it
)

// WithOutcomes calls f with every recipient's delivery outcome, from the delivery workers (f
// must be safe for concurrent use; the entry's state is written after it returns).
func WithOutcomes(f func(Outcome)) Option {
	return func(opts *options) { opts.outcomes = f }
}
