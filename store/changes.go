package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Topics of ChangeVersions and Watch: each names the writes that bump it, so
// that the other nodes sharing the store reload what changed.
const (
	TopicRegistrations = "registrations" // Register, Unregister
	TopicDirectory     = "directory"     // PutRecipientKey, RemoveRecipientKey
	TopicHeld          = "held"          // Hold, Release
	// TopicTokens lets a node that caches API tokens follow their changes.
	TopicTokens = "tokens" // PutAPIToken, RevokeAPIToken
)

// topics are every topic, in the order Watch reports them.
var topics = []string{TopicDirectory, TopicHeld, TopicRegistrations, TopicTokens}

// DefaultWatchPoll is how often Watch reads the versions when its poll
// argument is not positive: the fallback when no NOTIFY wakes it (SQLite,
// or the listening connection down).
const DefaultWatchPoll = time.Second

// notifyChannel is the PostgreSQL channel of pg_notify: its payload is the
// topic whose version was bumped.
const notifyChannel = "sealpost_changes"

// Reconnecting the listening connection waits from minListenBackoff, doubled
// at each failure up to maxListenBackoff: PostgreSQL being down costs a
// connection attempt every few seconds, not a busy loop.
const (
	minListenBackoff = 100 * time.Millisecond
	maxListenBackoff = 5 * time.Second
)

// sqliteBump records a change of topic in the write transaction tx.
func sqliteBump(ctx context.Context, tx *sql.Tx, topic string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO change_versions (topic, version) VALUES (?, 1)
		ON CONFLICT (topic) DO UPDATE SET version = version + 1`, topic)
	if err != nil {
		return fmt.Errorf("bump %s: %w", topic, err)
	}
	return nil
}

// pgBump records a change of topic in tx and notifies the listeners, who
// hear it when tx commits (and never if it rolls back).
func pgBump(ctx context.Context, tx pgx.Tx, topic string) error {
	_, err := tx.Exec(ctx, `WITH v AS (
			INSERT INTO change_versions (topic, version) VALUES ($1, 1)
			ON CONFLICT (topic) DO UPDATE SET version = change_versions.version + 1 RETURNING version)
		SELECT pg_notify('`+notifyChannel+`', $1) FROM v`, topic)
	if err != nil {
		return fmt.Errorf("bump %s: %w", topic, err)
	}
	return nil
}

// sqliteWrite runs f in one write transaction and, when f reports that it
// changed something, bumps topic in the same transaction.
func (s *SQLite) sqliteWrite(ctx context.Context, topic string, f func(tx *sql.Tx) (changed bool, err error)) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	changed, err := f(tx)
	if err != nil {
		return err
	}
	if changed {
		if err := sqliteBump(ctx, tx, topic); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// pgWrite runs f in one transaction and, when f reports that it changed
// something, bumps topic (and notifies) in the same transaction.
func (p *Postgres) pgWrite(ctx context.Context, topic string, f func(tx pgx.Tx) (changed bool, err error)) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		changed, err := f(tx)
		if err != nil || !changed {
			return err
		}
		return pgBump(ctx, tx, topic)
	})
}

// changeVersions reads every topic's version, written once for both databases (sqlconn.go).
func changeVersions(ctx context.Context, db database) (map[string]int64, error) {
	out := make(map[string]int64, len(topics))
	for _, t := range topics {
		out[t] = 0
	}
	err := db.query(ctx, `SELECT topic, version FROM change_versions`, nil, func(r scanner) error {
		var t string
		var v int64
		if err := r.Scan(&t, &v); err != nil {
			return err
		}
		if _, known := out[t]; known {
			out[t] = v
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("change versions: %w", err)
	}
	return out, nil
}

// ChangeVersions returns the version of every topic: how many writes of the
// topic were committed, 0 when it never changed.
func (s *SQLite) ChangeVersions(ctx context.Context) (map[string]int64, error) {
	return changeVersions(ctx, s.sql())
}

// ChangeVersions is SQLite.ChangeVersions on PostgreSQL.
func (p *Postgres) ChangeVersions(ctx context.Context) (map[string]int64, error) {
	return changeVersions(ctx, p.sql())
}

// Watch blocks until ctx ends, calling f(topic) (on Watch's goroutine, one
// call at a time) for every topic whose version differs from the one it saw
// last. Its baseline is since, the ChangeVersions the caller read before it
// loaded what the topics announce, so that a write between that load and
// Watch's start is reported; with since nil, its own first read is the
// baseline (and such a write is missed). It reads the versions then again
// every poll (DefaultWatchPoll when poll <= 0). A failed read is retried at
// the next wake-up: changes made meanwhile are seen then, by the comparison.
//
// SQLite has no notifications: other processes' writes are seen at the next
// poll.
func (s *SQLite) Watch(ctx context.Context, poll time.Duration, since map[string]int64, f func(topic string)) {
	watchVersions(ctx, poll, nil, since, s.ChangeVersions, f)
}

// Watch is SQLite.Watch on PostgreSQL (since is its baseline alike), reading
// the versions also at once when a node's write is notified: Watch LISTENs
// on a connection of its own (not one of the pool), reconnecting with a
// capped backoff when it drops. Changes made while PostgreSQL was down are
// seen when it is back, by the comparison.
func (p *Postgres) Watch(ctx context.Context, poll time.Duration, since map[string]int64, f func(topic string)) {
	ctx, cancel := context.WithCancel(ctx)
	wake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() { p.listen(ctx, wake) })
	defer wg.Wait()
	defer cancel()
	watchVersions(ctx, poll, wake, since, p.ChangeVersions, f)
}

// watchVersions is the loop of Watch: read, compare with seen (since at
// first), report, wait for the ticker or wake.
func watchVersions(ctx context.Context, poll time.Duration, wake <-chan struct{}, since map[string]int64, read func(context.Context) (map[string]int64, error), f func(string)) {
	if poll <= 0 {
		poll = DefaultWatchPoll
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	seen := since
	for {
		if now, err := read(ctx); err == nil {
			if seen != nil {
				for _, t := range topics {
					if now[t] != seen[t] {
						f(t)
					}
				}
			}
			seen = now
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		}
	}
}

// listen keeps a connection LISTENing on notifyChannel until ctx ends, and
// signals wake (without blocking: one pending wake-up is enough) for each
// notification and after each (re)connection, since notifications sent
// while it was away are lost.
func (p *Postgres) listen(ctx context.Context, wake chan<- struct{}) {
	signal := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	backoff := minListenBackoff
	for ctx.Err() == nil {
		err := p.listenOnce(ctx, func() { backoff = minListenBackoff; signal() })
		if ctx.Err() != nil || err == nil {
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxListenBackoff)
	}
}

// listenOnce connects, LISTENs, calls notified once listening and then for
// each notification, and returns when the connection fails or ctx ends.
func (p *Postgres) listenOnce(ctx context.Context, notified func()) error {
	conn, err := pgx.ConnectConfig(ctx, p.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer func() {
		// A dead connection must not hold Watch up on its way out.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+notifyChannel); err != nil {
		return err
	}
	notified()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return nil
			}
			return err
		}
		notified()
	}
}
