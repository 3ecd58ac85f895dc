package otp

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sealpost/sealpost/config"
)

// The built-in purposes: every configuration has them.
const (
	PurposeLogin   = "login"
	PurposePayment = "payment"
	PurposeChange  = "change"
)

// purposeCall is the purpose call verifications are stored under: no
// configured purpose may take it.
const purposeCall = "call"

// Limits of the configuration: zero never means unlimited.
const (
	MinDigits   = 6
	MaxDigits   = 10
	MinTTL      = 30 * time.Second
	MaxTTL      = time.Hour
	MaxAttempts = 10
	maxRate     = 100
	minWindow   = time.Minute
	maxWindow   = 24 * time.Hour
	maxPurpose  = 32
)

// Defaults of DefaultConfig.
const (
	defaultDigits   = 6
	defaultTTL      = 5 * time.Minute
	defaultMaxTTL   = 15 * time.Minute
	defaultAttempts = 5
	defaultRate     = 5
	defaultWindow   = 10 * time.Minute
	defaultCallTTL  = 10 * time.Minute
)

// Purpose is how the codes of one purpose are made.
type Purpose struct {
	// Digits is the code's length, 6 to 10.
	Digits int `json:"digits"`
	// TTL is a code's lifetime unless a request asks for another, 30s to
	// MaxTTL.
	TTL config.Duration `json:"ttl"`
	// MaxTTL is the longest lifetime a request may ask for, at most 1h.
	MaxTTL config.Duration `json:"max_ttl"`
	// Attempts is how many wrong codes lock it, 1 to 10.
	Attempts int `json:"attempts"`
	// Transaction requires every code to be bound to a transaction
	// (dynamic linking); payment's must be true.
	Transaction bool `json:"transaction"`
}

// RateLimit bounds the codes (of any purpose) and call verifications sent
// to one address.
type RateLimit struct {
	// Count is at most how many within Window, 1 to 100.
	Count int `json:"count"`
	// Window is 1m to 24h.
	Window config.Duration `json:"window"`
}

// CallVerification is how call verifications are made.
type CallVerification struct {
	// Digits is the length of each of its two codes, 6 to 10.
	Digits int `json:"digits"`
	// TTL is its lifetime, 30s to 1h.
	TTL config.Duration `json:"ttl"`
	// Attempts is how many wrong customer codes lock it, 1 to 10.
	Attempts int `json:"attempts"`
}

// Config is the OTP service's configuration.
type Config struct {
	// Purposes by name: login, payment and change, and any the bank adds
	// (1 to 32 of a-z, 0-9, '-' and '_', beginning with a letter).
	Purposes         map[string]Purpose `json:"purposes"`
	RateLimit        RateLimit          `json:"rate_limit"`
	CallVerification CallVerification   `json:"call_verification"`
}

// DefaultConfig returns the defaults: login, payment (bound to its
// transaction) and change with 6 digits, 5 minutes (at most 15) and 5
// attempts; 5 codes per address in 10 minutes; call verifications of 6
// digits, 10 minutes and 5 attempts.
func DefaultConfig() Config {
	p := Purpose{Digits: defaultDigits, TTL: config.Duration(defaultTTL), MaxTTL: config.Duration(defaultMaxTTL), Attempts: defaultAttempts}
	pay := p
	pay.Transaction = true
	return Config{
		Purposes:         map[string]Purpose{PurposeLogin: p, PurposePayment: pay, PurposeChange: p},
		RateLimit:        RateLimit{Count: defaultRate, Window: config.Duration(defaultWindow)},
		CallVerification: CallVerification{Digits: defaultDigits, TTL: config.Duration(defaultCallTTL), Attempts: defaultAttempts},
	}
}

// Validate checks c and changes nothing. Its problems are
// *config.FieldError named by their key.
func (c Config) Validate() error {
	var errs []error
	problem := func(path, format string, args ...any) {
		errs = append(errs, &config.FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
	}
	for _, name := range []string{PurposeLogin, PurposePayment, PurposeChange} {
		if _, ok := c.Purposes[name]; !ok {
			problem(config.MapKey("purposes", name), "is missing (login, payment and change are built in)")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Purposes)) {
		path := config.MapKey("purposes", name)
		if !purposeName(name) || name == purposeCall {
			problem(path, "is not a purpose's name (1 to %d of a-z, 0-9, - and _, beginning with a letter; not %q)", maxPurpose, purposeCall)
		}
		p := c.Purposes[name]
		checkDigits(problem, path+".digits", p.Digits)
		checkAttempts(problem, path+".attempts", p.Attempts)
		maxTTL := time.Duration(p.MaxTTL)
		if maxTTL < MinTTL || maxTTL > MaxTTL {
			problem(path+".max_ttl", "%s is out of range (want %s to %s)", maxTTL, MinTTL, MaxTTL)
		}
		if ttl := time.Duration(p.TTL); ttl < MinTTL || ttl > min(maxTTL, MaxTTL) {
			problem(path+".ttl", "%s is out of range (want %s to max_ttl, %s)", ttl, MinTTL, maxTTL)
		}
		if name == PurposePayment && !p.Transaction {
			problem(path+".transaction", "must be true: a payment code is bound to its transaction (PSD2 RTS Art. 5)")
		}
	}
	if n := c.RateLimit.Count; n < 1 || n > maxRate {
		problem("rate_limit.count", "%d is out of range (want 1 to %d)", n, maxRate)
	}
	if w := time.Duration(c.RateLimit.Window); w < minWindow || w > maxWindow {
		problem("rate_limit.window", "%s is out of range (want %s to %s)", w, minWindow, maxWindow)
	}
	cv := c.CallVerification
	checkDigits(problem, "call_verification.digits", cv.Digits)
	checkAttempts(problem, "call_verification.attempts", cv.Attempts)
	if ttl := time.Duration(cv.TTL); ttl < MinTTL || ttl > MaxTTL {
		problem("call_verification.ttl", "%s is out of range (want %s to %s)", ttl, MinTTL, MaxTTL)
	}
	return errors.Join(errs...)
}

func checkDigits(problem func(string, string, ...any), path string, n int) {
	if n < MinDigits || n > MaxDigits {
		problem(path, "%d is out of range (want %d to %d)", n, MinDigits, MaxDigits)
	}
}

func checkAttempts(problem func(string, string, ...any), path string, n int) {
	if n < 1 || n > MaxAttempts {
		problem(path, "%d is out of range (want 1 to %d)", n, MaxAttempts)
	}
}

// purposeName reports whether s is 1 to 32 of a-z, 0-9, '-' and '_',
// beginning with a letter.
func purposeName(s string) bool {
	if len(s) < 1 || len(s) > maxPurpose || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
