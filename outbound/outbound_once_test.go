package outbound

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/smime"
)

// TestOutboundPreparedOnceIsTheMessageSigned: the session parses the message once (Sealpost-Class
// removed from the parsed header, not from rebuilt bytes) and prepares it once; what it queues is
// byte for byte what signing the message without that field gives (fixed clock and boundaries).
func TestOutboundPreparedOnceIsTheMessageSigned(t *testing.T) {
	f := pipelinetest.Get(t)
	signer, err := f.Dir.Identity("signer")
	if err != nil {
		t.Fatal(err)
	}
	deterministic := func() *smime.Protector {
		n := 0
		p, err := smime.NewProtector(signer, smime.WithClock(func() time.Time { return time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC) }),
			smime.WithBoundaries(func() (string, error) { n++; return fmt.Sprintf("sealpost-once-%d", n), nil }))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	const head = "From: Example Bank <support@bank.example>\r\nTo: bob@example.net\r\n"
	const rest = "Subject: Re: your question\r\nMessage-ID: <once@bank.example>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHallo Bob, 1 234,56 €\r\n"
	sp := &pipelinetest.MemSpool{}
	g := newPipeline(t, sp, deterministic(), nil)
	submitter := gateway.Client{Trusted: true, Authenticated: true, User: "core"}
	if _, err := pipelinetest.Transaction(t, g, submitter, "support@bank.example", []string{"bob@example.net"}, head+"Sealpost-Class: support\r\n"+rest); err != nil {
		t.Fatal(err)
	}
	want, err := deterministic().SignMessage(context.Background(), []byte(head+rest), smime.Options{HeaderProtection: testConfig().Policies[ClassSupport].HeaderProtection})
	if err != nil {
		t.Fatal(err)
	}
	if got := sp.Nth(1).Data; !bytes.Equal(got, want) {
		t.Errorf("queued copy differs from the message signed directly:\n%s\nwant\n%s", got, want)
	}
}
