package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// IdempotentCall is a POST of the bank's API made with an Idempotency-Key:
// pending while the first call runs, then its response, which a retry with
// the same key gets instead of running the call again. Calls are transient
// (ExpireIdempotent removes them) and not exported.
type IdempotentCall struct {
	// TokenID is the ID of the caller's API token.
	TokenID string
	// Key is the Idempotency-Key header's value, 1 to 255 printable ASCII
	// characters.
	Key string
	// RequestHash is the SHA-256 of the method, path and body: 32 bytes.
	RequestHash []byte
	// Status is 0 while the first call is still running, else the HTTP
	// status of its response.
	Status      int
	ContentType string
	// Body is the response's body, at most 1 MiB; nil when empty.
	Body []byte
	// Created defaults to the current time when zero.
	Created time.Time
}

const idempotentColumns = `token_id, idem_key, request_hash, status, content_type, body, created`

// printableASCII reports whether s is min to max bytes from ' ' to '~'.
func printableASCII(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// checkIdempotentKey validates the key of an idempotent call.
func checkIdempotentKey(tokenID, key string) error {
	if err := checkTokenID(tokenID); err != nil {
		return err
	}
	if !printableASCII(key, 1, maxIdemKey) {
		return fmt.Errorf("%w: Idempotency-Key is not 1 to %d printable ASCII characters", ErrInvalid, maxIdemKey)
	}
	return nil
}

func scanIdempotentCall(r scanner) (IdempotentCall, error) {
	var c IdempotentCall
	var at int64
	if err := r.Scan(&c.TokenID, &c.Key, &c.RequestHash, &c.Status, &c.ContentType, &c.Body, &at); err != nil {
		return IdempotentCall{}, err
	}
	if len(c.Body) == 0 {
		c.Body = nil
	}
	c.Created = unstamp(at)
	return c, nil
}

// beginAttempts bounds how often BeginIdempotent tries again when the call
// it found was abandoned before it could read it.
const beginAttempts = 5

func beginIdempotent(ctx context.Context, db database, call IdempotentCall) (IdempotentCall, bool, error) {
	if err := checkIdempotentKey(call.TokenID, call.Key); err != nil {
		return IdempotentCall{}, false, err
	}
	if len(call.RequestHash) != sha256Size {
		return IdempotentCall{}, false, fmt.Errorf("%w: request hash of %d bytes (want %d)", ErrInvalid, len(call.RequestHash), sha256Size)
	}
	pending := IdempotentCall{TokenID: call.TokenID, Key: call.Key, RequestHash: call.RequestHash, Created: unstamp(stamp(call.Created))}
	for range beginAttempts {
		var stored IdempotentCall
		var fresh, found bool
		err := db.write(ctx, "", func(c conn) (bool, error) {
			n, err := c.exec(ctx, `INSERT INTO idempotent_calls (`+idempotentColumns+`) VALUES ($1, $2, $3, 0, '', $4, $5)
				ON CONFLICT DO NOTHING`, pending.TokenID, pending.Key, pending.RequestHash, []byte{}, pending.Created.UnixNano())
			if fresh = n > 0; fresh || err != nil {
				return fresh, err
			}
			// In its own statement, which sees the row that a concurrent
			// call committed while this one's insert waited for it.
			stored, err = scanIdempotentCall(c.queryRow(ctx, `SELECT `+idempotentColumns+` FROM idempotent_calls
				WHERE token_id = $1 AND idem_key = $2`, pending.TokenID, pending.Key))
			found = err == nil
			if errors.Is(err, errNoRows) {
				err = nil
			}
			return false, err
		})
		switch {
		case err != nil:
			return IdempotentCall{}, false, fmt.Errorf("begin idempotent call: %w", err)
		case fresh:
			return pending, true, nil
		case found:
			return stored, false, nil
		}
	}
	return IdempotentCall{}, false, fmt.Errorf("begin idempotent call: abandoned %d times while being read: %w", beginAttempts, ErrConflict)
}

func finishIdempotent(ctx context.Context, db database, tokenID, key string, status int, contentType string, body []byte) error {
	if err := checkIdempotentKey(tokenID, key); err != nil {
		return err
	}
	switch {
	case status < minHTTPStatus || status > maxHTTPStatus:
		return fmt.Errorf("%w: HTTP status %d", ErrInvalid, status)
	case !printableASCII(contentType, 0, maxContentType):
		return fmt.Errorf("%w: Content-Type is not up to %d printable ASCII characters", ErrInvalid, maxContentType)
	case len(body) > maxIdemBody:
		return fmt.Errorf("%w: response body of %d bytes (at most %d)", ErrInvalid, len(body), maxIdemBody)
	}
	n, err := db.exec(ctx, `UPDATE idempotent_calls SET status = $3, content_type = $4, body = $5
		WHERE token_id = $1 AND idem_key = $2 AND status = 0`, tokenID, key, status, contentType, nonNil(body))
	if err != nil {
		return fmt.Errorf("finish idempotent call: %w", err)
	}
	if n > 0 {
		return nil
	}
	return absentOrConflict(ctx, db, `SELECT 1 FROM idempotent_calls WHERE token_id = $1 AND idem_key = $2`, []any{tokenID, key},
		"finish idempotent call", "finished already")
}

func abandonIdempotent(ctx context.Context, db database, tokenID, key string) error {
	if err := checkIdempotentKey(tokenID, key); err != nil {
		return err
	}
	n, err := db.exec(ctx, `DELETE FROM idempotent_calls WHERE token_id = $1 AND idem_key = $2 AND status = 0`, tokenID, key)
	if err != nil {
		return fmt.Errorf("abandon idempotent call: %w", err)
	}
	if n > 0 {
		return nil
	}
	err = absentOrConflict(ctx, db, `SELECT 1 FROM idempotent_calls WHERE token_id = $1 AND idem_key = $2`, []any{tokenID, key},
		"abandon idempotent call", "finished already")
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func expireIdempotent(ctx context.Context, db database, before time.Time) (int, error) {
	n, err := db.exec(ctx, `DELETE FROM idempotent_calls WHERE created < $1`, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("expire idempotent calls: %w", err)
	}
	return int(n), nil
}

// BeginIdempotent records a pending call (Status 0; c's Status, ContentType
// and Body are not used) for (c.TokenID, c.Key) unless one exists; it
// returns the stored call and fresh=true when it inserted, or the existing
// one (pending or finished, with its own RequestHash) and fresh=false. Of
// calls begun at once with one key, exactly one is fresh. ErrInvalid for a
// malformed token ID, key or request hash.
func (s *SQLite) BeginIdempotent(ctx context.Context, c IdempotentCall) (stored IdempotentCall, fresh bool, err error) {
	return beginIdempotent(ctx, s.sql(), c)
}

// BeginIdempotent records a pending call (Status 0; c's Status, ContentType
// and Body are not used) for (c.TokenID, c.Key) unless one exists; it
// returns the stored call and fresh=true when it inserted, or the existing
// one (pending or finished, with its own RequestHash) and fresh=false. Of
// calls begun at once with one key, exactly one is fresh. ErrInvalid for a
// malformed token ID, key or request hash.
func (p *Postgres) BeginIdempotent(ctx context.Context, c IdempotentCall) (stored IdempotentCall, fresh bool, err error) {
	return beginIdempotent(ctx, p.sql(), c)
}

// FinishIdempotent stores the response of the pending call (status 100 to
// 599, a body of at most 1 MiB); ErrNotFound when there is none,
// ErrConflict when it is finished already.
func (s *SQLite) FinishIdempotent(ctx context.Context, tokenID, key string, status int, contentType string, body []byte) error {
	return finishIdempotent(ctx, s.sql(), tokenID, key, status, contentType, body)
}

// FinishIdempotent stores the response of the pending call (status 100 to
// 599, a body of at most 1 MiB); ErrNotFound when there is none,
// ErrConflict when it is finished already.
func (p *Postgres) FinishIdempotent(ctx context.Context, tokenID, key string, status int, contentType string, body []byte) error {
	return finishIdempotent(ctx, p.sql(), tokenID, key, status, contentType, body)
}

// AbandonIdempotent deletes a pending call (the first call failed with 5xx:
// a retry may run again); deleting what is not there is not an error; a
// finished call is ErrConflict.
func (s *SQLite) AbandonIdempotent(ctx context.Context, tokenID, key string) error {
	return abandonIdempotent(ctx, s.sql(), tokenID, key)
}

// AbandonIdempotent deletes a pending call (the first call failed with 5xx:
// a retry may run again); deleting what is not there is not an error; a
// finished call is ErrConflict.
func (p *Postgres) AbandonIdempotent(ctx context.Context, tokenID, key string) error {
	return abandonIdempotent(ctx, p.sql(), tokenID, key)
}

// ExpireIdempotent deletes the calls, pending or finished, created before
// before and returns how many.
func (s *SQLite) ExpireIdempotent(ctx context.Context, before time.Time) (int, error) {
	return expireIdempotent(ctx, s.sql(), before)
}

// ExpireIdempotent deletes the calls, pending or finished, created before
// before and returns how many.
func (p *Postgres) ExpireIdempotent(ctx context.Context, before time.Time) (int, error) {
	return expireIdempotent(ctx, p.sql(), before)
}
