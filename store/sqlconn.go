package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The tables of the bank's API, its customer CA and the secure mailbox (API
// tokens, idempotent calls, the audit log, issued certificates, mailbox
// items) are read and written by one implementation for both databases, so
// that their semantics cannot drift apart: each statement is written once,
// with PostgreSQL's $N placeholders (SQLite reads them as ?N), and strings
// from outside go in as bytes, which SQLite keeps as BLOB and PostgreSQL as
// bytea, so that both compare and sort them by their bytes.

// conn runs statements on a database or within one of its transactions.
type conn interface {
	// exec runs q and returns how many rows it changed.
	exec(ctx context.Context, q string, args ...any) (int64, error)
	// queryRow runs q; Scan of its result returns errNoRows when q found none.
	queryRow(ctx context.Context, q string, args ...any) scanner
	// query runs q and calls each for every row.
	query(ctx context.Context, q string, args []any, each func(scanner) error) error
}

// database is a conn on the whole database that also runs transactions.
type database interface {
	conn
	// write runs f in one write transaction and, when topic is not "" and f
	// reports that it changed something, bumps topic in it.
	write(ctx context.Context, topic string, f func(c conn) (changed bool, err error)) error
	// serialize makes the writes of namespace, in transactions that call it,
	// commit one after another across nodes; c is the transaction's.
	serialize(ctx context.Context, c conn, namespace int32) error
}

// errNoRows is what scanning the result of queryRow returns when there was
// no row, in both databases.
var errNoRows = errors.New("store: no rows")

// noRows maps a driver's "no rows" error to errNoRows.
type noRows struct {
	r      scanner
	driver error
}

func (n noRows) Scan(dest ...any) error {
	err := n.r.Scan(dest...)
	if errors.Is(err, n.driver) {
		return errNoRows
	}
	return err
}

// sqliteStatement turns PostgreSQL's placeholders $N into SQLite's ?N, which
// bind the same arguments (the statements hold no other '$').
func sqliteStatement(q string) string {
	out := []byte(q)
	for i, c := range out {
		if c == '$' {
			out[i] = '?'
		}
	}
	return string(out)
}

// sqliteQuerier is what *sql.DB and *sql.Tx have in common.
type sqliteQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

type sqliteConn struct{ q sqliteQuerier }

func (c sqliteConn) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := c.q.ExecContext(ctx, sqliteStatement(q), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c sqliteConn) queryRow(ctx context.Context, q string, args ...any) scanner {
	return noRows{c.q.QueryRowContext(ctx, sqliteStatement(q), args...), sql.ErrNoRows}
}

func (c sqliteConn) query(ctx context.Context, q string, args []any, each func(scanner) error) error {
	rows, err := c.q.QueryContext(ctx, sqliteStatement(q), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

type sqliteDB struct {
	sqliteConn
	s *SQLite
}

func (d sqliteDB) write(ctx context.Context, topic string, f func(conn) (bool, error)) error {
	return d.s.sqliteWrite(ctx, topic, func(tx *sql.Tx) (bool, error) {
		changed, err := f(sqliteConn{tx})
		return changed && topic != "", err
	})
}

// serialize does nothing: SQLite's write transactions take the database's
// one write lock when they begin.
func (sqliteDB) serialize(context.Context, conn, int32) error { return nil }

// sql is s as a database.
func (s *SQLite) sql() database { return sqliteDB{sqliteConn{s.db}, s} }

// pgRunner is what *pgxpool.Pool and pgx.Tx have in common.
type pgRunner interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

type pgConn struct{ q pgRunner }

func (c pgConn) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := c.q.Exec(ctx, q, args...)
	return tag.RowsAffected(), err
}

func (c pgConn) queryRow(ctx context.Context, q string, args ...any) scanner {
	return noRows{c.q.QueryRow(ctx, q, args...), pgx.ErrNoRows}
}

func (c pgConn) query(ctx context.Context, q string, args []any, each func(scanner) error) error {
	rows, err := c.q.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

type pgDB struct {
	pgConn
	p *Postgres
}

func (d pgDB) write(ctx context.Context, topic string, f func(conn) (bool, error)) error {
	return d.p.pgWrite(ctx, topic, func(tx pgx.Tx) (bool, error) {
		changed, err := f(pgConn{tx})
		return changed && topic != "", err
	})
}

// serialize takes the transaction-scoped advisory lock of namespace: the
// transactions that take it commit in the order they took it.
func (pgDB) serialize(ctx context.Context, c conn, namespace int32) error {
	_, err := c.exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, namespace)
	return err
}

// sql is p as a database.
func (p *Postgres) sql() database { return pgDB{pgConn{p.pool}, p} }
