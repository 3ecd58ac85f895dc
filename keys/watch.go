package keys

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultWatchInterval is how often a Watcher checks roots/ and recipients/ for changes.
const DefaultWatchInterval = 2 * time.Second

// DirectoryUser is what takes a new recipient directory: the outbound and inbound pipelines.
// Sessions in progress keep the directory they started with.
type DirectoryUser interface {
	SetDirectory(*Directory)
}

// Watcher rebuilds the recipient directory and trusted roots from a data directory and the shared
// directory (WithSource) on request (Reload: SIGHUP, a change in the store) and whenever a file under
// roots/ or recipients/ changes, and hands it to its users. A
// new state that does not load (a bad file) is refused as a whole: the users keep the old
// directory, and the log says why.
type Watcher struct {
	dir      DataDir
	source   KeySource // nil: recipients/ only
	users    []DirectoryUser
	log      *slog.Logger
	interval time.Duration

	mu   sync.Mutex // one reload at a time; guards seen
	seen string
}

// WatchOption configures a Watcher at NewWatcher.
type WatchOption func(*Watcher)

// WithLogger sets the logger reloads are reported to (default, and with nil: slog.Default()).
func WithLogger(l *slog.Logger) WatchOption { return func(w *Watcher) { w.log = l } }

// WithSource adds the shared recipient directory to what a reload reads; a change there is announced
// by calling Reload (the store's change feed), as it has no files to watch.
func WithSource(src KeySource) WatchOption { return func(w *Watcher) { w.source = src } }

// WithWatchInterval sets how often Run looks for changed files (default DefaultWatchInterval).
func WithWatchInterval(d time.Duration) WatchOption { return func(w *Watcher) { w.interval = d } }

// NewWatcher watches dir for users. The state of its files now is taken as the one the users
// already have: the first reload happens on the first change or request.
func NewWatcher(dir DataDir, users []DirectoryUser, opts ...WatchOption) *Watcher {
	w := &Watcher{dir: dir, users: users, interval: DefaultWatchInterval}
	for _, o := range opts {
		o(w)
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	if w.interval <= 0 {
		w.interval = DefaultWatchInterval
	}
	w.seen = w.stamp()
	return w
}

// stamp names the state of roots/ and recipients/: each file's name, size and modification time.
func (w *Watcher) stamp() string {
	var b strings.Builder
	for _, sub := range []string{"roots", "recipients"} {
		ents, err := os.ReadDir(filepath.Join(string(w.dir), sub))
		if err != nil {
			fmt.Fprintf(&b, "%s:%v;", sub, err)
			continue
		}
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
		for _, e := range ents {
			info, err := e.Info()
			if err != nil {
				continue
			}
			fmt.Fprintf(&b, "%s/%s:%d:%d;", sub, e.Name(), info.Size(), info.ModTime().UnixNano())
		}
	}
	return b.String()
}

// Reload loads the directory now and hands it to every user, or keeps the old one and returns
// why; trigger names the cause in the log (SIGHUP, request). It does nothing once ctx is done.
func (w *Watcher) Reload(ctx context.Context, trigger string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reload(ctx, trigger)
}

// reload is Reload with w.mu held.
func (w *Watcher) reload(ctx context.Context, trigger string) error {
	w.seen = w.stamp()
	d, err := w.dir.DirectoryFrom(ctx, w.source)
	if err != nil {
		w.log.Error("recipient directory not reloaded; the previous one stays in use", "trigger", trigger, "error", err)
		return err
	}
	for _, u := range w.users {
		u.SetDirectory(d)
	}
	var certs, pgpKeys int
	for _, e := range d.Entries() {
		if e.Kind() == MethodPGP {
			pgpKeys++
		} else {
			certs++
		}
	}
	w.log.Info("recipient directory reloaded", "trigger", trigger, "certificates", certs, "openpgp_keys", pgpKeys)
	return nil
}

// Run reloads whenever a file under roots/ or recipients/ changes, until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.mu.Lock()
			if w.stamp() != w.seen {
				_ = w.reload(ctx, "file change")
			}
			w.mu.Unlock()
		}
	}
}
