package inbound

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/store"
)

// corpusDir holds the committed inbound corpus: keys and messages, each message saying what it
// expects in its first header field (see testdata/inbound/README.md).
const corpusDir = "../testdata/inbound"

const corpusAuthServID = "mx.bank.example"

// corpusEnv is the bank as the corpus assumes it: roots ca.pem, support identities bank.pem and
// bank-pgp.asc, and alice registered with alice.pem and alice-pgp.
type corpusEnv struct {
	ib    *Pipeline
	st    *store.SQLite
	alice *keys.Identity
}

func corpusKey(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(corpusDir, "keys", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("corpus key %s: %v (regenerate with go run ./testdata/inbound/gen)", name, err)
	}
	return p
}

func corpusPGP(t testing.TB, name string) *openpgp.Entity {
	t.Helper()
	b, err := os.ReadFile(corpusKey(t, name))
	if err != nil {
		t.Fatal(err)
	}
	ents, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
	if err != nil || len(ents) != 1 {
		t.Fatalf("%s: %d keys, %v", name, len(ents), err)
	}
	return ents[0]
}

func newCorpusEnv(t testing.TB, cfg Config) *corpusEnv {
	t.Helper()
	roots, err := keys.ReadCertificatesFile(corpusKey(t, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	bank, err := keys.LoadPEM(corpusKey(t, "bank.pem"), corpusKey(t, "bank.key"))
	if err != nil {
		t.Fatal(err)
	}
	alice, err := keys.LoadPEM(corpusKey(t, "alice.pem"), corpusKey(t, "alice.key"))
	if err != nil {
		t.Fatal(err)
	}
	alicePGP := corpusPGP(t, "alice-pgp.pub.asc")
	// keys import puts a registered certificate in the directory too: signatures without
	// certificates (-nocerts) are verified with it.
	dir := keys.NewDirectory(roots, alice.Chain[:1], keys.WithPGPKeys(alicePGP))
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "sealpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	for _, r := range []store.Registration{
		{Address: "alice@customer.example", Method: store.MethodSMIME, Fingerprint: keys.CertFingerprint(alice.Certificate())},
		{Address: "alice@customer.example", Method: store.MethodPGP, Fingerprint: keys.PGPFingerprint(alicePGP)},
	} {
		if err := st.Register(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	cfg = withActions(cfg)
	if cfg.AuthServID == "" {
		cfg.AuthServID = corpusAuthServID
	}
	if len(cfg.SupportAddresses) == 0 {
		cfg.SupportAddresses = []string{"support@bank.example"}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ib, err := New(cfg, st, dir, WithIdentities(bank), WithPGPKeys(openpgp.EntityList{corpusPGP(t, "bank-pgp.asc")}))
	if err != nil {
		t.Fatal(err)
	}
	return &corpusEnv{ib: ib, st: st, alice: alice}
}

// expectation is a corpus file's Corpus-Expect field: acceptable statuses, and codes that must
// all be among the failures.
type expectation struct {
	statuses []string
	codes    []string
}

func parseExpect(t *testing.T, msg []byte) expectation {
	t.Helper()
	v := mime.HeaderValue(mime.ToCRLF(msg), "Corpus-Expect")
	if v == "" {
		t.Fatal("no Corpus-Expect field")
	}
	st, codes, _ := strings.Cut(v, ";")
	e := expectation{statuses: strings.Split(strings.TrimSpace(st), "|"), codes: strings.Fields(codes)}
	for _, s := range e.statuses {
		if !slices.Contains([]string{StatusVerified, StatusUnregistered, StatusFailed, StatusUnsigned, StatusUnsupported, "rejected"}, s) {
			t.Fatalf("Corpus-Expect names unknown status %q", s)
		}
	}
	return e
}

// TestInboundCorpus runs every committed message through the pipeline and checks the verdict its
// file expects. Hostile files must never come out verified, and no desk message may carry a
// forged verdict, a sender's display name sealpost does not vouch for, or lack the Subject tag
// and banner (checkDeskInvariants).
func TestInboundCorpus(t *testing.T) {
	cfg := Config{SubjectTagVerified: DefaultSubjectTagVerified, SubjectTagUnverified: DefaultSubjectTagUnverified}
	env := newCorpusEnv(t, cfg)
	n := 0
	for _, kind := range []string{"good", "hostile"} {
		files, err := filepath.Glob(filepath.Join(corpusDir, kind, "*.eml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no %s corpus files", kind)
		}
		for _, f := range files {
			n++
			t.Run(kind+"/"+strings.TrimSuffix(filepath.Base(f), ".eml"), func(t *testing.T) {
				msg, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				want := parseExpect(t, msg)
				res, err := env.ib.Evaluate(context.Background(), msg, time.Now())
				if err != nil {
					if !slices.Contains(want.statuses, "rejected") {
						t.Fatalf("rejected (%v), want %v", err, want.statuses)
					}
					return
				}
				v := res.Verdict
				if kind == "hostile" && v.Trusted() {
					t.Fatalf("hostile message came out verified: %s", v.Header())
				}
				if !slices.Contains(want.statuses, v.Status) {
					t.Fatalf("status %s %v, want %v %v\n%s", v.Status, v.Failures, want.statuses, want.codes, strings.Join(v.Details, "\n"))
				}
				if v.Status == StatusFailed {
					for _, c := range want.codes {
						if !slices.Contains(v.Failures, c) {
							t.Errorf("failures %v lack %s\n%s", v.Failures, c, strings.Join(v.Details, "\n"))
						}
					}
				}
				t.Logf("%s", v.Header())
				checkDeskInvariants(t, res.Message, v, env.ib.cfg, "")
			})
		}
	}
	t.Logf("%d corpus messages", n)
}
