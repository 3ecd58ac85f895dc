package outbound

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/smime"
)

// TestSendOTPShowsTheCodeOnlyInside: the OTP mail goes in the otp class, encrypted to the
// customer; the code, the amount and the payee are inside only, the text ends with the
// origin-bound line, and no outer header field holds the code.
func TestSendOTPShowsTheCodeOnlyInside(t *testing.T) {
	f := pipelinetest.Get(t)
	sp := &pipelinetest.MemSpool{}
	g := newPipeline(t, sp, nil, nil)
	if m, err := g.Reach("alice@example.com"); err != nil || m != "smime" {
		t.Fatalf("reach alice: %q %v", m, err)
	}
	if m, err := g.Reach("carol@example.org"); err != nil || m != "pgp" {
		t.Fatalf("reach carol: %q %v", m, err)
	}
	if _, err := g.Reach("bob@example.net"); !errors.Is(err, gateway.ErrNoKey) {
		t.Fatalf("reach bob: %v", err)
	}
	tx := &OTPTransaction{Amount: "1250.00", Currency: "EUR", PayeeName: "Erika Mustermann", PayeeAccount: "DE02120300000000202051"}
	ids, err := g.SendOTP(context.Background(), OTPMail{To: "alice@example.com", Code: "918273", Purpose: "payment",
		ExpiresAt: time.Now().Add(5 * time.Minute), Transaction: tx, Masked: "a***e@e*****e.com", Locale: "de-AT"})
	if err != nil || len(ids) != 1 {
		t.Fatalf("send: %v %v", ids, err)
	}
	m := sp.Msgs[ids[0]]
	if m.Class != ClassOTP {
		t.Fatalf("class %q, want otp", m.Class)
	}
	outer, _, err := mime.SplitEntity(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	for _, fld := range outer {
		if strings.Contains(string(fld.Raw), "918273") || strings.Contains(string(fld.Raw), "1250") {
			t.Fatalf("outer header field holds the code or amount: %q", fld.Raw)
		}
	}
	if strings.Contains(string(m.Data), "918273") {
		t.Fatal("the code is in the queued bytes in clear")
	}
	in, err := pipelinetest.InspectSMIME(m.Data, smime.InboundOptions{Identities: []*keys.Identity{f.Alice}, Roots: f.Roots, TSARoots: f.Roots})
	if err != nil || !in.Encrypted {
		t.Fatalf("not encrypted to alice: %v", err)
	}
	inner := string(in.Content)
	for _, want := range []string{"918273", "1250,00", "Erika Mustermann", "DE02120300000000202051"} {
		if !strings.Contains(strings.ReplaceAll(inner, "=\r\n", ""), want) && !strings.Contains(inner, strings.ReplaceAll(want, ",", ".")) {
			t.Errorf("the protected OTP mail does not show %q", want)
		}
	}
	if !strings.Contains(inner, "@bank.example #918273") {
		t.Error("no origin-bound line for the bank's domain")
	}
}

// TestSendCallNeedsAnOTPSender: without a rule that names an address of the otp class there is
// no sender for codes.
func TestSendCallNeedsAnOTPSender(t *testing.T) {
	cfg := testConfig()
	cfg.Rules = []Rule{{Sender: "@bank.example", Class: ClassOTP}}
	if _, err := cfg.otpSender(); !errors.Is(err, ErrNoOTPSender) {
		t.Fatalf("otp sender of a domain rule: %v", err)
	}
	sp := &pipelinetest.MemSpool{}
	g := newPipeline(t, sp, nil, nil)
	ids, err := g.SendCall(context.Background(), CallMail{To: "alice@example.com", Agent: "Jana", CustomerCode: "111222", AgentCode: "333444", ExpiresAt: time.Now().Add(10 * time.Minute)})
	if err != nil || len(ids) != 1 || sp.Msgs[ids[0]].Class != ClassOTP {
		t.Fatalf("call verification mail: %v %v", ids, err)
	}
}
