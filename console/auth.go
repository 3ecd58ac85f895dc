package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/argon2"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

// Accounts is what the console keeps of its accounts and sessions (the shared store).
type Accounts interface {
	PutConsoleAccount(ctx context.Context, a store.ConsoleAccount) error
	ConsoleAccount(ctx context.Context, name string) (store.ConsoleAccount, error)
	ConsoleAccounts(ctx context.Context) ([]store.ConsoleAccount, error)
	ResetConsoleAccount(ctx context.Context, name string, password, totp []byte, at time.Time) error
	DisableConsoleAccount(ctx context.Context, name string, at time.Time) error
	ConsoleSignInFailed(ctx context.Context, name string, at time.Time, max int, lockFor time.Duration) (bool, error)
	ConsoleSignedIn(ctx context.Context, name string, step int64) error
	PutConsoleSession(ctx context.Context, s store.ConsoleSession) error
	ConsoleSession(ctx context.Context, idHash []byte, now time.Time, idle time.Duration) (store.ConsoleSession, error)
	DeleteConsoleSession(ctx context.Context, idHash []byte) error
}

// argon2id parameters: OWASP's first recommended set (19 MiB, 2 passes, 1 lane).
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Password limits: at least 12 characters (a passphrase), at most 256 bytes (argon2 is fed all).
const (
	minPassword = 12
	maxPassword = 256
)

// HashPassword returns the argon2id hash of password as a PHC string.
func HashPassword(password string) ([]byte, error) {
	if err := checkPassword(password); err != nil {
		return nil, err
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Appendf(nil, "$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

func checkPassword(password string) error {
	if n := len([]rune(password)); n < minPassword || len(password) > maxPassword {
		return fmt.Errorf("%w: a console password is %d to %d bytes", store.ErrInvalid, minPassword, maxPassword)
	}
	return nil
}

// VerifyPassword reports whether password matches the PHC string hash (argon2id only).
func VerifyPassword(hash []byte, password string) bool {
	parts := strings.Split(string(hash), "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) || len(password) > maxPassword {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m < 8 || m > 64*1024 || t == 0 || t > 10 || p == 0 || p > 16 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is verified against when the name is unknown, so that an unknown name takes as long
// as a wrong password: HashPassword's format and parameters over a salt and a key of zeros, which
// no password yields. It is written, not computed: hashing at start cost every process of the
// binary ~19 MB of memory (argonMemory) and the time of one hash.
var dummyHash = fmt.Appendf(nil, "$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
	base64.RawStdEncoding.EncodeToString(make([]byte, argonSaltLen)), base64.RawStdEncoding.EncodeToString(make([]byte, argonKeyLen)))

// TOTP: RFC 6238 with SHA-1, 6 digits, 30 s steps (what authenticator apps take from an otpauth URL).
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	totpSkew   = 1 // steps either side of now
)

// totpSealMagic names the sealed TOTP secret's format.
const totpSealMagic = "sealpost-console-totp-v1\n"

// Enrolment is what an account's user is given once, at its creation or reset.
type Enrolment struct {
	Password string // generated, shown once
	Secret   string // the TOTP secret, base32
	URL      string // otpauth:// URL for an authenticator app
}

// NewEnrolment makes a password and a TOTP secret for account name, and returns them with the
// password's hash and the secret sealed under key (keys.DataDir.ConsoleKey) for the store.
func NewEnrolment(name, issuer string, key []byte) (e Enrolment, hash, sealed []byte, err error) {
	pw := make([]byte, 15)
	if _, err := rand.Read(pw); err != nil {
		return Enrolment{}, nil, nil, err
	}
	e.Password = strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(pw)) // 24 characters, 120 bits
	if hash, err = HashPassword(e.Password); err != nil {
		return Enrolment{}, nil, nil, err
	}
	k, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: name, Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return Enrolment{}, nil, nil, err
	}
	e.Secret, e.URL = k.Secret(), k.URL()
	s, err := keys.NewSealer(key, totpSealMagic)
	if err != nil {
		return Enrolment{}, nil, nil, err
	}
	if sealed, err = s.Seal(name, []byte(e.Secret)); err != nil {
		return Enrolment{}, nil, nil, err
	}
	return e, hash, sealed, nil
}

// errCode: the TOTP code is not the one of now (or one step either side).
var errCode = errors.New("console: wrong code")

// checkCode returns the time step whose code code is, within totpSkew steps of now.
func checkCode(sealed []byte, name string, key []byte, code string, now time.Time) (int64, error) {
	if len(code) != int(totpDigits) || strings.Trim(code, "0123456789") != "" {
		return 0, errCode
	}
	s, err := keys.NewSealer(key, totpSealMagic)
	if err != nil {
		return 0, err
	}
	secret, err := s.Open(name, sealed)
	if err != nil {
		return 0, fmt.Errorf("console: the TOTP secret of %s does not open with console.key: %w", name, err)
	}
	step := now.Unix() / totpPeriod
	var found int64
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		at := time.Unix((step+d)*totpPeriod, 0)
		want, err := totp.GenerateCodeCustom(string(secret), at, totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && found == 0 {
			found = step + d
		}
	}
	if found == 0 {
		return 0, errCode
	}
	return found, nil
}

// CodeAt is the TOTP code of secret (base32) at t: for tests and the enrolment check.
func CodeAt(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
}

// sessionSecret is a new session's cookie value and the hash the store keeps.
func sessionSecret() (cookie string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	h := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(b), h[:], nil
}

// cookieHash is the store's key of a cookie value; nil for a malformed one.
func cookieHash(v string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) != 32 {
		return nil
	}
	h := sha256.Sum256(b)
	return h[:]
}

// csrfToken is the CSRF token of the session whose cookie value is v: a keyed hash of the secret,
// so that it is never stored and a page cannot learn it without the cookie.
func csrfToken(v string) string {
	h := sha256.Sum256(append([]byte("sealpost console csrf\x00"), v...))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// sameToken compares two tokens in constant time.
func sameToken(a, b string) bool {
	return len(a) > 0 && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// roleRank orders the roles: each may do what the ones below it may.
func roleRank(role string) int {
	switch role {
	case store.RoleAgent:
		return 1
	case store.RoleOperator:
		return 2
	case store.RoleAdmin:
		return 3
	}
	return 0
}

// formatStep is a TOTP step for the audit log.
func formatStep(step int64) string { return strconv.FormatInt(step, 10) }
