package outbound

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/tsa"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pipelinetest.Cleanup()
	os.Exit(code)
}

func testConfig() Config {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}

func newPipeline(t *testing.T, sp queue.Writer, sm *smime.Protector, logs *bytes.Buffer) *Pipeline {
	t.Helper()
	f := pipelinetest.Get(t)
	if sm == nil {
		sm = f.SMIME
	}
	log := slog.New(slog.DiscardHandler)
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	g, err := New(testConfig(), f.Direct, sm, sp, WithPGP(f.PGP), WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

const statementMsg = "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: Statement\r\n\r\nBalance: 1 234,56 EUR\r\n"

func TestRcptRefusesKeylessRecipientOfEncryptRequiredClass(t *testing.T) {
	sp := &pipelinetest.MemSpool{}
	g := newPipeline(t, sp, nil, nil)
	_, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "statements@bank.example", []string{"alice@example.com", "bob@example.net"}, statementMsg)
	e := pipelinetest.Reply(t, err)
	if e.Code != 550 || e.Enhanced != [3]int{5, 7, 1} || !errors.Is(err, gateway.ErrNoKey) || !strings.Contains(e.Message, "bob@example.net") {
		t.Fatalf("got %v, want 550 5.7.1 naming bob", err)
	}
	if len(sp.Msgs) != 0 {
		t.Fatal("something was queued")
	}
}

func TestDataProtectsEachRecipientByItsMethod(t *testing.T) {
	f := pipelinetest.Get(t)
	sp := &pipelinetest.MemSpool{}
	var logs bytes.Buffer
	g := newPipeline(t, sp, nil, &logs)
	ids, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "statements@bank.example", []string{"alice@example.com", "carol@example.org"}, statementMsg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(ids, ",") != 1 || len(sp.Msgs) != 2 {
		t.Fatalf("want one queued copy per method, got ids %q and %d messages", ids, len(sp.Msgs))
	}
	for _, m := range sp.Msgs {
		if bytes.Contains(m.Data, []byte("1 234,56")) {
			t.Fatal("queued data contains the plaintext")
		}
		if m.Class != ClassStatement || m.From != "statements@bank.example" || time.Until(m.Expires) < 4*24*time.Hour {
			t.Fatalf("queued %+v", m)
		}
		switch m.Recipients[0] {
		case "alice@example.com":
			if _, err := pipelinetest.InspectSMIME(m.Data, smime.InboundOptions{Roots: f.Roots, TSARoots: f.Roots, Identities: []*keys.Identity{f.Alice}}); err != nil {
				t.Fatalf("S/MIME copy: %v", err)
			}
		case "carol@example.org":
			if _, err := pipelinetest.InspectPGP(m.Data, pgp.InboundOptions{Decrypt: openpgp.EntityList{f.Carol}, Signers: openpgp.EntityList{f.Bank}, TSARoots: f.Roots}); err != nil {
				t.Fatalf("PGP copy: %v", err)
			}
		default:
			t.Fatalf("unexpected recipients %v", m.Recipients)
		}
	}
	for _, secret := range []string{"1 234,56", "alice@example.com", "carol@example.org"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("logs contain %q:\n%s", secret, logs.String())
		}
	}
}

func TestOTPClassProtectsHeadersAndExpiresSoon(t *testing.T) {
	f := pipelinetest.Get(t)
	sp := &pipelinetest.MemSpool{}
	g := newPipeline(t, sp, nil, nil)
	otp := "From: otp@bank.example\r\nTo: alice@example.com\r\nSubject: Your code is 551234\r\n\r\nCode 551234\r\n"
	if _, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "otp@bank.example", []string{"alice@example.com"}, otp); err != nil {
		t.Fatal(err)
	}
	m := sp.Nth(1)
	if m.Class != ClassOTP || time.Until(m.Expires) > 11*time.Minute || bytes.Contains(m.Data, []byte("551234")) {
		t.Fatalf("OTP queued as %s, expiring in %v, or with the code in clear", m.Class, time.Until(m.Expires))
	}
	o, err := pipelinetest.InspectSMIME(m.Data, smime.InboundOptions{Roots: f.Roots, TSARoots: f.Roots, Identities: []*keys.Identity{f.Alice}})
	if err != nil || mime.HeaderValue(o.Content, "Subject") != "Your code is 551234" {
		t.Fatalf("protected Subject: %v", err)
	}
}

// TestUnclassifiedMailIsProtectedStrictly: mail from a sender no rule names (here a batch job
// sending as statements@) is encrypted with its headers protected, and refused for a keyless customer.
func TestUnclassifiedMailIsProtectedStrictly(t *testing.T) {
	f := pipelinetest.Get(t)
	sp := &pipelinetest.MemSpool{}
	g := newPipeline(t, sp, nil, nil)
	msg := "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: Your code is 551234\r\n\r\nCode 551234\r\n"
	_, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "batch@bank.example", []string{"bob@example.net"}, msg)
	if e := pipelinetest.Reply(t, err); e.Code != 550 || !strings.Contains(e.Message, "unclassified mail must be encrypted") {
		t.Fatalf("keyless recipient of unclassified mail: %v", err)
	}
	if _, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "batch@bank.example", []string{"alice@example.com"}, msg); err != nil {
		t.Fatal(err)
	}
	m := sp.Nth(1)
	if m.Class != ClassUnclassified || bytes.Contains(m.Data, []byte("551234")) || !bytes.Contains(m.Data, []byte("Subject: [...]")) {
		t.Fatalf("unclassified mail queued as %s, or with its Subject in clear:\n%.300s", m.Class, m.Data)
	}
	if o, err := pipelinetest.InspectSMIME(m.Data, smime.InboundOptions{Roots: f.Roots, TSARoots: f.Roots, Identities: []*keys.Identity{f.Alice}}); err != nil || mime.HeaderValue(o.Content, "Subject") != "Your code is 551234" {
		t.Fatalf("protected Subject: %v", err)
	}
}

func TestSupportClassSignsOnlyForKeylessRecipient(t *testing.T) {
	f := pipelinetest.Get(t)
	sp := &pipelinetest.MemSpool{}
	g := newPipeline(t, sp, nil, nil)
	msg := "From: support@bank.example\r\nTo: bob@example.net\r\nSubject: Re: your question\r\n\r\nHello Bob\r\n"
	if _, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "support@bank.example", []string{"bob@example.net"}, msg); err != nil {
		t.Fatal(err)
	}
	m := sp.Nth(1)
	if o, err := pipelinetest.InspectSMIME(m.Data, smime.InboundOptions{Roots: f.Roots, TSARoots: f.Roots}); err != nil || o.Encrypted {
		t.Fatalf("sign-only copy: %v", err)
	}
}

func TestClassHeaderOnlyFromAuthenticatedSubmitters(t *testing.T) {
	f := pipelinetest.Get(t)
	msg := "From: statements@bank.example\r\nTo: alice@example.com\r\nSealpost-Class: otp\r\nSubject: code 424242\r\n\r\ncode 424242\r\n"
	for _, c := range []struct {
		name   string
		client gateway.Client
		class  string
	}{{"Unauthenticated", pipelinetest.Trusted, ClassStatement}, {"Authenticated", gateway.Client{Trusted: true, Authenticated: true, User: "core"}, ClassOTP}} {
		t.Run(c.name, func(t *testing.T) {
			sp := &pipelinetest.MemSpool{}
			g := newPipeline(t, sp, nil, nil)
			if _, err := pipelinetest.Transaction(t, g, c.client, "statements@bank.example", []string{"alice@example.com"}, msg); err != nil {
				t.Fatal(err)
			}
			m := sp.Nth(1)
			if m.Class != c.class {
				t.Fatalf("class %s, want %s", m.Class, c.class)
			}
			o, err := pipelinetest.InspectSMIME(m.Data, smime.InboundOptions{Roots: f.Roots, TSARoots: f.Roots, Identities: []*keys.Identity{f.Alice}})
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(m.Data, []byte("Sealpost-Class")) || bytes.Contains(o.Content, []byte("Sealpost-Class")) {
				t.Fatal("Sealpost-Class header was not stripped")
			}
		})
	}
}

// TestClassChangeAtDataRefusesWholeMessage: RCPT accepted a keyless recipient under the support
// policy (sign-only allowed); the header then makes it an OTP, which requires encryption.
func TestClassChangeAtDataRefusesWholeMessage(t *testing.T) {
	sp := &pipelinetest.MemSpool{}
	g := newPipeline(t, sp, nil, nil)
	msg := "From: support@bank.example\r\nTo: bob@example.net\r\nSealpost-Class: otp\r\n\r\ncode 1\r\n"
	_, err := pipelinetest.Transaction(t, g, gateway.Client{Trusted: true, Authenticated: true}, "support@bank.example", []string{"alice@example.com", "bob@example.net"}, msg)
	if e := pipelinetest.Reply(t, err); e.Code != 550 || !strings.Contains(e.Message, "bob@example.net") || strings.Contains(e.Message, "alice") {
		t.Fatalf("got %v, want 550 listing only bob", err)
	}
	if len(sp.Msgs) != 0 {
		t.Fatal("something was queued")
	}
}

func TestTimestampAuthorityDownIs451AndNothingQueued(t *testing.T) {
	f := pipelinetest.Get(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String()
	l.Close()
	client, err := tsa.NewClient([]string{dead}, f.Roots, tsa.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := f.Dir.Identity("signer")
	sm, err := smime.NewProtector(signer, smime.WithTimestamper(client))
	if err != nil {
		t.Fatal(err)
	}
	sp := &pipelinetest.MemSpool{}
	g := newPipeline(t, sp, sm, nil)
	_, err = pipelinetest.Transaction(t, g, pipelinetest.Trusted, "statements@bank.example", []string{"alice@example.com"}, statementMsg)
	if e := pipelinetest.Reply(t, err); e.Code != 451 || !errors.Is(err, gateway.ErrTimestampFailed) || !errors.Is(err, tsa.ErrUnavailable) {
		t.Fatalf("got %v, want 451 from an unavailable TSA", err)
	}
	if sp.Puts() != 0 {
		t.Fatal("something was queued")
	}
}

func TestSpoolFailureIs451AndNothingStaysQueued(t *testing.T) {
	sp := &pipelinetest.MemSpool{FailAt: 2}
	g := newPipeline(t, sp, nil, nil)
	_, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "statements@bank.example", []string{"alice@example.com", "carol@example.org"}, statementMsg)
	if e := pipelinetest.Reply(t, err); e.Code != 451 || !errors.Is(err, gateway.ErrQueueUnavailable) {
		t.Fatalf("got %v, want 451", err)
	}
	if len(sp.Msgs) != 0 || len(sp.Deleted) != 1 {
		t.Fatalf("after a failed second Put, %d entries remain and %d were deleted", len(sp.Msgs), len(sp.Deleted))
	}
}

func TestUntrustedClientCannotRelay(t *testing.T) {
	sp := &pipelinetest.MemSpool{}
	g := newPipeline(t, sp, nil, nil)
	_, err := pipelinetest.Transaction(t, g, gateway.Client{}, "statements@bank.example", []string{"alice@example.com"}, statementMsg)
	if e := pipelinetest.Reply(t, err); e.Code != 530 || !errors.Is(err, gateway.ErrRelayDenied) {
		t.Fatalf("got %v, want 530", err)
	}
}

func TestProtectErrorsBecomeReplies(t *testing.T) {
	sp := &pipelinetest.MemSpool{}
	g := newPipeline(t, sp, nil, nil)
	tests := []struct {
		name, msg string
		code      int
	}{
		{"SenderNotCovered", "From: ceo@elsewhere.example\r\n\r\nx\r\n", 550},
		{"NoFrom", "Subject: x\r\n\r\nx\r\n", 550},
		{"Malformed", "From: statements@bank.example\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n", 554},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "statements@bank.example", []string{"alice@example.com"}, tt.msg)
			if e := pipelinetest.Reply(t, err); e.Code != tt.code {
				t.Fatalf("got %v, want %d", err, tt.code)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []struct {
		cfg   Config
		paths []string
	}{
		{Config{Rules: []Rule{{Sender: "x@bank.example", Class: "newsletter"}}}, []string{"rules[0].class"}},
		{Config{Rules: []Rule{{Sender: "@bank.example", Class: ClassOTP}, {Sender: "bank.example", Class: ClassOTP}}}, []string{"rules[1].sender"}},
		{Config{Policies: map[string]Policy{ClassOTP: {Encryption: "required", SignOnly: true, Lifetime: config.Duration(time.Minute)}}}, []string{"policies.otp.sign_only"}},
		{Config{Policies: map[string]Policy{ClassOTP: {Encryption: "maybe", Lifetime: config.Duration(time.Minute)}}}, []string{"policies.otp.encryption"}},
		{Config{Policies: map[string]Policy{ClassOTP: {Encryption: "required"}}}, []string{"policies.otp.lifetime"}},
		{Config{Policies: map[string]Policy{"promo mail": {}}}, []string{`policies["promo mail"]`}},
		{Config{DefaultClass: "promo"}, []string{"default_class"}},
		{Config{Prefer: "carrier-pigeon"}, []string{"prefer"}},
		// Every problem is reported, in the order of the keys.
		{Config{Rules: []Rule{{Sender: "x", Class: "y"}}, DefaultClass: "z", Policies: map[string]Policy{ClassSupport: {}}, Prefer: "fax"},
			[]string{"rules[0].class", "rules[0].sender", "default_class", "policies.support.encryption", "policies.support.lifetime", "prefer"}},
	}
	for i, tt := range bad {
		err := overDefaults(tt.cfg).Validate()
		var paths []string
		for _, fe := range config.FieldErrors(err) {
			paths = append(paths, fe.Path)
		}
		if !slices.Equal(paths, tt.paths) {
			t.Errorf("config %d: Validate = %v: problems at %q, want %q", i, err, paths, tt.paths)
		}
	}
	c := overDefaults(Config{Rules: []Rule{{Sender: "@otp.bank.example", Class: ClassOTP}}})
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := c.classify("codes@OTP.bank.example"); got != ClassOTP {
		t.Fatalf("domain rule: %s", got)
	}
	if got := c.classify("anyone@else.example"); got != ClassUnclassified {
		t.Fatalf("default class %s, want unclassified (the strictest policy)", got)
	}
}

// TestUnmatchedMailGetsTheStrictestPolicy: mail that matches none of the shipped rules gets a policy
// at least as strict as every class's in each dimension (encryption, sign-only, header protection).
func TestUnmatchedMailGetsTheStrictestPolicy(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for sender, class := range map[string]string{"statements@bank.example": ClassStatement, "otp@bank.example": ClassOTP,
		"support@bank.example": ClassSupport, "marketing@bank.example": ClassUnclassified, "core@batch.bank.example": ClassUnclassified} {
		if got := c.classify(sender); got != class {
			t.Errorf("%s: class %s, want %s", sender, got, class)
		}
	}
	strict := c.Policies[c.DefaultClass]
	if strict.Encryption != "required" || strict.SignOnly || !strict.HeaderProtection {
		t.Fatalf("the unmatched policy %+v is not the strictest", strict)
	}
	for name, p := range c.Policies {
		if p.Encryption == "required" && strict.Encryption != "required" || p.HeaderProtection && !strict.HeaderProtection || !p.SignOnly && strict.SignOnly {
			t.Errorf("class %s (%+v) is stricter than unmatched mail's %+v in some dimension", name, p, strict)
		}
	}
}

// TestHeaderFromMustBeOfTheMessagesClass: the class follows the envelope sender, so a header From
// of another class borrowed that sender's policy: MAIL FROM:<support@…> with From: statements@…
// went out under the support policy (signed only to a customer without a key). Now the header From
// is classified by the same rules, and a message never gets a weaker policy than its From's class.
func TestHeaderFromMustBeOfTheMessagesClass(t *testing.T) {
	withDefault := func(class string) func(*Config) { return func(c *Config) { c.DefaultClass = class } }
	tests := []struct {
		name     string
		edit     func(*Config)
		client   gateway.Client
		envelope string
		header   string // the header fields before Subject
		to       string
		class    string // queued under; "" refused
		code     string // refusal reply prefix
	}{
		{"SupportEnvelopeStatementFrom", nil, pipelinetest.Trusted, "support@bank.example", "From: statements@bank.example\r\n", "bob@example.net", "", "550 5.7.1 the From address statements@bank.example is statement mail"},
		{"SupportEnvelopeStatementFromKeyedCustomer", nil, pipelinetest.Trusted, "support@bank.example", "From: statements@bank.example\r\n", "alice@example.com", "", "550 5.7.1"},
		{"StatementEnvelopeSupportFrom", nil, pipelinetest.Trusted, "statements@bank.example", "From: support@bank.example\r\n", "alice@example.com", "", "550 5.7.1"},
		{"OTPEnvelopeStatementFrom", nil, pipelinetest.Trusted, "otp@bank.example", "From: statements@bank.example\r\n", "alice@example.com", "", "550 5.7.1"},
		{"StatementEnvelopeUnnamedFrom", nil, pipelinetest.Trusted, "statements@bank.example", "From: noreply@bank.example\r\n", "alice@example.com", "", "550 5.7.1 the From address noreply@bank.example is unclassified mail"},
		// The From's address counts, not its display name; the domain's case does not matter.
		{"DisplayNameNamesAnotherClass", nil, pipelinetest.Trusted, "support@bank.example", "From: \"support@bank.example\" <statements@bank.example>\r\n", "bob@example.net", "", "550 5.7.1"},
		{"SameClassOtherSpelling", nil, pipelinetest.Trusted, "statements@bank.example", "From: Statements <statements@Bank.Example>\r\n", "alice@example.com", ClassStatement, ""},
		// An envelope sender no rule names keeps the default (strictest) policy when it is at
		// least as strict as the From's class, and is refused when it is not.
		{"UnnamedEnvelopeStatementFrom", nil, pipelinetest.Trusted, "batch@bank.example", "From: statements@bank.example\r\n", "alice@example.com", ClassUnclassified, ""},
		{"UnnamedEnvelopeSupportFrom", nil, pipelinetest.Trusted, "batch@bank.example", "From: support@bank.example\r\n", "alice@example.com", ClassUnclassified, ""},
		{"NullEnvelopeOTPFrom", nil, pipelinetest.Trusted, "", "From: otp@bank.example\r\n", "alice@example.com", ClassUnclassified, ""},
		{"WeakDefaultStatementFrom", withDefault(ClassSupport), pipelinetest.Trusted, "batch@bank.example", "From: statements@bank.example\r\n", "bob@example.net", "", "550 5.7.1 the From address statements@bank.example is statement mail, which the support policy"},
		{"WeakDefaultSupportFrom", withDefault(ClassSupport), pipelinetest.Trusted, "batch@bank.example", "From: support@bank.example\r\n", "bob@example.net", ClassSupport, ""},
		// An authenticated submitter's Sealpost-Class may be stricter than the From's class,
		// never weaker.
		{"ClassHeaderStricter", nil, gateway.Client{Trusted: true, Authenticated: true}, "statements@bank.example", "From: statements@bank.example\r\nSealpost-Class: otp\r\n", "alice@example.com", ClassOTP, ""},
		{"ClassHeaderWeaker", nil, gateway.Client{Trusted: true, Authenticated: true}, "otp@bank.example", "From: otp@bank.example\r\nSealpost-Class: support\r\n", "alice@example.com", "", "550 5.7.1 the From address otp@bank.example is otp mail, which Sealpost-Class support"},
		{"ClassHeaderWithoutHeaderProtection", nil, gateway.Client{Trusted: true, Authenticated: true}, "otp@bank.example", "From: otp@bank.example\r\nSealpost-Class: statement\r\n", "alice@example.com", "", "550 5.7.1"},
		{"ClassHeaderIgnoredUnauthenticated", nil, pipelinetest.Trusted, "support@bank.example", "From: statements@bank.example\r\nSealpost-Class: statement\r\n", "alice@example.com", "", "550 5.7.1"},
		// Several From addresses: refused as the signer refuses them, before any class is decided.
		{"TwoFromAddresses", nil, pipelinetest.Trusted, "statements@bank.example", "From: statements@bank.example, support@bank.example\r\n", "alice@example.com", "", "550 5.6.0 message needs exactly one From address"},
		{"TwoFromFields", nil, pipelinetest.Trusted, "support@bank.example", "From: support@bank.example\r\nFrom: statements@bank.example\r\n", "bob@example.net", "", "550 5.6.0"},
		{"NoFrom", nil, pipelinetest.Trusted, "support@bank.example", "Sender: support@bank.example\r\n", "bob@example.net", "", "550 5.6.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			f := pipelinetest.Get(t)
			sp := &pipelinetest.MemSpool{}
			g, err := New(cfg, f.Direct, f.SMIME, sp, WithPGP(f.PGP), WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatal(err)
			}
			msg := tt.header + "To: " + tt.to + "\r\nSubject: Statement\r\n\r\nBalance: 1 234,56 EUR\r\n"
			_, err = pipelinetest.Transaction(t, g, tt.client, tt.envelope, []string{tt.to}, msg)
			if tt.class == "" {
				if err == nil || !strings.HasPrefix(gateway.ReplyFor(err).String(), tt.code) {
					t.Fatalf("got %v, want %s…", err, tt.code)
				}
				if strings.HasPrefix(tt.code, "550 5.7.1") && !errors.Is(err, gateway.ErrClassMismatch) {
					t.Fatalf("%v is not ErrClassMismatch", err)
				}
				if len(sp.Msgs) != 0 {
					t.Fatal("something was queued")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range sp.Msgs {
				if m.Class != tt.class {
					t.Fatalf("queued as %s, want %s", m.Class, tt.class)
				}
			}
		})
	}
}

// TestAtLeastAsStrict: the order of policies the From check uses, on the shipped policies.
func TestAtLeastAsStrict(t *testing.T) {
	p := DefaultPolicies()
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{ClassUnclassified, ClassStatement, true}, {ClassUnclassified, ClassOTP, true}, {ClassUnclassified, ClassSupport, true},
		{ClassOTP, ClassStatement, true}, {ClassStatement, ClassOTP, false}, {ClassStatement, ClassSupport, true},
		{ClassSupport, ClassStatement, false}, {ClassSupport, ClassSupport, true},
	} {
		if got := atLeastAsStrict(p[tt.a], p[tt.b]); got != tt.want {
			t.Errorf("atLeastAsStrict(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
	// "preferred" without sign_only refuses a keyless customer, as "required" does.
	if !atLeastAsStrict(Policy{Encryption: "preferred"}, Policy{Encryption: "required"}) {
		t.Error("preferred without sign_only is as strict as required")
	}
}

// TestNormalizeAddressWasNotTheEnvelopeCheck: the cause of "250 at RCPT, 451 at DATA". The gateway
// checked a recipient with address.Normalize, which trimmed a trailing CR before judging, and
// kept the untrimmed string, which the queue then refused. The envelope rule refuses it at RCPT.
func TestNormalizeAddressWasNotTheEnvelopeCheck(t *testing.T) {
	g := newPipeline(t, &pipelinetest.MemSpool{}, nil, nil)
	s, _ := g.NewSession(pipelinetest.Trusted)
	if err := s.Mail(t.Context(), "support@bank.example", 0); err != nil {
		t.Fatal(err)
	}
	err := s.Rcpt(t.Context(), "alice@example.com\r")
	if e := pipelinetest.Reply(t, err); e.Code != 501 || e.Enhanced != [3]int{5, 1, 3} || !errors.Is(err, gateway.ErrBadEnvelopeAddress) {
		t.Fatalf("RCPT with a CR: %v, want 501 5.1.3", err)
	}
	s.Reset()
	if err := s.Mail(t.Context(), "support@bank.example\r", 0); gateway.ReplyFor(err).String() != "501 5.1.7 malformed sender address: control character" {
		t.Fatalf("MAIL with a CR: %v, want 501 5.1.7", err)
	}
}
