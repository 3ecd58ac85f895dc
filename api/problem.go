package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"unicode"
)

// problemPrefix begins every problem type URI; the rest is the problem's name, stable across
// releases so that a client can branch on it.
const problemPrefix = "urn:sealpost:problem:"

// ProblemType is one kind of refusal: its name (the type URI's last part), title and status.
type ProblemType struct {
	Name   string
	Status int
	Title  string
}

// URI is the problem's type as the document carries it.
func (p ProblemType) URI() string { return problemPrefix + p.Name }

// The problem types, in one place: the OpenAPI document and the README list exactly these.
var (
	ProblemUnauthorized          = ProblemType{"unauthorized", http.StatusUnauthorized, "A valid API token is required"}
	ProblemForbidden             = ProblemType{"forbidden", http.StatusForbidden, "The token lacks the scope this call needs"}
	ProblemNotFound              = ProblemType{"not-found", http.StatusNotFound, "No such resource"}
	ProblemMethodNotAllowed      = ProblemType{"method-not-allowed", http.StatusMethodNotAllowed, "The resource does not take this method"}
	ProblemBodyTooLarge          = ProblemType{"body-too-large", http.StatusRequestEntityTooLarge, "The request body is too large"}
	ProblemBadJSON               = ProblemType{"bad-json", http.StatusBadRequest, "The request body is not the JSON this call takes"}
	ProblemBadAddress            = ProblemType{"bad-address", http.StatusBadRequest, "The address in the path is not an email address"}
	ProblemBadFingerprint        = ProblemType{"bad-fingerprint", http.StatusBadRequest, "The fingerprint must be at least 16 hex digits"}
	ProblemBadIdempotencyKey     = ProblemType{"bad-idempotency-key", http.StatusBadRequest, "The Idempotency-Key header must be 1 to 255 printable ASCII characters"}
	ProblemUnsupportedMediaType  = ProblemType{"unsupported-media-type", http.StatusUnsupportedMediaType, "The request body's Content-Type is not one this call takes"}
	ProblemBadKey                = ProblemType{"bad-key", http.StatusUnprocessableEntity, "The body is not a certificate or OpenPGP public key that can be registered"}
	ProblemPrivateKey            = ProblemType{"private-key", http.StatusUnprocessableEntity, "The body holds a private key: send only the certificate or public key"}
	ProblemWrongAddress          = ProblemType{"wrong-address", http.StatusUnprocessableEntity, "The key does not name exactly the customer's address"}
	ProblemIdempotencyKeyReused  = ProblemType{"idempotency-key-reused", http.StatusUnprocessableEntity, "The Idempotency-Key was used for another request"}
	ProblemIdempotencyInProgress = ProblemType{"idempotency-in-progress", http.StatusConflict, "A request with this Idempotency-Key is still being processed"}
	ProblemInternal              = ProblemType{"internal", http.StatusInternalServerError, "Internal error"}
	ProblemNoCA                  = ProblemType{"no-ca", http.StatusNotImplemented, "This gateway has no customer CA"}
	ProblemBadCSR                = ProblemType{"bad-csr", http.StatusBadRequest, "The body is not a valid PKCS#10 certificate request"}
	ProblemWeakKey               = ProblemType{"weak-key", http.StatusUnprocessableEntity, "The request's key is not acceptable (RSA of at least 2048 bits, P-256 or P-384)"}
	ProblemBadSerial             = ProblemType{"bad-serial", http.StatusBadRequest, "The serial must be 1 to 40 hex digits"}
	ProblemBadReason             = ProblemType{"bad-reason", http.StatusBadRequest, "The revocation reason is not one this call takes"}
	ProblemRevoked               = ProblemType{"revoked", http.StatusConflict, "The certificate is revoked already"}
	ProblemNoKey                 = ProblemType{"no-key", http.StatusConflict, "The customer has no usable certificate or OpenPGP key: no code is sent"}
	ProblemRateLimited           = ProblemType{"rate-limited", http.StatusTooManyRequests, "Too many codes for this address: see Retry-After"}
	ProblemUnknownPurpose        = ProblemType{"unknown-purpose", http.StatusUnprocessableEntity, "The purpose is not one the bank configured"}
	ProblemBadTransaction        = ProblemType{"bad-transaction", http.StatusUnprocessableEntity, "The transaction's amount, currency or payee is not acceptable, or the purpose needs one"}
	ProblemBadTTL                = ProblemType{"bad-ttl", http.StatusUnprocessableEntity, "The ttl is over the purpose's maximum"}
	ProblemBadCode               = ProblemType{"bad-code", http.StatusBadRequest, "A code is the purpose's number of digits 0-9"}
	ProblemBadAgent              = ProblemType{"bad-agent", http.StatusUnprocessableEntity, "The agent is not 1 to 100 printable characters"}
)

// ProblemTypes lists every problem type the API answers with.
func ProblemTypes() []ProblemType {
	return []ProblemType{ProblemUnauthorized, ProblemForbidden, ProblemNotFound, ProblemMethodNotAllowed,
		ProblemBodyTooLarge, ProblemBadJSON, ProblemBadAddress, ProblemBadFingerprint, ProblemBadIdempotencyKey,
		ProblemUnsupportedMediaType, ProblemBadKey, ProblemPrivateKey, ProblemWrongAddress,
		ProblemIdempotencyKeyReused, ProblemIdempotencyInProgress, ProblemInternal,
		ProblemNoCA, ProblemBadCSR, ProblemWeakKey, ProblemBadSerial, ProblemBadReason, ProblemRevoked,
		ProblemNoKey, ProblemRateLimited, ProblemUnknownPurpose, ProblemBadTransaction, ProblemBadTTL, ProblemBadCode, ProblemBadAgent}
}

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// problemContentType is RFC 9457's media type.
const problemContentType = "application/problem+json"

// problemError is a refusal a handler returns: its type and a detail safe to show the caller.
type problemError struct {
	typ    ProblemType
	detail string
	allow  string // the Allow header of a 405
	// retryAfter is the Retry-After header of a 429, in seconds.
	retryAfter string
}

func (e *problemError) Error() string {
	if e.detail == "" {
		return e.typ.Title
	}
	return e.typ.Title + ": " + e.detail
}

// refuse returns a problem of type t whose detail is detail (already safe: see quote and safeDetail).
func refuse(t ProblemType, detail string) error { return &problemError{typ: t, detail: detail} }

// problemBody is the problem document of pe.
func problemBody(pe *problemError) []byte {
	b, _ := json.Marshal(Problem{Type: pe.typ.URI(), Title: pe.typ.Title, Status: pe.typ.Status, Detail: pe.detail})
	return append(b, '\n')
}

// maxQuoted is how much of the caller's input a detail may quote.
const maxQuoted = 64

// quote returns a short printable excerpt of hostile input, quoted, for a problem's detail: it
// never carries control characters, and never more than maxQuoted characters of it.
func quote(s string) string {
	r := []rune(s)
	cut := len(r) > maxQuoted
	if cut {
		r = r[:maxQuoted]
	}
	for i, c := range r {
		if c == unicode.ReplacementChar || !unicode.IsPrint(c) {
			r[i] = '?'
		}
	}
	q := strconvQuote(string(r))
	if cut {
		q += "…"
	}
	return q
}

// strconvQuote quotes s with double quotes, escaping quotes and backslashes only (s is printable).
func strconvQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// safeDetail makes an error's text fit for a problem's detail: one line, printable, bounded. The
// errors it is given (of package keys) quote at most short excerpts of their input already.
func safeDetail(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 400 {
		s = string(r[:400]) + "…"
	}
	return s
}
