package address

import (
	"errors"
	"net/mail"
	"slices"
	"strings"
	"unicode"
)

// ErrInvalid is returned for a string that is not a plain addr-spec.
var ErrInvalid = errors.New("not a valid email address")

// Normalize returns the form under which an address is shown and stored: the local part exactly
// as given and the domain in lower case. Angle brackets and display names are not accepted here:
// callers pass envelope addresses. Compare addresses with Key or Same, not with this form.
//
// Spaces around the address are dropped; a control character anywhere (C0, DEL, C1) makes it
// invalid, also where trimming would have removed it: callers that check an address and keep the
// string they were given ("alice@example.com\r" from an SMTP command) must not keep one that only
// its trimmed form made valid.
func Normalize(addr string) (string, error) {
	if strings.ContainsFunc(addr, unicode.IsControl) {
		return "", ErrInvalid
	}
	addr = strings.TrimSpace(addr)
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 || strings.ContainsAny(addr, " <>\t\r\n") {
		return "", ErrInvalid
	}
	if _, err := mail.ParseAddress(addr); err != nil {
		return "", ErrInvalid
	}
	return addr[:at] + "@" + strings.ToLower(addr[at+1:]), nil
}

// Key returns the form under which addresses are looked up: the normalised address with its local
// part lower-cased too, so that addresses differing only by case have one key.
//
// The folding is strings.ToLower, not Unicode case folding, also for SMTPUTF8 (RFC 6531) local
// parts. A key must be a string that can index a map or a database column, and the standard
// library has no full case folding; strings.EqualFold only compares, by simple folding that is a
// different rule (it equates ſ with s and ς with σ, which ToLower keeps apart, and not İ with i,
// which ToLower maps together), so it is used nowhere for addresses. Full folding (ß as ss) would
// merge mailboxes that providers keep apart. ToLower does for ASCII what providers do, and
// Unicode's case-pair stability keeps its mapping of assigned characters the same across Go
// releases, so keys already stored stay valid.
func Key(addr string) (string, error) {
	n, err := Normalize(addr)
	if err != nil {
		return "", err
	}
	return Fold(n), nil
}

// Fold lower-cases a normalised address: the rule Key applies, for callers that hold the
// normalised form already.
func Fold(normalized string) string { return strings.ToLower(normalized) }

// Same reports whether a and b name the same mailbox: both are valid addresses with the same Key.
func Same(a, b string) bool {
	ka, err1 := Key(a)
	kb, err2 := Key(b)
	return err1 == nil && err2 == nil && ka == kb
}

// Split takes addr apart at its last "@" (a quoted local part may hold more), as written; ok is
// false when there is no "@". It checks nothing else: Normalize says whether addr is valid.
func Split(addr string) (local, domain string, ok bool) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", "", false
	}
	return addr[:at], addr[at+1:], true
}

// Domain returns the part of addr after its last "@", lower-cased, or "" when there is none: the
// only part of an address that logs and metrics may carry.
func Domain(addr string) string {
	_, d, _ := Split(addr)
	return strings.ToLower(d)
}

// Domains returns the distinct domains of addrs (see Domain), in order of first appearance.
func Domains(addrs []string) []string {
	var ds []string
	for _, a := range addrs {
		if d := Domain(a); !slices.Contains(ds, d) {
			ds = append(ds, d)
		}
	}
	return ds
}
