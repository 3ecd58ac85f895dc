package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sealpost/sealpost/config"
)

// Lane gives the entries of some classes their own delivery workers and retry schedule, so that
// a statement run (thousands of entries due at once) never delays a one-time passcode: the lane's
// workers take only its classes, and its scanner looks only at them. Entries of a class no lane
// names are delivered by the spool's default workers (Config.Workers).
type Lane struct {
	Classes    []string        `json:"classes"`     // the Message.Class values the lane delivers
	Workers    int             `json:"workers"`     // its delivery workers
	MinBackoff config.Duration `json:"min_backoff"` // its first retry delay
	MaxBackoff config.Duration `json:"max_backoff"` // its longest retry delay
	// Pacing (Spool.Pressure): new mail of the lane's classes is refused for now (the sender's MTA
	// keeps it) while the lane holds MaxDepth entries, or its oldest entry not yet tried has
	// waited MaxWait. Zero (a lane written before these existed) means the default lane's.
	MaxDepth int             `json:"max_depth"`
	MaxWait  config.Duration `json:"max_wait"`
}

// Defaults of the lane DefaultConfig sets: one-time passcodes live 10 minutes, so they are
// retried within seconds, not the minutes a statement can wait.
const (
	OTPLane              = "otp"
	DefaultOTPWorkers    = 2
	DefaultOTPMinBackoff = 30 * time.Second
	DefaultOTPMaxBackoff = 2 * time.Minute
	DefaultOTPMaxDepth   = 2000
	DefaultOTPMaxWait    = 2 * time.Minute
)

// DefaultLanes is the lane "otp" for class "otp": DefaultOTPWorkers workers, retries from
// DefaultOTPMinBackoff up to DefaultOTPMaxBackoff, paced at DefaultOTPMaxDepth entries or
// DefaultOTPMaxWait.
func DefaultLanes() map[string]Lane {
	return map[string]Lane{OTPLane: {Classes: []string{"otp"}, Workers: DefaultOTPWorkers,
		MinBackoff: config.Duration(DefaultOTPMinBackoff), MaxBackoff: config.Duration(DefaultOTPMaxBackoff),
		MaxDepth: DefaultOTPMaxDepth, MaxWait: config.Duration(DefaultOTPMaxWait)}}
}

// validateLanes reports the problems of the lanes, each at its key: lanes.NAME.workers and so on.
// A class may be in one lane only.
func validateLanes(lanes map[string]Lane) []error {
	var errs []error
	owner := map[string]string{} // class → the lane that has it
	names := make([]string, 0, len(lanes))
	for name := range lanes {
		names = append(names, name)
	}
	slices.Sort(names) // one order for the errors, and for which lane a shared class is blamed on
	for _, name := range names {
		l, path := lanes[name], config.MapKey("lanes", name)
		bad := func(key, format string, args ...any) {
			errs = append(errs, &config.FieldError{Path: path + key, Problem: fmt.Sprintf(format, args...)})
		}
		if err := validClass(name); err != nil || name == "" {
			bad("", "a lane's name must be 1 to 64 printable ASCII characters without spaces")
		}
		if len(l.Classes) == 0 {
			bad(".classes", "required: the classes the lane delivers, e.g. [\"otp\"]")
		}
		for i, c := range l.Classes {
			switch other, taken := owner[c]; {
			case c == "" || validClass(c) != nil:
				bad(fmt.Sprintf(".classes[%d]", i), "%q is not a class: 1 to 64 printable ASCII characters without spaces", c)
			case taken:
				bad(fmt.Sprintf(".classes[%d]", i), "%q is already in lane %q: a class is in one lane at most", c, other)
			default:
				owner[c] = name
			}
		}
		if l.Workers < 1 || l.Workers > 1024 {
			bad(".workers", "%d: want 1 to 1024", l.Workers)
		}
		if l.MinBackoff < config.Duration(time.Second) {
			bad(".min_backoff", "%v: want at least 1s", time.Duration(l.MinBackoff))
		}
		if l.MaxBackoff < l.MinBackoff {
			bad(".max_backoff", "%v: want at least min_backoff (%v)", time.Duration(l.MaxBackoff), time.Duration(l.MinBackoff))
		}
		errs = append(errs, validatePacing(path+".", l.MaxDepth, l.MaxWait, true)...)
	}
	return errs
}

// validatePacing reports max_depth and max_wait out of range, at their keys after prefix; with
// zeroInherits (a lane's), zero is allowed: it means the default lane's.
func validatePacing(prefix string, depth int, wait config.Duration, zeroInherits bool) []error {
	var errs []error
	if (depth != 0 || !zeroInherits) && (depth < 1 || depth > 10_000_000) {
		errs = append(errs, &config.FieldError{Path: prefix + "max_depth", Problem: fmt.Sprintf("%d: want 1 to 10000000 entries", depth)})
	}
	if (wait != 0 || !zeroInherits) && wait < config.Duration(time.Second) {
		errs = append(errs, &config.FieldError{Path: prefix + "max_wait", Problem: fmt.Sprintf("%v: want at least 1s", time.Duration(wait))})
	}
	return errs
}

// lane is a Lane at work: its entries, the scanner's wake-up and its schedule. The default lane
// (name "") holds every class no other lane names.
type lane struct {
	name       string
	workers    int
	minBackoff time.Duration
	maxBackoff time.Duration
	maxDepth   int
	maxWait    time.Duration
	kick       chan struct{} // wakes the lane's scanner early
	conc       *concurrency  // how many of its workers may deliver at once
	// oldestNew is when the oldest entry not yet tried was queued (zero: none), as the lane's
	// last scan found it; guarded by Spool.mu.
	oldestNew time.Time
	// entries are the spool's entries of the lane's classes, guarded by Spool.mu: a scanner looks
	// at its own only, so thousands of due statements cost an OTP's scanner nothing.
	entries map[string]*entry
}

func newLane(name string, workers int, minB, maxB config.Duration, maxDepth int, maxWait config.Duration) *lane {
	return &lane{name: name, workers: workers, minBackoff: time.Duration(minB), maxBackoff: time.Duration(maxB),
		maxDepth: maxDepth, maxWait: time.Duration(maxWait), kick: make(chan struct{}, 1), entries: make(map[string]*entry),
		conc: newConcurrency(workers, time.Now)}
}

// buildLanes returns the default lane, the configured ones (by name) and which lane each class
// is delivered by; cfg is valid.
func buildLanes(cfg Config) (lanes []*lane, byClass map[string]*lane) {
	lanes = []*lane{newLane("", cfg.Workers, cfg.MinBackoff, cfg.MaxBackoff, cfg.MaxDepth, cfg.MaxWait)}
	byClass = make(map[string]*lane)
	names := make([]string, 0, len(cfg.Lanes))
	for name := range cfg.Lanes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		l := cfg.Lanes[name]
		depth, wait := l.MaxDepth, l.MaxWait
		if depth == 0 {
			depth = cfg.MaxDepth
		}
		if wait == 0 {
			wait = cfg.MaxWait
		}
		ln := newLane(name, l.Workers, l.MinBackoff, l.MaxBackoff, depth, wait)
		lanes = append(lanes, ln)
		for _, c := range l.Classes {
			byClass[c] = ln
		}
	}
	return lanes, byClass
}

// laneOf returns the lane that delivers class.
func (s *Spool) laneOf(class string) *lane {
	if l := s.byClass[class]; l != nil {
		return l
	}
	return s.lanes[0]
}

// track registers e in the spool and in its lane; the caller holds s.mu.
func (s *Spool) track(e *entry) {
	e.lane = s.laneOf(e.meta.Class)
	s.entries[e.meta.ID] = e
	e.lane.entries[e.meta.ID] = e
}

// untrack forgets e; the caller holds s.mu.
func (s *Spool) untrack(e *entry) {
	delete(s.entries, e.meta.ID)
	delete(e.lane.entries, e.meta.ID)
}

// wake wakes l's scanner: an entry of l may be due.
func (l *lane) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// wakeAll wakes every lane's scanner.
func (s *Spool) wakeAll() {
	for _, l := range s.lanes {
		l.wake()
	}
}

// startLanes runs each lane's scanner and workers; the caller holds s.mu.
func (s *Spool) startLanes(ctx context.Context) {
	for _, l := range s.lanes {
		jobs := make(chan *entry)
		s.wg.Add(1 + l.workers)
		go s.scan(ctx, l, jobs)
		for range l.workers {
			go s.work(ctx, l, jobs)
		}
	}
}

// ErrPaced: the lane of a message's class is backed up; new mail of it is refused for now (451
// 4.3.2, the sender's MTA keeps it) while other lanes flow.
var ErrPaced = errors.New("queue: lane paced")

// PacedError says which lane is paced and why; it wraps ErrPaced.
type PacedError struct {
	Lane   string // "" is the default lane
	Depth  int    // entries in the lane
	Waited time.Duration
	Why    string
}

func (e *PacedError) Error() string { return e.Why }
func (e *PacedError) Unwrap() error { return ErrPaced }

// Pacer tells whether new mail of a class may be queued now (Spool implements it).
type Pacer interface {
	Pressure(class string) error
}

var _ Pacer = (*Spool)(nil)

// Pressure returns a *PacedError when the lane of class holds its max_depth entries or more, or
// its oldest entry not yet tried (as the lane's scanner last saw) has waited max_wait; nil when
// new mail of class may be queued. It costs a lock and no scan.
func (s *Spool) Pressure(class string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.laneOf(class)
	name := l.name
	if name == "" {
		name = "default"
	}
	depth := len(l.entries)
	if depth >= l.maxDepth {
		return &PacedError{Lane: l.name, Depth: depth, Why: fmt.Sprintf("the %s lane holds %d messages (max_depth %d)", name, depth, l.maxDepth)}
	}
	if !l.oldestNew.IsZero() {
		if w := s.now().Sub(l.oldestNew); w >= l.maxWait {
			return &PacedError{Lane: l.name, Depth: depth, Waited: w,
				Why: fmt.Sprintf("the %s lane's oldest message not yet tried has waited %v (max_wait %v)", name, w.Round(time.Second), l.maxWait)}
		}
	}
	return nil
}
