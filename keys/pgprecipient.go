package keys

import (
	"bytes"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// LookupPGP returns the OpenPGP key to encrypt to for addr. Among the usable keys whose non-revoked
// user IDs name addr (see Directory for case variants), it picks the one whose encryption key
// expires last (no expiry counts as latest; ties go to the newest encryption key, then the newest
// primary key). Otherwise it returns a *RecipientError saying why each known key was refused:
//
//   - ErrRevoked: the primary key is revoked (or every encryption subkey is);
//   - ErrExpired: the primary key, the user ID's self-signature, or every encryption subkey expired;
//   - ErrNotYetValid: the key or its self-signature is dated in the future;
//   - ErrNoEncryptionKey: no valid, unexpired, unrevoked encryption-capable key (for mixed reasons,
//     which Detail lists, or because none is marked for encrypting communications);
//   - ErrUnsupportedKey: an RSA, DSA or ElGamal key below 2048 bits, or an encryption key whose
//     algorithm go-crypto cannot encrypt to.
//
// The key judged is the one go-crypto's Entity.EncryptionKey picks at the directory's clock, which
// is the one openpgp.Encrypt will use: encrypt with a packet.Config whose clock agrees.
func (d *Directory) LookupPGP(addr string) (*openpgp.Entity, error) {
	now := d.now()
	n, spellings, err := d.match(addr, now)
	if err != nil {
		return nil, err
	}
	rerr := &RecipientError{Address: n}
	var best *openpgp.Entity
	var bestEnc openpgp.Key
	var bestExp time.Time
	for _, c := range d.pgpCandidatesFor(spellings) {
		enc, kerr, named := d.checkPGPCandidate(c.key, c.ids, now)
		if !named {
			continue
		}
		if kerr != nil {
			rerr.Causes = append(rerr.Causes, kerr)
			continue
		}
		exp := pgpExpiry(c.key, now)
		if best == nil || pgpBetter(c.key, enc, exp, best, bestEnc, bestExp) {
			best, bestEnc, bestExp = c.key, enc, exp
		}
	}
	if best == nil {
		return nil, rerr
	}
	return best, nil
}

// pgpCandidatesFor returns the OpenPGP keys indexed under any of spellings, each once, with the
// user IDs of every one of those spellings.
func (d *Directory) pgpCandidatesFor(spellings []string) []pgpCandidate {
	var out []pgpCandidate
	at := map[*openpgp.Entity]int{}
	for _, s := range spellings {
		for _, c := range d.pgpByAddress[s] {
			i, seen := at[c.key]
			if !seen {
				i = len(out)
				at[c.key] = i
				out = append(out, pgpCandidate{key: c.key})
			}
			out[i].ids = append(out[i].ids, c.ids...)
		}
	}
	return out
}

// pgpBetter says whether candidate a should be preferred over b.
func pgpBetter(a *openpgp.Entity, aEnc openpgp.Key, aExp time.Time, b *openpgp.Entity, bEnc openpgp.Key, bExp time.Time) bool {
	if !aExp.Equal(bExp) {
		return aExp.IsZero() || (!bExp.IsZero() && aExp.After(bExp))
	}
	if t, u := aEnc.PublicKey.CreationTime, bEnc.PublicKey.CreationTime; !t.Equal(u) {
		return t.After(u)
	}
	if t, u := a.PrimaryKey.CreationTime, b.PrimaryKey.CreationTime; !t.Equal(u) {
		return t.After(u)
	}
	return bytes.Compare(a.PrimaryKey.Fingerprint, b.PrimaryKey.Fingerprint) > 0
}

// CheckPGP says whether e may be used to encrypt to now, for any of the addresses in its user IDs,
// or returns why not (the reasons LookupPGP gives).
func (d *Directory) CheckPGP(e *openpgp.Entity) *KeyError {
	var ids []*openpgp.Identity
	for _, id := range sortedIdentities(e) {
		if _, ok := pgpAddress(id); ok && id.SelfSignature != nil {
			ids = append(ids, id)
		}
	}
	now := d.now()
	_, kerr, named := d.checkPGPCandidate(e, ids, now)
	if !named {
		return &KeyError{Method: MethodPGP, Subject: primaryName(e), Serial: pgpFingerprint(e), Reason: ErrRevoked,
			Detail: "every user ID with an email address is revoked", NotAfter: formatExpiry(pgpExpiry(e, now))}
	}
	return kerr
}

// checkPGPCandidate checks e for the first of ids that is not revoked and passes, or reports the
// first refusal. named is false when every one of ids is revoked: then e no longer names the address.
func (d *Directory) checkPGPCandidate(e *openpgp.Entity, ids []*openpgp.Identity, now time.Time) (enc openpgp.Key, kerr *KeyError, named bool) {
	var firstErr *KeyError
	for _, id := range ids {
		if pgpRevoked(id.Revocations, now) {
			continue
		}
		named = true
		enc, kerr := checkPGP(e, id, now)
		if kerr == nil {
			return enc, nil, true
		}
		if firstErr == nil {
			firstErr = kerr
		}
	}
	return openpgp.Key{}, firstErr, named
}

// checkPGP says whether e may be used, at now, to encrypt to the address of its user ID id, and
// returns the encryption key go-crypto will use.
func checkPGP(e *openpgp.Entity, id *openpgp.Identity, now time.Time) (openpgp.Key, *KeyError) {
	fail := func(reason error, detail string) (openpgp.Key, *KeyError) {
		return openpgp.Key{}, &KeyError{Method: MethodPGP, Subject: printable(id.Name), Serial: pgpFingerprint(e),
			Reason: reason, Detail: detail, NotAfter: formatExpiry(pgpExpiry(e, now))}
	}
	if pgpWeak(e.PrimaryKey) {
		return fail(ErrUnsupportedKey, "primary key is "+pgpAlgorithm(e.PrimaryKey))
	}
	if pgpRevoked(e.Revocations, now) {
		return fail(ErrRevoked, revocationDetail(e.Revocations))
	}
	self, _ := e.PrimarySelfSignature()
	if self == nil {
		return fail(ErrNoEncryptionKey, "no valid self-signature")
	}
	switch {
	case e.PrimaryKey.CreationTime.After(now):
		return fail(ErrNotYetValid, "key created "+e.PrimaryKey.CreationTime.UTC().Format(time.RFC3339))
	case self.CreationTime.After(now):
		return fail(ErrNotYetValid, "self-signature dated "+self.CreationTime.UTC().Format(time.RFC3339))
	case id.SelfSignature != nil && id.SelfSignature.CreationTime.After(now):
		return fail(ErrNotYetValid, "user ID self-signature dated "+id.SelfSignature.CreationTime.UTC().Format(time.RFC3339))
	case e.PrimaryKey.KeyExpired(self, now):
		return fail(ErrExpired, "key expired "+pgpKeyExpiry(e.PrimaryKey, self).UTC().Format(time.RFC3339))
	case self.SigExpired(now):
		return fail(ErrExpired, "primary user ID self-signature expired "+pgpSigExpiry(self).UTC().Format(time.RFC3339))
	case id.SelfSignature != nil && id.SelfSignature.SigExpired(now):
		return fail(ErrExpired, "user ID self-signature expired "+pgpSigExpiry(id.SelfSignature).UTC().Format(time.RFC3339))
	}
	enc, ok := e.EncryptionKey(now)
	if !ok {
		detail, reason := diagnoseEncryption(e, self, now)
		return fail(reason, detail)
	}
	if enc.PublicKey != e.PrimaryKey && pgpRevoked(enc.Revocations, now) {
		// go-crypto picked a subkey whose revocation it thinks is not yet in force.
		return fail(ErrRevoked, fmt.Sprintf("encryption subkey %X: %s", enc.PublicKey.Fingerprint, revocationDetail(enc.Revocations)))
	}
	if pgpWeak(enc.PublicKey) {
		return fail(ErrUnsupportedKey, fmt.Sprintf("encryption key %X is %s", enc.PublicKey.Fingerprint, pgpAlgorithm(enc.PublicKey)))
	}
	return enc, nil
}

// diagnoseEncryption says why e has no encryption key at now although its primary key is valid: a
// detail naming each encryption-capable key, and their common reason (ErrNoEncryptionKey if mixed).
func diagnoseEncryption(e *openpgp.Entity, self *packet.Signature, now time.Time) (detail string, reason error) {
	var reasons []error
	var details []string
	judge := func(pk *packet.PublicKey, sig *packet.Signature, revs []*packet.Signature) {
		name := fmt.Sprintf("encryption subkey %X", pk.Fingerprint)
		if pk == e.PrimaryKey {
			name = "primary key (marked for encryption)"
		}
		var r error
		var d string
		switch {
		case !pk.PubKeyAlgo.CanEncrypt():
			r, d = ErrUnsupportedKey, fmt.Sprintf("%s: cannot encrypt with %s", name, pgpAlgorithm(pk))
		case pgpRevoked(revs, now):
			r, d = ErrRevoked, name+": "+revocationDetail(revs)
		case pk.KeyExpired(sig, now):
			r, d = ErrExpired, name+": expired "+pgpKeyExpiry(pk, sig).UTC().Format(time.RFC3339)
		case sig.SigExpired(now) && sig.CreationTime.After(now):
			r, d = ErrNotYetValid, name+": binding dated "+sig.CreationTime.UTC().Format(time.RFC3339)
		case sig.SigExpired(now):
			r, d = ErrExpired, name+": binding expired "+pgpSigExpiry(sig).UTC().Format(time.RFC3339)
		default:
			r, d = ErrNoEncryptionKey, name+": not usable"
		}
		reasons = append(reasons, r)
		details = append(details, d)
	}
	for _, sk := range e.Subkeys {
		if sk.Sig != nil && sk.Sig.FlagsValid && sk.Sig.FlagEncryptCommunications {
			judge(sk.PublicKey, sk.Sig, sk.Revocations)
		}
	}
	if self.FlagsValid && self.FlagEncryptCommunications {
		judge(e.PrimaryKey, self, e.Revocations)
	}
	if len(reasons) == 0 {
		return "no key is marked for encrypting communications", ErrNoEncryptionKey
	}
	reason = reasons[0]
	for _, r := range reasons[1:] {
		if r != reason {
			reason = ErrNoEncryptionKey
		}
	}
	return strings.Join(details, "; "), reason
}

func revocationDetail(revs []*packet.Signature) string {
	if len(revs) == 0 {
		return "revoked"
	}
	r := revs[0]
	s := "revoked " + r.CreationTime.UTC().Format(time.RFC3339)
	if r.RevocationReason != nil {
		s += " (" + revocationReasons[*r.RevocationReason]
		if s[len(s)-1] == '(' {
			s += fmt.Sprintf("reason %d", *r.RevocationReason)
		}
		if r.RevocationReasonText != "" {
			s += ": " + printable(r.RevocationReasonText)
		}
		s += ")"
	}
	return s
}

var revocationReasons = map[packet.ReasonForRevocation]string{
	packet.NoReason:       "no reason given",
	packet.KeySuperseded:  "superseded",
	packet.KeyCompromised: "compromised",
	packet.KeyRetired:     "retired",
	packet.UserIDNotValid: "user ID no longer valid",
}

// maxPrintable bounds customer-supplied text (user IDs, revocation reasons) in errors.
const maxPrintable = 200

// printable makes customer-supplied text safe to put in an error that may reach a log line or an
// SMTP reply: control characters become '?', and it is cut at maxPrintable runes.
func printable(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxPrintable {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// pgpExpiry returns when e stops being usable for encryption: the earlier of the primary key's expiry
// and that of the encryption key go-crypto picks at now (or, when there is none, of the
// longest-lived unrevoked encryption subkey). Zero means never.
func pgpExpiry(e *openpgp.Entity, now time.Time) time.Time {
	self, _ := e.PrimarySelfSignature()
	primary := pgpKeyExpiry(e.PrimaryKey, self)
	if enc, ok := e.EncryptionKey(now); ok {
		if enc.PublicKey == e.PrimaryKey {
			return primary
		}
		return earliest(primary, pgpKeyExpiry(enc.PublicKey, enc.SelfSignature))
	}
	var latest time.Time
	found, never := false, false
	for _, sk := range e.Subkeys {
		if sk.Sig == nil || !sk.Sig.FlagsValid || !sk.Sig.FlagEncryptCommunications || pgpRevoked(sk.Revocations, now) {
			continue
		}
		found = true
		t := pgpKeyExpiry(sk.PublicKey, sk.Sig)
		if t.IsZero() {
			never = true
		} else if t.After(latest) {
			latest = t
		}
	}
	if !found || never {
		return primary
	}
	return earliest(primary, latest)
}

func formatExpiry(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func primaryName(e *openpgp.Entity) string {
	if id := e.PrimaryIdentity(); id != nil {
		return printable(id.Name)
	}
	return ""
}
