package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// One-time passcodes (package otp) and call verifications keep their state
// here for as long as a code lives and the rate limit's window after it, so
// that a code issued on one node verifies on another. The store never sees
// a code: only the caller's HMAC of it, the HMAC binding it to a
// transaction and, for a call verification, the agent's code sealed by the
// caller. OTP state is transient (ExpireOTPs removes it) and not exported.

// ErrOTPRateLimited means PutOTP stored nothing: the address had as many
// codes as allowed within the window.
var ErrOTPRateLimited = errors.New("store: too many one-time passcodes for the address")

// Limits of a stored one-time passcode.
const (
	maxOTPID      = 64  // bytes of an ID
	maxOTPKind    = 16  // bytes of a kind
	maxOTPPurpose = 32  // bytes of a purpose
	maxOTPSealed  = 256 // bytes of a sealed agent code
	maxOTPDigits  = 10
	minOTPDigits  = 6
	maxOTPTries   = 100
)

// OTP is one one-time passcode or call verification as the store keeps it.
type OTP struct {
	// ID is public, 1 to 64 of a-z, 0-9 and '_' (the otp package makes it).
	ID string
	// Kind tells codes from call verifications ("otp", "call"): 1 to 16
	// letters a-z.
	Kind string
	// TokenID is the API token whose client issued it.
	TokenID string
	// Purpose is 1 to 32 printable ASCII characters.
	Purpose string
	// Address is where the code went; the store keeps only its AddressKey,
	// which the rate limit counts by, and returns Address empty.
	Address string
	// Digits is the code's length, 6 to 10.
	Digits int
	// CodeMAC is the caller's HMAC-SHA-256 of the code, 32 bytes.
	CodeMAC []byte
	// Binding is the caller's HMAC-SHA-256 of the transaction the code
	// confirms: 32 bytes, or nil for none.
	Binding []byte
	// Sealed is the agent's code of a call verification sealed by the
	// caller (at most 256 bytes), nil for other kinds.
	Sealed []byte
	// Created defaults to the current time when zero; Expires is after it.
	Created time.Time
	Expires time.Time
	// AttemptsLeft is how many wrong attempts may still be made, 0 to 100:
	// 0 is locked.
	AttemptsLeft int
	// Used is when it verified, zero while unused.
	Used time.Time
}

const otpColumns = `id, kind, token_id, purpose, digits, code_mac, binding, sealed, created, expires, attempts_left, used`

// otpWord reports whether s is 1 to max of a-z, 0-9 and '_'.
func otpWord(s string, max int) bool {
	if len(s) < 1 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

func checkOTPID(id string) error {
	if !otpWord(id, maxOTPID) {
		return fmt.Errorf("%w: OTP ID %q (want 1 to %d of a-z, 0-9 and _)", ErrInvalid, id, maxOTPID)
	}
	return nil
}

// checkOTP validates o and returns its address key.
func checkOTP(o OTP) (string, error) {
	if err := checkOTPID(o.ID); err != nil {
		return "", err
	}
	if err := checkTokenID(o.TokenID); err != nil {
		return "", err
	}
	key, err := AddressKey(o.Address)
	switch {
	case err != nil:
		return "", err
	case !lowerWord(o.Kind, maxOTPKind):
		return "", fmt.Errorf("%w: OTP kind %q (want 1 to %d letters a-z)", ErrInvalid, o.Kind, maxOTPKind)
	case !printableASCII(o.Purpose, 1, maxOTPPurpose):
		return "", fmt.Errorf("%w: OTP purpose is not 1 to %d printable ASCII characters", ErrInvalid, maxOTPPurpose)
	case o.Digits < minOTPDigits || o.Digits > maxOTPDigits:
		return "", fmt.Errorf("%w: OTP of %d digits (want %d to %d)", ErrInvalid, o.Digits, minOTPDigits, maxOTPDigits)
	case len(o.CodeMAC) != sha256Size:
		return "", fmt.Errorf("%w: OTP code MAC of %d bytes (want %d)", ErrInvalid, len(o.CodeMAC), sha256Size)
	case len(o.Binding) != 0 && len(o.Binding) != sha256Size:
		return "", fmt.Errorf("%w: OTP binding of %d bytes (want %d or none)", ErrInvalid, len(o.Binding), sha256Size)
	case len(o.Sealed) > maxOTPSealed:
		return "", fmt.Errorf("%w: sealed agent code of %d bytes (at most %d)", ErrInvalid, len(o.Sealed), maxOTPSealed)
	case o.AttemptsLeft < 0 || o.AttemptsLeft > maxOTPTries:
		return "", fmt.Errorf("%w: %d OTP attempts (want 0 to %d)", ErrInvalid, o.AttemptsLeft, maxOTPTries)
	}
	return key, nil
}

func scanOTP(r scanner) (OTP, error) {
	var o OTP
	var created, expires, used int64
	if err := r.Scan(&o.ID, &o.Kind, &o.TokenID, &o.Purpose, &o.Digits, &o.CodeMAC, &o.Binding, &o.Sealed,
		&created, &expires, &o.AttemptsLeft, &used); err != nil {
		return OTP{}, err
	}
	if len(o.Binding) == 0 {
		o.Binding = nil
	}
	if len(o.Sealed) == 0 {
		o.Sealed = nil
	}
	o.Created, o.Expires, o.Used = unstamp(created), unstamp(expires), optUnstamp(used)
	return o, nil
}

func putOTP(ctx context.Context, db database, o OTP, limit int, since time.Time) (time.Time, error) {
	key, err := checkOTP(o)
	if err != nil {
		return time.Time{}, err
	}
	if limit < 1 {
		return time.Time{}, fmt.Errorf("%w: OTP rate limit of %d", ErrInvalid, limit)
	}
	created := stamp(o.Created)
	if o.Expires.UnixNano() <= created {
		return time.Time{}, fmt.Errorf("%w: OTP expires before it is created", ErrInvalid)
	}
	var retryFrom int64
	var added bool
	err = db.write(ctx, "", func(c conn) (bool, error) {
		// The address's row serialises its issues across nodes: the count
		// below, in its own statement, sees what the one before committed.
		if _, err := c.exec(ctx, `INSERT INTO otp_rate (address_key) VALUES ($1)
			ON CONFLICT (address_key) DO UPDATE SET address_key = excluded.address_key`, b(key)); err != nil {
			return false, err
		}
		// The limit-th newest code within the window: while it is in it, a
		// new one would make limit+1.
		err := c.queryRow(ctx, `SELECT created FROM otp_codes WHERE address_key = $1 AND created > $2
			ORDER BY created DESC LIMIT 1 OFFSET $3`, b(key), since.UnixNano(), limit-1).Scan(&retryFrom)
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, errNoRows) {
			return false, err
		}
		n, err := c.exec(ctx, `INSERT INTO otp_codes (`+otpColumns+`, address_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12)
			ON CONFLICT DO NOTHING`, o.ID, o.Kind, o.TokenID, o.Purpose, o.Digits, o.CodeMAC, nonNil(o.Binding), nonNil(o.Sealed),
			created, o.Expires.UnixNano(), o.AttemptsLeft, b(key))
		added = n > 0
		return added, err
	})
	switch {
	case err != nil:
		return time.Time{}, fmt.Errorf("put OTP: %w", err)
	case retryFrom != 0:
		return unstamp(retryFrom), fmt.Errorf("put OTP: %w", ErrOTPRateLimited)
	case !added:
		return time.Time{}, fmt.Errorf("put OTP %s: ID taken: %w", o.ID, ErrConflict)
	}
	return time.Time{}, nil
}

func updateOTP(ctx context.Context, db database, id string, f func(o *OTP) (bool, error)) (OTP, error) {
	if err := checkOTPID(id); err != nil {
		return OTP{}, err
	}
	var out OTP
	err := db.write(ctx, "", func(c conn) (bool, error) {
		// A write first, so that the row is this transaction's until it
		// ends: of two updating at once, the second reads what the first
		// wrote.
		n, err := c.exec(ctx, `UPDATE otp_codes SET used = used WHERE id = $1`, id)
		if err != nil {
			return false, err
		}
		if n == 0 {
			return false, ErrNotFound
		}
		o, err := scanOTP(c.queryRow(ctx, `SELECT `+otpColumns+` FROM otp_codes WHERE id = $1`, id))
		if err != nil {
			return false, err
		}
		was, next := o, o
		changed, err := f(&next)
		out = was
		if err != nil || !changed {
			return false, err
		}
		switch {
		case next.AttemptsLeft < 0 || next.AttemptsLeft > was.AttemptsLeft:
			return false, fmt.Errorf("%w: OTP attempts from %d to %d", ErrInvalid, was.AttemptsLeft, next.AttemptsLeft)
		case !was.Used.IsZero() && !next.Used.Equal(was.Used):
			return false, fmt.Errorf("%w: OTP %s is used already", ErrInvalid, id)
		}
		out.AttemptsLeft, out.Used = next.AttemptsLeft, next.Used
		_, err = c.exec(ctx, `UPDATE otp_codes SET attempts_left = $2, used = $3 WHERE id = $1`, id, out.AttemptsLeft, optStamp(out.Used))
		return true, err
	})
	if errors.Is(err, ErrNotFound) {
		return OTP{}, fmt.Errorf("OTP %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return OTP{}, fmt.Errorf("update OTP %s: %w", id, err)
	}
	return out, nil
}

func expireOTPs(ctx context.Context, db database, before time.Time) (int, error) {
	var n int64
	err := db.write(ctx, "", func(c conn) (bool, error) {
		var err error
		if n, err = c.exec(ctx, `DELETE FROM otp_codes WHERE expires < $1`, before.UnixNano()); err != nil {
			return false, err
		}
		// An address's row only serialises its issues: one without codes
		// is made again by the next.
		_, err = c.exec(ctx, `DELETE FROM otp_rate WHERE NOT EXISTS
			(SELECT 1 FROM otp_codes WHERE otp_codes.address_key = otp_rate.address_key)`)
		return n > 0, err
	})
	if err != nil {
		return 0, fmt.Errorf("expire OTPs: %w", err)
	}
	return int(n), nil
}

// PutOTP stores o (AttemptsLeft as given, unused) unless limit codes of any
// kind were stored for o's address (by AddressKey) after since: then it
// stores nothing and returns, with an error wrapping ErrOTPRateLimited, the
// creation of the code whose leaving the window admits the next one. Of
// nodes issuing at once, no more than limit get in. ErrInvalid for a
// malformed o, ErrConflict when its ID is taken.
func (s *SQLite) PutOTP(ctx context.Context, o OTP, limit int, since time.Time) (retryFrom time.Time, err error) {
	return putOTP(ctx, s.sql(), o, limit, since)
}

// PutOTP stores o (AttemptsLeft as given, unused) unless limit codes of any
// kind were stored for o's address (by AddressKey) after since: then it
// stores nothing and returns, with an error wrapping ErrOTPRateLimited, the
// creation of the code whose leaving the window admits the next one. Of
// nodes issuing at once, no more than limit get in. ErrInvalid for a
// malformed o, ErrConflict when its ID is taken.
func (p *Postgres) PutOTP(ctx context.Context, o OTP, limit int, since time.Time) (retryFrom time.Time, err error) {
	return putOTP(ctx, p.sql(), o, limit, since)
}

// UpdateOTP calls f with the stored OTP id (Address empty) and, when f
// reports a change, stores its AttemptsLeft (which may only go down) and
// Used (set once), all in one transaction: of updates made at once on any
// nodes, each sees what the one before it stored. It returns the OTP as
// stored after f. ErrNotFound for an unknown id; f's error is returned
// wrapped and nothing changes.
func (s *SQLite) UpdateOTP(ctx context.Context, id string, f func(o *OTP) (changed bool, err error)) (OTP, error) {
	return updateOTP(ctx, s.sql(), id, f)
}

// UpdateOTP calls f with the stored OTP id (Address empty) and, when f
// reports a change, stores its AttemptsLeft (which may only go down) and
// Used (set once), all in one transaction: of updates made at once on any
// nodes, each sees what the one before it stored. It returns the OTP as
// stored after f. ErrNotFound for an unknown id; f's error is returned
// wrapped and nothing changes.
func (p *Postgres) UpdateOTP(ctx context.Context, id string, f func(o *OTP) (changed bool, err error)) (OTP, error) {
	return updateOTP(ctx, p.sql(), id, f)
}

// ExpireOTPs deletes the OTPs that expired before before and returns how
// many. The rate limit counts stored codes, so before should be no later
// than the start of its window.
func (s *SQLite) ExpireOTPs(ctx context.Context, before time.Time) (int, error) {
	return expireOTPs(ctx, s.sql(), before)
}

// ExpireOTPs deletes the OTPs that expired before before and returns how
// many. The rate limit counts stored codes, so before should be no later
// than the start of its window.
func (p *Postgres) ExpireOTPs(ctx context.Context, before time.Time) (int, error) {
	return expireOTPs(ctx, p.sql(), before)
}
