package keys

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/address"
)

// OpenPGP keys: the bank's signing key and customers' public keys.
//
// Every key sealpost writes or hands out is v4: GnuPG 2.2, still common among customers, cannot
// import v6 (RFC 9580) keys.

// ErrNoPGPKey is returned when input holds no OpenPGP key.
var ErrNoPGPKey = errors.New("no OpenPGP key found")

// minRSABits is the smallest RSA (or DSA, ElGamal) modulus accepted, as for certificates.
const minRSABits = 2048

// PGPConfig returns the settings sealpost generates OpenPGP keys with: v4 RSA-2048, SHA-256 and
// AES-256 preferences, no compression preference, no expiry.
func PGPConfig() *packet.Config {
	return &packet.Config{
		V6Keys:        false,
		Algorithm:     packet.PubKeyAlgoRSA,
		RSABits:       2048,
		DefaultHash:   crypto.SHA256,
		DefaultCipher: packet.CipherAES256,
	}
}

// NewDevPGPKey creates an OpenPGP key for development: a v4 RSA-2048 primary key that signs and
// certifies, an RSA-2048 encryption subkey, and one user ID "name <addr>" per address (the first is
// the primary user ID), with SHA-256 and AES-256 preferences and no expiry. Without addresses the
// key gets a single user ID holding just name.
func NewDevPGPKey(name string, addresses []string) (*openpgp.Entity, error) {
	var addrs []string
	for _, a := range addresses {
		n, err := address.Normalize(a)
		if err != nil {
			return nil, fmt.Errorf("OpenPGP user ID %q: %w", a, err)
		}
		if !slices.Contains(addrs, n) {
			addrs = append(addrs, n)
		}
	}
	cfg := PGPConfig()
	first := ""
	if len(addrs) > 0 {
		first = addrs[0]
	}
	e, err := openpgp.NewEntity(name, "", first, cfg)
	if err != nil {
		return nil, fmt.Errorf("generate OpenPGP key: %w", err)
	}
	for _, a := range addrs[min(1, len(addrs)):] {
		if err := e.AddUserId(name, "", a, cfg); err != nil {
			return nil, fmt.Errorf("OpenPGP user ID %q: %w", a, err)
		}
	}
	return e, nil
}

// LoadPGPKey reads the bank's OpenPGP secret key from file (armored or binary, exactly one key) and
// decrypts the primary key and every subkey with the passphrase. The passphrase is only read when the
// key is protected, so an unprotected key needs none. The key is refused unless it is v4 with an RSA
// primary key of at least 2048 bits (ErrUnsupportedKey), is neither revoked (ErrRevoked) nor expired
// (ErrExpired), and can sign (ErrNoSigningKey) with secret material at hand (ErrNoPrivateKey). A
// passphrase that does not decrypt the key gives ErrWrongPassphrase. Before returning, the key signs
// a test message and the signature is verified.
func LoadPGPKey(file string, passphrase Secret) (*openpgp.Entity, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read OpenPGP key: %w", err)
	}
	ents, err := ParsePGPKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(ents) != 1 {
		return nil, fmt.Errorf("%s: holds %d OpenPGP keys, want exactly one", file, len(ents))
	}
	e := ents[0]
	now := time.Now()
	if err := checkSigningPGPKey(e, now); err != nil {
		return nil, fmt.Errorf("%s: OpenPGP key %s: %w", file, pgpFingerprint(e), err)
	}
	if pgpKeyEncrypted(e) {
		pw, err := passphrase.Read()
		if err != nil {
			return nil, fmt.Errorf("%s: OpenPGP key is passphrase-protected: %w", file, err)
		}
		if err := e.DecryptPrivateKeys([]byte(pw)); err != nil {
			return nil, fmt.Errorf("%s: %w (%v)", file, ErrWrongPassphrase, err)
		}
	}
	if err := pgpSelfTest(e); err != nil {
		return nil, fmt.Errorf("%s: OpenPGP key %s: %w", file, pgpFingerprint(e), err)
	}
	return e, nil
}

// checkSigningPGPKey says whether e may be the bank's signing key at now; it needs no secret.
func checkSigningPGPKey(e *openpgp.Entity, now time.Time) error {
	if e.PrivateKey == nil || e.PrivateKey.Dummy() {
		return fmt.Errorf("%w: the file holds no secret for the primary key", ErrNoPrivateKey)
	}
	if e.PrimaryKey.Version != 4 {
		return fmt.Errorf("%w: v%d key (sealpost signs with v4 keys, which GnuPG 2.2 reads)", ErrUnsupportedKey, e.PrimaryKey.Version)
	}
	if !isRSA(e.PrimaryKey) || pgpBits(e.PrimaryKey) < minRSABits {
		return fmt.Errorf("%w: primary key is %s", ErrUnsupportedKey, pgpAlgorithm(e.PrimaryKey))
	}
	if pgpRevoked(e.Revocations, now) {
		return ErrRevoked
	}
	self, _ := e.PrimarySelfSignature()
	if self == nil {
		return fmt.Errorf("%w: no self-signature", ErrNoSigningKey)
	}
	if e.PrimaryKey.CreationTime.After(now) || self.CreationTime.After(now) {
		return fmt.Errorf("%w: created %s", ErrNotYetValid, self.CreationTime.UTC().Format(time.RFC3339))
	}
	if e.PrimaryKey.KeyExpired(self, now) || self.SigExpired(now) {
		return fmt.Errorf("%w: %s", ErrExpired, pgpExpiryDetail(e.PrimaryKey, self))
	}
	sk, ok := e.SigningKey(now)
	if !ok {
		return ErrNoSigningKey
	}
	if sk.PrivateKey == nil || sk.PrivateKey.Dummy() {
		return fmt.Errorf("%w: no secret for signing key %X", ErrNoPrivateKey, sk.PublicKey.Fingerprint)
	}
	if !isRSA(sk.PublicKey) || pgpBits(sk.PublicKey) < minRSABits {
		return fmt.Errorf("%w: signing key is %s", ErrUnsupportedKey, pgpAlgorithm(sk.PublicKey))
	}
	return nil
}

func pgpKeyEncrypted(e *openpgp.Entity) bool {
	if e.PrivateKey != nil && e.PrivateKey.Encrypted {
		return true
	}
	for _, s := range e.Subkeys {
		if s.PrivateKey != nil && s.PrivateKey.Encrypted {
			return true
		}
	}
	return false
}

// pgpSelfTest signs and verifies a short message: it proves the decrypted secret matches the key.
func pgpSelfTest(e *openpgp.Entity) error {
	const msg = "sealpost OpenPGP key check"
	cfg := PGPConfig()
	var sig bytes.Buffer
	if err := openpgp.DetachSign(&sig, e, strings.NewReader(msg), cfg); err != nil {
		return fmt.Errorf("%w: test signature: %v", ErrNoSigningKey, err)
	}
	if _, err := openpgp.CheckDetachedSignature(openpgp.EntityList{e}, strings.NewReader(msg), &sig, cfg); err != nil {
		return fmt.Errorf("%w: test signature does not verify: %v", ErrKeyMismatch, err)
	}
	return nil
}

// ParsePGPKeys reads every OpenPGP key in data: one or more armored blocks ("PGP PUBLIC KEY BLOCK"
// or "PGP PRIVATE KEY BLOCK"), or binary packets. Unlike openpgp.ReadKeyRing, which skips keys it
// cannot read, any unreadable key is an error. go-crypto checks every self-signature while parsing:
// a user ID or subkey whose binding does not verify makes its key unreadable, and a user ID without a
// self-signature is dropped. Secret material, if present, is kept (still encrypted).
func ParsePGPKeys(data []byte) ([]*openpgp.Entity, error) {
	if !isOpenPGP(data) {
		return nil, ErrNoPGPKey
	}
	var out []*openpgp.Entity
	if starts := armorStarts(data); len(starts) > 0 {
		for _, off := range starts {
			block, err := armor.Decode(bytes.NewReader(data[off:]))
			if err != nil {
				return nil, fmt.Errorf("OpenPGP armor: %w", err)
			}
			if block.Type != openpgp.PublicKeyType && block.Type != openpgp.PrivateKeyType {
				return nil, fmt.Errorf("armored %q is not an OpenPGP key", excerpt(block.Type))
			}
			ents, err := readPGPEntities(block.Body)
			if err != nil {
				return nil, err
			}
			out = append(out, ents...)
		}
	} else {
		ents, err := readPGPEntities(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		out = ents
	}
	if len(out) == 0 {
		return nil, ErrNoPGPKey
	}
	return out, nil
}

func readPGPEntities(r io.Reader) (ents []*openpgp.Entity, err error) {
	packets := packet.NewReader(r)
	for {
		e, err := openpgp.ReadEntity(packets)
		if err == io.EOF {
			return ents, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read OpenPGP key: %w", err)
		}
		ents = append(ents, e)
	}
}

var armorBegin = []byte("-----BEGIN PGP ")

// armorStarts returns the offsets of lines that begin an OpenPGP armored block. A line such as
// ":-----BEGIN" (how GnuPG defuses the revocation certificates it writes) does not count.
func armorStarts(data []byte) []int {
	var offs []int
	for off := 0; off < len(data); {
		line := data[off:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		if bytes.HasPrefix(bytes.TrimLeft(line, " \t\r"), armorBegin) {
			offs = append(offs, off)
		}
		off += len(line)
	}
	return offs
}

// isOpenPGP tells OpenPGP input from X.509 input: OpenPGP armor, or a binary packet (tag byte with
// the high bit set), where a DER certificate starts with a SEQUENCE (0x30) and PEM with "-----BEGIN".
func isOpenPGP(data []byte) bool {
	if len(armorStarts(data)) > 0 {
		return true
	}
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return false
	}
	return len(data) > 0 && data[0]&0x80 != 0
}

// EncodePGPPublicKeys returns the public part of each key as one armored "PGP PUBLIC KEY BLOCK". It
// never writes secret material, whatever the entities hold. Signatures by other keys on user IDs
// (web-of-trust certifications) are left out; user IDs are written primary first, then in order.
func EncodePGPPublicKeys(ents ...*openpgp.Entity) ([]byte, error) {
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if err := serializePGPPublic(w, e); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// serializePGPPublic writes e's public packets: primary key, its revocations and direct signatures,
// each user ID with its self-signatures and self-revocations, each subkey with its revocations and
// binding. Packets are written from the public halves only, so no secret can leak.
func serializePGPPublic(w io.Writer, e *openpgp.Entity) error {
	if err := e.PrimaryKey.Serialize(w); err != nil {
		return err
	}
	if err := serializeSigs(w, e.Revocations); err != nil {
		return err
	}
	if err := serializeSigs(w, selfIssued(e, e.Signatures)); err != nil {
		return err
	}
	for _, id := range sortedIdentities(e) {
		if err := id.UserId.Serialize(w); err != nil {
			return err
		}
		sigs := selfIssued(e, id.Signatures)
		for _, s := range append([]*packet.Signature{id.SelfSignature}, id.Revocations...) {
			if s != nil && !containsSig(sigs, s) {
				sigs = append(sigs, s)
			}
		}
		if err := serializeSigs(w, sigs); err != nil {
			return err
		}
	}
	for _, sk := range e.Subkeys {
		if err := sk.PublicKey.Serialize(w); err != nil {
			return err
		}
		if err := serializeSigs(w, sk.Revocations); err != nil {
			return err
		}
		if err := sk.Sig.Serialize(w); err != nil {
			return err
		}
	}
	return nil
}

func serializeSigs(w io.Writer, sigs []*packet.Signature) error {
	for _, s := range sigs {
		if err := s.Serialize(w); err != nil {
			return err
		}
	}
	return nil
}

func selfIssued(e *openpgp.Entity, sigs []*packet.Signature) []*packet.Signature {
	var out []*packet.Signature
	for _, s := range sigs {
		if s.CheckKeyIdOrFingerprint(e.PrimaryKey) {
			out = append(out, s)
		}
	}
	return out
}

func containsSig(sigs []*packet.Signature, s *packet.Signature) bool {
	for _, x := range sigs {
		if x == s {
			return true
		}
	}
	return false
}

// sortedIdentities returns e's user IDs, primary first, then by name: go-crypto keeps them in a map,
// and a stable order makes re-exports byte-identical.
func sortedIdentities(e *openpgp.Entity) []*openpgp.Identity {
	primary := e.PrimaryIdentity()
	ids := make([]*openpgp.Identity, 0, len(e.Identities))
	for _, id := range e.Identities {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if (ids[i] == primary) != (ids[j] == primary) {
			return ids[i] == primary
		}
		return ids[i].Name < ids[j].Name
	})
	return ids
}

// publicPGP returns e's public part, as read back from its serialization.
func publicPGP(e *openpgp.Entity) (*openpgp.Entity, error) {
	var b bytes.Buffer
	if err := serializePGPPublic(&b, e); err != nil {
		return nil, fmt.Errorf("OpenPGP key %s: %w", pgpFingerprint(e), err)
	}
	ents, err := readPGPEntities(&b)
	if err != nil {
		return nil, err
	}
	if len(ents) != 1 {
		return nil, fmt.Errorf("OpenPGP key %s: public part reads back as %d keys", pgpFingerprint(e), len(ents))
	}
	return ents[0], nil
}

// mergePGP combines two copies of the same key, as a keyring does on import: revocations,
// user IDs, subkeys and their signatures from both are kept, and go-crypto then uses the newest
// self-signatures. So importing an old copy of a key never undoes a revocation already stored.
func mergePGP(old, cur *openpgp.Entity) (*openpgp.Entity, error) {
	if !bytes.Equal(old.PrimaryKey.Fingerprint, cur.PrimaryKey.Fingerprint) {
		return nil, fmt.Errorf("merge OpenPGP keys %s and %s: different keys", pgpFingerprint(old), pgpFingerprint(cur))
	}
	m := &openpgp.Entity{
		PrimaryKey:  cur.PrimaryKey,
		Identities:  map[string]*openpgp.Identity{},
		Revocations: unionSigs(cur.Revocations, old.Revocations),
		Signatures:  unionSigs(cur.Signatures, old.Signatures),
	}
	for _, src := range []*openpgp.Entity{cur, old} {
		for name, id := range src.Identities {
			have, ok := m.Identities[name]
			if !ok {
				cp := *id
				m.Identities[name] = &cp
				continue
			}
			have.Signatures = unionSigs(have.Signatures, id.Signatures)
			have.Revocations = unionSigs(have.Revocations, id.Revocations)
			if have.SelfSignature == nil || (id.SelfSignature != nil && id.SelfSignature.CreationTime.After(have.SelfSignature.CreationTime)) {
				have.SelfSignature = id.SelfSignature
			}
		}
	}
	for _, src := range []*openpgp.Entity{cur, old} {
		for _, sk := range src.Subkeys {
			i := -1
			for j := range m.Subkeys {
				if bytes.Equal(m.Subkeys[j].PublicKey.Fingerprint, sk.PublicKey.Fingerprint) {
					i = j
				}
			}
			if i < 0 {
				m.Subkeys = append(m.Subkeys, openpgp.Subkey{PublicKey: sk.PublicKey, Sig: sk.Sig, Revocations: sk.Revocations})
				continue
			}
			m.Subkeys[i].Revocations = unionSigs(m.Subkeys[i].Revocations, sk.Revocations)
			if sk.Sig.CreationTime.After(m.Subkeys[i].Sig.CreationTime) {
				m.Subkeys[i].Sig = sk.Sig
			}
		}
	}
	return publicPGP(m)
}

// unionSigs returns a's signatures and those of b not already in a (compared by encoding).
func unionSigs(a, b []*packet.Signature) []*packet.Signature {
	seen := map[string]bool{}
	var out []*packet.Signature
	for _, s := range append(append([]*packet.Signature(nil), a...), b...) {
		var buf bytes.Buffer
		if err := s.Serialize(&buf); err != nil {
			continue
		}
		if k := buf.String(); !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}

// pgpAddress returns the normalised email address of a user ID, if it has one.
func pgpAddress(id *openpgp.Identity) (string, bool) {
	if id == nil || id.UserId == nil {
		return "", false
	}
	n, err := address.Normalize(id.UserId.Email)
	return n, err == nil
}

// PGPAddresses returns the addresses (domain lower-cased) of e's self-signed user IDs that are not
// revoked at now (a revocation counts whatever its date), the primary identity's first.
func PGPAddresses(e *openpgp.Entity, now time.Time) []string {
	var out []string
	for _, id := range sortedIdentities(e) {
		if id.SelfSignature == nil || pgpRevoked(id.Revocations, now) {
			continue
		}
		if a, ok := pgpAddress(id); ok && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func pgpFingerprint(e *openpgp.Entity) string {
	if e == nil || e.PrimaryKey == nil {
		return ""
	}
	return fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
}

func isRSA(pk *packet.PublicKey) bool {
	switch pk.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly, packet.PubKeyAlgoRSAEncryptOnly:
		return true
	}
	return false
}

func pgpBits(pk *packet.PublicKey) int {
	n, err := pk.BitLength()
	if err != nil {
		return 0
	}
	return int(n)
}

func pgpAlgorithm(pk *packet.PublicKey) string {
	switch {
	case isRSA(pk):
		return fmt.Sprintf("RSA-%d", pgpBits(pk))
	case pk.PubKeyAlgo == packet.PubKeyAlgoDSA:
		return fmt.Sprintf("DSA-%d", pgpBits(pk))
	case pk.PubKeyAlgo == packet.PubKeyAlgoElGamal:
		return fmt.Sprintf("ElGamal-%d", pgpBits(pk))
	}
	return fmt.Sprintf("algorithm %d", pk.PubKeyAlgo)
}

// earliest returns the earlier of two expiry times, zero meaning never.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}
