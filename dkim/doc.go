// Package dkim DKIM-signs (RFC 6376) the mail sealpost sends. Protection rewrites the body, so a
// signature made before sealpost (by the bank's MTA on the way in) would be broken: sealpost signs
// its own output, after protection, just before the message is queued (Spool). Nothing after it may
// alter the message; a relay may add a signature of its own, and Received fields.
//
// Invariants:
//   - Sign returns the input unchanged, with one DKIM-Signature field put in front: what is signed
//     is byte for byte what is queued.
//   - The key is chosen by the domain of the single address in the From field: an exact,
//     case-insensitive match with a configured domain. A subdomain does not match its parent
//     (mail from x@mail.bank.example is signed only if mail.bank.example has a key of its own), so
//     the signature's d= always equals the From domain (strict DMARC alignment).
//   - Mail from a domain without a key passes unchanged; Signs tells whether a domain has one.
//   - Only CRLF mail with a well-formed header and exactly one From address is signed; anything
//     else is ErrUnsignable, never a signature over bytes that relays or verifiers could read in
//     another way.
//   - Signatures use relaxed/relaxed canonicalisation, rsa-sha256 or ed25519-sha256 (RFC 8463),
//     no l= (the whole body is covered) and no x=. They cover From, To, Cc, Subject, Date,
//     Message-ID, MIME-Version, Content-Type, Content-Transfer-Encoding, In-Reply-To, References
//     and Reply-To: each one present is listed in h= once more than it occurs (oversigning, RFC
//     6376 8.15), so no further instance can be added (a second From above the first fails
//     verification); each absent one is listed once, so it cannot be added either, except Date
//     and Message-ID, which an MTA may add to mail that lacks them.
//
// Errors: New refuses an empty list with ErrConfig, and a bad key with a *KeyError naming its
// domain and key file, wrapping ErrConfig, ErrDuplicateDomain, ErrKeyFormat, ErrWeakKey,
// ErrUnsupportedKey or the file system's error. Sign (and so Spool.Put) returns errors wrapping
// ErrUnsignable (the message) or ErrSign (the signing library); Spool.Put queues nothing then.
package dkim
