// Package pgp protects the bank's mail as PGP/MIME (RFC 3156) with OpenPGP (RFC 4880/9580), for
// customers who use OpenPGP rather than S/MIME, and opens it again.
//
// Invariants:
//   - The signed bytes are the canonical payload (package mime): CRLF, 7-bit, unchanged in
//     transit. Signatures are v4, SHA-256, binary document signatures by the bank's RSA key.
//   - Encrypted mail is one OpenPGP message, signed and encrypted (RFC 3156 6.2): public-key
//     encrypted session keys, then a SEIPD packet holding a one-pass signature, the literal data and
//     the signature. SEIPD is version 1 with MDC and AES-256, which GnuPG 2.2 reads; version 2 (AEAD)
//     only when every recipient key advertises it and the Protector allows it. Never unprotected SED.
//   - With a Timestamper, every signature carries an RFC 3161 token over its signature value, in an
//     unhashed notation named TimestampNotation (see timestamp.go): no token, no output.
//   - A Protector holds no per-message state and is safe for concurrent use.
//   - Inspect (inbound) refuses Symmetrically Encrypted Data without MDC (ErrNoIntegrity) before any
//     session key is decrypted, and releases decrypted content only after the MDC or AEAD check
//     passed. It reports facts (signer, key validity at the signing time, weak algorithms, whether
//     the signature covers the root part); the verdict is the gateway's.
//
// Errors wrap the sentinels in errors.go (and mime's ErrMalformed/ErrNoFrom), for errors.Is.
package pgp
