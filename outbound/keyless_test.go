package outbound

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/store"
)

// notifyPipeline is a pipeline whose statements go to keyless customers' secure mailboxes, with
// the mailbox in a real SQLite store.
func notifyPipeline(t *testing.T, sp *pipelinetest.MemSpool) (*Pipeline, *store.SQLite, *keys.Sealer) {
	t.Helper()
	f := pipelinetest.Get(t)
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "sealpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, err := keys.DataDir(t.TempDir()).MailboxKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	p := cfg.Policies[ClassStatement]
	p.Keyless = KeylessNotify
	cfg.Policies[ClassStatement] = p
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, f.Direct, f.SMIME, sp, WithPGP(f.PGP), WithMailbox(st, key))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := keys.NewSealer(key, MailboxMagic)
	if err != nil {
		t.Fatal(err)
	}
	return g, st, sealer
}

const keylessStatement = "From: statements@bank.example\r\nTo: bob@example.net\r\nSubject: Statement for Bob Example, account 4711\r\n\r\nBalance: 9 876,54 EUR\r\n"

// TestKeylessNotifyStoresSealedAndSendsANoticeWithoutContent: a keyless customer of a notify
// class gets 250 at RCPT; the signed, timestamped message waits sealed in the mailbox; the only
// mail to the customer is a signed notice that holds nothing of the statement.
func TestKeylessNotifyStoresSealedAndSendsANoticeWithoutContent(t *testing.T) {
	f := pipelinetest.Get(t)
	sp := &pipelinetest.MemSpool{}
	g, st, sealer := notifyPipeline(t, sp)
	if _, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "statements@bank.example", []string{"bob@example.net", "alice@example.com"}, keylessStatement); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	items, err := st.MailboxItems(ctx, "bob@example.net")
	if err != nil || len(items) != 1 {
		t.Fatalf("bob's mailbox: %+v, %v", items, err)
	}
	item, err := st.MailboxItem(ctx, "bob@example.net", items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"9 876,54", "Bob Example", "4711"} {
		if strings.Contains(string(item.Data), secret) {
			t.Fatalf("the store holds %q in clear", secret)
		}
	}
	signed, err := sealer.Open(item.ID, item.Data)
	if err != nil {
		t.Fatal(err)
	}
	in, err := pipelinetest.InspectSMIME(signed, smime.InboundOptions{Roots: f.Roots, TSARoots: f.Roots})
	if err != nil || in.Encrypted || !strings.Contains(string(signed), "9 876,54") {
		t.Fatalf("the mailbox copy is not the signed statement: %v", err)
	}
	if item.Class != ClassStatement || item.Size != len(signed) || !item.Expires.After(time.Now().Add(89*24*time.Hour)) {
		t.Fatalf("mailbox item: class %s, size %d (want %d), expires %v", item.Class, item.Size, len(signed), item.Expires)
	}
	var notice, toAlice int
	for _, m := range sp.Msgs {
		switch {
		case len(m.Recipients) == 1 && m.Recipients[0] == "bob@example.net":
			notice++
			for _, secret := range []string{"9 876,54", "Bob Example", "4711", "Statement for"} {
				if strings.Contains(string(m.Data), secret) {
					t.Errorf("the notice holds %q", secret)
				}
			}
			o, err := pipelinetest.InspectSMIME(m.Data, smime.InboundOptions{Roots: f.Roots, TSARoots: f.Roots})
			if err != nil || o.Encrypted {
				t.Errorf("the notice is not signed in clear: %v", err)
			}
			if subj := mime.HeaderValue(m.Data, "Subject"); !strings.Contains(subj, "online banking") || !strings.Contains(subj, "statement") {
				t.Errorf("notice subject %q", mime.HeaderValue(m.Data, "Subject"))
			}
		case len(m.Recipients) == 1 && m.Recipients[0] == "alice@example.com":
			toAlice++
		default:
			t.Errorf("queued to %v", m.Recipients)
		}
	}
	if notice != 1 || toAlice != 1 {
		t.Fatalf("%d notices to bob, %d messages to alice; want 1 each", notice, toAlice)
	}

	// The client retries the same message (say its 250 was lost): still one item in the mailbox.
	if _, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "statements@bank.example", []string{"bob@example.net"}, keylessStatement); err != nil {
		t.Fatal(err)
	}
	if items, _ := st.MailboxItems(ctx, "bob@example.net"); len(items) != 1 {
		t.Fatalf("after a retry bob's mailbox holds %d items", len(items))
	}
}

// TestKeylessNotifyNeverForOTPs: OTP mail to a keyless customer is refused even when the other
// classes notify, and a configuration that says otherwise is refused.
func TestKeylessNotifyNeverForOTPs(t *testing.T) {
	sp := &pipelinetest.MemSpool{}
	g, _, _ := notifyPipeline(t, sp)
	_, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "otp@bank.example", []string{"bob@example.net"}, "From: otp@bank.example\r\nTo: bob@example.net\r\nSubject: code\r\n\r\n424242\r\n")
	if e := pipelinetest.Reply(t, err); e.Code != 550 || !errors.Is(err, gateway.ErrNoKey) {
		t.Fatalf("OTP to a keyless customer: %v", err)
	}
	cfg := testConfig()
	p := cfg.Policies[ClassOTP]
	p.Keyless = KeylessNotify
	cfg.Policies[ClassOTP] = p
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "policies.otp.keyless") {
		t.Fatalf("keyless notify for OTPs: %v", err)
	}
	if len(sp.Msgs) != 0 {
		t.Fatal("something was queued")
	}
}

// TestKeylessNotifyStoreDownIs451: when the mailbox cannot be written nothing is queued and the
// client is told to retry.
func TestKeylessNotifyStoreDownIs451(t *testing.T) {
	sp := &pipelinetest.MemSpool{}
	g, st, _ := notifyPipeline(t, sp)
	st.Close()
	_, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "statements@bank.example", []string{"bob@example.net"}, keylessStatement)
	if e := pipelinetest.Reply(t, err); e.Code != 451 {
		t.Fatalf("mailbox down: %v, want 451", err)
	}
	if len(sp.Msgs) != 0 {
		t.Fatal("a notice was queued for a message not in the mailbox")
	}
}

func TestNoticeConfigValidate(t *testing.T) {
	for name, n := range map[string]Notice{
		"http":      {Bank: "B", URL: "http://online.bank.example/", Locale: "en"},
		"no host":   {Bank: "B", URL: "https:///x", Locale: "en"},
		"userinfo":  {Bank: "B", URL: "https://user:pw@online.bank.example/", Locale: "en"},
		"no bank":   {URL: "https://online.bank.example/", Locale: "en"},
		"two lines": {Bank: "B\r\nBcc: x", URL: "https://online.bank.example/", Locale: "en"},
		"locale":    {Bank: "B", URL: "https://online.bank.example/", Locale: "xx"},
	} {
		cfg := testConfig()
		cfg.Notice = n
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "notice.") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
