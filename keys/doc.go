// Package keys holds the bank's identities and the directory of recipients' certificates.
//
// An Identity is a signing key behind crypto.Signer (a file today, an HSM later) with its certificate
// chain. A Directory answers "which certificate do I encrypt to for this address?": it only ever returns
// a certificate that chains to a trusted root, is valid now, allows email protection and key
// encipherment, and has an RSA key of at least 2048 bits. Every refusal is a *RecipientError whose
// causes are the sentinel errors below, so callers branch with errors.Is and tell the sender why.
//
// DataDir is the on-disk layout shared by `sealpost keys …`, `sealpost protect` and `sealpost serve`.
// Private keys are written 0600 in a 0700 directory and never logged.
package keys
