// Package tsa obtains, issues and verifies RFC 3161 time-stamp tokens.
//
// sealpost puts a time-stamp token on every CMS signature it makes, so that a signature stays provable
// after the signing certificate expires or is revoked. The package has three parts:
//
//   - Authority is an in-process time-stamping authority (TSA). Its Timestamp method is the hot path
//     (one call per mail); its ServeHTTP method is the RFC 3161 section 3.4 HTTP binding, so the same
//     key can serve other systems of the bank.
//   - Client asks a list of external TSAs over HTTP, in order, and fails over to the next on any error.
//   - Verify checks a token on its own, for inbound mail and for the Client.
//
// # Guarantees
//
// Every *Token returned by Client.Timestamp and by Verify has been fully verified: the CMS signature
// over the TSTInfo, the content type (id-ct-TSTInfo, both as eContentType and as the signed
// content-type attribute), the message imprint (SHA-256, SHA-384 or SHA-512 of the message; SHA-1 and
// MD5 are refused), the signing-certificate attribute (ESSCertIDv2 or ESSCertID) against the signer's
// certificate, and the signer's chain to the caller's roots at genTime with the timeStamping extended
// key usage, which must be the only one and must be marked critical (RFC 3161 section 2.3). The Client
// additionally checks that the nonce it sent is the one in the token. Tokens from Authority.Timestamp
// are produced in-process with a key whose certificate was validated when the Authority was built, and
// carry the TSA certificate, so that Verify (and openssl ts -verify) accepts them.
//
// Only DER is accepted: tokens in BER (indefinite lengths) are reported as malformed.
//
// # Errors
//
// Errors wrap sentinels to be tested with errors.Is:
//
//   - ErrUnavailable: no token could be obtained now (every TSA of the Client failed, or the Authority
//     cannot sign, for example because its certificate expired). Transient: the gateway answers SMTP 451
//     and retries. The Client's error also wraps each TSA's own failure, so errors.Is and errors.As
//     still find ErrNonceMismatch, *RejectedError and the others behind it.
//   - ErrMalformed: the bytes are not a well-formed token or response.
//   - ErrBadSignature: the CMS signature, the message-digest attribute or the signing-certificate
//     attribute does not hold: the token was altered or forged.
//   - ErrImprintMismatch: the token is genuine but stamps another message.
//   - ErrNonceMismatch: the TSA answered with a token made for another request (replay).
//   - ErrUntrustedAuthority: the signer does not chain to the roots at genTime, or its certificate is not
//     a proper TSA certificate (timeStamping EKU missing, not the only one, or not critical).
//   - ErrUnsupportedAlgorithm: a weak or unknown hash or signature algorithm.
//   - ErrInvalidAuthority, ErrConfig: NewAuthority or NewClient was given unusable keys, certificates or
//     options.
//
// A TSA that answers with a status other than granted yields a *RejectedError (use errors.As). A
// rejection is a definite answer, not a transient failure, so it does not match ErrUnavailable on its
// own; the Client still wraps it in ErrUnavailable when no other TSA succeeded, because the mail can be
// retried later (another TSA, or this one after it is fixed).
//
// Nothing in this package panics on crafted input: parsing of network data is guarded by recover and
// reported as ErrMalformed (by ServeHTTP, as a badDataFormat rejection).
//
// digitorus/timestamp creates the tokens (Authority) and the queries (Client). Tokens, queries and
// replies are decoded here with encoding/asn1 instead: the library's ParseResponse checks only the
// CMS signature, and only when certificates are embedded, so every check Verify makes is its own, over
// the bytes received.
package tsa
