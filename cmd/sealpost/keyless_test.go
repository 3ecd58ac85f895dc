package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/sealpost/sealpost/api"
	"github.com/sealpost/sealpost/dkim"
	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/outbound"
	"github.com/sealpost/sealpost/store"
)

const keylessE2E = "From: statements@bank.example\r\nTo: bob@example.net\r\nSubject: Statement for Bob Example\r\n\r\nYour balance is 9 876,54 EUR on account 4711\r\n"

// TestServeKeylessNotify: with statements set to keyless: notify, a statement to a customer without
// a key gets 250; the customer receives only a notice, signed (openssl cms -verify accepts it, sign
// only) and DKIM-signed, holding none of the statement's words; the statement waits sealed in the
// store under mailbox.key (0600).
func TestServeKeylessNotify(t *testing.T) {
	keyFile := writeRSAKey(t, 2048)
	dkimKeys := []dkim.KeyConfig{{Domain: "bank.example", Selector: "sp2026", KeyFile: keyFile}}
	inst, cfg, _, _ := testInstance(t, func(c *Config) {
		c.DKIM.Keys = dkimKeys
		p := c.Gateway.Policies[outbound.ClassStatement]
		p.Keyless = outbound.KeylessNotify
		c.Gateway.Policies[outbound.ClassStatement] = p
	})
	if res := submit(t, inst, "statements@bank.example", []string{"bob@example.net"}, keylessE2E); res.Err != nil || len(res.Refused) != 0 {
		t.Fatalf("statement to keyless bob: %+v", res)
	}
	msgs, err := waitForMaildir(cfg.Delivery.Maildir, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	notice := msgs[0]
	for _, secret := range []string{"9 876,54", "4711", "Bob Example", "Statement for"} {
		if bytes.Contains(notice, []byte(secret)) {
			t.Errorf("the notice holds %q", secret)
		}
	}
	lookup := dkimLookup(t, dkimKeys)
	if vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(notice), &msgdkim.VerifyOptions{LookupTXT: lookup}); err != nil || len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("the notice's DKIM signature: %v %+v", err, vs)
	}
	files := t.TempDir()
	eml, caFile := filepath.Join(files, "notice.eml"), filepath.Join(files, "ca.pem")
	os.WriteFile(eml, notice, 0o600)
	ca, err := keys.DataDir(cfg.Data).Export("ca")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(caFile, ca, 0o600)
	text := interop.Run(t, nil, "openssl", "cms", "-verify", "-in", eml, "-purpose", "smimesign", "-CAfile", caFile)
	if !bytes.Contains(text, []byte("online banking")) {
		t.Fatalf("the verified notice does not say where to look:\n%s", text)
	}

	fi, err := os.Stat(filepath.Join(cfg.Data, keys.MailboxKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mailbox.key: %v %v", fi, err)
	}
	st := inst.data.store
	items, err := st.(interface {
		MailboxItems(ctx context.Context, address string) ([]store.MailboxItem, error)
	}).MailboxItems(context.Background(), "bob@example.net")
	if err != nil || len(items) != 1 || items[0].Class != outbound.ClassStatement {
		t.Fatalf("bob's mailbox: %+v %v", items, err)
	}
	db, err := os.ReadFile(filepath.Join(cfg.Data, storeFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(db, []byte("9 876,54")) || strings.Contains(string(db), "4711") {
		t.Fatal("the store's file holds the statement in clear")
	}

	// Online banking fetches it through the API: the statement as signed, which verifies.
	secret := testAPIToken(t, inst, api.ScopeMailbox)
	var list api.MailboxList
	if code := apiCall(t, inst, "GET", "/v1/customers/bob@example.net/mailbox", secret, "", nil, &list); code != 200 || len(list.Messages) != 1 ||
		list.Messages[0].Subject != "Statement for Bob Example" || list.Messages[0].State != "waiting" {
		t.Fatalf("mailbox list: %d %+v", code, list)
	}
	var got api.MailboxFetch
	if code := apiCall(t, inst, "GET", "/v1/customers/bob@example.net/mailbox/"+list.Messages[0].ID, secret, "", nil, &got); code != 200 {
		t.Fatalf("mailbox fetch: %d", code)
	}
	if !got.Verification.SignatureValid || got.Verification.Signer != "statements@bank.example" || got.Verification.Timestamp.IsZero() {
		t.Fatalf("verification of the fetched statement: %+v", got.Verification)
	}
	os.WriteFile(eml, got.Message, 0o600)
	if text := interop.Run(t, nil, "openssl", "cms", "-verify", "-in", eml, "-purpose", "smimesign", "-CAfile", caFile); !bytes.Contains(text, []byte("9 876,54")) {
		t.Fatalf("the fetched statement verified by openssl:\n%s", text)
	}
	if code := apiCall(t, inst, "POST", "/v1/customers/bob@example.net/mailbox/"+list.Messages[0].ID+"/read", secret, "", nil, nil); code != 204 {
		t.Fatalf("mark read: %d", code)
	}
}
