// Package keys holds the bank's identities and the directory of recipients' certificates and OpenPGP
// keys.
//
// An Identity is a signing key behind crypto.Signer (a file, or an HSM over PKCS#11) with its
// certificate chain. The bank has one per Role: the signer of outbound S/MIME, the embedded TSA, and
// the support identity customers encrypt their replies to. CheckIdentity is the one judge of whether
// an identity fits its role (key pair, key type, validity, chain, key usage); ImportIdentity stores
// only what it accepts; NewCSR and NewPKCS11CSR start a real identity with a key that never leaves
// the data directory or the token. The bank's OpenPGP key is an *openpgp.Entity loaded by
// LoadPGPKey, which refuses anything but an unrevoked, unexpired v4 RSA key of at least 2048 bits
// that can sign.
//
// A Directory answers "which key do I encrypt to for this address?". For S/MIME it only ever returns a
// certificate that chains to a trusted root, is valid now, allows email protection and key
// encipherment, and has an RSA key of at least 2048 bits. For OpenPGP it only returns a key named by a
// user ID with a valid, unrevoked self-signature, whose primary key is neither revoked nor expired, and
// whose encryption key (the one go-crypto will use) is valid and not a weak RSA, DSA or ElGamal key.
// Choose picks between the two by a configurable preference, S/MIME by default. Every refusal is a
// *RecipientError whose causes are *KeyError values carrying the sentinel errors below, so callers
// branch with errors.Is and tell the sender why.
//
// DataDir is the on-disk layout shared by `sealpost keys …`, `sealpost protect` and `sealpost serve`.
// Private keys are written 0600 in a 0700 directory and never logged; of a customer's key, only the
// public part is ever stored.
package keys
