// Package inbound is sealpost's inbound pipeline for customers' replies to the support desk:
// decrypt, verify, bind the signer to the From address and the registered key, link the reply
// to its thread, and hand the desk a fresh message with a verdict it can trust, or hold it.
//
// Invariants:
//   - Only StatusVerified is a pass: signature over the whole root part, chain to a trusted root
//     with emailProtection at the signing time (or a valid OpenPGP key then), no weak algorithm,
//     the signer's address is the single From address, and the key is the registered one.
//   - The desk gets a fresh message: our Authentication-Results and Sealpost-Verdict first, chosen
//     header fields, then the decrypted content; incoming Authentication-Results naming our
//     authserv-id and any Sealpost-*/X-Sealpost-* field are never copied.
//   - Mail from a customer with a registered key that does not verify with it is held; so is
//     CBC-decrypted content without a valid signature (unless configured otherwise); OpenPGP
//     without integrity protection is refused (550). Held mail is kept as received, never as
//     decrypted plaintext.
//
// Errors returned by Session methods are *gateway.Error values with their SMTP reply.
package inbound
