package keys

import (
	"bytes"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// issueFor issues a usable certificate for addr expiring after life.
func issueFor(t *testing.T, addr string, life time.Duration) *x509.Certificate {
	t.Helper()
	ca, _, key := fixtures(t)
	tmpl := emailTemplate(addr)
	tmpl.NotAfter = time.Now().Add(life)
	c, err := ca.Issue(tmpl, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDirectoryLocalPartIgnoresCase: a customer registered as alice@example.com who types
// Alice@Example.COM gets her certificate and her OpenPGP key.
func TestDirectoryLocalPartIgnoresCase(t *testing.T) {
	ca, _, _ := fixtures(t)
	cert := issueFor(t, "alice@example.com", 24*time.Hour)
	key := publicCopy(t, newTestPGPKey(t, pgpSpec{addrs: []string{"alice@example.com"}}))
	d := NewDirectory([]*x509.Certificate{ca.Certificate()}, []*x509.Certificate{cert}, WithPGPKeys(key))
	for _, addr := range []string{"Alice@Example.COM", "ALICE@example.com", "alice@example.com"} {
		if got, err := d.Lookup(addr); err != nil || !got.Equal(cert) {
			t.Errorf("Lookup(%s) = %v; want alice's certificate", addr, err)
		}
		if got, err := d.LookupPGP(addr); err != nil || !bytes.Equal(got.PrimaryKey.Fingerprint, key.PrimaryKey.Fingerprint) {
			t.Errorf("LookupPGP(%s) = %v; want alice's key", addr, err)
		}
		for _, prefer := range []Method{MethodSMIME, MethodPGP} {
			if c, err := d.Choose(addr, prefer); err != nil || c.Method != prefer {
				t.Errorf("Choose(%s, %v) = %+v, %v; want %v", addr, prefer, c, err, prefer)
			}
		}
	}
	var rerr *RecipientError
	if _, err := d.Lookup("Bob@Example.COM"); !errors.As(err, &rerr) || !errors.Is(err, ErrNoCertificate) || rerr.Address != "Bob@example.com" {
		t.Errorf("unknown address: %v; want ErrNoCertificate for Bob@example.com as asked", err)
	}
}

// TestDirectoryExactSpellingWins: with certificates for Alice@ and alice@ (two mailboxes to a
// provider that tells them apart), each spelling gets its own, even when the other's certificate
// expires later; another spelling chooses among both by the usual rule (expires last).
func TestDirectoryExactSpellingWins(t *testing.T) {
	ca, _, _ := fixtures(t)
	roots := []*x509.Certificate{ca.Certificate()}
	for _, tt := range []struct{ longer, shorter string }{
		{"alice@x.example", "Alice@x.example"},
		{"Alice@x.example", "alice@x.example"},
	} {
		long := issueFor(t, tt.longer, 72*time.Hour)
		short := issueFor(t, tt.shorter, 24*time.Hour)
		for _, order := range [][]*x509.Certificate{{long, short}, {short, long}} {
			d := NewDirectory(roots, order)
			for addr, want := range map[string]*x509.Certificate{tt.longer: long, tt.shorter: short, "ALICE@x.example": long} {
				if got, err := d.Lookup(addr); err != nil || !got.Equal(want) {
					t.Errorf("certificates for %s and %s: Lookup(%s) = %v, %v; want the one for %s",
						tt.longer, tt.shorter, addr, got.EmailAddresses, err, want.EmailAddresses)
				}
			}
		}
	}
}

// TestDirectoryExactSpellingUnusable: the certificate spelt as asked is refused rather than
// replaced by a case variant's: the variant may be another person's mailbox.
func TestDirectoryExactSpellingUnusable(t *testing.T) {
	ca, _, key := fixtures(t)
	tmpl := emailTemplate("Alice@x.example")
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	expired, err := ca.Issue(tmpl, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDirectory([]*x509.Certificate{ca.Certificate()}, []*x509.Certificate{expired, issueFor(t, "alice@x.example", 24*time.Hour)})
	var rerr *RecipientError
	if _, err := d.Lookup("Alice@x.example"); !errors.Is(err, ErrExpired) || !errors.As(err, &rerr) || len(rerr.Causes) != 1 {
		t.Errorf("Lookup(Alice) = %v; want Alice's expired certificate as the only cause", err)
	}
	if _, err := d.Lookup("ALICE@x.example"); err != nil {
		t.Errorf("Lookup(ALICE) = %v; want alice's certificate", err)
	}
}

// TestDirectoryExactSpellingWinsPGP: the same for OpenPGP keys, where the key that would win
// among both (the newest) belongs to the other spelling; a revoked user ID does not count as the
// exact spelling.
func TestDirectoryExactSpellingWinsPGP(t *testing.T) {
	base := time.Now().Add(-time.Hour)
	older := newTestPGPKey(t, pgpSpec{addrs: []string{"Carol@x.example"}, created: base})
	newer := newTestPGPKey(t, pgpSpec{addrs: []string{"carol@x.example"}, created: base.Add(time.Minute)})
	d := pgpDirectory(t, time.Now(), older, newer)
	for addr, want := range map[string]*openpgp.Entity{"Carol@x.example": older, "carol@x.example": newer, "CAROL@x.example": newer} {
		if got, err := d.LookupPGP(addr); err != nil || !bytes.Equal(got.PrimaryKey.Fingerprint, want.PrimaryKey.Fingerprint) {
			t.Errorf("LookupPGP(%s) = %v; want %s", addr, err, pgpFingerprint(want))
		}
	}

	// One key naming both spellings is one candidate.
	both := newTestPGPKey(t, pgpSpec{addrs: []string{"dave@x.example", "Dave@x.example"}})
	if got, err := pgpDirectory(t, time.Now(), both).LookupPGP("DAVE@x.example"); err != nil || got == nil {
		t.Errorf("key with both spellings: %v", err)
	}

	revoked := newTestPGPKey(t, pgpSpec{addrs: []string{"Erin@x.example"}})
	revokeUserID(t, revoked, "Test Customer <Erin@x.example>")
	other := newTestPGPKey(t, pgpSpec{addrs: []string{"ERIN@x.example"}})
	d = pgpDirectory(t, time.Now(), revoked, other)
	if got, err := d.LookupPGP("Erin@x.example"); err != nil || !bytes.Equal(got.PrimaryKey.Fingerprint, other.PrimaryKey.Fingerprint) {
		t.Errorf("LookupPGP(Erin) with Erin's user ID revoked = %v; want ERIN's key", err)
	}
}

// TestChooseExactSpellingAcrossMethods: the spelling decides before the preferred method does:
// Carol@ has an OpenPGP key and carol@ a certificate, so mail to Carol@ goes by OpenPGP even when
// S/MIME is preferred; mail to CAROL@ may use either and follows the preference.
func TestChooseExactSpellingAcrossMethods(t *testing.T) {
	ca, _, _ := fixtures(t)
	cert := issueFor(t, "carol@x.example", 24*time.Hour)
	key := publicCopy(t, newTestPGPKey(t, pgpSpec{addrs: []string{"Carol@x.example"}}))
	d := NewDirectory([]*x509.Certificate{ca.Certificate()}, []*x509.Certificate{cert}, WithPGPKeys(key))
	for _, tt := range []struct {
		addr   string
		prefer Method
		want   Method
	}{
		{"Carol@x.example", MethodSMIME, MethodPGP},
		{"Carol@x.example", MethodPGP, MethodPGP},
		{"carol@x.example", MethodPGP, MethodSMIME},
		{"carol@x.example", MethodSMIME, MethodSMIME},
		{"CAROL@x.example", MethodSMIME, MethodSMIME},
		{"CAROL@x.example", MethodPGP, MethodPGP},
	} {
		c, err := d.Choose(tt.addr, tt.prefer)
		if err != nil || c.Method != tt.want {
			t.Errorf("Choose(%s, prefer %v) = %v, %v; want %v", tt.addr, tt.prefer, c.Method, err, tt.want)
		}
	}
}
