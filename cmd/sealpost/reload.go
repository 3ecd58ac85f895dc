package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sealpost/sealpost/keys"
)

// reloadInterval is how often the data directory's roots/ and recipients/ are checked for changes.
const reloadInterval = 2 * time.Second

// directoryUser is what takes a new recipient directory: the outbound gateway and the inbound
// pipeline. Sessions in progress keep the directory they started with.
type directoryUser interface {
	SetDirectory(*keys.Directory)
}

// reloader rebuilds the recipient directory and trusted roots from the data directory on SIGHUP
// (and Reload) and whenever a file under roots/ or recipients/ changes. A new state that does not
// load (a bad file) is refused as a whole: the old directory stays in use, and the log says why.
type reloader struct {
	dir     keys.DataDir
	users   []directoryUser
	log     *slog.Logger
	trigger chan chan error
	seen    string
}

func newReloader(dir keys.DataDir, log *slog.Logger, users ...directoryUser) *reloader {
	r := &reloader{dir: dir, users: users, log: log, trigger: make(chan chan error)}
	r.seen = r.stamp()
	return r
}

// stamp names the state of roots/ and recipients/: each file's name, size and modification time.
func (r *reloader) stamp() string {
	var b strings.Builder
	for _, sub := range []string{"roots", "recipients"} {
		ents, err := os.ReadDir(filepath.Join(string(r.dir), sub))
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

// reload loads the directory and hands it to every user, or keeps the old one.
func (r *reloader) reload(why string) error {
	r.seen = r.stamp()
	d, err := r.dir.Directory()
	if err != nil {
		r.log.Error("recipient directory not reloaded; the previous one stays in use", "trigger", why, "error", err)
		return err
	}
	for _, u := range r.users {
		u.SetDirectory(d)
	}
	var certs, pgpKeys int
	for _, e := range d.Entries() {
		if e.Kind() == keys.MethodPGP {
			pgpKeys++
		} else {
			certs++
		}
	}
	r.log.Info("recipient directory reloaded", "trigger", why, "certificates", certs, "openpgp_keys", pgpKeys)
	return nil
}

// Reload reloads now (what SIGHUP does) and returns the outcome.
func (r *reloader) Reload(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case r.trigger <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run serves reload requests and watches for file changes until ctx ends.
func (r *reloader) run(ctx context.Context, hup <-chan os.Signal) {
	t := time.NewTicker(reloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = r.reload("SIGHUP")
		case done := <-r.trigger:
			done <- r.reload("request")
		case <-t.C:
			if s := r.stamp(); s != r.seen {
				_ = r.reload("file change")
			}
		}
	}
}
