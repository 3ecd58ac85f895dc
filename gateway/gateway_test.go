package gateway

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/tsa"
)

// memSpool records what the gateway queues; failAt makes the n-th Put fail (1-based).
type memSpool struct {
	mu      sync.Mutex
	msgs    map[string]*queue.Message
	n       int
	failAt  int
	deleted []string
}

func (s *memSpool) Put(_ context.Context, m *queue.Message) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if s.n == s.failAt {
		return "", errors.New("disk full")
	}
	if s.msgs == nil {
		s.msgs = map[string]*queue.Message{}
	}
	id := fmt.Sprintf("Q%d", s.n)
	s.msgs[id] = m
	return id, nil
}

func (s *memSpool) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.msgs, id)
	s.deleted = append(s.deleted, id)
	return nil
}

type fixture struct {
	dir    keys.DataDir
	ca     *keys.Identity
	alice  *keys.Identity  // S/MIME customer
	carol  *openpgp.Entity // OpenPGP customer
	bank   *openpgp.Entity
	roots  *x509.CertPool
	smime  *smime.Protector
	pgp    *pgp.Protector
	direct *keys.Directory
}

var (
	fixOnce    sync.Once
	fix        *fixture
	fixErr     error
	fixtureDir string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

func getFixture(t testing.TB) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		// Shared by every test, so not any one test's TempDir; TestMain removes it.
		if fixtureDir, fixErr = os.MkdirTemp("", "sealpost-gateway-"); fixErr == nil {
			fix, fixErr = newFixture(fixtureDir)
		}
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func newFixture(tmp string) (*fixture, error) {
	f := &fixture{dir: keys.DataDir(tmp)}
	if err := f.dir.Init([]string{"statements@bank.example", "otp@bank.example", "support@bank.example"}); err != nil {
		return nil, err
	}
	var err error
	if f.ca, err = f.dir.Identity("ca"); err != nil {
		return nil, err
	}
	if f.alice, err = f.ca.NewDevCustomer("alice@example.com"); err != nil {
		return nil, err
	}
	if _, err := f.dir.Import(keys.EncodeCertificates(f.alice.Certificate()), keys.ImportOptions{}); err != nil {
		return nil, err
	}
	if f.carol, err = keys.NewDevPGPKey("Carol", []string{"carol@example.org"}); err != nil {
		return nil, err
	}
	pub, err := keys.EncodePGPPublicKeys(f.carol)
	if err != nil {
		return nil, err
	}
	if _, err := f.dir.Import(pub, keys.ImportOptions{}); err != nil {
		return nil, err
	}
	if f.direct, err = f.dir.Directory(); err != nil {
		return nil, err
	}
	signer, err := f.dir.Identity("signer")
	if err != nil {
		return nil, err
	}
	tsaID, err := f.dir.Identity("tsa")
	if err != nil {
		return nil, err
	}
	authority, err := tsa.NewAuthority(tsaID.Signer, tsaID.Chain)
	if err != nil {
		return nil, err
	}
	if f.smime, err = smime.NewProtector(signer, smime.WithTimestamper(authority)); err != nil {
		return nil, err
	}
	if f.bank, err = f.dir.PGPKey(); err != nil {
		return nil, err
	}
	if f.pgp, err = pgp.NewProtector(f.bank, pgp.WithTimestamper(authority)); err != nil {
		return nil, err
	}
	f.roots = x509.NewCertPool()
	f.roots.AddCert(f.ca.Certificate())
	return f, nil
}

func testConfig() Config {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}

func newGateway(t *testing.T, sp Spool, sm *smime.Protector, logs *bytes.Buffer) *Gateway {
	t.Helper()
	f := getFixture(t)
	if sm == nil {
		sm = f.smime
	}
	log := slog.New(slog.DiscardHandler)
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	g, err := New(testConfig(), Deps{Directory: f.direct, SMIME: sm, PGP: f.pgp, Spool: sp, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

var trusted = Client{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Trusted: true}

// transaction runs MAIL, RCPT… and DATA and returns the first error.
func transaction(t *testing.T, g *Gateway, c Client, from string, to []string, msg string) (string, error) {
	t.Helper()
	s, err := g.NewSession(c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Mail(from, 0); err != nil {
		return "", err
	}
	for _, r := range to {
		if err := s.Rcpt(r); err != nil {
			return "", err
		}
	}
	return s.Data([]byte(msg))
}

func reply(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *gateway.Error", err)
	}
	return e
}

const statementMsg = "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: Statement\r\n\r\nBalance: 1 234,56 EUR\r\n"

func TestRcptRefusesKeylessRecipientOfEncryptRequiredClass(t *testing.T) {
	sp := &memSpool{}
	g := newGateway(t, sp, nil, nil)
	_, err := transaction(t, g, trusted, "statements@bank.example", []string{"alice@example.com", "bob@example.net"}, statementMsg)
	e := reply(t, err)
	if e.Code != 550 || e.Enhanced != [3]int{5, 7, 1} || !errors.Is(err, ErrNoKey) || !strings.Contains(e.Message, "bob@example.net") {
		t.Fatalf("got %v, want 550 5.7.1 naming bob", err)
	}
	if len(sp.msgs) != 0 {
		t.Fatal("something was queued")
	}
}

func TestDataProtectsEachRecipientByItsMethod(t *testing.T) {
	f := getFixture(t)
	sp := &memSpool{}
	var logs bytes.Buffer
	g := newGateway(t, sp, nil, &logs)
	ids, err := transaction(t, g, trusted, "statements@bank.example", []string{"alice@example.com", "carol@example.org"}, statementMsg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(ids, ",") != 1 || len(sp.msgs) != 2 {
		t.Fatalf("want one queued copy per method, got ids %q and %d messages", ids, len(sp.msgs))
	}
	for _, m := range sp.msgs {
		if bytes.Contains(m.Data, []byte("1 234,56")) {
			t.Fatal("queued data contains the plaintext")
		}
		if m.Class != ClassStatement || m.From != "statements@bank.example" || time.Until(m.Expires) < 4*24*time.Hour {
			t.Fatalf("queued %+v", m)
		}
		switch m.Recipients[0] {
		case "alice@example.com":
			if _, err := inspectSMIME(m.Data, smime.InboundOptions{Roots: f.roots, TSARoots: f.roots, Identities: []*keys.Identity{f.alice}}); err != nil {
				t.Fatalf("S/MIME copy: %v", err)
			}
		case "carol@example.org":
			if _, err := inspectPGP(m.Data, pgp.InboundOptions{Decrypt: openpgp.EntityList{f.carol}, Signers: openpgp.EntityList{f.bank}, TSARoots: f.roots}); err != nil {
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
	f := getFixture(t)
	sp := &memSpool{}
	g := newGateway(t, sp, nil, nil)
	otp := "From: otp@bank.example\r\nTo: alice@example.com\r\nSubject: Your code is 551234\r\n\r\nCode 551234\r\n"
	if _, err := transaction(t, g, trusted, "otp@bank.example", []string{"alice@example.com"}, otp); err != nil {
		t.Fatal(err)
	}
	m := sp.msgs["Q1"]
	if m.Class != ClassOTP || time.Until(m.Expires) > 11*time.Minute || bytes.Contains(m.Data, []byte("551234")) {
		t.Fatalf("OTP queued as %s, expiring in %v, or with the code in clear", m.Class, time.Until(m.Expires))
	}
	o, err := inspectSMIME(m.Data, smime.InboundOptions{Roots: f.roots, TSARoots: f.roots, Identities: []*keys.Identity{f.alice}})
	if err != nil || mime.HeaderValue(o.Content, "Subject") != "Your code is 551234" {
		t.Fatalf("protected Subject: %v", err)
	}
}

// TestUnclassifiedMailIsProtectedStrictly: mail from a sender no rule names (here a batch job
// sending as statements@) is encrypted with its headers protected, and refused for a keyless customer.
func TestUnclassifiedMailIsProtectedStrictly(t *testing.T) {
	f := getFixture(t)
	sp := &memSpool{}
	g := newGateway(t, sp, nil, nil)
	msg := "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: Your code is 551234\r\n\r\nCode 551234\r\n"
	_, err := transaction(t, g, trusted, "batch@bank.example", []string{"bob@example.net"}, msg)
	if e := reply(t, err); e.Code != 550 || !strings.Contains(e.Message, "unclassified mail must be encrypted") {
		t.Fatalf("keyless recipient of unclassified mail: %v", err)
	}
	if _, err := transaction(t, g, trusted, "batch@bank.example", []string{"alice@example.com"}, msg); err != nil {
		t.Fatal(err)
	}
	m := sp.msgs["Q1"]
	if m.Class != ClassUnclassified || bytes.Contains(m.Data, []byte("551234")) || !bytes.Contains(m.Data, []byte("Subject: [...]")) {
		t.Fatalf("unclassified mail queued as %s, or with its Subject in clear:\n%.300s", m.Class, m.Data)
	}
	if o, err := inspectSMIME(m.Data, smime.InboundOptions{Roots: f.roots, TSARoots: f.roots, Identities: []*keys.Identity{f.alice}}); err != nil || mime.HeaderValue(o.Content, "Subject") != "Your code is 551234" {
		t.Fatalf("protected Subject: %v", err)
	}
}

func TestSupportClassSignsOnlyForKeylessRecipient(t *testing.T) {
	f := getFixture(t)
	sp := &memSpool{}
	g := newGateway(t, sp, nil, nil)
	msg := "From: support@bank.example\r\nTo: bob@example.net\r\nSubject: Re: your question\r\n\r\nHello Bob\r\n"
	if _, err := transaction(t, g, trusted, "support@bank.example", []string{"bob@example.net"}, msg); err != nil {
		t.Fatal(err)
	}
	m := sp.msgs["Q1"]
	if o, err := inspectSMIME(m.Data, smime.InboundOptions{Roots: f.roots, TSARoots: f.roots}); err != nil || o.Encrypted {
		t.Fatalf("sign-only copy: %v", err)
	}
}

func TestClassHeaderOnlyFromAuthenticatedSubmitters(t *testing.T) {
	f := getFixture(t)
	msg := "From: statements@bank.example\r\nTo: alice@example.com\r\nSealpost-Class: otp\r\nSubject: code 424242\r\n\r\ncode 424242\r\n"
	for _, c := range []struct {
		name   string
		client Client
		class  string
	}{{"Unauthenticated", trusted, ClassStatement}, {"Authenticated", Client{Trusted: true, Authenticated: true, User: "core"}, ClassOTP}} {
		t.Run(c.name, func(t *testing.T) {
			sp := &memSpool{}
			g := newGateway(t, sp, nil, nil)
			if _, err := transaction(t, g, c.client, "statements@bank.example", []string{"alice@example.com"}, msg); err != nil {
				t.Fatal(err)
			}
			m := sp.msgs["Q1"]
			if m.Class != c.class {
				t.Fatalf("class %s, want %s", m.Class, c.class)
			}
			o, err := inspectSMIME(m.Data, smime.InboundOptions{Roots: f.roots, TSARoots: f.roots, Identities: []*keys.Identity{f.alice}})
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
	sp := &memSpool{}
	g := newGateway(t, sp, nil, nil)
	msg := "From: support@bank.example\r\nTo: bob@example.net\r\nSealpost-Class: otp\r\n\r\ncode 1\r\n"
	_, err := transaction(t, g, Client{Trusted: true, Authenticated: true}, "support@bank.example", []string{"alice@example.com", "bob@example.net"}, msg)
	if e := reply(t, err); e.Code != 550 || !strings.Contains(e.Message, "bob@example.net") || strings.Contains(e.Message, "alice") {
		t.Fatalf("got %v, want 550 listing only bob", err)
	}
	if len(sp.msgs) != 0 {
		t.Fatal("something was queued")
	}
}

func TestTimestampAuthorityDownIs451AndNothingQueued(t *testing.T) {
	f := getFixture(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String()
	l.Close()
	client, err := tsa.NewClient([]string{dead}, f.roots, tsa.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := f.dir.Identity("signer")
	sm, err := smime.NewProtector(signer, smime.WithTimestamper(client))
	if err != nil {
		t.Fatal(err)
	}
	sp := &memSpool{}
	g := newGateway(t, sp, sm, nil)
	_, err = transaction(t, g, trusted, "statements@bank.example", []string{"alice@example.com"}, statementMsg)
	if e := reply(t, err); e.Code != 451 || !errors.Is(err, ErrTimestampFailed) || !errors.Is(err, tsa.ErrUnavailable) {
		t.Fatalf("got %v, want 451 from an unavailable TSA", err)
	}
	if sp.n != 0 {
		t.Fatal("something was queued")
	}
}

func TestSpoolFailureIs451AndNothingStaysQueued(t *testing.T) {
	sp := &memSpool{failAt: 2}
	g := newGateway(t, sp, nil, nil)
	_, err := transaction(t, g, trusted, "statements@bank.example", []string{"alice@example.com", "carol@example.org"}, statementMsg)
	if e := reply(t, err); e.Code != 451 || !errors.Is(err, ErrQueueUnavailable) {
		t.Fatalf("got %v, want 451", err)
	}
	if len(sp.msgs) != 0 || len(sp.deleted) != 1 {
		t.Fatalf("after a failed second Put, %d entries remain and %d were deleted", len(sp.msgs), len(sp.deleted))
	}
}

func TestUntrustedClientCannotRelay(t *testing.T) {
	sp := &memSpool{}
	g := newGateway(t, sp, nil, nil)
	_, err := transaction(t, g, Client{}, "statements@bank.example", []string{"alice@example.com"}, statementMsg)
	if e := reply(t, err); e.Code != 530 || !errors.Is(err, ErrRelayDenied) {
		t.Fatalf("got %v, want 530", err)
	}
}

func TestProtectErrorsBecomeReplies(t *testing.T) {
	sp := &memSpool{}
	g := newGateway(t, sp, nil, nil)
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
			_, err := transaction(t, g, trusted, "statements@bank.example", []string{"alice@example.com"}, tt.msg)
			if e := reply(t, err); e.Code != tt.code {
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
		err := tt.cfg.Validate()
		var paths []string
		for _, fe := range config.FieldErrors(err) {
			paths = append(paths, fe.Path)
		}
		if !slices.Equal(paths, tt.paths) {
			t.Errorf("config %d: Validate = %v: problems at %q, want %q", i, err, paths, tt.paths)
		}
	}
	c := Config{Rules: []Rule{{Sender: "@otp.bank.example", Class: ClassOTP}}}
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

// TestInboundConfigValidate: every problem of the inbound settings is reported at its key.
func TestInboundConfigValidate(t *testing.T) {
	tests := []struct {
		cfg   InboundConfig
		paths []string
	}{
		{InboundConfig{SupportAddresses: []string{"support@bank.example"}}, nil},
		{InboundConfig{}, []string{"support_addresses"}},
		{InboundConfig{SupportAddresses: []string{"support@bank.example", "desk"}}, []string{"support_addresses[1]"}},
		{InboundConfig{SupportAddresses: []string{"s@b.example"}, AuthServID: "sealpost bank"}, []string{"authserv_id"}},
		{InboundConfig{SupportAddresses: []string{"s@b.example"}, OnFailed: "ignore", OnUnsigned: "drop"}, []string{"on_unsigned", "on_failed"}},
		{InboundConfig{SupportAddresses: []string{"s@b.example"}, Lifetime: -1}, []string{"lifetime"}},
	}
	for i, tt := range tests {
		err := tt.cfg.Validate()
		var paths []string
		for _, fe := range config.FieldErrors(err) {
			paths = append(paths, fe.Path)
		}
		if !slices.Equal(paths, tt.paths) {
			t.Errorf("config %d: Validate = %v: problems at %q, want %q", i, err, paths, tt.paths)
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
		client   Client
		envelope string
		header   string // the header fields before Subject
		to       string
		class    string // queued under; "" refused
		code     string // refusal reply prefix
	}{
		{"SupportEnvelopeStatementFrom", nil, trusted, "support@bank.example", "From: statements@bank.example\r\n", "bob@example.net", "", "550 5.7.1 the From address statements@bank.example is statement mail"},
		{"SupportEnvelopeStatementFromKeyedCustomer", nil, trusted, "support@bank.example", "From: statements@bank.example\r\n", "alice@example.com", "", "550 5.7.1"},
		{"StatementEnvelopeSupportFrom", nil, trusted, "statements@bank.example", "From: support@bank.example\r\n", "alice@example.com", "", "550 5.7.1"},
		{"OTPEnvelopeStatementFrom", nil, trusted, "otp@bank.example", "From: statements@bank.example\r\n", "alice@example.com", "", "550 5.7.1"},
		{"StatementEnvelopeUnnamedFrom", nil, trusted, "statements@bank.example", "From: noreply@bank.example\r\n", "alice@example.com", "", "550 5.7.1 the From address noreply@bank.example is unclassified mail"},
		// The From's address counts, not its display name; the domain's case does not matter.
		{"DisplayNameNamesAnotherClass", nil, trusted, "support@bank.example", "From: \"support@bank.example\" <statements@bank.example>\r\n", "bob@example.net", "", "550 5.7.1"},
		{"SameClassOtherSpelling", nil, trusted, "statements@bank.example", "From: Statements <statements@Bank.Example>\r\n", "alice@example.com", ClassStatement, ""},
		// An envelope sender no rule names keeps the default (strictest) policy when it is at
		// least as strict as the From's class, and is refused when it is not.
		{"UnnamedEnvelopeStatementFrom", nil, trusted, "batch@bank.example", "From: statements@bank.example\r\n", "alice@example.com", ClassUnclassified, ""},
		{"UnnamedEnvelopeSupportFrom", nil, trusted, "batch@bank.example", "From: support@bank.example\r\n", "alice@example.com", ClassUnclassified, ""},
		{"NullEnvelopeOTPFrom", nil, trusted, "", "From: otp@bank.example\r\n", "alice@example.com", ClassUnclassified, ""},
		{"WeakDefaultStatementFrom", withDefault(ClassSupport), trusted, "batch@bank.example", "From: statements@bank.example\r\n", "bob@example.net", "", "550 5.7.1 the From address statements@bank.example is statement mail, which the support policy"},
		{"WeakDefaultSupportFrom", withDefault(ClassSupport), trusted, "batch@bank.example", "From: support@bank.example\r\n", "bob@example.net", ClassSupport, ""},
		// An authenticated submitter's Sealpost-Class may be stricter than the From's class,
		// never weaker.
		{"ClassHeaderStricter", nil, Client{Trusted: true, Authenticated: true}, "statements@bank.example", "From: statements@bank.example\r\nSealpost-Class: otp\r\n", "alice@example.com", ClassOTP, ""},
		{"ClassHeaderWeaker", nil, Client{Trusted: true, Authenticated: true}, "otp@bank.example", "From: otp@bank.example\r\nSealpost-Class: support\r\n", "alice@example.com", "", "550 5.7.1 the From address otp@bank.example is otp mail, which Sealpost-Class support"},
		{"ClassHeaderWithoutHeaderProtection", nil, Client{Trusted: true, Authenticated: true}, "otp@bank.example", "From: otp@bank.example\r\nSealpost-Class: statement\r\n", "alice@example.com", "", "550 5.7.1"},
		{"ClassHeaderIgnoredUnauthenticated", nil, trusted, "support@bank.example", "From: statements@bank.example\r\nSealpost-Class: statement\r\n", "alice@example.com", "", "550 5.7.1"},
		// Several From addresses: refused as the signer refuses them, before any class is decided.
		{"TwoFromAddresses", nil, trusted, "statements@bank.example", "From: statements@bank.example, support@bank.example\r\n", "alice@example.com", "", "550 5.6.0 message needs exactly one From address"},
		{"TwoFromFields", nil, trusted, "support@bank.example", "From: support@bank.example\r\nFrom: statements@bank.example\r\n", "bob@example.net", "", "550 5.6.0"},
		{"NoFrom", nil, trusted, "support@bank.example", "Sender: support@bank.example\r\n", "bob@example.net", "", "550 5.6.0"},
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
			f := getFixture(t)
			sp := &memSpool{}
			g, err := New(cfg, Deps{Directory: f.direct, SMIME: f.smime, PGP: f.pgp, Spool: sp, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			msg := tt.header + "To: " + tt.to + "\r\nSubject: Statement\r\n\r\nBalance: 1 234,56 EUR\r\n"
			_, err = transaction(t, g, tt.client, tt.envelope, []string{tt.to}, msg)
			if tt.class == "" {
				if err == nil || !strings.HasPrefix(Reply(err), tt.code) {
					t.Fatalf("got %v, want %s…", err, tt.code)
				}
				if strings.HasPrefix(tt.code, "550 5.7.1") && !errors.Is(err, ErrClassMismatch) {
					t.Fatalf("%v is not ErrClassMismatch", err)
				}
				if len(sp.msgs) != 0 {
					t.Fatal("something was queued")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range sp.msgs {
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

// inspectSMIME and inspectPGP check the gateway's output from the customer's side through the
// verifier customers' mail goes through, its findings as one error (Inbound.Err).
func inspectSMIME(msg []byte, opts smime.InboundOptions) (*smime.Inbound, error) {
	in, err := smime.Inspect(msg, opts)
	if err != nil {
		return nil, err
	}
	return in, in.Err()
}

func inspectPGP(msg []byte, opts pgp.InboundOptions) (*pgp.Inbound, error) {
	in, err := pgp.Inspect(msg, opts)
	if err != nil {
		return nil, err
	}
	return in, in.Err()
}
