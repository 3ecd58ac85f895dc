// Package discovery finds customers' keys where they already are and notices when they are
// revoked: a Web Key Directory client (draft-koch-openpgp-webkey-service) for customers who
// registered nothing, a WKD server publishing the bank's own OpenPGP keys, and revocation checks
// of customers' S/MIME certificates by CRL and OCSP.
//
// Everything this package reads comes from the network and is hostile until checked: every
// answer is size- and time-limited, a WKD key is used only when it is the one key of the answer,
// binary, names the address in a valid user ID and passes keys' own checks; a CRL or OCSP
// response is used only when it is signed by the certificate's issuer (or its delegated OCSP
// responder), is about that certificate and is current. Anything else is refused with a typed
// error that says why; the caller decides what a refusal means for the mail (see outbound).
package discovery
