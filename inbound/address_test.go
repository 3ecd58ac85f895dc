package inbound

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
)

// signAsFrom signs rest (header fields after From, then the body) as id, From the address id's
// certificate names, and then rewrites that From to from, as a client does that spells the address
// its own way. The header of a detached signature without header protection is not signed, so the
// signature stays valid; signing From from directly is refused by sealpost's own signer, which
// holds the bank's From to its certificate exactly.
func signAsFrom(t *testing.T, id *keys.Identity, from, rest string) []byte {
	t.Helper()
	own := "From: " + id.Certificate().EmailAddresses[0] + "\r\n"
	signed := signAs(t, id, own+rest)
	if !bytes.HasPrefix(signed, []byte(own)) {
		t.Fatalf("signed message does not start with %q", own)
	}
	return append([]byte("From: "+from+"\r\n"), signed[len(own):]...)
}

// TestInboundFromMatchesSignerWithoutCase: alice's certificate names alice@example.com; her reply
// From Alice@Example.com (as her client spells it) is her mailbox: verified, not from-mismatch,
// and judged against her registration whatever spelling either was made in.
func TestInboundFromMatchesSignerWithoutCase(t *testing.T) {
	for _, tt := range []struct{ registered, from string }{
		{"alice@example.com", "Alice@Example.com"},
		{"alice@example.com", "ALICE@EXAMPLE.COM"},
		{"Alice@Example.COM", "alice@example.com"},
	} {
		t.Run(tt.registered+" from "+tt.from, func(t *testing.T) {
			e := newInboundEnv(t, Config{})
			e.register(t, tt.registered, e.f.Alice)
			msg := signAsFrom(t, e.f.Alice, "Alice <"+tt.from+">", "To: support@bank.example\r\nSubject: hi\r\n\r\nHello.\r\n")
			res, err := e.ib.Evaluate(context.Background(), msg, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			v := res.Verdict
			if v.Status != StatusVerified || len(v.Failures) != 0 || !v.Registered || res.Action != ActionDeliver {
				t.Fatalf("verdict %s (registered %v), action %s; want verified and delivered", v.Header(), v.Registered, res.Action)
			}
			if v.From != tt.from || v.Signer != "alice@example.com" {
				t.Fatalf("From %q Signer %q; want the From as written and the certificate's address", v.From, v.Signer)
			}
		})
	}
}

// TestInboundCaseVariantOfRegisteredCustomerNeedsTheirKey: mail From ALICE@example.com signed
// with another valid certificate for that spelling is held as wrong-key: alice registered her
// certificate as alice@example.com, and the spelling does not make it another customer (before,
// it was "unregistered" and delivered).
func TestInboundCaseVariantOfRegisteredCustomerNeedsTheirKey(t *testing.T) {
	e := newInboundEnv(t, Config{})
	e.register(t, "alice@example.com", e.f.Alice)
	other, err := e.f.CA.NewDevCustomer("ALICE@example.com")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.ib.Evaluate(context.Background(), signAs(t, other, "From: ALICE@example.com\r\nTo: support@bank.example\r\nSubject: new payee\r\n\r\nPay to XX00.\r\n"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	v := res.Verdict
	if v.Trusted() || !v.Registered || !strings.Contains(strings.Join(v.Failures, ","), FailWrongKey) || res.Action != ActionQuarantine {
		t.Fatalf("verdict %s (registered %v), action %s; want wrong-key, held", v.Header(), v.Registered, res.Action)
	}
}

// TestInboundThreadCustomerWithoutCase: a reply on alice@example.com's thread From
// Alice@Example.com is hers, not another customer's.
func TestInboundThreadCustomerWithoutCase(t *testing.T) {
	e := newInboundEnv(t, Config{})
	e.register(t, "alice@example.com", e.f.Alice)
	if _, err := pipelinetest.Transaction(t, e.out, pipelinetest.Trusted, "support@bank.example", []string{"alice@example.com"},
		"From: support@bank.example\r\nTo: alice@example.com\r\nSubject: Case\r\n\r\nHello.\r\n"); err != nil {
		t.Fatal(err)
	}
	var msgID string
	for _, m := range e.outSpool.Msgs {
		msgID = mime.HeaderValue(m.Data, "Message-ID")
	}
	res, err := e.ib.Evaluate(context.Background(), signAsFrom(t, e.f.Alice, "Alice@Example.com", "To: support@bank.example\r\nSubject: Re: Case\r\nIn-Reply-To: "+msgID+"\r\n\r\nThanks.\r\n"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Verdict; v.Status != StatusVerified || v.Thread == "" || v.ThreadMismatch != "" {
		t.Fatalf("verdict %s (thread %q mismatch %q); want verified on alice's thread", v.Header(), v.Thread, v.ThreadMismatch)
	}
}

// TestMatchingAddressPrefersSpelling: of a signer's addresses, the verdict names the one spelt as
// the From is, else a case variant.
func TestMatchingAddressPrefersSpelling(t *testing.T) {
	signer := []string{"Alice@example.com", "alice@example.com", "alice@other.example"}
	for from, want := range map[string]string{
		"alice@EXAMPLE.com":   "alice@example.com",
		"Alice@example.com":   "Alice@example.com",
		"ALICE@example.com":   "Alice@example.com",
		"ALICE@Other.example": "alice@other.example",
		"bob@example.com":     "",
	} {
		if got, ok := matchingAddress(signer, from); got != want || ok != (want != "") {
			t.Errorf("matchingAddress(%s) = %q, %v; want %q", from, got, ok, want)
		}
	}
}
