package discovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

// CacheConfig is the discovery section's WKD part: whether sealpost looks keys up at all, how long
// RCPT may wait for a lookup, how long answers are kept, and which domains are asked.
type CacheConfig struct {
	// Enabled switches WKD lookups on (default off: a bank opens outbound HTTPS for it first).
	Enabled bool `json:"enabled"`
	// Budget is how long RCPT waits for a lookup; past it the class's mail gets 451 4.4.3 and the
	// lookup goes on, its answer cached for the retry.
	Budget config.Duration `json:"budget"`
	// Found is how long a key found is used before it is looked up again; it is refreshed in the
	// background Refresh before that.
	Found   config.Duration `json:"found_ttl"`
	Refresh config.Duration `json:"refresh_before"`
	// Absent is how long "no key" (nothing published, or an answer refused) is kept.
	Absent config.Duration `json:"absent_ttl"`
	// Allow, when not empty, are the only domains asked; Deny are never asked (Deny wins).
	Allow []string `json:"allow_domains"`
	Deny  []string `json:"deny_domains"`
	// PerDomain bounds the lookups under way at once to one domain (default 4): a statement run
	// to ten thousand customers of one provider asks its server four at a time, not all at once;
	// the rest wait (RCPT still within its budget).
	PerDomain int `json:"max_per_domain"`
	// WKD is the client's limits.
	WKD WKDConfig `json:"client"`
}

// DefaultCacheConfig: off; when on, a 2 s budget, keys kept 24 h and refreshed an hour ahead,
// absences kept an hour, every domain asked, four at a time.
func DefaultCacheConfig() CacheConfig {
	return CacheConfig{Budget: config.Duration(2 * time.Second), Found: config.Duration(24 * time.Hour),
		Refresh: config.Duration(time.Hour), Absent: config.Duration(time.Hour), Allow: []string{}, Deny: []string{},
		PerDomain: 4, WKD: DefaultWKDConfig()}
}

// Validate checks c and changes nothing; problems are *config.FieldError under prefix.
func (c CacheConfig) Validate(prefix string) error {
	var errs []error
	bad := func(path, problem string) {
		errs = append(errs, &config.FieldError{Path: prefix + path, Problem: problem})
	}
	if c.Budget <= 0 || time.Duration(c.Budget) > time.Minute {
		bad("budget", "between 0 and 1m (e.g. \"2s\"): RCPT waits this long at most")
	}
	if c.Found <= 0 {
		bad("found_ttl", "must be positive (e.g. \"24h\")")
	}
	if c.Refresh < 0 || c.Refresh >= c.Found {
		bad("refresh_before", "from 0 to less than found_ttl (e.g. \"1h\")")
	}
	if c.Absent <= 0 {
		bad("absent_ttl", "must be positive (e.g. \"1h\")")
	}
	if c.PerDomain < 1 || c.PerDomain > 64 {
		bad("max_per_domain", "from 1 to 64 lookups at once to one domain")
	}
	for name, list := range map[string][]string{"allow_domains": c.Allow, "deny_domains": c.Deny} {
		for i, d := range list {
			if d == "" || strings.ContainsAny(d, "@/: \r\n") {
				bad(fmt.Sprintf("%s[%d]", name, i), fmt.Sprintf("%q is not a domain", d))
			}
		}
	}
	if err := c.WKD.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CacheStore keeps what lookups found, shared by every node (store.SQLite and store.Postgres).
type CacheStore interface {
	PutDiscoveredKey(ctx context.Context, k store.DiscoveredKey) error
	DiscoveredKey(ctx context.Context, address string) (store.DiscoveredKey, error)
	DiscoveredKeys(ctx context.Context) ([]store.DiscoveredKey, error)
}

// Fetcher looks one address's key up (the WKD client).
type Fetcher interface {
	Fetch(ctx context.Context, addr string) (*openpgp.Entity, error)
}

// ErrDomainNotAsked: the address's domain is denied, or not among the allowed ones.
var ErrDomainNotAsked = errors.New("WKD is not asked for this domain")

// AbsentError is a cached "no key": why (a refused answer's reason), until when.
type AbsentError struct {
	Reason string
	Until  time.Time
}

func (e *AbsentError) Error() string {
	return "no key by WKD (" + e.Reason + "), cached until " + e.Until.UTC().Format(time.RFC3339)
}

// Cache is the WKD lookups of outbound mail: answers from the store while they are fresh, a
// lookup otherwise, waited for up to the budget. It implements outbound.Discoverer.
type Cache struct {
	cfg   CacheConfig
	fetch Fetcher
	st    CacheStore
	now   func() time.Time
	log   *slog.Logger

	obs CacheObserver

	mu       sync.Mutex
	parsed   map[string]parsedKey    // by address key: the stored key last parsed
	inflight map[string]*lookup      // by address key
	domains  map[string]*domainSlots // lookups under way per domain
}

// parsedKey is a stored key as parsed, for the row it was read from (its fetch time and
// fingerprint): RCPT reads the row every time (another node may have refreshed it) but parses its
// key only when the row changed.
type parsedKey struct {
	fetched time.Time
	fp      string
	ents    openpgp.EntityList
}

// domainSlots bounds the lookups to one domain: a token per lookup under way.
type domainSlots struct {
	tokens chan struct{}
	users  int // lookups holding or waiting for a token; the entry goes at zero
}

// CacheObserver is told what lookups found (ops.Metrics implements it).
type CacheObserver interface {
	// WKDLookup: one lookup's outcome: found, not-published, refused (an answer sealpost
	// would not use: its reason is logged) or unreachable.
	WKDLookup(outcome string)
	// WKDPending: an RCPT's lookup outlasted the budget (451 4.4.3 where encryption is required).
	WKDPending()
}

type nopCacheObserver struct{}

func (nopCacheObserver) WKDLookup(string) {}
func (nopCacheObserver) WKDPending()      {}

// lookup is one fetch under way; done closes when its answer is stored.
type lookup struct {
	done chan struct{}
	key  *openpgp.Entity
	err  error
}

// CacheOption configures a Cache.
type CacheOption func(*Cache)

// WithCacheClock sets the clock (tests).
func WithCacheClock(now func() time.Time) CacheOption { return func(c *Cache) { c.now = now } }

// WithCacheObserver sets who is told the lookups' outcomes.
func WithCacheObserver(o CacheObserver) CacheOption { return func(c *Cache) { c.obs = o } }

// WithCacheLogger sets the logger (default slog.Default()).
func WithCacheLogger(l *slog.Logger) CacheOption { return func(c *Cache) { c.log = l } }

// NewCache returns the cache over st, looking keys up with fetch.
func NewCache(cfg CacheConfig, fetch Fetcher, st CacheStore, opts ...CacheOption) (*Cache, error) {
	if err := cfg.Validate("discovery.wkd."); err != nil {
		return nil, err
	}
	if fetch == nil || st == nil {
		return nil, errors.New("discovery: a WKD cache needs a fetcher and a store")
	}
	c := &Cache{cfg: cfg, fetch: fetch, st: st, now: time.Now, log: slog.Default(), obs: nopCacheObserver{},
		parsed: map[string]parsedKey{}, inflight: map[string]*lookup{}, domains: map[string]*domainSlots{}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// cacheKey is the address as the cache stores it: normalised, its domain lower-cased. The
// local part keeps its case: the WKD hash lower-cases it, the user ID comparison does not.
func cacheKey(addr string) (string, error) { return address.Normalize(addr) }

// asked reports whether domain may be asked.
func (c *Cache) asked(domain string) bool {
	domain = strings.ToLower(domain)
	match := func(list []string) bool {
		return slices.ContainsFunc(list, func(d string) bool { return strings.EqualFold(d, domain) })
	}
	if match(c.cfg.Deny) {
		return false
	}
	return len(c.cfg.Allow) == 0 || match(c.cfg.Allow)
}

// Discover returns addr's key by WKD: from the store while fresh (starting a refresh in the
// background when it is due), else from a lookup waited for up to the budget; keys.ErrLookupPending
// when the budget ran out first (the lookup goes on and stores its answer), an *AbsentError for a
// cached absence, ErrDomainNotAsked, or the lookup's error.
func (c *Cache) Discover(ctx context.Context, addr string) (*openpgp.Entity, error) {
	if !c.cfg.Enabled {
		return nil, ErrDomainNotAsked
	}
	key, err := cacheKey(addr)
	if err != nil {
		return nil, err
	}
	if !c.asked(address.Domain(key)) {
		return nil, ErrDomainNotAsked
	}
	now := c.now()
	stored, err := c.st.DiscoveredKey(ctx, key)
	switch {
	case err == nil && now.Before(stored.Expires):
		if stored.Data == nil {
			return nil, &AbsentError{Reason: stored.Reason, Until: stored.Expires}
		}
		e, err := c.usable(stored, key, now)
		if err == nil {
			if !now.Before(stored.Expires.Add(-time.Duration(c.cfg.Refresh))) {
				c.start(key) // due: refreshed in the background, used meanwhile
			}
			return e, nil
		}
		// expired or revoked since it was stored: look it up again now
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("discovered keys: %w", err)
	}
	l := c.start(key)
	budget := time.NewTimer(time.Duration(c.cfg.Budget))
	defer budget.Stop()
	select {
	case <-l.done:
		return l.key, l.err
	case <-budget.C:
	case <-ctx.Done():
	}
	c.obs.WKDPending()
	return nil, keys.ErrLookupPending
}

// usable is a stored key, parsed (or as parsed before from the same row), checked again for key
// at now: it may have expired since.
func (c *Cache) usable(stored store.DiscoveredKey, key string, now time.Time) (*openpgp.Entity, error) {
	c.mu.Lock()
	p, ok := c.parsed[key]
	c.mu.Unlock()
	if !ok || !p.fetched.Equal(stored.Fetched) || p.fp != stored.Fingerprint {
		ents, err := keys.ParsePGPKeys(stored.Data)
		if err != nil {
			return nil, err
		}
		p = parsedKey{fetched: stored.Fetched, fp: stored.Fingerprint, ents: ents}
		c.mu.Lock()
		c.parsed[key] = p
		if len(c.parsed) > maxCached {
			evictOne(c.parsed, key)
		}
		c.mu.Unlock()
	}
	d := keys.NewDirectory(nil, nil, keys.WithPGPKeys(p.ents...), keys.WithClock(func() time.Time { return now }))
	return d.LookupPGP(key)
}

// start returns the lookup of key under way, or starts one. It runs detached from any caller, so
// that a client that gave up at the budget still finds its answer stored.
func (c *Cache) start(key string) *lookup {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.inflight[key]; ok {
		return l
	}
	l := &lookup{done: make(chan struct{})}
	c.inflight[key] = l
	go func() {
		defer func() {
			c.mu.Lock()
			delete(c.inflight, key)
			c.mu.Unlock()
			close(l.done)
		}()
		release := c.slot(address.Domain(key))
		defer release()
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.cfg.WKD.Timeout)+time.Second)
		defer cancel()
		l.key, l.err = c.fetch.Fetch(ctx, key)
		c.obs.WKDLookup(outcome(l.err))
		c.store(ctx, key, l.key, l.err)
	}()
	return l
}

// slot waits for one of the domain's PerDomain lookup slots and returns its release.
func (c *Cache) slot(domain string) (release func()) {
	domain = strings.ToLower(domain)
	c.mu.Lock()
	d := c.domains[domain]
	if d == nil {
		d = &domainSlots{tokens: make(chan struct{}, c.cfg.PerDomain)}
		c.domains[domain] = d
	}
	d.users++
	c.mu.Unlock()
	d.tokens <- struct{}{}
	return func() {
		<-d.tokens
		c.mu.Lock()
		if d.users--; d.users == 0 {
			delete(c.domains, domain)
		}
		c.mu.Unlock()
	}
}

// outcome names a lookup's result for the observer.
func outcome(err error) string {
	switch {
	case err == nil:
		return "found"
	case errors.Is(err, ErrWKDNotFound):
		return "not-published"
	case answered(err):
		return "refused"
	}
	return "unreachable"
}

// store records a lookup's answer. A key found replaces what was stored; a revocation, a refused
// answer or "nothing published" ends the use of a key found before at once; a failure to reach
// the server leaves a key found before in use until it expires, and is otherwise an absence.
func (c *Cache) store(ctx context.Context, key string, e *openpgp.Entity, err error) {
	now := c.now()
	rec := store.DiscoveredKey{Address: key, Fetched: now}
	if err == nil {
		var b bytes.Buffer
		if serr := e.Serialize(&b); serr != nil {
			err = serr
		} else {
			rec.Data, rec.Fingerprint, rec.Expires = b.Bytes(), keys.PGPFingerprint(e), now.Add(time.Duration(c.cfg.Found))
		}
	}
	if err != nil {
		if !answered(err) {
			if old, oerr := c.st.DiscoveredKey(ctx, key); oerr == nil && old.Data != nil && now.Before(old.Expires) {
				c.log.Warn("WKD refresh failed; the key found before stays in use until it expires", "domain", address.Domain(key), "err", err.Error())
				return
			}
		}
		rec.Reason, rec.Expires = reason(err), now.Add(time.Duration(c.cfg.Absent))
		c.log.Info("no key by WKD", "domain", address.Domain(key), "reason", rec.Reason)
	}
	if perr := c.st.PutDiscoveredKey(ctx, rec); perr != nil {
		c.log.Error("cannot store a WKD answer", "domain", address.Domain(key), "err", perr.Error())
	}
}

// answered reports whether err is the server's answer (nothing published, a key refused) rather
// than a failure to reach it.
func answered(err error) bool {
	var we *WKDError
	return errors.Is(err, ErrWKDNotFound) || (errors.As(err, &we) && !errors.Is(err, ErrWKDTransport))
}

// reason is err as the store keeps it: at most 200 bytes of one line, what matters first (a
// revocation, then the answer's reason without the URL).
func reason(err error) string {
	msg := err.Error()
	var we *WKDError
	if errors.As(err, &we) {
		msg = we.Reason.Error()
	}
	if errors.Is(err, keys.ErrRevoked) {
		msg = "key revoked: " + msg
	}
	s := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}

// Run refreshes, every interval until ctx ends, each stored key that is due (within refresh_before
// of its expiry), so that a key in use is renewed — or its revocation noticed — before RCPT needs it.
func (c *Cache) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.refreshDue(ctx)
		}
	}
}

// refreshDue starts a lookup of every stored key within refresh_before of its expiry.
func (c *Cache) refreshDue(ctx context.Context) {
	if !c.cfg.Enabled {
		return
	}
	all, err := c.st.DiscoveredKeys(ctx)
	if err != nil {
		c.log.Warn("cannot list discovered keys for refresh", "err", err.Error())
		return
	}
	due := c.now().Add(time.Duration(c.cfg.Refresh))
	for _, k := range all {
		if k.Data != nil && k.Expires.Before(due) && c.asked(address.Domain(k.Address)) {
			c.start(k.Address)
		}
	}
}
