package inbound

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	stdmime "mime"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/outbound"
	"github.com/sealpost/sealpost/quarantine"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/store"
)

// inboundEnv is the bank of the gateway fixture with both sides wired to one store: outbound
// support mail starts threads, inbound replies are judged against them.
type inboundEnv struct {
	f        *pipelinetest.Fixture
	st       *store.SQLite
	out      *outbound.Pipeline
	outSpool *pipelinetest.MemSpool
	ib       *Pipeline
	desk     *pipelinetest.MemSpool
	held     *quarantine.Quarantine
}

var customerClient = gateway.Client{Addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7)}}

func newInboundEnv(t testing.TB, cfg Config) *inboundEnv {
	t.Helper()
	f := pipelinetest.Get(t)
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "sealpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &inboundEnv{f: f, st: st, outSpool: &pipelinetest.MemSpool{}, desk: &pipelinetest.MemSpool{}}
	outCfg := outbound.DefaultConfig()
	if err := outCfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if e.out, err = outbound.New(outCfg, f.Direct, f.SMIME, e.outSpool, outbound.WithPGP(f.PGP), outbound.WithStore(st), outbound.WithLogger(slog.New(slog.DiscardHandler))); err != nil {
		t.Fatal(err)
	}
	if e.held, err = quarantine.Open(filepath.Join(t.TempDir(), "quarantine"), st); err != nil {
		t.Fatal(err)
	}
	signer, err := f.Dir.Identity("signer")
	if err != nil {
		t.Fatal(err)
	}
	cfg = withActions(cfg)
	cfg.SupportAddresses = []string{"support@bank.example"}
	cfg.AuthServID = "sealpost.test"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e.ib, err = New(cfg, st, f.Direct, WithIdentities(signer), WithPGPKeys(openpgp.EntityList{f.Bank}),
		WithDesk(e.desk), WithQuarantine(e.held), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *inboundEnv) register(t testing.TB, addr string, id *keys.Identity) {
	t.Helper()
	if err := e.st.Register(context.Background(), store.Registration{Address: addr, Method: store.MethodSMIME, Fingerprint: keys.CertFingerprint(id.Certificate())}); err != nil {
		t.Fatal(err)
	}
}

// receive runs one inbound SMTP transaction.
func (e *inboundEnv) receive(t *testing.T, msg []byte) (string, error) {
	t.Helper()
	s, err := e.ib.NewSession(customerClient)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Mail(t.Context(), "alice@example.com", 0); err != nil {
		return "", err
	}
	if err := s.Rcpt(t.Context(), "support@bank.example"); err != nil {
		return "", err
	}
	return s.Data(t.Context(), msg)
}

// signAs signs msg as a customer with sealpost's own S/MIME signer (it announces AES-GCM in its
// SMIMECapabilities, which openssl's signer does not).
func signAs(t *testing.T, id *keys.Identity, msg string) []byte {
	t.Helper()
	p, err := smime.NewProtector(id)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.SignMessage(context.Background(), []byte(msg), smime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// deskVerdict returns the Sealpost-Verdict of the only message on the desk.
func (e *inboundEnv) deskMessage(t *testing.T) []byte {
	t.Helper()
	queued := e.desk.Queued()
	if len(queued) != 1 {
		t.Fatalf("%d messages on the desk, want 1", len(queued))
	}
	for _, m := range queued {
		return m.Data
	}
	return nil
}

func TestInboundAcceptsOnlySupportAddresses(t *testing.T) {
	e := newInboundEnv(t, Config{})
	s, _ := e.ib.NewSession(customerClient)
	if err := s.Mail(t.Context(), "mallory@example.net", 0); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"statements@bank.example", "alice@example.com", "support@other.example"} {
		if r := pipelinetest.Reply(t, s.Rcpt(t.Context(), to)); r.Code != 550 || r.Enhanced != [3]int{5, 1, 1} {
			t.Errorf("RCPT %s: %d %v, want 550 5.1.1", to, r.Code, r.Enhanced)
		}
	}
	// Customers type the desk's address any way they like; every mailbox provider accepts that.
	for _, to := range []string{"support@BANK.example", "Support@bank.example"} {
		if err := s.Rcpt(t.Context(), to); err != nil {
			t.Errorf("support address %s refused: %v", to, err)
		}
	}
}

// TestSupportThreadRoundTrip: outbound support mail gets a thread token in its Message-ID; the
// customer's signed reply naming it is verified, linked to the thread, and its capabilities make
// the next outbound mail to that customer AES-GCM.
func TestSupportThreadRoundTrip(t *testing.T) {
	e := newInboundEnv(t, Config{})
	f := e.f
	e.register(t, "alice@example.com", f.Alice)
	if _, err := pipelinetest.Transaction(t, e.out, pipelinetest.Trusted, "support@bank.example", []string{"alice@example.com"},
		"From: support@bank.example\r\nTo: alice@example.com\r\nSubject: Your case 4711\r\nMessage-ID: <desk-4711@helpdesk.bank.example>\r\n\r\nPlease confirm.\r\n"); err != nil {
		t.Fatal(err)
	}
	var sent []byte
	for _, m := range e.outSpool.Msgs {
		sent = m.Data
	}
	msgID := mime.HeaderValue(sent, "Message-ID")
	token, ok := store.TokenFromMessageID(msgID)
	if !ok {
		t.Fatalf("outbound support Message-ID %q carries no thread token", msgID)
	}
	if d, err := smime.Decrypt(envelopeDER(t, sent), f.Alice); err != nil || d.Authenticated {
		t.Fatalf("first mail: decrypt %v, GCM %v (want CBC: nothing known about alice's client yet)", err, d != nil && d.Authenticated)
	}

	replyMsg := signAs(t, f.Alice, "From: Alice <alice@example.com>\r\nTo: support@bank.example\r\nSubject: Re: Your case 4711\r\n"+
		"Message-ID: <r1@example.com>\r\nIn-Reply-To: "+msgID+"\r\n\r\nConfirmed.\r\n")
	if _, err := e.receive(t, replyMsg); err != nil {
		t.Fatal(err)
	}
	desk := e.deskMessage(t)
	verdict := mime.HeaderValue(desk, "Sealpost-Verdict")
	if !strings.HasPrefix(verdict, "verified;") || !strings.Contains(verdict, "thread="+token) || strings.Contains(verdict, "thread-mismatch") {
		t.Fatalf("Sealpost-Verdict %q", verdict)
	}
	if ar := mime.HeaderValue(desk, "Authentication-Results"); !strings.HasPrefix(ar, "sealpost.test; smime=pass") {
		t.Fatalf("Authentication-Results %q", ar)
	}
	msgs, err := e.st.Messages(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	var linked bool
	for _, m := range msgs {
		linked = linked || (m.Inbound && m.MessageID == "<r1@example.com>" && m.Verdict == StatusVerified)
	}
	if !linked {
		t.Fatalf("reply not linked to the thread: %+v", msgs)
	}

	e.outSpool.Msgs = nil
	if _, err := pipelinetest.Transaction(t, e.out, pipelinetest.Trusted, "support@bank.example", []string{"alice@example.com"},
		"From: support@bank.example\r\nTo: alice@example.com\r\nSubject: Case 4711 closed\r\n\r\nDone.\r\n"); err != nil {
		t.Fatal(err)
	}
	for _, m := range e.outSpool.Msgs {
		sent = m.Data
	}
	if d, err := smime.Decrypt(envelopeDER(t, sent), f.Alice); err != nil || !d.Authenticated {
		t.Fatalf("after a reply announcing AES-GCM: decrypt %v, GCM %v", err, d != nil && d.Authenticated)
	}
}

// envelopeDER returns the DER of an application/pkcs7-mime message.
func envelopeDER(t *testing.T, msg []byte) []byte {
	t.Helper()
	_, body, err := mime.SplitEntity(msg)
	if err != nil {
		t.Fatal(err)
	}
	der, err := mime.DecodeBase64(body)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestThreadReplySignedByAnotherKeyIsFlagged: a reply on alice's thread signed with a valid
// certificate for her address that is not the one the thread (and her registration) names is
// linked but flagged, and not verified.
func TestThreadReplySignedByAnotherKeyIsFlagged(t *testing.T) {
	e := newInboundEnv(t, Config{OnFailed: ActionDeliver})
	f := e.f
	e.register(t, "alice@example.com", f.Alice)
	if _, err := pipelinetest.Transaction(t, e.out, pipelinetest.Trusted, "support@bank.example", []string{"alice@example.com"},
		"From: support@bank.example\r\nTo: alice@example.com\r\nSubject: Case\r\n\r\nHello.\r\n"); err != nil {
		t.Fatal(err)
	}
	var msgID string
	for _, m := range e.outSpool.Msgs {
		msgID = mime.HeaderValue(m.Data, "Message-ID")
	}
	other, err := f.CA.NewDevCustomer("alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.ib.Evaluate(context.Background(), signAs(t, other, "From: alice@example.com\r\nTo: support@bank.example\r\nSubject: Re: Case\r\nIn-Reply-To: "+msgID+"\r\n\r\nPay to my new account.\r\n"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	v := res.Verdict
	if v.Trusted() || v.Thread == "" || v.ThreadMismatch != "key" || !strings.Contains(strings.Join(v.Failures, ","), FailWrongKey) {
		t.Fatalf("verdict %s (thread %q mismatch %q)", v.Header(), v.Thread, v.ThreadMismatch)
	}
	// The same reply from mallory's address on alice's thread is flagged as another customer.
	mallory, err := f.CA.NewDevCustomer("mallory@example.net")
	if err != nil {
		t.Fatal(err)
	}
	res, err = e.ib.Evaluate(context.Background(), signAs(t, mallory, "From: mallory@example.net\r\nTo: support@bank.example\r\nSubject: Re: Case\r\nReferences: "+msgID+"\r\n\r\nHi.\r\n"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Verdict; v.Status != StatusUnregistered || v.ThreadMismatch != "customer" {
		t.Fatalf("verdict %s", v.Header())
	}
}

// TestRegisteredCustomerMustSign: unsigned mail from a customer who registered a certificate is
// held, not delivered; once an operator releases it, it reaches the desk with its failing verdict.
func TestRegisteredCustomerMustSign(t *testing.T) {
	e := newInboundEnv(t, Config{})
	e.register(t, "alice@example.com", e.f.Alice)
	ctx := context.Background()
	id, err := e.receive(t, []byte("From: alice@example.com\r\nTo: support@bank.example\r\nSubject: new payee\r\n\r\nPlease add IBAN XX00.\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.desk.Msgs) != 0 {
		t.Fatal("unsigned mail of a registered customer reached the desk")
	}
	h, err := e.st.HeldGet(ctx, id)
	if err != nil || h.Released || !strings.HasPrefix(h.Verdict, "unsigned") {
		t.Fatalf("held entry %+v, %v", h, err)
	}
	if n, err := e.ib.ReleaseReleased(ctx); n != 0 || err != nil {
		t.Fatalf("delivered %d before release (%v)", n, err)
	}
	why := "IBAN checked with the customer by phone, " + strings.Repeat("call-back ", 40) + "done"
	if err := e.st.Release(ctx, id, store.Decision{By: "Zoë Lead", Why: why, At: time.Now(), Evidence: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.ib.ReleaseReleased(ctx); n != 1 || err != nil {
		t.Fatalf("released %d, %v", n, err)
	}
	desk := e.deskMessage(t)
	if !bytes.HasPrefix(desk, []byte("Sealpost-Released:")) || !strings.HasPrefix(mime.HeaderValue(desk, "Sealpost-Verdict"), "unsigned") {
		t.Fatalf("released message:\n%s", desk)
	}
	// The desk copy names who released it and why, folded, with RFC 2047 words where not ASCII.
	field := desk[:bytes.Index(desk, []byte("\r\nSealpost-Verdict"))]
	for _, line := range bytes.Split(field, []byte("\r\n")) {
		if len(line) > 200 {
			t.Errorf("Sealpost-Released line of %d characters", len(line))
		}
	}
	shown, err := new(stdmime.WordDecoder).DecodeHeader(mime.HeaderValue(desk, "Sealpost-Released"))
	if err != nil || !strings.Contains(shown, "released by Zoë Lead at ") || !strings.Contains(shown, "reason: IBAN checked with the customer by phone, call-back") {
		t.Fatalf("Sealpost-Released %q (%v)", shown, err)
	}
	if _, m, err := e.held.Get(ctx, id); err != nil || m != nil {
		t.Fatalf("released message still held (%v)", err)
	}
	if n, err := e.ib.ReleaseReleased(ctx); n != 0 || err != nil {
		t.Fatalf("second pass delivered %d (%v)", n, err)
	}
}

// TestInboundPolicies: the On* settings decide between the desk and the quarantine.
func TestInboundPolicies(t *testing.T) {
	f := pipelinetest.Get(t)
	bob, err := f.CA.NewDevCustomer("bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	signed := signAs(t, bob, "From: bob@example.com\r\nTo: support@bank.example\r\nSubject: hi\r\n\r\nHello.\r\n")
	unsigned := []byte("From: bob@example.com\r\nTo: support@bank.example\r\nSubject: hi\r\n\r\nHello.\r\n")
	tampered := bytes.Replace(signed, []byte("Hello."), []byte("Hellp."), 1)
	for _, c := range []struct {
		name string
		cfg  Config
		msg  []byte
		want string
	}{
		{"unregistered delivered by default", Config{}, signed, ActionDeliver},
		{"unregistered held on request", Config{OnUnregistered: ActionQuarantine}, signed, ActionQuarantine},
		{"unsigned delivered by default", Config{}, unsigned, ActionDeliver},
		{"unsigned held on request", Config{OnUnsigned: ActionQuarantine}, unsigned, ActionQuarantine},
		{"failed held by default", Config{}, tampered, ActionQuarantine},
		{"failed delivered on request", Config{OnFailed: ActionDeliver}, tampered, ActionDeliver},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newInboundEnv(t, c.cfg)
			res, err := e.ib.Evaluate(context.Background(), c.msg, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if res.Action != c.want || res.Verdict.Trusted() {
				t.Fatalf("action %s for %s, want %s", res.Action, res.Verdict.Header(), c.want)
			}
		})
	}
}

// TestInboundUnprocessableIsRefused: garbage gets a 5xx, not a 451 loop and not the desk.
func TestInboundUnprocessableIsRefused(t *testing.T) {
	e := newInboundEnv(t, Config{})
	for name, msg := range map[string]string{
		"not for us": "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIBAgYJKoZIhvcNAQcDoA==\r\n",
		"bad header": "no colon here\r\n\r\nbody\r\n",
	} {
		_, err := e.receive(t, []byte(msg))
		var r *gateway.Error
		if !errors.As(err, &r) || r.Code < 500 {
			t.Errorf("%s: %v, want a 5xx", name, err)
		}
	}
	if len(e.desk.Msgs) != 0 {
		t.Fatal("unprocessable mail reached the desk")
	}
}

// TestInboundEmptyMessageIsRefused: a message with nothing in it (DATA with nothing, BDAT 0
// LAST) or no header field gets a permanent 554 5.6.0; before, an empty message was queued with
// 250 and delivered to the desk as an unsigned nothing.
func TestInboundEmptyMessageIsRefused(t *testing.T) {
	for name, msg := range map[string][]byte{"nothing": nil, "empty line": []byte("\r\n"), "body only": []byte("\r\nHello.\r\n")} {
		t.Run(name, func(t *testing.T) {
			e := newInboundEnv(t, Config{})
			_, err := e.receive(t, msg)
			if r := pipelinetest.Reply(t, err); r.Code != 554 || r.Enhanced != [3]int{5, 6, 0} || !errors.Is(err, ErrEmptyMessage) {
				t.Errorf("%v, want 554 5.6.0 (ErrEmptyMessage)", err)
			}
			if len(e.desk.Msgs) != 0 {
				t.Error("an empty message reached the desk")
			}
		})
	}
}

// TestInboundRefusesControlCharactersInEnvelope: the inbound pipeline applies the envelope rule
// itself, whoever calls it: a CR in MAIL or RCPT is refused at that command.
func TestInboundRefusesControlCharactersInEnvelope(t *testing.T) {
	e := newInboundEnv(t, Config{})
	s, _ := e.ib.NewSession(customerClient)
	if r := pipelinetest.Reply(t, s.Mail(t.Context(), "alice@example.com\r", 0)); r.Code != 501 {
		t.Fatalf("MAIL with a CR: %d %v", r.Code, r.Enhanced)
	}
	if err := s.Mail(t.Context(), "alice@example.com", 0); err != nil {
		t.Fatal(err)
	}
	if r := pipelinetest.Reply(t, s.Rcpt(t.Context(), "support@bank.example\r")); r.Code != 501 || r.Enhanced != [3]int{5, 1, 3} {
		t.Fatalf("RCPT with a CR: %d %v", r.Code, r.Enhanced)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	pipelinetest.Cleanup()
	os.Exit(code)
}
