package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
)

// TestServeLearnsCertificateFromReply: dave has registered nothing, and his statement is refused
// at RCPT. He writes to the desk from his mail client (openssl), signed with a certificate of a
// public S/MIME CA that learn-roots/ trusts. The desk gets his reply as unregistered, sealpost
// learns the certificate, and the next statement goes out encrypted to it (openssl decrypts it
// with dave's key); keys list shows it as learned.
func TestServeLearnsCertificateFromReply(t *testing.T) {
	interop.Tool(t, "openssl")
	public, err := keys.NewDevCA("Public S/MIME CA")
	if err != nil {
		t.Fatal(err)
	}
	dave, err := public.NewDevCustomer("dave@example.com")
	if err != nil {
		t.Fatal(err)
	}
	inst, cfg, _, _ := testInstance(t, func(c *Config) {
		learn := filepath.Join(c.Data, "learn-roots")
		if err := os.MkdirAll(learn, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(learn, "public-ca.pem"), keys.EncodeCertificates(public.Certificate()), 0o600); err != nil {
			t.Fatal(err)
		}
	})
	statement := "From: statements@bank.example\r\nTo: dave@example.com\r\nSubject: Statement\r\n\r\nYour balance is 42,00 EUR.\r\n"
	if res := submit(t, inst, "statements@bank.example", []string{"dave@example.com"}, statement); !strings.Contains(res.Refused["dave@example.com"], "550") {
		t.Fatalf("a statement to dave before he wrote: %+v", res)
	}

	files := t.TempDir()
	daveCert, daveKey := writeIdentity(t, files, "dave", dave)
	entity := filepath.Join(files, "entity.txt")
	os.WriteFile(entity, []byte("From: dave@example.com\r\nTo: support@bank.example\r\nSubject: new address\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nI moved.\r\n"), 0o600)
	signed := interop.Run(t, nil, "openssl", "smime", "-sign", "-in", entity, "-signer", daveCert, "-inkey", daveKey)
	c, err := dialSMTP(inst.InboundAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	res := send(c, "dave@example.com", []string{"support@bank.example"}, mime.ToCRLF(signed))
	c.Close()
	if res.Err != nil {
		t.Fatalf("dave's reply: %+v", res)
	}
	desk, err := waitForMaildir(cfg.Inbound.Delivery.Maildir, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v := mime.HeaderValue(mime.ToCRLF(desk[0]), "Sealpost-Verdict"); !strings.HasPrefix(v, "unregistered") {
		t.Fatalf("desk verdict %q; want unregistered", v)
	}

	// The learned certificate reaches the directory through the store's change feed (a hang
	// guard of 60 s: CI runs packages side by side under -race).
	deadline := time.Now().Add(60 * time.Second)
	for {
		res := submit(t, inst, "statements@bank.example", []string{"dave@example.com"}, statement)
		if res.Err == nil && len(res.Refused) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the statement to dave after his reply: %+v", res)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, err := waitForMaildir(cfg.Delivery.Maildir, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if text := opensslOpen(t, cfg, dave, out[0]); !bytes.Contains(text, []byte("42,00 EUR")) {
		t.Fatalf("dave's statement, decrypted with his key and verified:\n%s", text)
	}

	code, list, errOut := runCLI(t, "", "keys", "list", "-data", cfg.Data)
	if code != 0 || !regexp.MustCompile(`(?m)^dave@example.com +S/MIME +learned +[0-9A-F]{16} +usable `).MatchString(list) {
		t.Fatalf("keys list: %d\n%s\n%s", code, list, errOut)
	}
}
