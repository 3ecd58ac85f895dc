// Package otp issues and verifies one-time passcodes, and runs call
// verifications in which a customer and a bank's agent on the phone prove
// who they are to each other. The api package serves it; the mail that
// carries a code is the caller's to send.
//
// Invariants:
//   - A code is drawn from crypto/rand, each digit uniform (no modulo bias),
//     and never stored: the store keeps HMAC-SHA-256 of the OTP's ID and the
//     code under a key derived from the server key (DATA/otp.key, read by the
//     caller), compared in constant time. The package logs nothing; a code
//     leaves it only in what Issue, NewCall and CheckCustomerCode return.
//   - Dynamic linking (PSD2 RTS Art. 5): a code may be bound to a
//     transaction (amount, currency, payee name and account; the payment
//     purpose requires one) by an HMAC over their canonical, length-prefixed
//     encoding. A verify with another transaction is Mismatch, and it
//     invalidates the code (Art. 5(1)(d)): the changed transaction needs a
//     new code.
//   - Every change of state (an attempt counted, a code used) is one atomic
//     store operation: of nodes verifying one code at once, exactly one gets
//     Verified. A code is single use, expires, and locks after its purpose's
//     attempts.
//   - An OTP issued by another API token's client, or a call verification
//     asked of Verify, is NotFound, as an unknown ID is: no oracle.
//   - At most RateLimit.Count codes and call verifications go to one address
//     within RateLimit.Window, counted across every node in the store.
//   - A call verification's agent code is sealed (AES-256-GCM, under another
//     key derived from the server key) until the customer's code checks.
//
// Errors: bad input is one of the sentinels below (ErrUnknownPurpose,
// ErrBadAmount, ErrBadCurrency, ErrBadPayee, ErrNoTransaction, ErrTTL,
// ErrBadCode, ErrBadAddress, ErrBadAgent), and nothing is stored; an issue
// over the rate limit is a *RateLimitedError, which is ErrRateLimited and
// carries RetryAfter. The outcome of a verification is a Result, not an
// error; errors from Verify are bad input or the store's.
package otp
