package queue

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/config"
)

var (
	// ErrSpoolWrite wraps every failure to make an entry durable (write,
	// fsync, rename, directory fsync, disk full). The message is not queued;
	// the caller answers with a temporary failure so the sender retries.
	ErrSpoolWrite = errors.New("queue: spool write failed")
	// ErrInvalidMessage reports a Message that cannot be queued (no
	// recipients, no data, a malformed address, no expiry).
	ErrInvalidMessage = errors.New("queue: invalid message")
	// ErrNotFound reports a queue ID that is not in the spool.
	ErrNotFound = errors.New("queue: no such entry")
	// ErrClosed reports use of a Spool after Close.
	ErrClosed = errors.New("queue: spool closed")
)

// Message is what the gateway hands the spool: the protected message and its
// envelope.
type Message struct {
	From       string    // envelope sender; "" is the null sender (never gets a DSN)
	Recipients []string  // envelope recipients, at least one
	Data       []byte    // the protected message, CRLF line endings
	Class      string    // "statement", "otp", "support": its lane (Config.Lanes), logs and the DSN
	Expires    time.Time // when undelivered recipients bounce (OTPs: minutes; statements: days)
	// ID, when set (from NewID), is the queue ID to use: the caller recorded it (the evidence log)
	// before the entry was written. A malformed or already used one is refused.
	ID string
}

// Config configures a Spool; its JSON keys are those of the configuration file's queue section
// (the directory and the scan interval are the caller's, not the file's). Start from DefaultConfig:
// Validate fills in nothing, and zero never means "unlimited". Workers and the backoffs are those
// of the default lane: every class that no entry of Lanes names.
type Config struct {
	Dir        string          `json:"-"`           // spool directory (created 0700)
	Workers    int             `json:"workers"`     // delivery workers
	MinBackoff config.Duration `json:"min_backoff"` // first retry delay (Postfix minimal_backoff_time)
	MaxBackoff config.Duration `json:"max_backoff"` // longest retry delay (Postfix maximal_backoff_time)
	// MaxDepth and MaxWait pace the default lane (see Lane).
	MaxDepth int             `json:"max_depth"`
	MaxWait  config.Duration `json:"max_wait"`
	// Lanes by name, each with its own workers and retries for its classes; DefaultConfig holds
	// DefaultLanes, and a file's entries replace those of their names.
	Lanes        map[string]Lane `json:"lanes"`
	ScanInterval config.Duration `json:"-"` // how often due entries are looked for
}

// Defaults that DefaultConfig sets.
const (
	DefaultWorkers      = 4
	DefaultMinBackoff   = 5 * time.Minute
	DefaultMaxBackoff   = 67 * time.Minute
	DefaultScanInterval = time.Second
	DefaultMaxDepth     = 20000
	DefaultMaxWait      = 15 * time.Minute
)

// DefaultConfig is a spool with DefaultWorkers workers, retries from DefaultMinBackoff up to
// DefaultMaxBackoff, paced at DefaultMaxDepth entries or DefaultMaxWait, the lanes of
// DefaultLanes, scanned every DefaultScanInterval; Dir is left for the caller.
func DefaultConfig() Config {
	return Config{Workers: DefaultWorkers, MinBackoff: config.Duration(DefaultMinBackoff),
		MaxBackoff: config.Duration(DefaultMaxBackoff), MaxDepth: DefaultMaxDepth, MaxWait: config.Duration(DefaultMaxWait), Lanes: DefaultLanes(),
		ScanInterval: config.Duration(DefaultScanInterval)}
}

// dsnLifetime is how long a DSN is retried before it is dropped (Postfix
// bounce_queue_lifetime). A DSN that fails is not itself reported.
const dsnLifetime = 5 * 24 * time.Hour

// Validate reports every setting that is out of range, zero included, each a *config.FieldError
// named by its configuration key (dir, workers, min_backoff, max_backoff, scan_interval,
// lanes.NAME.workers and so on). It changes nothing.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &config.FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
	}
	if c.Dir == "" {
		bad("dir", "required: the spool directory")
	}
	if c.Workers < 1 || c.Workers > 1024 {
		bad("workers", "%d: want 1 to 1024", c.Workers)
	}
	if c.MinBackoff < config.Duration(time.Second) {
		bad("min_backoff", "%v: want at least 1s", time.Duration(c.MinBackoff))
	}
	if c.MaxBackoff < c.MinBackoff {
		bad("max_backoff", "%v: want at least min_backoff (%v)", time.Duration(c.MaxBackoff), time.Duration(c.MinBackoff))
	}
	if c.ScanInterval < config.Duration(time.Millisecond) {
		bad("scan_interval", "%v: want at least 1ms", time.Duration(c.ScanInterval))
	}
	errs = append(errs, validatePacing("", c.MaxDepth, c.MaxWait, false)...)
	errs = append(errs, validateLanes(c.Lanes)...)
	return errors.Join(errs...)
}

// Option adjusts a Spool at Open.
type Option func(*options)

type options struct {
	logger   *slog.Logger
	clock    func() time.Time
	hostname string
	ops      fileOps
	observer Observer
	outcomes func(Outcome)
}

// WithLogger sets the structured logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock replaces the wall clock, for tests that drive retries and expiry.
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithHostname sets the name the spool reports as Reporting-MTA and in the
// DSN's From address (default: os.Hostname()).
func WithHostname(name string) Option { return func(o *options) { o.hostname = name } }

// withFileOps substitutes the file operations (fault injection in tests).
func withFileOps(ops fileOps) Option { return func(o *options) { o.ops = ops } }

// Spool is a durable mail queue with delivery workers. Its methods are safe
// for concurrent use.
type Spool struct {
	cfg        Config
	next       NextHop
	log        *slog.Logger
	now        func() time.Time
	hostname   string
	ops        fileOps
	obs        Observer
	outcomes   func(Outcome) // nil: none asked for
	tmpDir     string
	qDir       string
	corruptDir string
	lock       *os.File
	lanes      []*lane          // the default lane first, then Config.Lanes by name
	byClass    map[string]*lane // the lane of each class Config.Lanes names
	spares     spares           // finished entries' files, for new ones

	mu      sync.Mutex
	entries map[string]*entry // every lane's, by ID
	closed  bool
	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// entry is an entry's envelope and state as the spool tracks them; the
// message itself stays on disk.
type entry struct {
	meta  *entryMeta
	state *entryState
	// busy: a worker owns the entry; only that worker changes its files.
	busy bool
	// deleted: an operator deleted the entry while it was busy.
	deleted bool
	// lane delivers the entry, chosen by its class when it is tracked.
	lane *lane
	// stateFile: queue/ID.state may exist (it was loaded or written).
	stateFile bool
}

// Info describes a queue entry, for operators.
type Info struct {
	ID, From, Class string
	Created         time.Time
	Expires         time.Time
	NextAttempt     time.Time
	Recipients      []RecipientState
	Size            int // bytes of message data
}

// RecipientState is one recipient's delivery state.
type RecipientState struct {
	Address   string
	Status    string // "pending", "delivered", "failed"
	Attempts  int
	LastError string
}

// Open opens (creating it if needed) the spool in cfg.Dir, takes its lock and
// recovers what a crash left: complete entries are kept for delivery,
// temporary files (writes that never returned) are removed, and entry or state
// files that fail their checks are set aside in the corrupt directory and
// logged, never deleted (see CorruptDir). It does not start delivery; see Start.
func Open(cfg Config, next NextHop, opts ...Option) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if next == nil {
		return nil, errors.New("queue: a next hop is required")
	}
	o := options{ops: osOps{}, clock: time.Now, observer: nopObserver{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.hostname == "" {
		o.hostname, _ = os.Hostname()
		if o.hostname == "" {
			o.hostname = "localhost"
		}
	}
	s := &Spool{
		cfg:        cfg,
		next:       next,
		log:        o.logger,
		now:        o.clock,
		hostname:   o.hostname,
		ops:        newGroupSync(o.ops),
		obs:        o.observer,
		outcomes:   o.outcomes,
		tmpDir:     filepath.Join(cfg.Dir, "tmp"),
		qDir:       filepath.Join(cfg.Dir, "queue"),
		corruptDir: filepath.Join(cfg.Dir, corruptDirName),
		entries:    make(map[string]*entry),
	}
	s.lanes, s.byClass = buildLanes(cfg)
	for _, d := range []string{cfg.Dir, s.tmpDir, s.qDir, s.corruptDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open spool: %w", err)
		}
	}
	// The directories themselves must survive a crash before any entry
	// renamed into them can.
	for _, d := range []string{filepath.Dir(filepath.Clean(cfg.Dir)), cfg.Dir} {
		if err := s.ops.SyncDir(d); err != nil {
			return nil, fmt.Errorf("open spool: %w", err)
		}
	}
	lock, err := lockSpool(filepath.Join(cfg.Dir, "lock"))
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	s.lock = lock
	if err := s.recover(); err != nil {
		_ = s.lock.Close()
		return nil, fmt.Errorf("open spool: %w", err)
	}
	return s, nil
}

// recover loads the spool directory. It removes only what never got its name in queue/ (files
// in tmp/) and the state file a finished entry left; everything in queue/ that fails its checks
// is set aside in corrupt/ (see corrupt.go), never deleted.
func (s *Spool) recover() error {
	if err := s.clearTmp(); err != nil {
		return err
	}
	states, aside, err := s.loadEntries()
	if err != nil {
		return err
	}
	removed := false
	for id := range states {
		r, err := s.recoverState(id, aside[id])
		if err != nil {
			return err
		}
		removed = removed || r
	}
	for _, e := range s.entries {
		if e.state == nil {
			e.state = freshState(e.meta)
		}
	}
	if removed {
		if err := s.ops.SyncDir(s.qDir); err != nil {
			return err
		}
	}
	if n := len(s.entries); n > 0 {
		s.log.Info("queue: recovered entries", "count", n)
	}
	if n, err := s.CorruptCount(); err == nil && n > 0 {
		s.log.Error("queue: entries that failed their checks are set aside, neither delivered nor deleted",
			"count", n, "dir", s.corruptDir)
	}
	return nil
}

// loadEntries loads every entry file in queue/ into s.entries, setting aside those that fail their
// checks. It returns the IDs that have a state file and the IDs whose entry was set aside.
func (s *Spool) loadEntries() (states, aside map[string]bool, err error) {
	des, err := os.ReadDir(s.qDir)
	if err != nil {
		return nil, nil, err
	}
	states, aside = make(map[string]bool), make(map[string]bool)
	for _, de := range des {
		name := de.Name()
		id, ok := strings.CutSuffix(name, ".msg")
		if !ok {
			if id, ok := strings.CutSuffix(name, ".state"); ok && validID(id) {
				states[id] = true
			} else {
				s.log.Warn("queue: ignoring unknown file in spool", "file", name)
			}
			continue
		}
		meta, err := s.loadEntry(id)
		if err != nil {
			if err := s.setAside(name, problemOf(err)); err != nil {
				return nil, nil, err
			}
			aside[id] = true
			continue
		}
		s.track(&entry{meta: meta})
	}
	return states, aside, nil
}

// recoverState deals with queue/ID.state once the entries are loaded: set aside with its entry
// (entryAside), removed when it is all a finished entry left (removed reports it), set aside when
// it fails its checks (the entry starts afresh: at least once), else the state of its entry.
func (s *Spool) recoverState(id string, entryAside bool) (removed bool, err error) {
	name := id + ".state"
	e := s.entries[id]
	switch {
	case entryAside:
		return false, s.setAside(name, "its entry failed its checks and was set aside with it")
	case e == nil:
		if _, err := s.loadState(id, -1); err != nil {
			return false, s.setAside(name, "its entry file is missing, and "+problemOf(err))
		}
		// A finished entry's message file goes first: this is what is left of it.
		if err := s.ops.Remove(filepath.Join(s.qDir, name)); err != nil {
			return false, err
		}
		return true, nil
	}
	st, err := s.loadState(id, len(e.meta.Recipients))
	if err != nil {
		// At least once: without trustworthy state every recipient is pending again.
		s.log.Error("queue: state file failed its checks; all recipients will be tried again",
			"id", id, "class", e.meta.Class, "err", err)
		return false, s.setAside(name, problemOf(err)+"; every recipient of the entry is tried again")
	}
	e.state, e.stateFile = st, true
	return false, nil
}

// clearTmp removes what tmp/ holds: writes that never got their name in queue/. A message there
// never got a 250 (Put renames before it returns); a state file there was never published, and
// the state it would have replaced is still in queue/.
func (s *Spool) clearTmp() error {
	tmps, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return err
	}
	for _, de := range tmps {
		if de.IsDir() {
			s.log.Warn("queue: ignoring a directory in the spool's tmp", "name", de.Name())
			continue
		}
		if err := os.Remove(filepath.Join(s.tmpDir, de.Name())); err != nil {
			return err
		}
		if !isSpare(de.Name()) { // a spare is a finished entry's file, kept for reuse
			s.log.Warn("queue: removed temporary file left by a crash", "file", de.Name())
		}
	}
	return nil
}

// loadEntry reads and checks queue/ID.msg.
func (s *Spool) loadEntry(id string) (*entryMeta, error) {
	if !validID(id) {
		return nil, corrupt("the file name is not a queue ID")
	}
	b, err := readSpoolFile(filepath.Join(s.qDir, id+".msg"))
	if err != nil {
		return nil, err
	}
	meta, _, err := parseEntry(b)
	if err == nil && meta.ID != id {
		err = corrupt("entry names %s", meta.ID)
	}
	return meta, err
}

// loadState reads and checks queue/ID.state; rcpts is its entry's recipient count (-1: unknown).
func (s *Spool) loadState(id string, rcpts int) (*entryState, error) {
	b, err := readSpoolFile(filepath.Join(s.qDir, id+".state"))
	if err != nil {
		return nil, err
	}
	st, err := parseState(b)
	if err == nil && (st.ID != id || rcpts >= 0 && len(st.Rcpts) != rcpts) {
		err = corrupt("state does not match its entry")
	}
	return st, err
}

func freshState(m *entryMeta) *entryState {
	st := &entryState{ID: m.ID, Next: m.Created, Rcpts: make([]rcptState, len(m.Recipients))}
	for i := range st.Rcpts {
		st.Rcpts[i].Status = statusPending
	}
	return st
}

// Writer is the one interface through which pipelines queue mail: the Spool, or a wrapper that
// changes a message on its way in (dkim.Spool). Put returns only once m is durable; Delete takes
// back a message the client was never told 250 for.
type Writer interface {
	Put(ctx context.Context, m *Message) (string, error)
	Delete(id string) error
}

var _ Writer = (*Spool)(nil)

// Put queues m durably and returns its queue ID. It returns only after the
// entry is complete and fsynced, file and directory; only then may the
// caller answer "250 queued as ID". Errors wrap ErrSpoolWrite or
// ErrInvalidMessage.
func (s *Spool) Put(ctx context.Context, m *Message) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	closed := s.closed
	_, used := s.entries[m.ID]
	s.mu.Unlock()
	if closed {
		return "", ErrClosed
	}
	if m.ID != "" && used {
		return "", fmt.Errorf("%w: queue ID %s is in use", ErrInvalidMessage, m.ID)
	}
	if err := s.checkMessage(m); err != nil {
		return "", err
	}
	id := m.ID
	if id == "" {
		id = newID()
	}
	return s.put(&entryMeta{
		ID:         id,
		From:       m.From,
		Recipients: slices.Clone(m.Recipients),
		Class:      m.Class,
		Created:    s.now(),
		Expires:    m.Expires,
		Size:       len(m.Data),
	}, m.Data)
}

// put writes an entry and registers it. Workers use it for DSNs, also while
// Close waits for them.
func (s *Spool) put(meta *entryMeta, data []byte) (string, error) {
	spare, mark := s.spares.take()
	err := writeAtomicOver(s.ops, spare, s.tmpDir, s.qDir, meta.ID+".msg", func(w io.Writer) error {
		return writeEntry(w, meta, data)
	})
	if err != nil {
		s.log.Error("queue: spool write failed", "class", meta.Class, "err", err)
		return "", err
	}
	s.spares.synced(mark) // the write ended with an fsync of queue/
	e := &entry{meta: meta, state: freshState(meta)}
	s.mu.Lock()
	s.track(e)
	s.mu.Unlock()
	s.log.Info("queue: queued", "id", meta.ID, "class", meta.Class, "size", meta.Size,
		"rcpt_domains", address.Domains(meta.Recipients))
	e.lane.wake()
	return meta.ID, nil
}

func (s *Spool) checkMessage(m *Message) error {
	if m == nil {
		return fmt.Errorf("%w: nil message", ErrInvalidMessage)
	}
	if len(m.Recipients) == 0 {
		return fmt.Errorf("%w: no recipients", ErrInvalidMessage)
	}
	if len(m.Recipients) > maxRecipients {
		return fmt.Errorf("%w: more than %d recipients", ErrInvalidMessage, maxRecipients)
	}
	if len(m.Data) == 0 {
		return fmt.Errorf("%w: no data", ErrInvalidMessage)
	}
	if m.From != "" {
		if err := validAddress(m.From); err != nil {
			return fmt.Errorf("%w: sender: %w", ErrInvalidMessage, err)
		}
	}
	for i, r := range m.Recipients {
		if err := validAddress(r); err != nil {
			return fmt.Errorf("%w: recipient %d: %w", ErrInvalidMessage, i+1, err)
		}
	}
	if err := validClass(m.Class); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if m.Expires.IsZero() {
		return fmt.Errorf("%w: no expiry", ErrInvalidMessage)
	}
	if m.ID != "" && !validID(m.ID) {
		return fmt.Errorf("%w: queue ID %q is not one NewID makes", ErrInvalidMessage, m.ID)
	}
	if !m.Expires.After(s.now()) {
		return fmt.Errorf("%w: already expired", ErrInvalidMessage)
	}
	return nil
}

// validAddress accepts what can travel in MAIL FROM/RCPT TO and in a header
// line of a spool file: non-empty, at most 320 bytes, no control characters,
// spaces or angle brackets.
func validAddress(a string) error {
	if a == "" || len(a) > 320 {
		return errors.New("address must be 1 to 320 bytes")
	}
	for i := 0; i < len(a); i++ {
		if c := a[i]; c <= ' ' || c == 0x7f || c == '<' || c == '>' {
			return errors.New("address contains a space, control character or angle bracket")
		}
	}
	return nil
}

func validClass(c string) error {
	if len(c) > 64 {
		return errors.New("class longer than 64 bytes")
	}
	for i := 0; i < len(c); i++ {
		if b := c[i]; b <= ' ' || b >= 0x7f {
			return errors.New("class must be printable ASCII without spaces")
		}
	}
	return nil
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns a random 16-character queue ID (80 bits). The quarantine names held mail with it,
// so that a 250 does not tell the sender whether its message was queued or held.
func NewID() string { return newID() }

// newID returns a random 16-character queue ID (80 bits).
func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return idEncoding.EncodeToString(b[:])
}

func validID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// List returns every entry, oldest first.
func (s *Spool) List() ([]Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	infos := make([]Info, 0, len(s.entries))
	for _, e := range s.entries {
		if !e.deleted {
			infos = append(infos, e.info())
		}
	}
	slices.SortFunc(infos, func(a, b Info) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return infos, nil
}

// Get returns the entry with the given ID, or ErrNotFound.
func (s *Spool) Get(id string) (Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil || e.deleted {
		return Info{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return e.info(), nil
}

func (e *entry) info() Info {
	in := Info{
		ID:          e.meta.ID,
		From:        e.meta.From,
		Class:       e.meta.Class,
		Created:     e.meta.Created,
		Expires:     e.meta.Expires,
		NextAttempt: e.state.Next,
		Size:        e.meta.Size,
		Recipients:  make([]RecipientState, len(e.meta.Recipients)),
	}
	for i, r := range e.state.Rcpts {
		rs := RecipientState{Address: e.meta.Recipients[i], Status: r.Status, Attempts: r.Attempts}
		if r.Last != nil {
			rs.LastError = r.Last.Error()
		}
		in.Recipients[i] = rs
	}
	return in
}

// Retry makes the entry due now.
func (s *Spool) Retry(id string) error {
	s.mu.Lock()
	e := s.entries[id]
	if e == nil || e.deleted {
		s.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if !e.busy {
		e.state.Next = s.now()
	}
	s.mu.Unlock()
	e.lane.wake()
	return nil
}

// Flush makes every entry due now.
func (s *Spool) Flush() {
	s.mu.Lock()
	now := s.now()
	for _, e := range s.entries {
		if !e.busy {
			e.state.Next = now
		}
	}
	s.mu.Unlock()
	s.wakeAll()
}

// Delete removes an entry without delivering it further and without a DSN.
// If a delivery attempt is under way, the entry is removed when it ends
// (recipients that attempt reached have the message).
func (s *Spool) Delete(id string) error {
	s.mu.Lock()
	e := s.entries[id]
	if e == nil || e.deleted {
		s.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if e.busy {
		e.deleted = true
		s.mu.Unlock()
		s.log.Info("queue: deleted by operator", "id", id, "class", e.meta.Class)
		return nil
	}
	s.untrack(e)
	s.mu.Unlock()
	s.log.Info("queue: deleted by operator", "id", id, "class", e.meta.Class)
	if err := s.removeEntry(id); err != nil {
		return err
	}
	s.deletedOutcomes(e)
	return nil
}

// deletedOutcomes tells the WithOutcomes function that e's recipients still pending will not get
// the message: an operator deleted it.
func (s *Spool) deletedOutcomes(e *entry) {
	for i, r := range e.state.Rcpts {
		if r.Status == statusPending {
			s.outcome(e.meta, i, OutcomeDeleted, &DeliveryError{Message: "deleted from the queue by an operator, without a bounce"})
		}
	}
}

// removeFinished takes an entry whose recipients are all done out of queue/, without syncing the
// directory (see finish): its message file becomes a spare, or is removed. The message goes
// first, as in removeEntry.
func (s *Spool) removeFinished(e *entry) error {
	if err := s.retire(e.meta.ID); err != nil {
		return err
	}
	if !e.stateFile {
		return nil
	}
	if err := s.ops.Remove(filepath.Join(s.qDir, e.meta.ID+".state")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (s *Spool) removeEntry(id string) error {
	// The message goes first: a state file without its entry is removed on
	// Open, an entry without its state would be sent to everyone again.
	return removeDurably(s.ops, s.qDir,
		filepath.Join(s.qDir, id+".msg"), filepath.Join(s.qDir, id+".state"))
}

// Start runs each lane's scanner and delivery workers until ctx is done or Close is called. It
// returns at once; calling it more than once has no effect.
func (s *Spool) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return
	}
	s.started = true
	ctx, s.cancel = context.WithCancel(ctx)
	s.startLanes(ctx)
}

// Close stops the workers, waits for attempts under way to finish, and
// releases the spool. The next hop is the caller's to close.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
	return s.lock.Close()
}
