package keys

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// publicCert issues a certificate for addr from the "public" CA that learn-roots/ trusts.
func publicCert(t *testing.T, addr string, life time.Duration) *x509.Certificate {
	t.Helper()
	_, public, key := fixtures(t)
	tmpl := emailTemplate(addr)
	tmpl.NotAfter = time.Now().Add(life)
	c, err := public.Issue(tmpl, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestChooseFromTiers: a usable registered key always wins; the learned tier is used only when
// the caller allows it and no registered key is usable; a learned certificate must chain to the
// learning roots, never to the registration roots; and the refusal lists both tiers' causes.
func TestChooseFromTiers(t *testing.T) {
	ca, public, _ := fixtures(t)
	registered := issueFor(t, "erin@x.example", 24*time.Hour)
	expired := issueFor(t, "frank@x.example", -time.Hour)
	learnedErin := publicCert(t, "erin@x.example", 48*time.Hour)
	learnedFrank := publicCert(t, "frank@x.example", 48*time.Hour)
	learnedGrace := publicCert(t, "grace@x.example", 48*time.Hour)
	notPublic := issueFor(t, "heidi@x.example", 24*time.Hour) // the bank's CA, not a learning root
	d := NewDirectory([]*x509.Certificate{ca.Certificate()}, []*x509.Certificate{registered, expired},
		WithLearned([]*x509.Certificate{public.Certificate()}, []*x509.Certificate{learnedErin, learnedFrank, learnedGrace, notPublic}))

	for _, tt := range []struct {
		addr    string
		learned bool
		want    *x509.Certificate
		source  Source
		errIs   []error
	}{
		{"erin@x.example", true, registered, SourceRegistered, nil},
		{"frank@x.example", true, learnedFrank, SourceLearned, nil},
		{"frank@x.example", false, nil, "", []error{ErrExpired}},
		{"grace@x.example", true, learnedGrace, SourceLearned, nil},
		{"grace@x.example", false, nil, "", []error{ErrNoCertificate}},
		{"heidi@x.example", true, nil, "", []error{ErrUntrusted}},
		{"ivan@x.example", true, nil, "", []error{ErrNoCertificate}},
	} {
		c, err := d.ChooseFrom(tt.addr, MethodSMIME, tt.learned)
		if tt.want != nil {
			if err != nil || !c.Certificate.Equal(tt.want) || c.Source != tt.source {
				t.Errorf("ChooseFrom(%s, learned %v) = %v from %q, %v; want the %s one", tt.addr, tt.learned, c.Certificate, c.Source, err, tt.source)
			}
			continue
		}
		for _, want := range tt.errIs {
			if !errors.Is(err, want) {
				t.Errorf("ChooseFrom(%s, learned %v) = %v; want %v", tt.addr, tt.learned, err, want)
			}
		}
	}
	if c, err := d.Choose("grace@x.example", MethodSMIME); err == nil {
		t.Errorf("Choose used the learned tier: %v", c.Certificate.Subject)
	}
	if got := d.Learned(); len(got) != 4 || got[0].Source != SourceLearned {
		t.Errorf("Learned() = %d entries, first from %q", len(got), got[0].Source)
	}
}

// TestDirectoryFromLearned: stored keys marked learned form the learned tier, trusted through
// learn-roots/ only; registered ones stay in the directory as before.
func TestDirectoryFromLearned(t *testing.T) {
	_, public, _ := fixtures(t)
	dir := DataDir(t.TempDir())
	ca, _, _ := fixtures(t)
	if _, err := dir.Import(EncodeCertificates(ca.Certificate()), ImportOptions{Root: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(string(dir), learnRootsDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(string(dir), learnRootsDir, "public.pem"), EncodeCertificates(public.Certificate()), 0o600); err != nil {
		t.Fatal(err)
	}
	src := &sharedKeys{keys: map[string]StoredKey{
		"L": {Method: MethodSMIME, Fingerprint: "L", Data: EncodeCertificates(publicCert(t, "judy@x.example", time.Hour)), Source: SourceLearned},
		"R": {Method: MethodSMIME, Fingerprint: "R", Data: EncodeCertificates(issueFor(t, "kim@x.example", time.Hour))},
	}}
	d, err := dir.DirectoryFrom(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Choose("judy@x.example", MethodSMIME); err == nil {
		t.Error("a learned certificate is in the registered tier")
	}
	if c, err := d.ChooseFrom("judy@x.example", MethodSMIME, true); err != nil || c.Source != SourceLearned {
		t.Errorf("learned judy: %v, %v", c.Source, err)
	}
	if c, err := d.ChooseFrom("kim@x.example", MethodSMIME, true); err != nil || c.Source != SourceRegistered {
		t.Errorf("registered kim: %v, %v", c.Source, err)
	}
}
