package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/sealpost/sealpost/internal/pgserver"
	"github.com/sealpost/sealpost/store"
)

// countingStore is a store that counts the calls made through it, by method, for sealpost bench's
// store operations per message.
type countingStore struct {
	backend
	mu    sync.Mutex
	calls map[string]int
}

func newCountingStore(b backend) *countingStore {
	return &countingStore{backend: b, calls: map[string]int{}}
}

func (c *countingStore) count(method string) {
	c.mu.Lock()
	c.calls[method]++
	c.mu.Unlock()
}

// snapshot returns the calls so far, by method.
func (c *countingStore) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

// storeOps describes the calls between two snapshots per message: the total and each method's.
func storeOps(before, after map[string]int, messages int) (float64, string) {
	var total int
	var parts []string
	for m, n := range after {
		d := n - before[m]
		if d == 0 {
			continue
		}
		total += d
		parts = append(parts, fmt.Sprintf("%s %.2f", m, float64(d)/float64(messages)))
	}
	sort.Strings(parts)
	return float64(total) / float64(messages), strings.Join(parts, ", ")
}

func (c *countingStore) NewThread(ctx context.Context, customer, method, fingerprint, subject string) (store.Thread, error) {
	c.count("NewThread")
	return c.backend.NewThread(ctx, customer, method, fingerprint, subject)
}

func (c *countingStore) AddMessage(ctx context.Context, m store.ThreadMessage) error {
	c.count("AddMessage")
	return c.backend.AddMessage(ctx, m)
}

func (c *countingStore) ThreadForMessageIDs(ctx context.Context, ids []string) (store.Thread, error) {
	c.count("ThreadForMessageIDs")
	return c.backend.ThreadForMessageIDs(ctx, ids)
}

func (c *countingStore) Capabilities(ctx context.Context, address string) (store.Capabilities, error) {
	c.count("Capabilities")
	return c.backend.Capabilities(ctx, address)
}

func (c *countingStore) SetCapabilities(ctx context.Context, caps store.Capabilities) error {
	c.count("SetCapabilities")
	return c.backend.SetCapabilities(ctx, caps)
}

func (c *countingStore) Registrations(ctx context.Context, address string) ([]store.Registration, error) {
	c.count("Registrations")
	return c.backend.Registrations(ctx, address)
}

func (c *countingStore) Register(ctx context.Context, r store.Registration) error {
	c.count("Register")
	return c.backend.Register(ctx, r)
}

func (c *countingStore) Unregister(ctx context.Context, address, fingerprint string) error {
	c.count("Unregister")
	return c.backend.Unregister(ctx, address, fingerprint)
}

func (c *countingStore) Hold(ctx context.Context, h store.Held) error {
	c.count("Hold")
	return c.backend.Hold(ctx, h)
}

func (c *countingStore) HeldList(ctx context.Context, includeReleased bool) ([]store.Held, error) {
	c.count("HeldList")
	return c.backend.HeldList(ctx, includeReleased)
}

func (c *countingStore) HeldGet(ctx context.Context, id string) (store.Held, error) {
	c.count("HeldGet")
	return c.backend.HeldGet(ctx, id)
}

func (c *countingStore) Release(ctx context.Context, id string, d store.Decision) error {
	c.count("Release")
	return c.backend.Release(ctx, id, d)
}

func (c *countingStore) Delete(ctx context.Context, id string, d store.Decision) error {
	c.count("Delete")
	return c.backend.Delete(ctx, id, d)
}

// Ping is the wrapped store's, when it has one, so /readyz asks it as without the wrapper.
func (c *countingStore) Ping(ctx context.Context) error {
	if p, ok := c.backend.(pinger); ok {
		return p.Ping(ctx)
	}
	_, err := c.backend.Capabilities(ctx, pingAddress)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// benchPostgres is the PostgreSQL store for the bench: the connection string in dsnFile when
// given, else a private server (internal/pgserver) with a fresh database, stopped by done. The
// private server is durable (fsync and synchronous commits on), as SQLite and the spool are.
func benchPostgres(dsnFile, tmp string) (pg *PostgresConfig, what string, done func(), err error) {
	cfg := &PostgresConfig{DSNFile: dsnFile, PostgresConfig: store.DefaultPostgresConfig()}
	if dsnFile != "" {
		return cfg, "PostgreSQL from " + dsnFile, func() {}, nil
	}
	srv, err := pgserver.StartWith(pgserver.Options{Durable: true})
	if err != nil {
		return nil, "", nil, fmt.Errorf("private PostgreSQL (or give -dsn-file): %w", err)
	}
	db, err := srv.CreateDatabase("bench")
	if err == nil {
		cfg.DSNFile = filepath.Join(tmp, "postgres.dsn")
		err = os.WriteFile(cfg.DSNFile, []byte(srv.PasswordDSN(db, pgserver.Password)+"\n"), 0o600)
	}
	if err != nil {
		srv.Stop()
		return nil, "", nil, err
	}
	return cfg, "a private PostgreSQL on 127.0.0.1 (fsync on)", func() { srv.Stop() }, nil
}
