package keys

import (
	"errors"
	"net/mail"
	"strings"
	"unicode"
)

// ErrBadAddress is returned for a string that is not a plain addr-spec.
var ErrBadAddress = errors.New("not a valid email address")

// How sealpost compares customers' addresses, in one place (the store keeps its own copy of the
// folding, see store.AddressKey, and a test checks that both agree):
//
//   - NormalizeAddress is the form that is shown and stored: the local part as the customer wrote
//     it, the domain in lower case.
//   - AddressKey is the form that is looked up: the normalised address in lower case, local part
//     included. RFC 5321 lets a mailbox provider treat local parts case-sensitively, but none of
//     the large ones does, and customers type their addresses as they like: Alice@Example.COM is
//     alice@example.com's mailbox.
//   - SameAddress says whether two addresses have the same key.
//
// Where two entries differ only by case (certificates for Alice@x.example and alice@x.example),
// the one spelt exactly as asked wins; without an exact one, every case variant is a candidate.

// NormalizeAddress returns the form under which an address is shown and stored: the local part
// exactly as given and the domain in lower case. Angle brackets and display names are not accepted
// here: callers pass envelope addresses. Compare addresses with AddressKey or SameAddress, not with
// this form.
//
// Spaces around the address are dropped; a control character anywhere (C0, DEL, C1) makes it
// invalid, also where trimming would have removed it: callers that check an address and keep the
// string they were given ("alice@example.com\r" from an SMTP command) must not keep one that only
// its trimmed form made valid.
func NormalizeAddress(addr string) (string, error) {
	if strings.ContainsFunc(addr, unicode.IsControl) {
		return "", ErrBadAddress
	}
	addr = strings.TrimSpace(addr)
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 || strings.ContainsAny(addr, " <>\t\r\n") {
		return "", ErrBadAddress
	}
	if _, err := mail.ParseAddress(addr); err != nil {
		return "", ErrBadAddress
	}
	return addr[:at] + "@" + strings.ToLower(addr[at+1:]), nil
}

// AddressKey returns the form under which addresses are looked up: the normalised address with its
// local part lower-cased too, so that addresses differing only by case have one key.
//
// The folding is strings.ToLower, not Unicode case folding, also for SMTPUTF8 (RFC 6531) local
// parts. A key must be a string that can index a map or a database column, and the standard
// library has no full case folding; strings.EqualFold only compares, by simple folding that is a
// different rule (it equates ſ with s and ς with σ, which ToLower keeps apart, and not İ with i,
// which ToLower maps together), so it is used nowhere for addresses. Full folding (ß as ss) would
// merge mailboxes that providers keep apart. ToLower does for ASCII what providers do, and Unicode's
// case-pair stability keeps its mapping of assigned characters the same across Go releases, so
// keys already stored stay valid.
func AddressKey(addr string) (string, error) {
	n, err := NormalizeAddress(addr)
	if err != nil {
		return "", err
	}
	return foldAddress(n), nil
}

// foldAddress lower-cases a normalised address: the rule AddressKey applies, for callers that hold
// the normalised form already.
func foldAddress(normalized string) string { return strings.ToLower(normalized) }

// SameAddress reports whether a and b name the same mailbox: both are valid addresses with the
// same AddressKey.
func SameAddress(a, b string) bool {
	ka, err1 := AddressKey(a)
	kb, err2 := AddressKey(b)
	return err1 == nil && err2 == nil && ka == kb
}
