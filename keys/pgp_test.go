package keys

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

var (
	pgpPrimesOnce sync.Once
	pgpPrimes     [][]*big.Int // prime pairs of RSA-2048 keys
	pgpWeakPrimes [][]*big.Int // prime pairs of RSA-1024 keys
	pgpCounter    struct {
		sync.Mutex
		n int
	}
)

// pgpKeyMaterial generates a few RSA keys once; test keys are built from their primes (go-crypto's
// Config.RSAPrimes), which takes no time even under -race. Creation times differ, so fingerprints do.
func pgpKeyMaterial() ([][]*big.Int, [][]*big.Int) {
	pgpPrimesOnce.Do(func() {
		for i := 0; i < 3; i++ {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			pgpPrimes = append(pgpPrimes, k.Primes)
		}
		for i := 0; i < 2; i++ {
			k, err := rsa.GenerateKey(rand.Reader, 1024)
			if err != nil {
				panic(err)
			}
			pgpWeakPrimes = append(pgpWeakPrimes, k.Primes)
		}
	})
	return pgpPrimes, pgpWeakPrimes
}

// pgpSpec describes a test key.
type pgpSpec struct {
	name        string
	addrs       []string
	created     time.Time // zero: an hour ago
	lifetime    uint32    // primary key lifetime in seconds; 0 = never
	subLifetime uint32    // encryption subkey lifetime; 0 = never
	sigLifetime uint32    // lifetime of every self-signature; 0 = never
	weak        bool      // RSA-1024 primary and subkey
	weakSubkey  bool      // RSA-2048 primary, RSA-1024 subkey
	weakPrimary bool      // RSA-1024 primary, RSA-2048 subkeys
	signSubkey  bool      // add an RSA-2048 signing subkey
	noSubkey    bool      // no encryption subkey at all
}

func (s pgpSpec) config(primes ...[]*big.Int) *packet.Config {
	cfg := PGPConfig()
	created := s.created
	if created.IsZero() {
		pgpCounter.Lock()
		pgpCounter.n++
		created = time.Now().Add(-time.Hour).Add(time.Duration(pgpCounter.n) * time.Second)
		pgpCounter.Unlock()
	}
	cfg.Time = func() time.Time { return created }
	for _, p := range primes {
		cfg.RSAPrimes = append(cfg.RSAPrimes, p...)
	}
	return cfg
}

// newTestPGPKey builds a key (with its secret) as spec says.
func newTestPGPKey(t testing.TB, s pgpSpec) *openpgp.Entity {
	t.Helper()
	strong, weak := pgpKeyMaterial()
	primary, throwaway, sub := strong[0], strong[2], strong[1]
	bits := 2048
	if s.weak {
		primary, throwaway, sub, bits = weak[0], weak[1], weak[1], 1024
	}
	if s.weakSubkey {
		sub = weak[1]
	}
	if s.weakPrimary {
		primary, throwaway, bits = weak[0], weak[1], 1024
	}
	cfg := s.config(primary, throwaway, sub, strong[2])
	cfg.RSABits = bits
	cfg.KeyLifetimeSecs = s.lifetime
	cfg.SigLifetimeSecs = s.sigLifetime
	if s.name == "" {
		s.name = "Test Customer"
	}
	e, err := openpgp.NewEntity(s.name, "", s.addrs[0], cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range s.addrs[1:] {
		if err := e.AddUserId(s.name, "", a, cfg); err != nil {
			t.Fatal(err)
		}
	}
	// NewEntity's subkey never expires and is built from strong[2]; replace it as spec says.
	e.Subkeys = nil
	cfg.RSABits = 2048
	if !s.noSubkey {
		if s.weakSubkey || (s.weak && !s.weakPrimary) {
			cfg.RSABits = 1024
		}
		cfg.KeyLifetimeSecs = s.subLifetime
		if err := e.AddEncryptionSubkey(cfg); err != nil {
			t.Fatal(err)
		}
	} else {
		cfg.RSAPrimes = cfg.RSAPrimes[2:]
	}
	if s.signSubkey {
		cfg.RSABits, cfg.KeyLifetimeSecs = 2048, 0
		if err := e.AddSigningSubkey(cfg); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// publicCopy returns e as a customer would send it: armored public key, read back (which checks every
// self-signature).
func publicCopy(t *testing.T, e *openpgp.Entity) *openpgp.Entity {
	t.Helper()
	armored, err := EncodePGPPublicKeys(e)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := ParsePGPKeys(armored)
	if err != nil || len(ents) != 1 {
		t.Fatalf("read back public key: %d keys, %v", len(ents), err)
	}
	if ents[0].PrivateKey != nil {
		t.Fatal("public copy carries a private key")
	}
	return ents[0]
}

func pgpDirectory(t *testing.T, now time.Time, ents ...*openpgp.Entity) *Directory {
	t.Helper()
	var pub []*openpgp.Entity
	for _, e := range ents {
		pub = append(pub, publicCopy(t, e))
	}
	return NewDirectory(nil, nil, WithPGPKeys(pub...), WithClock(func() time.Time { return now }))
}

// wantPGPRefusal checks that LookupPGP refuses addr with a *RecipientError carrying one OpenPGP cause
// that Is want.
func wantPGPRefusal(t *testing.T, d *Directory, addr string, want error) *KeyError {
	t.Helper()
	k, err := d.LookupPGP(addr)
	if err == nil {
		t.Fatalf("LookupPGP(%s) = key %s, want refusal %v", addr, pgpFingerprint(k), want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("LookupPGP(%s) error = %v, want %v", addr, err, want)
	}
	var rerr *RecipientError
	if !errors.As(err, &rerr) || rerr.Address != addr || len(rerr.Causes) != 1 {
		t.Fatalf("want a *RecipientError for %s with one cause, got %#v", addr, err)
	}
	c := rerr.Causes[0]
	if c.Method != MethodPGP || c.Serial == "" || !strings.Contains(c.Subject, addr) {
		t.Fatalf("cause should name the OpenPGP key and user ID: %+v", c)
	}
	var ce *CertificateError // the old name still works with errors.As
	if !errors.As(err, &ce) || ce != c {
		t.Fatalf("errors.As(*CertificateError) should find the cause")
	}
	return c
}

func TestPGPRecipientUsable(t *testing.T) {
	e := newTestPGPKey(t, pgpSpec{addrs: []string{"Bob@Example.COM", "bob@second.example"}})
	d := pgpDirectory(t, time.Now(), e)
	for _, addr := range []string{"Bob@example.com", "bob@second.example"} {
		got, err := d.LookupPGP(addr)
		if err != nil {
			t.Fatalf("LookupPGP(%s): %v", addr, err)
		}
		if !bytes.Equal(got.PrimaryKey.Fingerprint, e.PrimaryKey.Fingerprint) {
			t.Fatalf("LookupPGP(%s) returned another key", addr)
		}
		if got.PrivateKey != nil {
			t.Fatal("directory must hold public keys only")
		}
	}
	if _, err := d.LookupPGP("bob@example.com"); err != nil {
		t.Fatalf("the local part matches without case too (AddressKey); got %v", err)
	}
	entries := d.Entries()
	if len(entries) != 1 || entries[0].Kind() != MethodPGP || entries[0].Problem != nil ||
		!entries[0].Expires().IsZero() || entries[0].ID() != pgpFingerprint(e) {
		t.Fatalf("Entries = %+v, want one usable OpenPGP key that never expires", entries)
	}
	if got := entries[0].Addresses; len(got) != 2 || got[0] != "Bob@example.com" {
		t.Fatalf("Entry addresses = %v, want primary user ID first", got)
	}
}

// TestPGPRecipientRevoked: a revoked key is refused, also when the revocation is dated in the future
// (a customer's clock ahead of ours), which go-crypto alone would ignore.
func TestPGPRecipientRevoked(t *testing.T) {
	tests := []struct {
		reason packet.ReasonForRevocation
		at     time.Duration
	}{{packet.KeySuperseded, -time.Minute}, {packet.KeyCompromised, -time.Minute}, {packet.KeyRetired, time.Hour}}
	for _, tt := range tests {
		reason := tt.reason
		e := newTestPGPKey(t, pgpSpec{addrs: []string{"carol@example.org"}})
		d := pgpDirectory(t, time.Now(), e)
		if _, err := d.LookupPGP("carol@example.org"); err != nil {
			t.Fatalf("before revocation: %v", err)
		}
		cfg := PGPConfig()
		cfg.Time = func() time.Time { return time.Now().Add(tt.at) }
		if err := e.RevokeKey(reason, "replaced by a new key", cfg); err != nil {
			t.Fatal(err)
		}
		d = pgpDirectory(t, time.Now(), e)
		c := wantPGPRefusal(t, d, "carol@example.org", ErrRevoked)
		if c.Serial != pgpFingerprint(e) {
			t.Fatalf("cause Serial = %s, want fingerprint %s", c.Serial, pgpFingerprint(e))
		}
		if ent := d.Entries(); len(ent) != 1 || !errors.Is(ent[0].Problem, ErrRevoked) {
			t.Fatalf("Entries should report the revocation: %+v", ent)
		}
	}
}

func TestPGPRecipientExpired(t *testing.T) {
	const day = 24 * 60 * 60
	tests := []struct {
		name string
		spec pgpSpec
	}{
		{"PrimaryKey", pgpSpec{lifetime: day}},
		{"EncryptionSubkey", pgpSpec{subLifetime: day}},
		{"SelfSignatures", pgpSpec{sigLifetime: day}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.addrs = []string{"dave@example.org"}
			e := newTestPGPKey(t, tt.spec)
			// Usable within its lifetime: the refusal below comes from the clock, not the key.
			if _, err := pgpDirectory(t, time.Now(), e).LookupPGP("dave@example.org"); err != nil {
				t.Fatalf("within lifetime: %v", err)
			}
			later := time.Now().Add(2 * 24 * time.Hour)
			d := pgpDirectory(t, later, e)
			c := wantPGPRefusal(t, d, "dave@example.org", ErrExpired)
			if tt.spec.sigLifetime == 0 && c.NotAfter == "" {
				t.Fatalf("cause should give the expiry: %+v", c)
			}
			ent := d.Entries()
			if len(ent) != 1 || !errors.Is(ent[0].Problem, ErrExpired) {
				t.Fatalf("Entries should report the expiry: %+v", ent)
			}
			if exp := ent[0].Expires(); tt.spec.sigLifetime == 0 && (exp.IsZero() || !exp.Before(later)) {
				t.Fatalf("Entry.Expires() = %v, want a time before %v", exp, later)
			}
		})
	}
}

func TestPGPRecipientWithoutEncryptionKey(t *testing.T) {
	e := newTestPGPKey(t, pgpSpec{addrs: []string{"erin@example.org"}, noSubkey: true})
	d := pgpDirectory(t, time.Now(), e)
	wantPGPRefusal(t, d, "erin@example.org", ErrNoEncryptionKey)

	// A revoked encryption subkey leaves none either; the cause says it was revoked.
	e = newTestPGPKey(t, pgpSpec{addrs: []string{"erin@example.org"}})
	if err := e.RevokeSubkey(&e.Subkeys[0], packet.KeyRetired, "", nil); err != nil {
		t.Fatal(err)
	}
	wantPGPRefusal(t, pgpDirectory(t, time.Now(), e), "erin@example.org", ErrRevoked)
}

func TestPGPRecipientWeakKey(t *testing.T) {
	for _, spec := range []pgpSpec{{weak: true}, {weakSubkey: true}, {weakPrimary: true}} {
		spec.addrs = []string{"frank@example.org"}
		e := newTestPGPKey(t, spec)
		c := wantPGPRefusal(t, pgpDirectory(t, time.Now(), e), "frank@example.org", ErrUnsupportedKey)
		if !strings.Contains(c.Detail, "RSA-1024") {
			t.Fatalf("detail should name the key size: %q", c.Detail)
		}
	}
}

// revokeUserID adds a certification revocation of e's user ID name, as `gpg --quick-revoke-uid` does.
func revokeUserID(t testing.TB, e *openpgp.Entity, name string) {
	t.Helper()
	id := e.Identities[name]
	reason := packet.UserIDNotValid
	sig := &packet.Signature{
		Version: 4, SigType: packet.SigTypeCertificationRevocation, PubKeyAlgo: e.PrimaryKey.PubKeyAlgo,
		Hash: crypto.SHA256, CreationTime: time.Now().Add(-time.Minute), IssuerKeyId: &e.PrimaryKey.KeyId,
		IssuerFingerprint: e.PrimaryKey.Fingerprint, IssuerKeyVersion: 4, RevocationReason: &reason,
	}
	if err := sig.SignUserId(name, e.PrimaryKey, e.PrivateKey, PGPConfig()); err != nil {
		t.Fatal(err)
	}
	id.Revocations = append(id.Revocations, sig)
	id.Signatures = append(id.Signatures, sig)
}

func TestPGPRevokedUserIDNotIndexed(t *testing.T) {
	e := newTestPGPKey(t, pgpSpec{addrs: []string{"grace@example.org", "grace@old.example"}})
	if _, err := pgpDirectory(t, time.Now(), e).LookupPGP("grace@old.example"); err != nil {
		t.Fatalf("before revoking the user ID: %v", err)
	}
	revokeUserID(t, e, "Test Customer <grace@old.example>")
	d := pgpDirectory(t, time.Now(), e)
	if _, err := d.LookupPGP("grace@old.example"); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("revoked user ID still names its address: %v", err)
	}
	if _, err := d.LookupPGP("grace@example.org"); err != nil {
		t.Fatalf("the key's other user ID should still work: %v", err)
	}
	if ent := d.Entries(); len(ent) != 1 || len(ent[0].Addresses) != 1 || ent[0].Addresses[0] != "grace@example.org" {
		t.Fatalf("Entries should list only the valid user ID: %+v", ent)
	}
}

func TestPGPLookupPicksKeyExpiringLast(t *testing.T) {
	addr := "heidi@example.org"
	base := time.Now().Add(-time.Hour)
	mk := func(created time.Duration, sub uint32) *openpgp.Entity {
		return newTestPGPKey(t, pgpSpec{addrs: []string{addr}, created: base.Add(created), subLifetime: sub})
	}
	tenDays := mk(0, 10*24*3600)
	olderNever := mk(time.Second, 0)
	twentyDays := mk(2*time.Second, 20*24*3600)
	newerNever := mk(3*time.Second, 0)
	revokedNever := mk(4*time.Second, 0)
	if err := revokedNever.RevokeKey(packet.KeyRetired, "", nil); err != nil {
		t.Fatal(err)
	}
	d := pgpDirectory(t, time.Now(), tenDays, olderNever, twentyDays, newerNever, revokedNever)
	got, err := d.LookupPGP(addr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.PrimaryKey.Fingerprint, newerNever.PrimaryKey.Fingerprint) {
		t.Fatalf("picked %s, want the newest key that never expires (%s)", pgpFingerprint(got), pgpFingerprint(newerNever))
	}
	d = pgpDirectory(t, time.Now(), tenDays, twentyDays)
	if got, _ := d.LookupPGP(addr); got == nil || !bytes.Equal(got.PrimaryKey.Fingerprint, twentyDays.PrimaryKey.Fingerprint) {
		t.Fatal("want the key whose encryption subkey expires last")
	}
}

func TestChooseMethod(t *testing.T) {
	ca, _, key := fixtures(t)
	addr := "ivan@example.org"
	good, err := ca.Issue(emailTemplate(addr), &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	expiredTmpl := emailTemplate(addr)
	expiredTmpl.NotBefore, expiredTmpl.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	expired, err := ca.Issue(expiredTmpl, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pgpGood := publicCopy(t, newTestPGPKey(t, pgpSpec{addrs: []string{addr}}))
	revoked := newTestPGPKey(t, pgpSpec{addrs: []string{addr}})
	if err := revoked.RevokeKey(packet.KeyCompromised, "", nil); err != nil {
		t.Fatal(err)
	}
	pgpRevoked := publicCopy(t, revoked)

	roots := []*x509.Certificate{ca.Certificate()}
	tests := []struct {
		name    string
		certs   []*x509.Certificate
		pgp     []*openpgp.Entity
		prefer  Method
		want    Method
		wantErr []error
	}{
		{"BothPreferSMIME", []*x509.Certificate{good}, []*openpgp.Entity{pgpGood}, MethodSMIME, MethodSMIME, nil},
		{"BothPreferPGP", []*x509.Certificate{good}, []*openpgp.Entity{pgpGood}, MethodPGP, MethodPGP, nil},
		{"CertificateExpiredFallsBackToPGP", []*x509.Certificate{expired}, []*openpgp.Entity{pgpGood}, MethodSMIME, MethodPGP, nil},
		{"PGPRevokedFallsBackToSMIME", []*x509.Certificate{good}, []*openpgp.Entity{pgpRevoked}, MethodPGP, MethodSMIME, nil},
		{"OnlyPGPKnown", nil, []*openpgp.Entity{pgpGood}, MethodSMIME, MethodPGP, nil},
		{"OnlyCertificateKnown", []*x509.Certificate{good}, nil, MethodPGP, MethodSMIME, nil},
		{"NeitherUsable", []*x509.Certificate{expired}, []*openpgp.Entity{pgpRevoked}, MethodPGP, 0, []error{ErrExpired, ErrRevoked}},
		{"NeitherKnown", nil, nil, MethodSMIME, 0, []error{ErrNoCertificate}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDirectory(roots, tt.certs, WithPGPKeys(tt.pgp...))
			c, err := d.Choose(addr, tt.prefer)
			if tt.wantErr != nil {
				for _, w := range tt.wantErr {
					if !errors.Is(err, w) {
						t.Fatalf("Choose error = %v, want it to include %v", err, w)
					}
				}
				var rerr *RecipientError
				if !errors.As(err, &rerr) || len(rerr.Causes) != len(tt.certs)+len(tt.pgp) {
					t.Fatalf("want a *RecipientError with a cause per known key, got %#v", err)
				}
				if len(rerr.Causes) > 0 && rerr.Causes[0].Method != tt.prefer {
					t.Fatalf("the preferred method's causes should come first: %v", err)
				}
				if errors.Is(err, ErrNoCertificate) != (len(rerr.Causes) == 0) {
					t.Fatalf("ErrNoCertificate only when neither kind is known: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Choose: %v", err)
			}
			if c.Method != tt.want || (c.Method == MethodSMIME) != (c.Certificate != nil) || (c.Method == MethodPGP) != (c.PGPKey != nil) {
				t.Fatalf("Choose = %+v, want %v with only its key set", c, tt.want)
			}
		})
	}
	if _, err := NewDirectory(roots, nil).Choose(addr, Method(7)); err == nil {
		t.Fatal("an unknown preference must be an error")
	}
}

func TestParseMethod(t *testing.T) {
	for s, want := range map[string]Method{"smime": MethodSMIME, "pgp": MethodPGP, "PGP": MethodPGP} {
		got, err := ParseMethod(s)
		if err != nil || got != want {
			t.Fatalf("ParseMethod(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseMethod("gpg"); err == nil {
		t.Fatal("ParseMethod accepted an unknown method")
	}
	if MethodSMIME.String() != "S/MIME" || MethodPGP.String() != "OpenPGP" {
		t.Fatal("Method.String")
	}
	var m Method
	if err := m.UnmarshalText([]byte("pgp")); err != nil || m != MethodPGP {
		t.Fatalf("UnmarshalText: %v %v", m, err)
	}
	if b, _ := MethodSMIME.MarshalText(); string(b) != "smime" {
		t.Fatalf("MarshalText = %q", b)
	}
	if MethodSMIME != 0 {
		t.Fatal("S/MIME must be the zero value: it is the default preference")
	}
}

// writeSecretKey writes e's secret key, armored, encrypted under pass unless pass is empty.
func writeSecretKey(t *testing.T, e *openpgp.Entity, pass string, resign bool) string {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resign {
		err = e.SerializePrivate(w, PGPConfig())
	} else {
		err = e.SerializePrivateWithoutSigning(w, PGPConfig())
	}
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if pass != "" {
		ents, err := ParsePGPKeys(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if err := ents[0].EncryptPrivateKeys([]byte(pass), PGPConfig()); err != nil {
			t.Fatal(err)
		}
		b.Reset()
		w, _ = armor.Encode(&b, openpgp.PrivateKeyType, nil)
		if err := ents[0].SerializePrivateWithoutSigning(w, PGPConfig()); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	f := filepath.Join(t.TempDir(), "key.asc")
	if err := os.WriteFile(f, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLoadPGPKey(t *testing.T) {
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	os.WriteFile(passFile, []byte("correct horse\n"), 0o600)
	wrongFile := filepath.Join(dir, "wrong")
	os.WriteFile(wrongFile, []byte("battery staple\n"), 0o600)
	bank := newTestPGPKey(t, pgpSpec{name: "Bank", addrs: []string{"statements@bank.example"}})
	protected := writeSecretKey(t, bank, "correct horse", false)

	key, err := LoadPGPKey(protected, Secret{File: passFile})
	if err != nil {
		t.Fatalf("right passphrase: %v", err)
	}
	var sig bytes.Buffer
	if err := openpgp.DetachSign(&sig, key, strings.NewReader("statement"), PGPConfig()); err != nil {
		t.Fatalf("loaded key cannot sign: %v", err)
	}
	if _, err := openpgp.CheckDetachedSignature(openpgp.EntityList{publicCopy(t, bank)}, strings.NewReader("statement"), &sig, nil); err != nil {
		t.Fatalf("signature does not verify with the public key: %v", err)
	}
	if _, err := LoadPGPKey(protected, Secret{File: wrongFile}); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: got %v, want ErrWrongPassphrase", err)
	}
	if _, err := LoadPGPKey(protected, Secret{}); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("protected key without passphrase: got %v, want ErrNoSecret", err)
	}
	if _, err := LoadPGPKey(writeSecretKey(t, bank, "", false), Secret{}); err != nil {
		t.Fatalf("unprotected key needs no passphrase: %v", err)
	}
	pub, _ := EncodePGPPublicKeys(bank)
	pubFile := filepath.Join(dir, "pub.asc")
	os.WriteFile(pubFile, pub, 0o644)
	if _, err := LoadPGPKey(pubFile, Secret{}); !errors.Is(err, ErrNoPrivateKey) {
		t.Fatalf("public key only: got %v, want ErrNoPrivateKey", err)
	}

	refused := []struct {
		name string
		key  func() *openpgp.Entity
		want error
	}{
		{"RSA1024", func() *openpgp.Entity {
			return newTestPGPKey(t, pgpSpec{addrs: []string{"a@bank.example"}, weak: true})
		}, ErrUnsupportedKey},
		{"RSA1024PrimaryWithStrongSigningSubkey", func() *openpgp.Entity {
			return newTestPGPKey(t, pgpSpec{addrs: []string{"a@bank.example"}, weakPrimary: true, signSubkey: true})
		}, ErrUnsupportedKey},
		{"Expired", func() *openpgp.Entity {
			return newTestPGPKey(t, pgpSpec{addrs: []string{"a@bank.example"}, created: time.Now().Add(-48 * time.Hour), lifetime: 3600})
		}, ErrExpired},
		{"Revoked", func() *openpgp.Entity {
			e := newTestPGPKey(t, pgpSpec{addrs: []string{"a@bank.example"}})
			if err := e.RevokeKey(packet.KeyRetired, "", nil); err != nil {
				t.Fatal(err)
			}
			return e
		}, ErrRevoked},
		{"CannotSign", func() *openpgp.Entity {
			e := newTestPGPKey(t, pgpSpec{addrs: []string{"a@bank.example"}})
			for _, id := range e.Identities {
				id.SelfSignature.FlagSign = false // SerializePrivate re-signs it
			}
			return e
		}, ErrNoSigningKey},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			f := writeSecretKey(t, tt.key(), "correct horse", tt.name == "CannotSign")
			if _, err := LoadPGPKey(f, Secret{File: passFile}); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewDevPGPKey(t *testing.T) {
	e, err := NewDevPGPKey("sealpost bank signer", []string{"statements@bank.example", "otp@Bank.Example", "statements@bank.example"})
	if err != nil {
		t.Fatal(err)
	}
	if e.PrimaryKey.Version != 4 || pgpBits(e.PrimaryKey) != 2048 || !isRSA(e.PrimaryKey) {
		t.Fatalf("primary key: v%d %s, want v4 RSA-2048", e.PrimaryKey.Version, pgpAlgorithm(e.PrimaryKey))
	}
	if len(e.Subkeys) != 1 || pgpBits(e.Subkeys[0].PublicKey) != 2048 || !e.Subkeys[0].Sig.FlagEncryptCommunications {
		t.Fatal("want one RSA-2048 encryption subkey")
	}
	if len(e.Identities) != 2 || e.Identities["sealpost bank signer <otp@bank.example>"] == nil {
		t.Fatalf("user IDs = %v, want one per distinct address", keysOf(e.Identities))
	}
	self, id := e.PrimarySelfSignature()
	if id.Name != "sealpost bank signer <statements@bank.example>" || self.KeyLifetimeSecs == nil || *self.KeyLifetimeSecs != 0 {
		t.Fatalf("primary user ID %q should be the first address, without expiry", id.Name)
	}
	if len(self.PreferredHash) == 0 || self.PreferredHash[0] != 8 || len(self.PreferredSymmetric) == 0 || self.PreferredSymmetric[0] != uint8(packet.CipherAES256) {
		t.Fatalf("preferences: hash %v cipher %v, want SHA-256 (8) and AES-256 first", self.PreferredHash, self.PreferredSymmetric)
	}
	if _, err := NewDevPGPKey("x", []string{"not an address"}); !errors.Is(err, ErrBadAddress) {
		t.Fatalf("bad address: %v", err)
	}
}

func keysOf(m map[string]*openpgp.Identity) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDataDirPGP(t *testing.T) {
	dir := DataDir(t.TempDir())
	senders := []string{"statements@bank.example", "otp@bank.example"}
	if err := dir.Init(senders); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"pgp.key", "pgp.pass"} {
		st, err := os.Stat(filepath.Join(string(dir), f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, want mode 0600", f, err)
		}
	}
	stored, _ := os.ReadFile(filepath.Join(string(dir), "pgp.key"))
	if ents, err := ParsePGPKeys(stored); err != nil || !ents[0].PrivateKey.Encrypted {
		t.Fatalf("pgp.key must hold a passphrase-protected secret key (%v)", err)
	}
	bank, err := dir.PGPKey()
	if err != nil {
		t.Fatal(err)
	}
	if got := PGPAddresses(bank, time.Now()); len(got) != 2 || got[0] != senders[0] {
		t.Fatalf("bank key user IDs name %v, want %v", got, senders)
	}

	// Export gives the public key only.
	exported, err := dir.Export("pgp")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(exported, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) || bytes.Contains(exported, []byte("PRIVATE")) {
		t.Fatalf("export is not an armored public key:\n%s", exported)
	}
	ents, err := ParsePGPKeys(exported)
	if err != nil || len(ents) != 1 || ents[0].PrivateKey != nil || ents[0].Subkeys[0].PrivateKey != nil {
		t.Fatalf("exported key: %v", err)
	}
	if pgpFingerprint(ents[0]) != pgpFingerprint(bank) {
		t.Fatal("exported another key")
	}
	for _, name := range []string{"ca", "signer", "tsa"} {
		a, err1 := dir.Export(name)
		b, err2 := dir.ChainPEM(name)
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Fatalf("Export(%s) should equal ChainPEM: %v %v", name, err1, err2)
		}
	}
	for _, name := range []string{"../ca", "pgp.key"} {
		if _, err := dir.Export(name); err == nil {
			t.Fatalf("Export(%q) should be refused", name)
		}
	}

	// Import: armored, binary, and a secret key block of which only the public part is kept.
	judy := newTestPGPKey(t, pgpSpec{addrs: []string{"judy@example.org"}})
	ken := newTestPGPKey(t, pgpSpec{addrs: []string{"ken@example.org"}})
	leo := newTestPGPKey(t, pgpSpec{addrs: []string{"leo@example.org"}})
	armoredJudy, _ := EncodePGPPublicKeys(judy)
	var binaryKen bytes.Buffer
	if err := ken.Serialize(&binaryKen); err != nil {
		t.Fatal(err)
	}
	secretLeo, _ := os.ReadFile(writeSecretKey(t, leo, "", false))
	for name, data := range map[string][]byte{"armored": armoredJudy, "binary": binaryKen.Bytes(), "secret": secretLeo} {
		imp, err := dir.Import(data, ImportOptions{})
		if err != nil {
			t.Fatalf("import %s: %v", name, err)
		}
		if len(imp.PGPKeys) != 1 || len(imp.Certificates) != 0 || imp.PGPKeys[0].PrivateKey != nil {
			t.Fatalf("import %s: got %+v", name, imp)
		}
	}
	leoFile := filepath.Join(string(dir), "recipients", strings.ToLower(pgpFingerprint(leo))+".asc")
	onDisk, err := os.ReadFile(leoFile)
	if err != nil {
		t.Fatalf("want %s: %v", leoFile, err)
	}
	if bytes.Contains(onDisk, []byte("PRIVATE")) {
		t.Fatal("a customer's secret key block was stored")
	}
	if ents, err := ParsePGPKeys(onDisk); err != nil || ents[0].PrivateKey != nil || ents[0].Subkeys[0].PrivateKey != nil {
		t.Fatalf("stored key must be public only (%v)", err)
	}
	// Certifications by other keys (web of trust) are not stored: sealpost does not use them, and a
	// key flooded with them must not bloat the directory.
	nina := newTestPGPKey(t, pgpSpec{addrs: []string{"nina@example.org"}})
	if err := nina.SignIdentity("Test Customer <nina@example.org>", ken, PGPConfig()); err != nil {
		t.Fatal(err)
	}
	var certified bytes.Buffer
	if err := nina.Serialize(&certified); err != nil { // go-crypto's own export keeps certifications
		t.Fatal(err)
	}
	imp, err := dir.Import(certified.Bytes(), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range imp.PGPKeys[0].Identities {
		for _, sig := range id.Signatures {
			if !sig.CheckKeyIdOrFingerprint(nina.PrimaryKey) {
				t.Fatal("a third-party certification was stored")
			}
		}
	}
	if _, err := dir.Import(armoredJudy, ImportOptions{Root: true}); err == nil {
		t.Fatal("an OpenPGP key must not be importable as a trusted root")
	}

	// All or nothing: a key without an email address refuses the whole input.
	noEmail := newTestPGPKey(t, pgpSpec{name: "No Address", addrs: []string{""}})
	mallory := newTestPGPKey(t, pgpSpec{addrs: []string{"mallory@example.org"}})
	both, _ := EncodePGPPublicKeys(mallory, noEmail)
	if _, err := dir.Import(both, ImportOptions{}); err == nil {
		t.Fatal("a key without an email user ID was accepted")
	}
	if _, err := os.Stat(filepath.Join(string(dir), "recipients", strings.ToLower(pgpFingerprint(mallory))+".asc")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("refused input must store nothing")
	}

	d, err := dir.Directory()
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"judy@example.org", "ken@example.org", "leo@example.org"} {
		if _, err := d.LookupPGP(addr); err != nil {
			t.Fatalf("lookup %s after import: %v", addr, err)
		}
	}
	if n := len(d.Entries()); n != 4 {
		t.Fatalf("%d entries, want the 4 imported keys", n)
	}

	// A revocation, once imported, survives re-importing an older copy of the key.
	if err := judy.RevokeKey(packet.KeyCompromised, "laptop stolen", nil); err != nil {
		t.Fatal(err)
	}
	revokedJudy, _ := EncodePGPPublicKeys(judy)
	for _, data := range [][]byte{revokedJudy, armoredJudy} {
		if _, err := dir.Import(data, ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		d, err := dir.Directory()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.LookupPGP("judy@example.org"); !errors.Is(err, ErrRevoked) {
			t.Fatalf("after importing the revocation and then an old copy: got %v, want ErrRevoked", err)
		}
	}

	// A directory initialised before OpenPGP support gets the OpenPGP key added; the rest stays.
	signerBefore, _ := dir.ChainPEM("signer")
	os.Remove(filepath.Join(string(dir), "pgp.key"))
	os.Remove(filepath.Join(string(dir), "pgp.pass"))
	if _, err := dir.PGPKey(); !errors.Is(err, ErrNotInitialised) {
		t.Fatalf("missing pgp.key: got %v, want ErrNotInitialised", err)
	}
	if err := dir.Init(senders); err != nil {
		t.Fatal(err)
	}
	if _, err := dir.PGPKey(); err != nil {
		t.Fatal(err)
	}
	if signerAfter, _ := dir.ChainPEM("signer"); !bytes.Equal(signerBefore, signerAfter) {
		t.Fatal("adding the OpenPGP key must not replace the S/MIME signer")
	}
	if err := dir.Init(senders); !errors.Is(err, ErrInitialised) {
		t.Fatalf("third Init: got %v, want ErrInitialised", err)
	}
}

// FuzzParsePGPKeys: customers' keys are untrusted input. Parsing, importing checks and indexing must
// never panic.
func FuzzParsePGPKeys(f *testing.F) {
	e := newTestPGPKey(f, pgpSpec{addrs: []string{"fuzz@example.org", "other@example.org"}})
	revokeUserID(f, e, "Test Customer <other@example.org>")
	armored, _ := EncodePGPPublicKeys(e)
	var binary bytes.Buffer
	_ = e.Serialize(&binary)
	f.Add(armored)
	f.Add(binary.Bytes())
	f.Add(binary.Bytes()[:binary.Len()/2])
	f.Add(armored[:len(armored)/2])
	f.Add([]byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQENBF\n-----END PGP PUBLIC KEY BLOCK-----\n"))
	f.Add([]byte{0x99, 0x01, 0x0d, 0x04})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		imp, err := ParseImport(data, ImportOptions{})
		if err != nil {
			return
		}
		d := NewDirectory(nil, imp.Certificates, WithPGPKeys(imp.PGPKeys...))
		for _, k := range imp.PGPKeys {
			for _, a := range PGPAddresses(k, time.Now()) {
				_, _ = d.Choose(a, MethodPGP)
			}
			_ = d.CheckPGP(k)
			_, _ = EncodePGPPublicKeys(k)
		}
		_ = d.Entries()
	})
}
