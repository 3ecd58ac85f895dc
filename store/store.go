package store

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors callers can branch on with errors.Is.
var (
	// ErrNotFound means the requested item is not stored.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means the write contradicts what is already stored.
	ErrConflict = errors.New("store: conflict")
	// ErrInvalid means an argument is malformed (address, method, fingerprint, ID).
	ErrInvalid = errors.New("store: invalid argument")
	// ErrSchemaTooNew means the database was written by a newer sealpost.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this sealpost supports")
)

// Methods a customer can register a key for.
const (
	MethodSMIME = "smime"
	MethodPGP   = "pgp"
)

// Registration binds a customer address to the key they registered.
type Registration struct {
	Address string
	// Method is MethodSMIME or MethodPGP.
	Method string
	// Fingerprint is the upper-case hex SHA-256 of the certificate DER
	// (S/MIME) or the OpenPGP key fingerprint.
	Fingerprint string
	// Registered defaults to the current time when zero.
	Registered time.Time
}

// Thread is a support conversation started by outbound support mail.
type Thread struct {
	// Token is embedded in the Message-ID of outbound support mail.
	Token    string
	Customer string
	Method   string
	// Fingerprint is the customer's registered key when the thread was
	// created; empty when none was registered.
	Fingerprint string
	Created     time.Time
	Subject     string
}

// ThreadMessage records one message of a thread.
type ThreadMessage struct {
	Token     string
	MessageID string
	Inbound   bool
	// Verdict is the verification verdict for inbound messages.
	Verdict string
	// At defaults to the current time when zero.
	At time.Time
}

// Held is the quarantine index entry of one held inbound message.
type Held struct {
	ID       string
	Received time.Time
	// From is stored as received, not normalised: held mail is often malformed.
	From    string
	Reason  string
	Verdict string
	// Ref says where the caller stored the message bytes.
	Ref      string
	Released bool
	// Delivered says a released message reached the desk (MarkDelivered);
	// only a released message is delivered.
	Delivered bool
	// Deleted says an operator deleted it (its bytes are gone); a message is
	// released or deleted, not both.
	Deleted bool
	// DecidedBy, DecidedWhy and DecidedAt are the operator's decision (Release,
	// Delete); empty while it is held.
	DecidedBy, DecidedWhy string
	DecidedAt             time.Time
}

// Capabilities are what a customer's client showed it supports.
type Capabilities struct {
	Address    string
	SMIMEGCM   bool // AES-GCM AuthEnvelopedData (RFC 5083/5084)
	PGPSEIPDv2 bool // OpenPGP SEIPD version 2 (AEAD)
	Updated    time.Time
}

// NormalizeAddress returns addr with its local part unchanged and its domain
// lower-cased, the form in which the store keeps addresses (and shows them).
// Lookups compare AddressKey instead.
func NormalizeAddress(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return "", fmt.Errorf("%w: address %q is not local@domain", ErrInvalid, addr)
	}
	local, domain := addr[:at], addr[at+1:]
	if strings.ContainsAny(domain, "@ <>\t\r\n") || strings.ContainsAny(local, "\r\n") {
		return "", fmt.Errorf("%w: address %q is not local@domain", ErrInvalid, addr)
	}
	return local + "@" + strings.ToLower(domain), nil
}

// AddressKey returns the form in which the store looks addresses up: the
// normalised address with its local part lower-cased too (strings.ToLower, as
// for the domain; not Unicode case folding).
//
// It is the rule of address.Key, which documents it. The store imports no
// other sealpost package (DESIGN.md), so it cannot call that one and keeps
// this copy, for the key it stores next to each address; a test in package
// keys (TestAddressKeyAgreesWithStore) checks that both give the same key for
// a table of addresses. Change them together, with a schema migration that
// recomputes stored keys.
func AddressKey(addr string) (string, error) {
	n, err := NormalizeAddress(addr)
	if err != nil {
		return "", err
	}
	return foldAddress(n), nil
}

// foldAddress is AddressKey of an address that is normalised already (stored
// rows, in the schema migration).
func foldAddress(normalized string) string { return strings.ToLower(normalized) }

// normalizeFingerprint upper-cases a hex fingerprint and drops the spaces and
// colons people paste in.
func normalizeFingerprint(fp string) (string, error) {
	fp = strings.ToUpper(strings.NewReplacer(" ", "", ":", "").Replace(strings.TrimSpace(fp)))
	for i := 0; i < len(fp); i++ {
		c := fp[i]
		if (c < '0' || c > '9') && (c < 'A' || c > 'F') {
			return "", fmt.Errorf("%w: fingerprint is not hex", ErrInvalid)
		}
	}
	return fp, nil
}

func validMethod(m string) error {
	if m != MethodSMIME && m != MethodPGP {
		return fmt.Errorf("%w: method %q (want %q or %q)", ErrInvalid, m, MethodSMIME, MethodPGP)
	}
	return nil
}
