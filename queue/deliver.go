package queue

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sealpost/sealpost/address"
)

// NextHop delivers messages onward: a smarthost, an MX, a Maildir.
type NextHop interface {
	// Deliver sends data from `from` to the recipients and returns one
	// error per recipient (nil = accepted). A *DeliveryError says whether the
	// failure is temporary; any other error is treated as temporary.
	Deliver(ctx context.Context, from string, to []string, data []byte) []error
}

// Accepted is what the next hop answered when it took the message: its address and its reply
// (the 250 to DATA and its text, which often names the hop's queue ID), for the evidence log.
type Accepted struct {
	Host string
	Code int
	Text string
}

// ReplyingHop is a NextHop that also says what it answered for the recipients it accepted.
type ReplyingHop interface {
	NextHop
	DeliverReply(ctx context.Context, from string, to []string, data []byte) ([]error, Accepted)
}

// DeliveryError is one recipient's failed delivery, as the next hop
// reported it. Permanent errors fail the recipient at once; temporary ones
// are retried until the message expires.
type DeliveryError struct {
	Temporary bool
	Code      int    // SMTP reply code; 0 when no reply was received
	Enhanced  string // RFC 3463 status code, e.g. "5.1.1"
	Message   string // reply text or local reason
}

// Error renders the error like an SMTP reply: "550 5.1.1 no such user".
func (e *DeliveryError) Error() string {
	var parts []string
	if e.Code != 0 {
		parts = append(parts, fmt.Sprint(e.Code))
	}
	if e.Enhanced != "" {
		parts = append(parts, e.Enhanced)
	}
	if e.Message != "" {
		parts = append(parts, e.Message)
	}
	if len(parts) == 0 {
		if e.Temporary {
			return "temporary delivery failure"
		}
		return "permanent delivery failure"
	}
	return strings.Join(parts, " ")
}

// maxDiagnostic bounds the error text kept per recipient.
const maxDiagnostic = 512

// normalize turns what a next hop returned into a DeliveryError fit to be
// stored and shown in a DSN: a status code always present, one line of
// printable text.
func normalize(err error) *DeliveryError {
	if err == nil {
		return nil
	}
	var de *DeliveryError
	if errors.As(err, &de) {
		c := *de
		de = &c
	} else {
		de = &DeliveryError{Temporary: true, Message: err.Error()}
	}
	if de.Code < 0 || de.Code > 999 {
		de.Code = 0
	}
	class := "5"
	if de.Temporary {
		class = "4"
	}
	if !validEnhanced(de.Enhanced) || de.Enhanced[:1] == "2" {
		de.Enhanced = class + ".0.0"
	}
	de.Message = oneLine(de.Message, maxDiagnostic)
	return de
}

// oneLine replaces control and non-ASCII bytes with spaces or "?" and
// truncates to n bytes.
func oneLine(s string, n int) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c == '\r' || c == '\n' || c == '\t':
			b[i] = ' '
		case c < ' ' || c >= 0x7f:
			b[i] = '?'
		}
	}
	if len(b) > n {
		b = b[:n]
	}
	return strings.TrimSpace(string(b))
}

var errExpiredUnattempted = &DeliveryError{
	Temporary: true,
	Enhanced:  "4.4.7",
	Message:   "message expired before it could be delivered",
}

// scan hands l's due entries to l's workers, in order of due time, until ctx is
// done. It looks every ScanInterval, and at once when woken by Put, Retry
// or Flush of one of l's entries.
func (s *Spool) scan(ctx context.Context, l *lane, jobs chan<- *entry) {
	defer s.wg.Done()
	t := time.NewTicker(time.Duration(s.cfg.ScanInterval))
	defer t.Stop()
	for {
		for _, e := range s.dueEntries(l) {
			if !s.claim(e) {
				continue
			}
			select {
			case jobs <- e:
			case <-ctx.Done():
				s.mu.Lock()
				e.busy = false
				s.mu.Unlock()
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.kick:
		}
	}
}

func (s *Spool) dueEntries(l *lane) []*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var due []*entry
	var oldestNew time.Time
	for _, e := range l.entries {
		if !e.busy && !e.deleted && !e.state.Next.After(now) {
			due = append(due, e)
		}
		if !e.busy && !e.deleted && untried(e) && (oldestNew.IsZero() || e.meta.Created.Before(oldestNew)) {
			oldestNew = e.meta.Created
		}
	}
	l.oldestNew = oldestNew
	slices.SortFunc(due, func(a, b *entry) int { return a.state.Next.Compare(b.state.Next) })
	return due
}

// untried reports whether no delivery of e has been attempted yet.
func untried(e *entry) bool {
	for _, r := range e.state.Rcpts {
		if r.Attempts > 0 {
			return false
		}
	}
	return true
}

// claim marks e busy if it is still due and free.
func (s *Spool) claim(e *entry) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.busy || e.deleted || s.entries[e.meta.ID] != e || e.state.Next.After(s.now()) {
		return false
	}
	e.busy = true
	return true
}

func (s *Spool) work(ctx context.Context, l *lane, jobs <-chan *entry) {
	defer s.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-jobs:
			// The entry is claimed: it waits for a place under the lane's concurrency (or, at
			// Close, stays claimed by a closing spool; the next start delivers it).
			if !l.conc.acquire(ctx) {
				return
			}
			// An attempt under way finishes even when Close is called: the
			// next hop's own timeouts bound it.
			if from, to := l.conc.release(s.attempt(context.WithoutCancel(ctx), e)); to < from {
				s.log.Warn("queue: the next hop pushes back; fewer deliveries at once", "lane", l.name, "concurrency", to, "workers", l.workers)
			} else if to > from && to == l.workers {
				s.log.Info("queue: the next hop takes mail again; every worker delivers", "lane", l.name, "concurrency", to)
			}
		}
	}
}

// attempt makes one delivery attempt for e, which the caller has claimed,
// and records the outcome durably before it releases e. It says what the
// next hop's answers tell of it.
func (s *Spool) attempt(ctx context.Context, e *entry) (v hopVerdict) {
	data, err := s.openData(e.meta)
	if err != nil {
		s.quarantine(e, err)
		return hopSilent
	}
	defer data.Close()

	s.mu.Lock()
	st := cloneState(e.state)
	s.mu.Unlock()
	now := s.now()
	meta := e.meta

	pending := pendingRcpts(st)
	switch {
	case len(pending) == 0:
		// A restart between recording the outcome and finishing up.
	case !now.Before(meta.Expires):
		s.expire(meta, st, pending)
	default:
		v = s.deliverPending(ctx, meta, st, pending, data)
		if data.changed != nil {
			// Nobody got it (the hop was told to drop it); the entry is damaged.
			s.quarantine(e, data.changed)
			return hopSilent
		}
	}

	stillPending, unreported := s.outstanding(meta, st)
	if stillPending {
		delay := backoff(now.Sub(meta.Created), e.lane.minBackoff, e.lane.maxBackoff, rand.Float64())
		st.Next = now.Add(delay)
		if st.Next.After(meta.Expires) {
			st.Next = meta.Expires
		}
	}
	s.record(e, st, data.dsnSource(), now, stillPending, unreported)
	return v
}

// readData reads and checks queue/ID.msg and returns the message it holds.
func (s *Spool) readData(id string) ([]byte, error) {
	b, err := readSpoolFile(filepath.Join(s.qDir, id+".msg"))
	if err != nil {
		return nil, err
	}
	_, data, err := parseEntry(b)
	return data, err
}

// pendingRcpts returns the indexes of the recipients still to be delivered.
func pendingRcpts(st *entryState) []int {
	var pending []int
	for i, r := range st.Rcpts {
		if r.Status == statusPending {
			pending = append(pending, i)
		}
	}
	return pending
}

// expire fails the pending recipients of an entry whose lifetime is over.
func (s *Spool) expire(meta *entryMeta, st *entryState, pending []int) {
	for _, i := range pending {
		r := &st.Rcpts[i]
		r.Status = statusFailed
		if r.Last == nil {
			r.Last = errExpiredUnattempted
		}
		s.log.Info("queue: expired", "id", meta.ID, "class", meta.Class,
			"domain", address.Domain(meta.Recipients[i]), "status", r.Last.Enhanced, "attempts", r.Attempts)
		s.obs.Bounced(meta.Class)
		s.outcome(meta, i, OutcomeBounced, &DeliveryError{Code: r.Last.Code, Enhanced: r.Last.Enhanced, Message: "expired: " + r.Last.Message})
	}
}

// outcome tells the WithOutcomes function recipient i's outcome.
func (s *Spool) outcome(meta *entryMeta, i int, result string, de *DeliveryError) {
	if s.outcomes == nil {
		return
	}
	s.outcomeFrom(meta, i, result, de, Accepted{})
}

// outcomeFrom is outcome with what the next hop answered when it accepted the message.
func (s *Spool) outcomeFrom(meta *entryMeta, i int, result string, de *DeliveryError, acc Accepted) {
	if s.outcomes == nil {
		return
	}
	o := Outcome{ID: meta.ID, Class: meta.Class, Recipient: meta.Recipients[i], Result: result, Time: s.now(), Host: acc.Host}
	switch {
	case de != nil:
		o.Code, o.Enhanced, o.Text = de.Code, de.Enhanced, de.Message
	case acc.Code != 0:
		o.Code, o.Text = acc.Code, boundedText(acc.Text)
	}
	s.outcomes(o)
}

// boundedText keeps a next hop's reply text to 512 bytes of printable ASCII.
func boundedText(s string) string {
	b := []byte(s)
	if len(b) > 512 {
		b = b[:512]
	}
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}

// deliverPending hands the pending recipients to the next hop and notes each one's outcome in st.
func (s *Spool) deliverPending(ctx context.Context, meta *entryMeta, st *entryState, pending []int, data *spoolData) hopVerdict {
	id, class := meta.ID, meta.Class
	to := make([]string, len(pending))
	for k, i := range pending {
		to[k] = meta.Recipients[i]
	}
	errs, acc := s.deliver(ctx, meta.From, to, data)
	done := s.now()
	answers := make([]*DeliveryError, len(pending))
	for k, i := range pending {
		r := &st.Rcpts[i]
		r.Attempts++
		de := normalize(errs[k])
		answers[k] = de
		domain := address.Domain(meta.Recipients[i])
		switch {
		case de == nil:
			r.Status = statusDelivered
			s.log.Info("queue: delivered", "id", id, "class", class, "domain", domain, "attempts", r.Attempts)
			s.obs.Delivered(class, done.Sub(meta.Created))
			s.outcomeFrom(meta, i, OutcomeDelivered, nil, acc)
		case de.Temporary:
			r.Last = de
			s.log.Info("queue: deferred", "id", id, "class", class, "domain", domain,
				"code", de.Code, "status", de.Enhanced, "attempts", r.Attempts)
			s.obs.Deferred(class, de.Enhanced)
			s.outcome(meta, i, OutcomeDeferred, de)
		default:
			r.Last = de
			r.Status = statusFailed
			s.log.Info("queue: failed", "id", id, "class", class, "domain", domain,
				"code", de.Code, "status", de.Enhanced, "attempts", r.Attempts)
			s.obs.Bounced(class)
			s.outcome(meta, i, OutcomeBounced, de)
		}
	}
	return verdictOf(answers)
}

// outstanding reports whether any recipient is still pending, and which failed ones are still to
// be reported by a DSN. Failures for the null sender are marked notified instead: never a DSN to
// it, so no loops.
func (s *Spool) outstanding(meta *entryMeta, st *entryState) (pending bool, unreported []int) {
	for i, r := range st.Rcpts {
		switch {
		case r.Status == statusPending:
			pending = true
		case r.Status == statusFailed && !r.Notified:
			if meta.From == "" {
				st.Rcpts[i].Notified = true
				s.log.Info("queue: no DSN for the null sender", "id", meta.ID, "class", meta.Class,
					"domain", address.Domain(meta.Recipients[i]))
				continue
			}
			unreported = append(unreported, i)
		}
	}
	return pending, unreported
}

// record makes the attempt's outcome durable, queues the DSN for the unreported failures, and
// then finishes e (nothing left to do) or releases it for its next attempt.
func (s *Spool) record(e *entry, st *entryState, data []byte, now time.Time, pending bool, unreported []int) {
	if !pending && len(unreported) == 0 {
		s.finish(e)
		return
	}
	// Record the outcome before reporting it: a crash from here on never
	// sends to a delivered recipient again, and reports each failure once
	// (the DSN's ID is derived from the failures it reports).
	s.saveState(e, st)
	if len(unreported) > 0 {
		if err := s.queueDSN(e.meta, st, unreported, data, now); err != nil {
			s.log.Error("queue: could not queue DSN", "id", e.meta.ID, "class", e.meta.Class, "err", err)
			if !pending {
				st.Next = now.Add(e.lane.minBackoff)
			}
		} else {
			for _, i := range unreported {
				st.Rcpts[i].Notified = true
			}
			if !pending {
				s.finish(e)
				return
			}
		}
		s.saveState(e, st)
	}
	s.release(e)
}

// deliver calls the next hop, holding it to its contract: one result per
// recipient, and a panic is a temporary failure rather than a crash.
func (s *Spool) deliver(ctx context.Context, from string, to []string, data *spoolData) (errs []error, acc Accepted) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("queue: next hop panicked", "panic", fmt.Sprint(p))
			errs, acc = sameError(len(to), &DeliveryError{Temporary: true, Enhanced: "4.3.0", Message: "local error in next hop"}), Accepted{}
		}
	}()
	if sh, ok := s.next.(StreamingHop); ok && data.streaming() {
		errs, acc = sh.DeliverStream(ctx, from, slices.Clone(to), data.reader(), data.size)
	} else if rh, ok := s.next.(ReplyingHop); ok {
		errs, acc = rh.DeliverReply(ctx, from, slices.Clone(to), data.mem)
	} else {
		errs = s.next.Deliver(ctx, from, slices.Clone(to), data.mem)
	}
	if len(errs) != len(to) {
		s.log.Error("queue: next hop returned the wrong number of results", "want", len(to), "got", len(errs))
		return sameError(len(to), &DeliveryError{Temporary: true, Enhanced: "4.3.0", Message: "local error in next hop"}), Accepted{}
	}
	return errs, acc
}

func sameError(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// saveState writes st durably and publishes it. If the write fails, the
// outcome is still kept in memory for this process, and the write happens
// again after the next attempt.
func (s *Spool) saveState(e *entry, st *entryState) {
	s.mu.Lock()
	e.stateFile = true // from now on, whether or not the write succeeds
	s.mu.Unlock()
	err := writeAtomic(s.ops, s.tmpDir, s.qDir, st.ID+".state", func(w io.Writer) error {
		return writeState(w, st)
	})
	if err != nil {
		s.log.Error("queue: could not save delivery state", "id", st.ID, "class", e.meta.Class, "err", err)
	}
	s.mu.Lock()
	e.state = cloneState(st)
	s.mu.Unlock()
}

// release gives e back to the scanner, removing it if an operator deleted it
// meanwhile.
func (s *Spool) release(e *entry) {
	s.mu.Lock()
	e.busy = false
	deleted := e.deleted
	if deleted {
		s.untrack(e)
	}
	s.mu.Unlock()
	if deleted {
		if err := s.removeEntry(e.meta.ID); err != nil {
			s.log.Error("queue: could not remove deleted entry", "id", e.meta.ID, "err", err)
		} else {
			s.deletedOutcomes(e)
		}
	}
	e.lane.wake()
}

// finish removes an entry whose every recipient is settled.
func (s *Spool) finish(e *entry) {
	// Every recipient is done, so the removal need not be durable: if a crash undoes it, the entry
	// is delivered again (at least once, like Postfix), never lost. Skipping the directory fsync
	// saves one of the three a message costs.
	if err := s.removeFinished(e); err != nil {
		// Left on disk it is retried after a restart (at least once).
		s.log.Error("queue: could not remove finished entry", "id", e.meta.ID, "err", err)
	}
	s.mu.Lock()
	s.untrack(e)
	s.mu.Unlock()
	s.log.Info("queue: done", "id", e.meta.ID, "class", e.meta.Class)
}

// quarantine sets aside, in the corrupt directory, an entry that no longer passes its checks,
// with its state file, and stops tracking it. Nothing is deleted: if a move fails, the file stays
// in queue/ and Open looks at it again.
func (s *Spool) quarantine(e *entry, cause error) {
	id := e.meta.ID
	s.mu.Lock()
	s.untrack(e)
	s.mu.Unlock()
	s.log.Error("queue: entry failed its checks before delivery", "id", id, "class", e.meta.Class, "err", cause)
	problems := map[string]string{id + ".msg": problemOf(cause), id + ".state": "its entry failed its checks and was set aside with it"}
	for _, name := range []string{id + ".msg", id + ".state"} {
		if _, err := os.Lstat(filepath.Join(s.qDir, name)); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := s.setAside(name, problems[name]); err != nil {
			s.log.Error("queue: could not set aside a damaged entry; it stays in queue/ until the next start",
				"id", id, "file", name, "err", err)
		}
	}
}

func cloneState(st *entryState) *entryState {
	c := *st
	c.Rcpts = slices.Clone(st.Rcpts)
	return &c
}

// dsnID derives the queue ID of the DSN that reports the given failures of
// entry id, so a restart that reports them again does not queue a second
// one while the first is still queued.
func dsnID(id string, failed []int) string {
	h := sha256.New()
	fmt.Fprintf(h, "dsn %s", id)
	for _, i := range failed {
		fmt.Fprintf(h, " %d", i)
	}
	return idEncoding.EncodeToString(h.Sum(nil)[:10])
}
