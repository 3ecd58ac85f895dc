// Package smime protects the bank's mail with CMS (RFC 5652) in S/MIME 4.0 form (RFC 8551), and opens
// it again.
//
// Invariants:
//   - What is signed is exactly what is sent: Protect and Sign first make the message's MIME entity
//     canonical (CRLF, 7-bit, no trailing white space or "From " lines, lines ≤ 998 octets) and sign
//     those bytes, which then travel unchanged.
//   - Every signature is SHA-256 with RSA PKCS#1 v1.5 by a key of at least 2048 bits, names
//     SMIMECapabilities, and, with a Timestamper, carries an RFC 3161 token over its signature value in
//     id-aa-timeStampToken. No token means no output (ErrTimestamp), never an untimestamped message.
//   - A Protector holds no per-message state: it is safe for concurrent use, and algorithm choices
//     (GCM, OAEP) travel per Recipient, unlike the package-level settings of the pkcs7 libraries.
//   - The envelopes are written here, not by pkcs7: AES-256-CBC EnvelopedData, and AES-256-GCM
//     AuthEnvelopedData as RFC 5083/5084 specify it.
//   - Parsing hostile input (Decrypt, Open, Inspect, BERToDER) returns errors, never panics.
//   - Inspect takes customers' replies apart (any nesting of BER or DER envelopes and detached or
//     opaque signatures, as OpenSSL, gpgsm and mail clients write them) and reports facts (signature,
//     chain at a trusted time, weak algorithms, whether the signature covers the root part), never a
//     verdict: that is the gateway's.
//   - SignedData is read and verified here (signerinfo.go), not by pkcs7: signers named by
//     issuerAndSerialNumber or subjectKeyIdentifier, RSA PKCS #1 v1.5, RSASSA-PSS, ECDSA, Ed25519,
//     and signer certificates the message does not carry taken from InboundOptions.Certificates. A
//     signature sealpost cannot check (algorithm, key or certificate) is reported as Unsupported,
//     never as a bad signature.
//   - Decrypt looks for the RecipientInfo naming its key before it judges any algorithm, so mail
//     for someone else is ErrNotForUs whatever cipher it uses.
//
// Errors: every failure wraps one of the sentinels in errors.go, so callers choose a reply with
// errors.Is: ErrMalformed, ErrNoFrom, ErrSenderNotCovered and ErrNoRecipients are the sender's to fix;
// ErrTimestamp wraps the TSA's error (tsa.ErrUnavailable is transient); ErrSignature (with
// ErrUnknownSigner when no certificate names the signer), ErrDecrypt, ErrNotForUs and
// ErrUnsupported come from opening a message.
package smime
