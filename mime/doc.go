// Package mime is sealpost's one MIME layer. It prepares a message for cryptographic protection, whatever the method (S/MIME or
// PGP/MIME): it splits the header that stays outside from the MIME entity that is signed (RFC 9788's
// Cryptographic Payload), makes that entity canonical so that what is signed is exactly what is sent,
// and applies header protection.
//
// Invariants: Content is CRLF, 7-bit, free of trailing white space and "From " lines, with lines of
// at most 998 octets: no relay has a reason to alter it. Outer is 7-bit too. With header protection
// on an encrypted message, Outer holds only the fields exposedField allows (and the hop's trace
// fields): nothing else of the header leaves outside the encryption. Errors wrap ErrMalformed (the
// sender's message cannot be made canonical) or ErrNoFrom.
package mime
