package outbound

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/smime"
)

// TestSubmitProtectsAndQueues: a message sealpost writes itself goes through the pipeline like
// any other: encrypted to the customer, queued in its class; a customer without a key is refused
// with ErrNoKey and nothing is queued.
func TestSubmitProtectsAndQueues(t *testing.T) {
	f := pipelinetest.Get(t)
	sp := &pipelinetest.MemSpool{}
	g := newPipeline(t, sp, nil, nil)
	msg := []byte("From: otp@bank.example\r\nTo: alice@example.com\r\nSubject: Your code\r\n\r\nCode 424242\r\n")
	ids, err := g.Submit(context.Background(), "otp@bank.example", []string{"alice@example.com"}, msg)
	if err != nil || len(ids) != 1 {
		t.Fatalf("submit: %v %v", ids, err)
	}
	m := sp.Msgs[ids[0]]
	if m == nil || m.Class != ClassOTP || strings.Contains(string(m.Data), "424242") {
		t.Fatalf("queued: %+v", m)
	}
	if in, err := pipelinetest.InspectSMIME(m.Data, smime.InboundOptions{Identities: []*keys.Identity{f.Alice}, Roots: f.Roots, TSARoots: f.Roots}); err != nil || !in.Encrypted {
		t.Fatalf("the OTP mail is not encrypted to alice: %v", err)
	}
	_, err = g.Submit(context.Background(), "otp@bank.example", []string{"bob@example.net"}, []byte(strings.ReplaceAll(string(msg), "alice@example.com", "bob@example.net")))
	if !errors.Is(err, gateway.ErrNoKey) || len(sp.Msgs) != 1 {
		t.Fatalf("a keyless customer: %v, %d queued", err, len(sp.Msgs))
	}
}
