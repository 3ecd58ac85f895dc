package store

import (
	"context"
	"database/sql"
	"fmt"
)

// maxCustomerThreads bounds what CustomerThreads returns.
const maxCustomerThreads = 200

// CustomerThreads returns the newest support threads of customer (as NormalizeAddress gives the
// address), at most limit (1 to 200), newest first; none (and no error) for an unknown customer.
func (s *SQLite) CustomerThreads(ctx context.Context, customer string, limit int) ([]Thread, error) {
	addr, err := customerThreadsArgs(customer, limit)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT token, customer, method, fingerprint, created, subject
		FROM threads WHERE customer = ? ORDER BY created DESC, token LIMIT ?`, addr, limit)
	if err != nil {
		return nil, fmt.Errorf("customer threads: %w", err)
	}
	return scanThreads(rows, func(r *sql.Rows, t *Thread, at *int64) error {
		return r.Scan(&t.Token, &t.Customer, &t.Method, &t.Fingerprint, at, &t.Subject)
	})
}

// CustomerThreads: see SQLite.CustomerThreads.
func (p *Postgres) CustomerThreads(ctx context.Context, customer string, limit int) ([]Thread, error) {
	addr, err := customerThreadsArgs(customer, limit)
	if err != nil {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, `SELECT token, customer, method, fingerprint, created, subject
		FROM threads WHERE customer = $1 ORDER BY created DESC, token LIMIT $2`, b(addr), limit)
	if err != nil {
		return nil, fmt.Errorf("customer threads: %w", err)
	}
	defer rows.Close()
	out := []Thread{}
	for rows.Next() {
		var t Thread
		var at int64
		if err := rows.Scan(bs{&t.Token}, bs{&t.Customer}, &t.Method, &t.Fingerprint, &at, bs{&t.Subject}); err != nil {
			return nil, fmt.Errorf("customer threads: %w", err)
		}
		t.Created = unstamp(at)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("customer threads: %w", err)
	}
	return out, nil
}

func customerThreadsArgs(customer string, limit int) (string, error) {
	if limit < 1 || limit > maxCustomerThreads {
		return "", fmt.Errorf("%w: customer threads limit %d (1 to %d)", ErrInvalid, limit, maxCustomerThreads)
	}
	addr, err := NormalizeAddress(customer)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return addr, nil
}

func scanThreads(rows *sql.Rows, scan func(*sql.Rows, *Thread, *int64) error) ([]Thread, error) {
	defer rows.Close()
	out := []Thread{}
	for rows.Next() {
		var t Thread
		var at int64
		if err := scan(rows, &t, &at); err != nil {
			return nil, fmt.Errorf("customer threads: %w", err)
		}
		t.Created = unstamp(at)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("customer threads: %w", err)
	}
	return out, nil
}
