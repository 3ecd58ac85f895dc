package inbound

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Verdict statuses, from best to worst. Only StatusVerified means the desk may trust who wrote the
// message.
const (
	// StatusVerified: signed, the signature covers the whole root part, the certificate chains to a
	// trusted root with emailProtection at the signing time (or the OpenPGP key is valid then), no
	// weak algorithm, the signer's address is the single From address, and the key is the one the
	// customer registered.
	StatusVerified = "verified"
	// StatusUnregistered: everything above holds except that the customer registered no key, so
	// nobody vouches that this certificate or key is theirs. Not a pass.
	StatusUnregistered = "unregistered"
	// StatusFailed: signed, but at least one check failed (Verdict.Failures says which).
	StatusFailed = "failed"
	// StatusUnsigned: no signature at all.
	StatusUnsigned = "unsigned"
)

// Failure codes in Verdict.Failures.
const (
	FailSignature     = "signature"       // the signature does not verify over the signed bytes
	FailNotRoot       = "not-root"        // the signed part is not the whole root MIME part
	FailChain         = "chain"           // no chain to a trusted root with emailProtection at the signing time; or the OpenPGP key was revoked/expired then
	FailWeakAlgorithm = "weak-algorithm"  // SHA-1, MD5, or an RSA key below 2048 bits
	FailFromNotSingle = "from-not-single" // From has zero or several addresses
	FailFromMismatch  = "from-mismatch"   // the signer's address is not the From address
	FailWrongKey      = "wrong-key"       // the customer registered a different key or certificate
	FailUnknownKey    = "unknown-key"     // an OpenPGP signature by a key the bank does not know
	FailTimestamp     = "timestamp"       // a timestamp token is present but does not verify
	FailRevoked       = "revoked"         // the signer's certificate was revoked before the signing time
)

// Verdict is what sealpost concluded about one inbound message.
type Verdict struct {
	Status   string
	Failures []string // failure codes, sorted, for StatusFailed
	Details  []string // one line per failure, for operators (never shown as trusted)
	Method   string   // "smime", "pgp", or "" when neither signed nor encrypted
	// Encryption: "" (clear), or e.g. "aes256-cbc", "aes256-gcm", "seipd-v1-aes256".
	Encryption string
	// Authenticated: the ciphertext was integrity-protected (AES-GCM, OpenPGP MDC or AEAD).
	Authenticated bool
	From          string // the single From address, "" when there is not exactly one
	Signer        string // the signer's address that matched From, else its first address
	Fingerprint   string // SHA-256 of the certificate, or the OpenPGP primary key fingerprint
	SignedAt      time.Time
	Timestamped   bool // SignedAt comes from a verified RFC 3161 token
	// SignatureSHA256 is the SHA-256 of the signature value (hex), for the evidence log.
	SignatureSHA256 string
	Registered      bool // the From address has a registered key or certificate
	// Thread is the support thread the reply answers, "" when none is known.
	Thread string
	// ThreadMismatch: linked to a thread, but signed by a key other than the thread customer's,
	// or sent from another address than the thread's customer.
	ThreadMismatch string
	Layers         []string
}

// Trusted reports whether the desk may trust who wrote the message.
func (v *Verdict) Trusted() bool { return v.Status == StatusVerified }

func (v *Verdict) fail(code, detail string) {
	if !slices.Contains(v.Failures, code) {
		v.Failures = append(v.Failures, code)
	}
	v.Details = append(v.Details, code+": "+detail)
}

// settle turns the collected failures into the status.
func (v *Verdict) settle(signed bool) {
	slices.Sort(v.Failures)
	switch {
	case !signed:
		v.Status = StatusUnsigned
	case len(v.Failures) > 0:
		v.Status = failedStatus(v.Failures)
	case v.Registered:
		v.Status = StatusVerified
	default:
		v.Status = StatusUnregistered
	}
}

// Header returns the Sealpost-Verdict field value: the status, then key=value pairs.
func (v *Verdict) Header() string {
	parts := []string{v.Status}
	add := func(k, val string) {
		if val != "" {
			parts = append(parts, k+"="+headerToken(val))
		}
	}
	add("method", v.Method)
	if len(v.Failures) > 0 {
		parts = append(parts, "failed="+strings.Join(v.Failures, ","))
	}
	add("signer", v.Signer)
	add("fingerprint", v.Fingerprint)
	if v.Method != "" && v.Status != StatusUnsigned {
		add("registered", yesNo(v.Registered))
	}
	if !v.SignedAt.IsZero() && v.Status != StatusUnsigned {
		add("signed-at", v.SignedAt.UTC().Format(time.RFC3339))
		add("timestamp", yesNo(v.Timestamped))
	}
	add("encryption", v.Encryption)
	add("thread", v.Thread)
	add("thread-mismatch", v.ThreadMismatch)
	return strings.Join(parts, "; ")
}

// AuthenticationResults returns the Authentication-Results field value (RFC 8601) for authservID.
// S/MIME uses the registered "smime" method (RFC 7281); OpenPGP has no registered method, so
// sealpost writes "x-openpgp" with the same result values, an extension method for use inside the
// bank's own ADMD (RFC 8601 2.7.6). Results: pass (verified), policy (valid but unregistered), fail,
// none (unsigned).
func (v *Verdict) AuthenticationResults(authservID string) string {
	method := "smime"
	if v.Method == "pgp" {
		method = "x-openpgp"
	}
	var b strings.Builder
	b.WriteString(authservID + ";")
	if v.Status == StatusUnsigned && v.Method == "" {
		b.WriteString(" smime=none; x-openpgp=none")
		return b.String()
	}
	result := map[string]string{StatusVerified: "pass", StatusUnregistered: "policy", StatusFailed: "fail", StatusUnsigned: "none", StatusUnsupported: authResultUnsupported}[v.Status]
	fmt.Fprintf(&b, " %s=%s", method, result)
	switch v.Status {
	case StatusUnregistered:
		b.WriteString(` reason="signer has no registered key"`)
	case StatusFailed, StatusUnsupported:
		b.WriteString(` reason="` + strings.Join(v.Failures, " ") + `"`)
	}
	if v.From != "" {
		b.WriteString(" header.from=" + headerToken(v.From))
	}
	if v.Signer != "" {
		if method == "smime" {
			b.WriteString(" body.smime-identifier=" + headerToken(v.Signer))
		} else {
			b.WriteString(" body.x-openpgp-signer=" + headerToken(v.Signer))
		}
	}
	return b.String()
}

// headerToken keeps a value inside one header token: printable ASCII without separators; anything
// else is replaced, so a crafted address cannot add fields or parameters.
func headerToken(s string) string {
	return keepASCII(s, func(r rune) bool { return r > ' ' && r < 0x7f && !strings.ContainsRune(`;"()<>\,`, r) })
}

// keepASCII replaces every rune of s that keep refuses with '?' and cuts the result at 200 bytes:
// what sealpost writes of an address from a certificate or key stays on one bounded line.
func keepASCII(s string, keep func(rune) bool) string {
	s = strings.Map(func(r rune) rune {
		if !keep(r) {
			return '?'
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
