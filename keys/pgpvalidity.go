package keys

import (
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// OpenPGP key validity: the one copy of the rules (expiry, signature expiry, revocation, weak keys)
// that the directory applies to recipient keys, LoadPGPKey to the bank's key and package pgp to the
// keys that signed inbound mail. It lives here rather than in pgp because keys needs it and must
// not import pgp.

// CheckPGPSigner says why key, which made a verified signature, was not fit to sign at the time at:
// an error wrapping ErrRevoked (whatever the revocation's date), ErrNotYetValid, ErrExpired or
// ErrNoSigningKey, or nil. Validity is go-crypto's (Entity.SigningKeyById at the time at), except
// that revocations count whatever their date (see pgpRevoked).
func CheckPGPSigner(key openpgp.Key, at time.Time) error {
	e := key.Entity
	primary := key.PublicKey == e.PrimaryKey
	sub := fmt.Sprintf("signing subkey %016X", key.PublicKey.KeyId)
	self, id := e.PrimarySelfSignature()
	switch {
	case pgpRevoked(e.Revocations, at):
		return fmt.Errorf("%w: primary key %s", ErrRevoked, revocationDate(e.Revocations))
	case !primary && pgpRevoked(key.Revocations, at):
		return fmt.Errorf("%w: %s %s", ErrRevoked, sub, revocationDate(key.Revocations))
	case self == nil:
		return fmt.Errorf("%w: no valid self-signature", ErrNoSigningKey)
	case id != nil && pgpRevoked(id.Revocations, at):
		return fmt.Errorf("%w: primary user ID %s", ErrRevoked, revocationDate(id.Revocations))
	case e.PrimaryKey.CreationTime.After(at):
		return fmt.Errorf("%w: primary key created %s", ErrNotYetValid, stamp(e.PrimaryKey.CreationTime))
	case !primary && key.PublicKey.CreationTime.After(at):
		return fmt.Errorf("%w: %s created %s", ErrNotYetValid, sub, stamp(key.PublicKey.CreationTime))
	}
	if _, ok := e.SigningKeyById(at, key.PublicKey.KeyId); ok {
		return nil
	}
	return signerExpiry(key, self, at, sub)
}

// signerExpiry says why go-crypto found key not valid for signing at at, once revocation and
// creation dates are ruled out.
func signerExpiry(key openpgp.Key, self *packet.Signature, at time.Time, sub string) error {
	e := key.Entity
	switch {
	case e.PrimaryKey.KeyExpired(self, at):
		return fmt.Errorf("%w: primary key expired %s", ErrExpired, stamp(pgpKeyExpiry(e.PrimaryKey, self)))
	case self.CreationTime.After(at):
		return fmt.Errorf("%w: self-signature dated %s", ErrNotYetValid, stamp(self.CreationTime))
	case self.SigExpired(at):
		return fmt.Errorf("%w: self-signature expired %s", ErrExpired, stamp(pgpSigExpiry(self)))
	case key.PublicKey == e.PrimaryKey:
	case key.SelfSignature == nil:
		return fmt.Errorf("%w: %s has no binding signature", ErrNoSigningKey, sub)
	case key.PublicKey.KeyExpired(key.SelfSignature, at):
		return fmt.Errorf("%w: %s expired %s", ErrExpired, sub, stamp(pgpKeyExpiry(key.PublicKey, key.SelfSignature)))
	case key.SelfSignature.CreationTime.After(at):
		return fmt.Errorf("%w: %s bound %s", ErrNotYetValid, sub, stamp(key.SelfSignature.CreationTime))
	case key.SelfSignature.SigExpired(at):
		return fmt.Errorf("%w: %s binding expired %s", ErrExpired, sub, stamp(pgpSigExpiry(key.SelfSignature)))
	}
	return fmt.Errorf("%w: key %016X is not marked for signing", ErrNoSigningKey, key.PublicKey.KeyId)
}

// PGPSignatureExpiry returns when sig stops being valid under its own lifetime subpacket; zero
// means never. It judges document signatures as well as self-signatures and revocations.
func PGPSignatureExpiry(sig *packet.Signature) time.Time { return pgpSigExpiry(sig) }

// WeakPGPKey reports a finite-field key (RSA, DSA, ElGamal) below 2048 bits, with a description
// such as "RSA-1024". Elliptic-curve keys that go-crypto can use are not weak.
func WeakPGPKey(pk *packet.PublicKey) (desc string, weak bool) {
	if !pgpWeak(pk) {
		return "", false
	}
	return pgpAlgorithm(pk), true
}

// pgpWeak reports a finite-field key (RSA, DSA, ElGamal) below minRSABits.
func pgpWeak(pk *packet.PublicKey) bool {
	switch pk.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly, packet.PubKeyAlgoRSAEncryptOnly,
		packet.PubKeyAlgoDSA, packet.PubKeyAlgoElGamal:
		return pgpBits(pk) < minRSABits
	}
	return false
}

// pgpKeyExpiry returns when pk stops being valid under its binding or self-signature sig; zero means
// never.
func pgpKeyExpiry(pk *packet.PublicKey, sig *packet.Signature) time.Time {
	if sig == nil || sig.KeyLifetimeSecs == nil || *sig.KeyLifetimeSecs == 0 {
		return time.Time{}
	}
	return pk.CreationTime.Add(time.Duration(*sig.KeyLifetimeSecs) * time.Second)
}

func pgpSigExpiry(sig *packet.Signature) time.Time {
	if sig == nil || sig.SigLifetimeSecs == nil || *sig.SigLifetimeSecs == 0 {
		return time.Time{}
	}
	return sig.CreationTime.Add(time.Duration(*sig.SigLifetimeSecs) * time.Second)
}

func pgpExpiryDetail(pk *packet.PublicKey, sig *packet.Signature) string {
	if t := pgpKeyExpiry(pk, sig); !t.IsZero() {
		return "key expired " + t.UTC().Format(time.RFC3339)
	}
	if t := pgpSigExpiry(sig); !t.IsZero() {
		return "self-signature expired " + t.UTC().Format(time.RFC3339)
	}
	return "self-signature dated " + sig.CreationTime.UTC().Format(time.RFC3339)
}

// pgpRevoked says whether revs holds a revocation in force at now. Unlike go-crypto, which ignores a
// revocation dated after now, any revocation counts whatever its date, as in GnuPG: gpg dates a user
// ID revocation a second after the self-signature it overrides, and a customer's clock may be ahead.
// Only a revocation whose own lifetime ran out before now is ignored.
func pgpRevoked(revs []*packet.Signature, now time.Time) bool {
	for _, r := range revs {
		if t := pgpSigExpiry(r); t.IsZero() || !now.After(t) {
			return true
		}
		if r.RevocationReason != nil && *r.RevocationReason == packet.KeyCompromised {
			return true
		}
	}
	return false
}

func revocationDate(revs []*packet.Signature) string {
	if len(revs) == 0 {
		return "revoked"
	}
	return "revoked " + stamp(revs[0].CreationTime)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
