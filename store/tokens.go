package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The bank's API authenticates its callers with tokens: the store keeps a
// token's SHA-256 and never its secret. A POST with an Idempotency-Key is
// recorded as an idempotent call, so that a retry gets the first call's
// response instead of running it again.

// Limits of API tokens and idempotent calls.
const (
	maxTokenName   = 100     // characters
	maxTokenScopes = 32      // scopes of one token
	maxScope       = 32      // letters of one scope
	maxIdemKey     = 255     // bytes of an Idempotency-Key
	maxContentType = 255     // bytes of a stored response's Content-Type
	maxIdemBody    = 1 << 20 // bytes of a stored response's body
	sha256Size     = 32
	minHTTPStatus  = 100
	maxHTTPStatus  = 599
)

// A token ID is tokenIDPrefix and tokenIDSuffix characters.
const (
	tokenIDPrefix = "tok_"
	tokenIDSuffix = 16
)

// scopeSeparator joins a token's scopes in their column: no scope holds it.
const scopeSeparator = " "

const tokenColumns = `id, name, hash, scopes, created, expires, revoked`

// APIToken is a token of the bank's API, as the store keeps it.
type APIToken struct {
	// ID is public, shown in lists and the audit log: "tok_" and 16
	// lower-case base32 characters (the api package makes it).
	ID string
	// Name is the label given at creation, 1 to 100 printable characters.
	Name string
	// Hash is the SHA-256 of the secret, exactly 32 bytes; the secret itself
	// is never stored.
	Hash []byte
	// Scopes are non-empty, each 1 to 32 letters a-z; stored and returned
	// sorted, without duplicates (at most 32).
	Scopes []string
	// Created defaults to the current time when zero.
	Created time.Time
	// Expires is zero for a token that never expires.
	Expires time.Time
	// Revoked is zero for a token that is not revoked.
	Revoked time.Time
}

// optStamp converts an optional time for storage: zero stays 0.
func optStamp(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// optUnstamp is the inverse of optStamp.
func optUnstamp(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return unstamp(n)
}

// checkTokenID refuses what is not "tok_" and 16 lower-case letters or
// digits (a superset of lower-case base32).
func checkTokenID(id string) error {
	suffix, ok := strings.CutPrefix(id, tokenIDPrefix)
	if !ok || len(suffix) != tokenIDSuffix || strings.IndexFunc(suffix, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	}) >= 0 {
		return fmt.Errorf("%w: token ID %q (want %s and %d lower-case base32 characters)", ErrInvalid, id, tokenIDPrefix, tokenIDSuffix)
	}
	return nil
}

// printable reports whether s is valid UTF-8 of min to max printable
// characters.
func printable(s string, min, max int) bool {
	n := utf8.RuneCountInString(s)
	return utf8.ValidString(s) && n >= min && n <= max && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

// lowerWord reports whether s is 1 to max letters a-z.
func lowerWord(s string, max int) bool {
	return len(s) >= 1 && len(s) <= max && strings.IndexFunc(s, func(r rune) bool { return r < 'a' || r > 'z' }) < 0
}

// checkAPIToken validates t and returns its scopes sorted, without
// duplicates.
func checkAPIToken(t APIToken) ([]string, error) {
	if err := checkTokenID(t.ID); err != nil {
		return nil, err
	}
	if !printable(t.Name, 1, maxTokenName) {
		return nil, fmt.Errorf("%w: token name is not 1 to %d printable characters", ErrInvalid, maxTokenName)
	}
	if len(t.Hash) != sha256Size {
		return nil, fmt.Errorf("%w: token hash of %d bytes (want %d)", ErrInvalid, len(t.Hash), sha256Size)
	}
	scopes := slices.Compact(slices.Sorted(slices.Values(t.Scopes)))
	if len(scopes) == 0 || len(scopes) > maxTokenScopes {
		return nil, fmt.Errorf("%w: %d token scopes (want 1 to %d)", ErrInvalid, len(scopes), maxTokenScopes)
	}
	for _, s := range scopes {
		if !lowerWord(s, maxScope) {
			return nil, fmt.Errorf("%w: token scope %q (want 1 to %d letters a-z)", ErrInvalid, s, maxScope)
		}
	}
	return scopes, nil
}

func scanAPIToken(r scanner) (APIToken, error) {
	var t APIToken
	var name []byte
	var scopes string
	var created, expires, revoked int64
	if err := r.Scan(&t.ID, &name, &t.Hash, &scopes, &created, &expires, &revoked); err != nil {
		return APIToken{}, err
	}
	t.Name, t.Scopes = string(name), strings.Split(scopes, scopeSeparator)
	t.Created, t.Expires, t.Revoked = unstamp(created), optUnstamp(expires), optUnstamp(revoked)
	return t, nil
}

// tokenArgs are the arguments of tokenColumns for t, whose scopes are
// checked.
func tokenArgs(t APIToken, scopes []string) []any {
	return []any{t.ID, b(t.Name), t.Hash, strings.Join(scopes, scopeSeparator), stamp(t.Created), optStamp(t.Expires), optStamp(t.Revoked)}
}

const insertToken = `INSERT INTO api_tokens (` + tokenColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`

func putAPIToken(ctx context.Context, db database, t APIToken) error {
	scopes, err := checkAPIToken(t)
	if err != nil {
		return err
	}
	var added bool
	err = db.write(ctx, TopicTokens, func(c conn) (bool, error) {
		n, err := c.exec(ctx, insertToken, tokenArgs(t, scopes)...)
		added = n > 0
		return added, err
	})
	if err != nil {
		return fmt.Errorf("put API token: %w", err)
	}
	if !added {
		return fmt.Errorf("put API token %s: ID or hash taken: %w", t.ID, ErrConflict)
	}
	return nil
}

func apiTokenByHash(ctx context.Context, db database, hash []byte) (APIToken, error) {
	if len(hash) != sha256Size {
		return APIToken{}, fmt.Errorf("API token: %w", ErrNotFound)
	}
	t, err := scanAPIToken(db.queryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE hash = $1`, hash))
	if errors.Is(err, errNoRows) {
		return APIToken{}, fmt.Errorf("API token: %w", ErrNotFound)
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("API token: %w", err)
	}
	return t, nil
}

func listAPITokens(ctx context.Context, c conn) ([]APIToken, error) {
	out := []APIToken{}
	err := c.query(ctx, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY created, id`, nil, func(r scanner) error {
		t, err := scanAPIToken(r)
		out = append(out, t)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("API tokens: %w", err)
	}
	return out, nil
}

func revokeAPIToken(ctx context.Context, db database, id string, at time.Time) error {
	if err := checkTokenID(id); err != nil {
		return err
	}
	var revoked bool
	err := db.write(ctx, TopicTokens, func(c conn) (bool, error) {
		n, err := c.exec(ctx, `UPDATE api_tokens SET revoked = $2 WHERE id = $1 AND revoked = 0`, id, stamp(at))
		revoked = n > 0
		return revoked, err
	})
	if err != nil {
		return fmt.Errorf("revoke API token: %w", err)
	}
	if revoked {
		return nil
	}
	return absentOrConflict(ctx, db, `SELECT 1 FROM api_tokens WHERE id = $1`, []any{id}, "revoke API token "+id, "revoked already")
}

// absentOrConflict explains why a conditional write changed nothing: the
// row that q selects is not there (ErrNotFound), or it is but the condition
// failed (ErrConflict, with why).
func absentOrConflict(ctx context.Context, c conn, q string, args []any, what, why string) error {
	var one int
	err := c.queryRow(ctx, q, args...).Scan(&one)
	if errors.Is(err, errNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %s: %w", what, why, ErrConflict)
}

// PutAPIToken stores t, its scopes sorted and without duplicates, Created
// defaulting to now; ErrInvalid for a malformed token, ErrConflict when its
// ID or Hash is taken. It bumps TopicTokens.
func (s *SQLite) PutAPIToken(ctx context.Context, t APIToken) error {
	return putAPIToken(ctx, s.sql(), t)
}

// PutAPIToken stores t, its scopes sorted and without duplicates, Created
// defaulting to now; ErrInvalid for a malformed token, ErrConflict when its
// ID or Hash is taken. It bumps TopicTokens.
func (p *Postgres) PutAPIToken(ctx context.Context, t APIToken) error {
	return putAPIToken(ctx, p.sql(), t)
}

// APITokenByHash returns the token whose Hash is hash, revoked or expired
// ones too (the caller decides); ErrNotFound when there is none, and for a
// hash that is not 32 bytes.
func (s *SQLite) APITokenByHash(ctx context.Context, hash []byte) (APIToken, error) {
	return apiTokenByHash(ctx, s.sql(), hash)
}

// APITokenByHash returns the token whose Hash is hash, revoked or expired
// ones too (the caller decides); ErrNotFound when there is none, and for a
// hash that is not 32 bytes.
func (p *Postgres) APITokenByHash(ctx context.Context, hash []byte) (APIToken, error) {
	return apiTokenByHash(ctx, p.sql(), hash)
}

// APITokens lists every token, by Created and then ID; empty (and no
// error) when there are none.
func (s *SQLite) APITokens(ctx context.Context) ([]APIToken, error) {
	return listAPITokens(ctx, s.sql())
}

// APITokens lists every token, by Created and then ID; empty (and no
// error) when there are none.
func (p *Postgres) APITokens(ctx context.Context) ([]APIToken, error) {
	return listAPITokens(ctx, p.sql())
}

// RevokeAPIToken records that token id was revoked at at (now when zero);
// ErrInvalid for a malformed ID, ErrNotFound for an unknown one,
// ErrConflict when it is revoked already (of two revoking at once, one
// succeeds). It bumps TopicTokens.
func (s *SQLite) RevokeAPIToken(ctx context.Context, id string, at time.Time) error {
	return revokeAPIToken(ctx, s.sql(), id, at)
}

// RevokeAPIToken records that token id was revoked at at (now when zero);
// ErrInvalid for a malformed ID, ErrNotFound for an unknown one,
// ErrConflict when it is revoked already (of two revoking at once, one
// succeeds). It bumps TopicTokens.
func (p *Postgres) RevokeAPIToken(ctx context.Context, id string, at time.Time) error {
	return revokeAPIToken(ctx, p.sql(), id, at)
}
