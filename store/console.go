package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The web console's local accounts and their sessions. An account keeps its password as an
// argon2id hash and its TOTP secret sealed by the console (this package sees opaque bytes), its
// failed sign-ins and when a lockout ends, and the last TOTP time step used, so that a code is
// accepted once. A session is kept by the SHA-256 of its cookie's secret, never the secret.

// schemaV10 (SQLite schema version 10) and pgSchemaV9 (PostgreSQL schema version 9) add them.
const schemaV10 = `CREATE TABLE console_accounts (
		name         BLOB PRIMARY KEY,
		role         TEXT NOT NULL,
		password     BLOB NOT NULL,
		totp         BLOB NOT NULL,
		totp_step    INTEGER NOT NULL,
		failures     INTEGER NOT NULL,
		locked_until INTEGER NOT NULL,
		disabled     INTEGER NOT NULL,
		created      INTEGER NOT NULL,
		updated      INTEGER NOT NULL
	);
	CREATE TABLE console_sessions (
		id_hash   BLOB PRIMARY KEY,
		account   BLOB NOT NULL,
		created   INTEGER NOT NULL,
		last_seen INTEGER NOT NULL,
		expires   INTEGER NOT NULL
	);
	CREATE INDEX console_sessions_account ON console_sessions (account);`

const pgSchemaV9 = `CREATE TABLE console_accounts (
		name         BYTEA PRIMARY KEY,
		role         TEXT NOT NULL,
		password     BYTEA NOT NULL,
		totp         BYTEA NOT NULL,
		totp_step    BIGINT NOT NULL,
		failures     BIGINT NOT NULL,
		locked_until BIGINT NOT NULL,
		disabled     BIGINT NOT NULL,
		created      BIGINT NOT NULL,
		updated      BIGINT NOT NULL
	);
	CREATE TABLE console_sessions (
		id_hash   BYTEA PRIMARY KEY,
		account   BYTEA NOT NULL,
		created   BIGINT NOT NULL,
		last_seen BIGINT NOT NULL,
		expires   BIGINT NOT NULL
	);
	CREATE INDEX console_sessions_account ON console_sessions (account);`

// Console roles, each allowed what the one before is and more.
const (
	RoleAgent    = "agent"
	RoleOperator = "operator"
	RoleAdmin    = "admin"
)

// Limits of console accounts.
const (
	maxConsoleName     = 64
	maxConsolePassword = 512 // bytes of the stored hash
	maxConsoleTOTP     = 512 // bytes of the sealed secret
)

// ConsoleAccount is a local account of the web console.
type ConsoleAccount struct {
	// Name is the sign-in name: 1 to 64 of a-z, 0-9, '.', '-', '_', starting with a letter.
	Name string
	Role string // RoleAgent, RoleOperator or RoleAdmin
	// Password is the argon2id hash (a PHC string); TOTP the sealed TOTP secret. Both are opaque
	// here and never empty.
	Password, TOTP []byte
	// TOTPStep is the last TOTP time step a sign-in used (0: none): a code for it or an earlier
	// one is not accepted again.
	TOTPStep int64
	// Failures counts the failed sign-ins since the last success or lockout; LockedUntil is zero
	// or when a lockout ends.
	Failures    int
	LockedUntil time.Time
	// Disabled is zero, or when the account was disabled: it signs in no more.
	Disabled         time.Time
	Created, Updated time.Time
}

// ConsoleSession is a signed-in session of the console.
type ConsoleSession struct {
	IDHash   []byte // SHA-256 of the cookie's secret (32 bytes)
	Account  string
	Created  time.Time
	LastSeen time.Time
	Expires  time.Time // the session ends then, however active
}

// CheckConsoleName reports whether name is a valid console account name.
func CheckConsoleName(name string) error {
	ok := len(name) >= 1 && len(name) <= maxConsoleName && name[0] >= 'a' && name[0] <= 'z'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
	}
	if !ok {
		return fmt.Errorf("%w: a console account name is 1 to %d of a-z, 0-9, '.', '-', '_', starting with a letter", ErrInvalid, maxConsoleName)
	}
	return nil
}

func checkConsoleAccount(a ConsoleAccount) error {
	if err := CheckConsoleName(a.Name); err != nil {
		return err
	}
	switch {
	case a.Role != RoleAgent && a.Role != RoleOperator && a.Role != RoleAdmin:
		return fmt.Errorf("%w: console role %q (agent, operator, admin)", ErrInvalid, a.Role)
	case len(a.Password) == 0 || len(a.Password) > maxConsolePassword:
		return fmt.Errorf("%w: console password hash of %d bytes", ErrInvalid, len(a.Password))
	case len(a.TOTP) == 0 || len(a.TOTP) > maxConsoleTOTP:
		return fmt.Errorf("%w: console TOTP secret of %d bytes", ErrInvalid, len(a.TOTP))
	}
	return nil
}

const consoleAccountColumns = `name, role, password, totp, totp_step, failures, locked_until, disabled, created, updated`

func scanConsoleAccount(r scanner) (ConsoleAccount, error) {
	var a ConsoleAccount
	var name []byte
	var locked, disabled, created, updated int64
	err := r.Scan(&name, &a.Role, &a.Password, &a.TOTP, &a.TOTPStep, &a.Failures, &locked, &disabled, &created, &updated)
	a.Name, a.LockedUntil, a.Disabled, a.Created, a.Updated = string(name), optUnstamp(locked), optUnstamp(disabled), unstamp(created), unstamp(updated)
	return a, err
}

func putConsoleAccount(ctx context.Context, db database, a ConsoleAccount) error {
	if err := checkConsoleAccount(a); err != nil {
		return err
	}
	if a.Created.IsZero() {
		a.Created = time.Now()
	}
	var added bool
	err := db.write(ctx, "", func(c conn) (bool, error) {
		n, err := c.exec(ctx, `INSERT INTO console_accounts (`+consoleAccountColumns+`) VALUES ($1, $2, $3, $4, 0, 0, 0, 0, $5, $5) ON CONFLICT DO NOTHING`,
			b(a.Name), a.Role, a.Password, a.TOTP, stamp(a.Created))
		added = n > 0
		return added, err
	})
	if err != nil {
		return fmt.Errorf("add console account: %w", err)
	}
	if !added {
		return fmt.Errorf("add console account %s: the name is taken: %w", a.Name, ErrConflict)
	}
	return nil
}

func consoleAccount(ctx context.Context, c conn, name string) (ConsoleAccount, error) {
	if CheckConsoleName(name) != nil {
		return ConsoleAccount{}, fmt.Errorf("console account: %w", ErrNotFound)
	}
	a, err := scanConsoleAccount(c.queryRow(ctx, `SELECT `+consoleAccountColumns+` FROM console_accounts WHERE name = $1`, b(name)))
	if errors.Is(err, errNoRows) {
		return ConsoleAccount{}, fmt.Errorf("console account %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return ConsoleAccount{}, fmt.Errorf("console account: %w", err)
	}
	return a, nil
}

func consoleAccounts(ctx context.Context, c conn) ([]ConsoleAccount, error) {
	out := []ConsoleAccount{}
	err := c.query(ctx, `SELECT `+consoleAccountColumns+` FROM console_accounts ORDER BY name`, nil, func(r scanner) error {
		a, err := scanConsoleAccount(r)
		out = append(out, a)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("console accounts: %w", err)
	}
	return out, nil
}

// updateConsoleAccount runs q (which sets columns of the account $1) and, with endSessions, ends
// the account's sessions, in one transaction; ErrNotFound when there is no such account.
func updateConsoleAccount(ctx context.Context, db database, what, name string, endSessions bool, q string, args ...any) error {
	if err := CheckConsoleName(name); err != nil {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	var found bool
	err := db.write(ctx, "", func(c conn) (bool, error) {
		n, err := c.exec(ctx, q, append([]any{b(name)}, args...)...)
		if found = n > 0; err != nil || !found {
			return false, err
		}
		if endSessions {
			_, err = c.exec(ctx, `DELETE FROM console_sessions WHERE account = $1`, b(name))
		}
		return true, err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !found {
		return fmt.Errorf("%s %s: %w", what, name, ErrNotFound)
	}
	return nil
}

func resetConsoleAccount(ctx context.Context, db database, name string, password, totp []byte, at time.Time) error {
	probe := ConsoleAccount{Name: name, Role: RoleAgent, Password: password, TOTP: totp}
	if err := checkConsoleAccount(probe); err != nil {
		return err
	}
	return updateConsoleAccount(ctx, db, "reset console account", name, true,
		`UPDATE console_accounts SET password = $2, totp = $3, totp_step = 0, failures = 0, locked_until = 0, disabled = 0, updated = $4 WHERE name = $1`,
		password, totp, stamp(at))
}

func disableConsoleAccount(ctx context.Context, db database, name string, at time.Time) error {
	return updateConsoleAccount(ctx, db, "disable console account", name, true,
		`UPDATE console_accounts SET disabled = $2, updated = $2 WHERE name = $1`, stamp(at))
}

// consoleSignInFailed counts a failed sign-in; at the max-th in a row the account is locked until
// at+lockFor and the count starts again. It reports whether this failure locked it.
func consoleSignInFailed(ctx context.Context, db database, name string, at time.Time, max int, lockFor time.Duration) (bool, error) {
	if max < 1 || lockFor <= 0 {
		return false, fmt.Errorf("%w: lockout after %d failures for %v", ErrInvalid, max, lockFor)
	}
	var locked bool
	err := db.write(ctx, "", func(c conn) (bool, error) {
		var failures int64
		err := c.queryRow(ctx, `SELECT failures FROM console_accounts WHERE name = $1`, b(name)).Scan(&failures)
		if errors.Is(err, errNoRows) {
			return false, nil // an unknown name counts nowhere; the caller answers the same
		}
		if err != nil {
			return false, err
		}
		if locked = failures+1 >= int64(max); locked {
			_, err = c.exec(ctx, `UPDATE console_accounts SET failures = 0, locked_until = $2 WHERE name = $1`, b(name), stamp(at.Add(lockFor)))
		} else {
			_, err = c.exec(ctx, `UPDATE console_accounts SET failures = failures + 1 WHERE name = $1`, b(name))
		}
		return true, err
	})
	if err != nil {
		return false, fmt.Errorf("console sign-in failed: %w", err)
	}
	return locked, nil
}

// consoleSignedIn records a sign-in that used TOTP time step step: the failures are forgotten;
// ErrConflict when a sign-in used this step or a later one already (a replayed code).
func consoleSignedIn(ctx context.Context, db database, name string, step int64) error {
	err := updateConsoleAccount(ctx, db, "console sign-in", name, false,
		`UPDATE console_accounts SET totp_step = $2, failures = 0 WHERE name = $1 AND totp_step < $2`, step)
	if errors.Is(err, ErrNotFound) {
		if _, gone := consoleAccount(ctx, db, name); gone != nil {
			return err
		}
		return fmt.Errorf("console sign-in %s: the code was used already: %w", name, ErrConflict)
	}
	return err
}

func putConsoleSession(ctx context.Context, db database, s ConsoleSession) error {
	switch {
	case len(s.IDHash) != sha256Size:
		return fmt.Errorf("%w: a console session is kept by a 32-byte hash", ErrInvalid)
	case CheckConsoleName(s.Account) != nil:
		return fmt.Errorf("%w: console session of account %q", ErrInvalid, s.Account)
	case s.Created.IsZero() || s.Expires.Before(s.Created):
		return fmt.Errorf("%w: console session times", ErrInvalid)
	}
	err := db.write(ctx, "", func(c conn) (bool, error) {
		// Sessions past their end go as new ones begin.
		if _, err := c.exec(ctx, `DELETE FROM console_sessions WHERE expires < $1`, stamp(s.Created)); err != nil {
			return false, err
		}
		_, err := c.exec(ctx, `INSERT INTO console_sessions (id_hash, account, created, last_seen, expires) VALUES ($1, $2, $3, $3, $4)`,
			s.IDHash, b(s.Account), stamp(s.Created), stamp(s.Expires))
		return true, err
	})
	if err != nil {
		return fmt.Errorf("add console session: %w", err)
	}
	return nil
}

// consoleSession returns the session kept by idHash when it has been used within idle of now and
// has not ended, and marks it used now; ErrNotFound otherwise (an idle or ended one is removed).
func consoleSession(ctx context.Context, db database, idHash []byte, now time.Time, idle time.Duration) (ConsoleSession, error) {
	if len(idHash) != sha256Size {
		return ConsoleSession{}, fmt.Errorf("console session: %w", ErrNotFound)
	}
	var s ConsoleSession
	var found bool
	err := db.write(ctx, "", func(c conn) (bool, error) {
		var account []byte
		var created, lastSeen, expires int64
		err := c.queryRow(ctx, `SELECT account, created, last_seen, expires FROM console_sessions WHERE id_hash = $1`, idHash).
			Scan(&account, &created, &lastSeen, &expires)
		if errors.Is(err, errNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if now.After(unstamp(expires)) || now.Sub(unstamp(lastSeen)) > idle {
			_, err := c.exec(ctx, `DELETE FROM console_sessions WHERE id_hash = $1`, idHash)
			return true, err
		}
		found = true
		s = ConsoleSession{IDHash: idHash, Account: string(account), Created: unstamp(created), LastSeen: now, Expires: unstamp(expires)}
		_, err = c.exec(ctx, `UPDATE console_sessions SET last_seen = $2 WHERE id_hash = $1`, idHash, stamp(now))
		return true, err
	})
	if err != nil {
		return ConsoleSession{}, fmt.Errorf("console session: %w", err)
	}
	if !found {
		return ConsoleSession{}, fmt.Errorf("console session: %w", ErrNotFound)
	}
	return s, nil
}

func deleteConsoleSession(ctx context.Context, db database, idHash []byte) error {
	err := db.write(ctx, "", func(c conn) (bool, error) {
		_, err := c.exec(ctx, `DELETE FROM console_sessions WHERE id_hash = $1`, idHash)
		return true, err
	})
	if err != nil {
		return fmt.Errorf("end console session: %w", err)
	}
	return nil
}

// PutConsoleAccount adds a console account (its failures, lockout, TOTP step and Disabled start
// at zero; Created defaults to now); ErrInvalid for a malformed one, ErrConflict when the name is
// taken.
func (s *SQLite) PutConsoleAccount(ctx context.Context, a ConsoleAccount) error {
	return putConsoleAccount(ctx, s.sql(), a)
}

// PutConsoleAccount: see SQLite.PutConsoleAccount.
func (p *Postgres) PutConsoleAccount(ctx context.Context, a ConsoleAccount) error {
	return putConsoleAccount(ctx, p.sql(), a)
}

// ConsoleAccount returns the account name; ErrNotFound when there is none.
func (s *SQLite) ConsoleAccount(ctx context.Context, name string) (ConsoleAccount, error) {
	return consoleAccount(ctx, s.sql(), name)
}

// ConsoleAccount: see SQLite.ConsoleAccount.
func (p *Postgres) ConsoleAccount(ctx context.Context, name string) (ConsoleAccount, error) {
	return consoleAccount(ctx, p.sql(), name)
}

// ConsoleAccounts lists the accounts by name.
func (s *SQLite) ConsoleAccounts(ctx context.Context) ([]ConsoleAccount, error) {
	return consoleAccounts(ctx, s.sql())
}

// ConsoleAccounts: see SQLite.ConsoleAccounts.
func (p *Postgres) ConsoleAccounts(ctx context.Context) ([]ConsoleAccount, error) {
	return consoleAccounts(ctx, p.sql())
}

// ResetConsoleAccount gives the account a new password hash and TOTP secret, enables it, clears
// its failures, lockout and TOTP step, and ends its sessions; ErrNotFound for an unknown one.
func (s *SQLite) ResetConsoleAccount(ctx context.Context, name string, password, totp []byte, at time.Time) error {
	return resetConsoleAccount(ctx, s.sql(), name, password, totp, at)
}

// ResetConsoleAccount: see SQLite.ResetConsoleAccount.
func (p *Postgres) ResetConsoleAccount(ctx context.Context, name string, password, totp []byte, at time.Time) error {
	return resetConsoleAccount(ctx, p.sql(), name, password, totp, at)
}

// DisableConsoleAccount disables the account and ends its sessions; ErrNotFound for an unknown one.
func (s *SQLite) DisableConsoleAccount(ctx context.Context, name string, at time.Time) error {
	return disableConsoleAccount(ctx, s.sql(), name, at)
}

// DisableConsoleAccount: see SQLite.DisableConsoleAccount.
func (p *Postgres) DisableConsoleAccount(ctx context.Context, name string, at time.Time) error {
	return disableConsoleAccount(ctx, p.sql(), name, at)
}

// ConsoleSignInFailed counts a failed sign-in of name (nothing for an unknown name) and locks the
// account for lockFor at the max-th failure in a row; it reports whether it locked it.
func (s *SQLite) ConsoleSignInFailed(ctx context.Context, name string, at time.Time, max int, lockFor time.Duration) (bool, error) {
	return consoleSignInFailed(ctx, s.sql(), name, at, max, lockFor)
}

// ConsoleSignInFailed: see SQLite.ConsoleSignInFailed.
func (p *Postgres) ConsoleSignInFailed(ctx context.Context, name string, at time.Time, max int, lockFor time.Duration) (bool, error) {
	return consoleSignInFailed(ctx, p.sql(), name, at, max, lockFor)
}

// ConsoleSignedIn records a sign-in with TOTP time step step; ErrConflict when that step or a
// later one was used already (of two sign-ins with one code, one succeeds).
func (s *SQLite) ConsoleSignedIn(ctx context.Context, name string, step int64) error {
	return consoleSignedIn(ctx, s.sql(), name, step)
}

// ConsoleSignedIn: see SQLite.ConsoleSignedIn.
func (p *Postgres) ConsoleSignedIn(ctx context.Context, name string, step int64) error {
	return consoleSignedIn(ctx, p.sql(), name, step)
}

// PutConsoleSession keeps a new session (removing those past their end).
func (s *SQLite) PutConsoleSession(ctx context.Context, cs ConsoleSession) error {
	return putConsoleSession(ctx, s.sql(), cs)
}

// PutConsoleSession: see SQLite.PutConsoleSession.
func (p *Postgres) PutConsoleSession(ctx context.Context, cs ConsoleSession) error {
	return putConsoleSession(ctx, p.sql(), cs)
}

// ConsoleSession returns the live session kept by idHash and marks it used now: one used within
// idle and not past its end; ErrNotFound otherwise.
func (s *SQLite) ConsoleSession(ctx context.Context, idHash []byte, now time.Time, idle time.Duration) (ConsoleSession, error) {
	return consoleSession(ctx, s.sql(), idHash, now, idle)
}

// ConsoleSession: see SQLite.ConsoleSession.
func (p *Postgres) ConsoleSession(ctx context.Context, idHash []byte, now time.Time, idle time.Duration) (ConsoleSession, error) {
	return consoleSession(ctx, p.sql(), idHash, now, idle)
}

// DeleteConsoleSession ends a session (signing out); ending one that is not there is not an error.
func (s *SQLite) DeleteConsoleSession(ctx context.Context, idHash []byte) error {
	return deleteConsoleSession(ctx, s.sql(), idHash)
}

// DeleteConsoleSession: see SQLite.DeleteConsoleSession.
func (p *Postgres) DeleteConsoleSession(ctx context.Context, idHash []byte) error {
	return deleteConsoleSession(ctx, p.sql(), idHash)
}
