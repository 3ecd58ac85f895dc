package inbound

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/store"
)

// TestLearnCertificateFromSignedReply: a reply verified with a certificate that chains to a root
// trusted for learning (a public S/MIME CA) reaches the desk as unregistered and teaches sealpost
// that certificate, stored as learned; a reply signed with a certificate of the bank's own CA, or
// of a CA trusted for nothing, teaches nothing.
func TestLearnCertificateFromSignedReply(t *testing.T) {
	e := newInboundEnv(t, Config{})
	e.register(t, "alice@example.com", e.f.Alice)
	public, err := keys.NewDevCA("Public S/MIME CA")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := keys.NewDevCA("Nobody's CA")
	if err != nil {
		t.Fatal(err)
	}
	dave, err := public.NewDevCustomer("dave@example.com")
	if err != nil {
		t.Fatal(err)
	}
	erin, err := stranger.NewDevCustomer("erin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	e.ib.SetDirectory(keys.NewDirectory([]*x509.Certificate{e.f.CA.Certificate()}, []*x509.Certificate{e.f.Alice.Certificate()},
		keys.WithLearned([]*x509.Certificate{public.Certificate()}, nil)))

	learned := func() []store.RecipientKey {
		t.Helper()
		all, err := e.st.RecipientKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return all
	}
	reply := func(from string) string {
		return "From: " + from + "\r\nTo: support@bank.example\r\nSubject: my new address\r\n\r\nPlease update it.\r\n"
	}
	if _, err := e.receive(t, signAs(t, e.f.Alice, reply("alice@example.com"))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.receive(t, signAs(t, erin, reply("erin@example.com"))); err != nil {
		t.Fatal(err)
	}
	if got := learned(); len(got) != 0 {
		t.Fatalf("learned %d keys from replies under the bank's own and an untrusted CA", len(got))
	}
	if _, err := e.receive(t, signAs(t, dave, reply("dave@example.com"))); err != nil {
		t.Fatal(err)
	}
	got := learned()
	if len(got) != 1 || got[0].Source != store.SourceLearned || got[0].Fingerprint != keys.CertFingerprint(dave.Certificate()) {
		t.Fatalf("learned %+v; want dave's certificate as learned", got)
	}
	certs, err := keys.ParseCertificates(got[0].Data)
	if err != nil || len(certs) != 1 || !certs[0].Equal(dave.Certificate()) {
		t.Fatalf("stored %d certificates (%v); want dave's leaf without the root", len(certs), err)
	}
	unregistered := 0
	for _, m := range e.desk.Queued() {
		if strings.HasPrefix(mime.HeaderValue(m.Data, "Sealpost-Verdict"), StatusUnregistered) {
			unregistered++
		}
	}
	if unregistered != 1 {
		t.Errorf("%d desk messages are unregistered; want dave's", unregistered)
	}
}
