package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/sealpost/sealpost/ca"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/outbound"
	"github.com/sealpost/sealpost/store"
)

// caFixture is a server with the bank's customer CA (issued by the test CA the data directory
// trusts).
func caFixture(t *testing.T, st Store) *fixture {
	t.Helper()
	m := testMaterial(t)
	custCA, err := m.ca.NewDevCustomerCA()
	if err != nil {
		t.Fatal(err)
	}
	authority, err := ca.New(ca.DefaultConfig(), custCA, st.(ca.Store))
	if err != nil {
		t.Fatal(err)
	}
	return newFixtureWith(t, st, []Option{WithCA(authority)})
}

// csrFor makes a PKCS#10 request for addresses with key.
func csrFor(t *testing.T, key any, addresses ...string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: addresses[0]}, EmailAddresses: addresses}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// issued decodes an issue's answer.
func issued(t *testing.T, a answer) IssuedCertificate {
	t.Helper()
	if a.status != http.StatusCreated {
		t.Fatalf("issue: %d %s", a.status, a.body)
	}
	var out IssuedCertificate
	if err := json.Unmarshal(a.body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCertificateFromCSRIsRegistered: a request made on the customer's device gets a certificate
// from the customer CA, registered at once and listed as usable; hostile requests get their
// problem, and nothing is stored for them.
func TestCertificateFromCSRIsRegistered(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(testing.TB) Store) {
		f := caFixture(t, open(t))
		secret, _ := f.token(ScopeCustomers)
		key, err := keys.NewRSAKey()
		if err != nil {
			t.Fatal(err)
		}
		weak, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			t.Fatal(err)
		}
		p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]struct {
			body        []byte
			contentType string
			want        ProblemType
		}{
			"another address":  {csrFor(t, key, "mallory@example.com"), typePKCS10, ProblemWrongAddress},
			"an extra address": {csrFor(t, key, "dana@example.com", "mallory@example.com"), typePKCS10, ProblemWrongAddress},
			"RSA-1024":         {csrFor(t, weak, "dana@example.com"), typePKCS10, ProblemWeakKey},
			"P-224":            {csrFor(t, p224, "dana@example.com"), typePKCS10, ProblemWeakKey},
			"garbage":          {[]byte("not a request"), typePKCS10, ProblemBadCSR},
			"JSON garbage":     {[]byte(`{"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}`), typeJSON, ProblemBadCSR},
			"unknown field":    {[]byte(`{"csr": "", "key": "x"}`), typeJSON, ProblemBadJSON},
			"text/plain":       {[]byte("x"), "text/plain", ProblemUnsupportedMediaType},
		} {
			a := f.do("POST", "/v1/customers/dana@example.com/certificates", secret, c.body, "Content-Type", c.contentType)
			a.problem(t, c.want)
			if regs, rks := f.stored("dana@example.com"); len(regs) != 0 || len(rks) != 0 {
				t.Fatalf("%s: stored %d registrations, %d keys", name, len(regs), len(rks))
			}
		}

		pemCSR := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrFor(t, key, "Dana@Example.com")})
		body, _ := json.Marshal(CertificateRequest{CSR: string(pemCSR)})
		out := issued(t, f.do("POST", "/v1/customers/dana@example.com/certificates", secret, body, "Content-Type", typeJSON))
		if out.PKCS12 != nil || out.Password != "" {
			t.Fatal("a request's answer carries a PKCS#12")
		}
		certs, err := keys.ParseCertificates([]byte(out.Certificate))
		if err != nil || len(certs) != 1 || !certs[0].PublicKey.(*rsa.PublicKey).Equal(&key.PublicKey) {
			t.Fatalf("issued certificate: %v", err)
		}
		if regs, _ := f.stored("dana@example.com"); len(regs) != 1 || regs[0].Fingerprint != out.Fingerprint {
			t.Fatalf("registrations after the issue: %+v", regs)
		}
		var list KeyList
		a := f.do("GET", "/v1/customers/dana@example.com/keys", secret, nil)
		if err := json.Unmarshal(a.body, &list); err != nil || len(list.Keys) != 1 || list.Keys[0].State != "usable" || list.Keys[0].Source != "registered" {
			t.Fatalf("keys after the issue: %d %s", a.status, a.body)
		}
	})
}

// TestCertificateWithPKCS12KeepsNoKey: without a request the answer is a PKCS#12 whose key
// matches the certificate; neither it nor its password is kept for an Idempotency-Key replay.
func TestCertificateWithPKCS12KeepsNoKey(t *testing.T) {
	st := backends[0].open(t)
	f := caFixture(t, st)
	secret, tok := f.token(ScopeCustomers)
	first := issued(t, f.do("POST", "/v1/customers/erin@example.com/certificates", secret, []byte("{}"), "Content-Type", typeJSON, "Idempotency-Key", "p12-1"))
	key, cert, _, err := pkcs12.DecodeChain(first.PKCS12, first.Password)
	if err != nil {
		t.Fatal(err)
	}
	if !key.(*rsa.PrivateKey).PublicKey.Equal(cert.PublicKey) || keys.CertFingerprint(cert) != first.Fingerprint {
		t.Fatal("the PKCS#12's key and certificate are not the issued pair")
	}
	if _, _, _, err := pkcs12.DecodeChain(first.PKCS12, first.Password+"x"); err == nil {
		t.Fatal("the PKCS#12 opens with another password")
	}
	a := f.do("POST", "/v1/customers/erin@example.com/certificates", secret, []byte("{}"), "Content-Type", typeJSON, "Idempotency-Key", "p12-1")
	if again := issued(t, a); again.Serial == first.Serial || a.header.Get("Idempotent-Replayed") != "" {
		t.Fatal("the PKCS#12 answer was replayed from storage")
	}
	_, fresh, err := st.BeginIdempotent(context.Background(), store.IdempotentCall{TokenID: tok.ID, Key: "p12-1", RequestHash: make([]byte, 32)})
	if err != nil || !fresh {
		t.Fatalf("an idempotent call holding the PKCS#12 is stored: fresh %v, %v", fresh, err)
	}
}

// TestCertificateRevocation: a revoked certificate leaves the recipient directory and is in the
// CRL; revoking again is 409, another customer's serial 404; without a CA every call is 501.
func TestCertificateRevocation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(testing.TB) Store) {
		f := caFixture(t, open(t))
		secret, _ := f.token(ScopeCustomers)
		out := issued(t, f.do("POST", "/v1/customers/finn@example.com/certificates", secret, nil))
		f.do("DELETE", "/v1/customers/gail@example.com/certificates/"+out.Serial, secret, nil).problem(t, ProblemNotFound)
		f.do("DELETE", "/v1/customers/finn@example.com/certificates/"+out.Serial+"?reason=lunch", secret, nil).problem(t, ProblemBadReason)
		f.do("DELETE", "/v1/customers/finn@example.com/certificates/xyz", secret, nil).problem(t, ProblemBadSerial)
		before := f.do("GET", "/v1/crl", "", nil)
		if a := f.do("DELETE", "/v1/customers/finn@example.com/certificates/"+out.Serial+"?reason=keyCompromise", secret, nil); a.status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", a.status, a.body)
		}
		if regs, rks := f.stored("finn@example.com"); len(regs) != 0 || len(rks) != 1 {
			t.Fatalf("after the revocation: %d registrations, %d keys (the chain's CA only)", len(regs), len(rks))
		}
		a := f.do("GET", "/v1/crl", "", nil)
		crl, err := x509.ParseRevocationList(a.body)
		if err != nil || a.header.Get("Content-Type") != "application/pkix-crl" {
			t.Fatalf("CRL: %v %s", err, a.header.Get("Content-Type"))
		}
		if len(crl.RevokedCertificateEntries) != 1 || !strings.EqualFold(crl.RevokedCertificateEntries[0].SerialNumber.Text(16), out.Serial) {
			t.Fatalf("the CRL lists %d entries", len(crl.RevokedCertificateEntries))
		}
		if string(before.body) == string(a.body) {
			t.Fatal("the CRL served after the revocation is the one from before")
		}
		f.do("DELETE", "/v1/customers/finn@example.com/certificates/"+out.Serial, secret, nil).problem(t, ProblemRevoked)
		// A revoked certificate is never registered again, however it arrives.
		f.do("PUT", "/v1/customers/finn@example.com/keys", secret, []byte(out.Certificate+out.Chain), "Content-Type", typePEM).problem(t, ProblemRevoked)
		if regs, _ := f.stored("finn@example.com"); len(regs) != 0 {
			t.Fatalf("the revoked certificate was registered again: %+v", regs)
		}
	})
	f := newFixture(t, backends[0].open(t))
	secret, _ := f.token(ScopeCustomers)
	f.do("POST", "/v1/customers/finn@example.com/certificates", secret, nil).problem(t, ProblemNoCA)
	f.do("GET", "/v1/crl", "", nil).problem(t, ProblemNoCA)
}

// TestMailboxCalls: online banking lists a keyless customer's waiting message, fetches it exactly
// as stored and marks it read; another customer's id, a hostile id and a gateway without a mailbox
// are 404; the scope is mailbox.
func TestMailboxCalls(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(testing.TB) Store) {
		st := open(t)
		key, err := keys.DataDir(t.TempDir()).MailboxKey()
		if err != nil {
			t.Fatal(err)
		}
		f := newFixtureWith(t, st, []Option{WithMailbox(st.(MailboxStore), key, nil, nil)})
		msg := []byte("From: statements@bank.example\r\nTo: hana@example.com\r\nSubject: =?utf-8?q?Kontoauszug_f=C3=BCr_Mai?=\r\n\r\nBalance\r\n")
		sealer, err := keys.NewSealer(key, outbound.MailboxMagic)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := sealer.Seal("item1", msg)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if err := st.(interface {
			PutMailboxItem(context.Context, store.MailboxItem) error
		}).PutMailboxItem(context.Background(), store.MailboxItem{ID: "item1", Address: "hana@example.com", Class: "statement", Received: now, Expires: now.Add(time.Hour), Size: len(msg), Data: sealed}); err != nil {
			t.Fatal(err)
		}
		secret, _ := f.token(ScopeMailbox)
		wrong, _ := f.token(ScopeCustomers)
		f.do("GET", "/v1/customers/hana@example.com/mailbox", wrong, nil).problem(t, ProblemForbidden)
		var list MailboxList
		if a := f.do("GET", "/v1/customers/hana@example.com/mailbox", secret, nil); json.Unmarshal(a.body, &list) != nil || len(list.Messages) != 1 ||
			list.Messages[0].Subject != "Kontoauszug für Mai" || list.Messages[0].State != "waiting" {
			t.Fatalf("list: %d %s", a.status, a.body)
		}
		var got MailboxFetch
		if a := f.do("GET", "/v1/customers/hana@example.com/mailbox/item1", secret, nil); json.Unmarshal(a.body, &got) != nil || string(got.Message) != string(msg) || got.Verification.SignatureValid {
			t.Fatalf("fetch: %d %s", a.status, a.body)
		}
		f.do("GET", "/v1/customers/ivan@example.com/mailbox/item1", secret, nil).problem(t, ProblemNotFound)
		f.do("GET", "/v1/customers/hana@example.com/mailbox/..%2fitem1", secret, nil).problem(t, ProblemNotFound)
		f.do("POST", "/v1/customers/ivan@example.com/mailbox/item1/read", secret, nil).problem(t, ProblemNotFound)
		if a := f.do("POST", "/v1/customers/hana@example.com/mailbox/item1/read", secret, nil); a.status != http.StatusNoContent {
			t.Fatalf("read: %d %s", a.status, a.body)
		}
		if a := f.do("GET", "/v1/customers/hana@example.com/mailbox", secret, nil); json.Unmarshal(a.body, &list) != nil || list.Messages[0].State != "read" {
			t.Fatalf("list after read: %s", a.body)
		}
	})
	f := newFixture(t, backends[0].open(t))
	secret, _ := f.token(ScopeMailbox)
	f.do("GET", "/v1/customers/hana@example.com/mailbox", secret, nil).problem(t, ProblemNotFound)
}
