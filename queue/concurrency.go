package queue

import (
	"context"
	"strings"
	"sync"
	"time"
)

// concurrency is a lane's delivery concurrency, adapted to its next hop: up to the lane's
// workers deliver at once while the hop takes mail; when it pushes back (a whole attempt deferred
// by the connection, a 421, a network, system or policy status: a relay at its limit), the lane
// halves how many may (down to one), at most once a second, and grows back by one for every
// limit deliveries the hop takes (additive increase, multiplicative decrease, as TCP does), so
// that a struggling relay is not hammered by every worker at once and a healthy one gets them all.
type concurrency struct {
	workers int // the most at once

	mu      sync.Mutex
	limit   float64 // between 1 and workers
	active  int
	lastCut time.Time
	wake    chan struct{} // closed when a worker leaves or the limit grows
	now     func() time.Time
}

func newConcurrency(workers int, now func() time.Time) *concurrency {
	return &concurrency{workers: workers, limit: float64(workers), wake: make(chan struct{}), now: now}
}

// cutEvery is how often pushback may halve the limit: the attempts under way when the hop began
// to push back all fail together, and count as one signal.
const cutEvery = time.Second

// acquire waits until fewer than the limit deliver, and counts the caller in; false when ctx
// ended first.
func (c *concurrency) acquire(ctx context.Context) bool {
	for {
		c.mu.Lock()
		if c.active < int(c.limit) {
			c.active++
			c.mu.Unlock()
			return true
		}
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return false
		}
	}
}

// release counts the caller out, adapting the limit to what the attempt found; it returns the
// limit before and after.
func (c *concurrency) release(v hopVerdict) (from, to int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	from = int(c.limit)
	c.active--
	switch v {
	case hopTook:
		c.limit = min(float64(c.workers), c.limit+1/c.limit)
	case hopPushedBack:
		if now := c.now(); now.Sub(c.lastCut) >= cutEvery {
			c.limit, c.lastCut = max(1, c.limit/2), now
		}
	}
	close(c.wake)
	c.wake = make(chan struct{})
	return from, int(c.limit)
}

// Limit is how many may deliver at once now.
func (c *concurrency) Limit() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.limit)
}

// hopVerdict is what an attempt says about the next hop.
type hopVerdict int

const (
	hopSilent     hopVerdict = iota // nothing about the hop (expired, damaged, nothing pending)
	hopTook                         // it answered for a recipient: accepted, or refused for good
	hopPushedBack                   // every recipient deferred for a reason of the hop's, not theirs
)

// verdictOf reads the hop's answers to one attempt.
func verdictOf(errs []*DeliveryError) hopVerdict {
	if len(errs) == 0 {
		return hopSilent
	}
	for _, de := range errs {
		if de == nil || !de.Temporary || !hopLevel(de) {
			return hopTook
		}
	}
	return hopPushedBack
}

// hopLevel reports whether a temporary failure is the hop's state rather than the recipient's:
// no reply at all (the connection), 421 (closing), or a network (4.4.x), system (4.3.x) or
// policy (4.7.x: rate limits) status. A mailbox's (4.2.x) is the recipient's.
func hopLevel(de *DeliveryError) bool {
	if de.Code == 0 || de.Code == 421 {
		return true
	}
	return strings.HasPrefix(de.Enhanced, "4.3.") || strings.HasPrefix(de.Enhanced, "4.4.") || strings.HasPrefix(de.Enhanced, "4.7.")
}

// LaneConcurrency is a lane's delivery concurrency now, for metrics.
type LaneConcurrency struct {
	Lane  string // "" is the default lane
	Limit int    // how many may deliver at once now
	Max   int    // its workers
}

// DeliveryConcurrency reports each lane's concurrency, the default lane first.
func (s *Spool) DeliveryConcurrency() []LaneConcurrency {
	out := make([]LaneConcurrency, len(s.lanes))
	for i, l := range s.lanes {
		out[i] = LaneConcurrency{Lane: l.name, Limit: l.conc.Limit(), Max: l.workers}
	}
	return out
}
