package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/sealpost/sealpost/evidence"
	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
)

const corpus = "../../testdata/inbound"

// TestCLIVerify: sealpost verify runs the inbound pipeline on a file, with the exit status the
// issue asks for: 0 verified, 1 not verified, 2 could not be processed.
func TestCLIVerify(t *testing.T) {
	data := t.TempDir()
	if code, _, errOut := runCLI(t, "", "keys", "init", "-data", data); code != 0 {
		t.Fatal(errOut)
	}
	if code, _, errOut := runCLI(t, "", "keys", "import", "-data", data, "-root", filepath.Join(corpus, "keys", "ca.pem")); code != 0 {
		t.Fatal(errOut)
	}
	// Importing alice's certificate registers it for her address.
	code, out, errOut := runCLI(t, "", "keys", "import", "-data", data, filepath.Join(corpus, "keys", "alice.pem"))
	if code != 0 || !strings.Contains(out, "registered certificate") || !strings.Contains(out, "alice@customer.example") {
		t.Fatalf("import: %d %s %s", code, out, errOut)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.eml")
	os.WriteFile(garbage, []byte("MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n"), 0o600)
	desk := filepath.Join(t.TempDir(), "desk.eml")
	for _, c := range []struct {
		file string
		code int
		want string
	}{
		{filepath.Join(corpus, "good", "smime-detached.eml"), 0, "verdict:     verified"},
		{filepath.Join(corpus, "good", "bob-unregistered.eml"), 1, "verdict:     unregistered"},
		{filepath.Join(corpus, "hostile", "from-differs-from-signer.eml"), 1, "failed:      from-mismatch"},
		{filepath.Join(corpus, "hostile", "pgp-no-mdc.eml"), 2, "not processed"},
		{garbage, 2, "not processed"},
	} {
		code, out, errOut := runCLI(t, "", "verify", "-data", data, "-out", desk, c.file)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("verify %s: exit %d, want %d; stdout:\n%s\nstderr: %s", filepath.Base(c.file), code, c.code, out, errOut)
		}
	}
	if code, _, _ := runCLI(t, "", "verify", "-data", data); code != 2 {
		t.Errorf("verify without a file: exit %d, want 2", code)
	}
}

// TestServeInboundEndToEnd: a customer's reply, signed and encrypted by OpenSSL and sent by swaks
// to the inbound listener, reaches the desk's Maildir decrypted, verified and linked to the thread
// of the support mail it answers; unsigned mail from the same registered customer is held, and
// released with sealpost quarantine.
func TestServeInboundEndToEnd(t *testing.T) {
	interop.Tool(t, "openssl")
	interop.Tool(t, "swaks")
	inst, cfg, alice, _ := testInstance(t, func(c *Config) {
	})
	files := t.TempDir()
	aliceCert, aliceKey := writeIdentity(t, files, "alice", alice)
	bankCert := filepath.Join(files, "bank.pem")
	chain, err := keys.DataDir(cfg.Data).Export("signer")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bankCert, chain, 0o600)
	if code, out, errOut := runCLI(t, "", "keys", "import", "-data", cfg.Data, aliceCert); code != 0 || !strings.Contains(out, "registered") {
		t.Fatalf("register alice: %s %s", out, errOut)
	}

	// The desk writes to alice; the mail goes out with a thread token in its Message-ID.
	res := submit(t, inst, "support@bank.example", []string{"alice@example.com"},
		"From: support@bank.example\r\nTo: alice@example.com\r\nSubject: Case 4711\r\n\r\nPlease confirm the payee.\r\n")
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	out, err := waitForMaildir(cfg.Delivery.Maildir, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	msgID := mime.HeaderValue(mime.ToCRLF(out[0]), "Message-ID")
	if msgID == "" {
		t.Fatal("outbound support mail has no Message-ID")
	}

	// Alice answers with OpenSSL: signed, then encrypted with AES-256-GCM to the bank.
	entity := filepath.Join(files, "entity.txt")
	os.WriteFile(entity, []byte("Content-Type: text/plain; charset=us-ascii\r\n\r\nYes, the payee is right.\r\n"), 0o600)
	signed := interop.Run(t, nil, "openssl", "cms", "-sign", "-in", entity, "-signer", aliceCert, "-inkey", aliceKey, "-binary")
	signedFile := filepath.Join(files, "signed.eml")
	os.WriteFile(signedFile, signed, 0o600)
	enc := interop.Run(t, nil, "openssl", "cms", "-encrypt", "-aes-256-gcm", "-in", signedFile, "-binary", bankCert)
	reply := "From: Alice <alice@example.com>\r\nTo: support@bank.example\r\nSubject: Re: Case 4711\r\nMessage-ID: <reply-1@example.com>\r\nIn-Reply-To: " + msgID + "\r\n" + string(mime.ToCRLF(enc))
	host, port, _ := net.SplitHostPort(inst.InboundAddr().String())
	swaks := func(data string, to string) ([]byte, error) {
		f := filepath.Join(files, "swaks.eml")
		os.WriteFile(f, []byte(data), 0o600)
		out, _, err := interop.Try(t, nil, "swaks", "--server", host, "--port", port, "--from", "alice@example.com", "--to", to, "--data", f)
		return out, err
	}
	if out, err := swaks(reply, "support@bank.example"); err != nil || !bytes.Contains(out, []byte("250 2.0.0 queued as")) {
		t.Fatalf("swaks reply: %v\n%s", err, out)
	}
	desk, err := waitForMaildir(cfg.Inbound.Delivery.Maildir, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d := mime.ToCRLF(desk[0])
	verdict := mime.HeaderValue(d, "Sealpost-Verdict")
	token := regexp.MustCompile(`^<([a-z2-7]{24})\.`).FindStringSubmatch(msgID)
	if token == nil || !strings.HasPrefix(verdict, "verified;") || !strings.Contains(verdict, "thread="+token[1]) || !strings.Contains(verdict, "encryption=aes256-gcm") {
		t.Fatalf("desk verdict %q (Message-ID %s)", verdict, msgID)
	}
	if !bytes.Contains(d, []byte("Yes, the payee is right.")) || bytes.Contains(d, []byte("pkcs7")) {
		t.Fatalf("desk message is not the decrypted content:\n%s", d)
	}
	// The evidence log has the reply with its verdict, signer and thread.
	var recorded *evidence.Inbound
	for _, r := range evidenceRecords(t, cfg.Data) {
		if r.Inbound != nil {
			recorded = r.Inbound
		}
	}
	if recorded == nil || recorded.Verdict != "verified" || recorded.From != "alice@example.com" || recorded.Signer != keys.CertFingerprint(alice.Certificate()) ||
		recorded.Thread != token[1] || recorded.Action != "deliver" || len(recorded.MessageSHA256) != 64 {
		t.Fatalf("the reply's evidence record: %+v", recorded)
	}
	// Its signature digest is of alice's signature value as OpenSSL wrote it (read back with
	// openssl smime -pk7out and the pkcs7 library, not sealpost's parser).
	block, _ := pem.Decode(interop.Run(t, nil, "openssl", "smime", "-pk7out", "-in", signedFile))
	if block == nil {
		t.Fatal("openssl smime -pk7out wrote no PEM")
	}
	p7, err := pkcs7.Parse(block.Bytes)
	if err != nil || len(p7.Signers) != 1 {
		t.Fatalf("pkcs7.Parse: %v", err)
	}
	if sum := sha256.Sum256(p7.Signers[0].EncryptedDigest); recorded.SignatureSHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("the record's signature_sha256 %s is not the SHA-256 of alice's signature value", recorded.SignatureSHA256)
	}

	// Not a support address: refused at RCPT by the inbound listener.
	if out, err := swaks("From: alice@example.com\r\n\r\nhi\r\n", "statements@bank.example"); err == nil || !bytes.Contains(out, []byte("550 5.1.1")) {
		t.Fatalf("non-support recipient: %v\n%s", err, out)
	}

	// Unsigned mail from a registered customer: 250, but held.
	if out, err := swaks("From: alice@example.com\r\nTo: support@bank.example\r\nSubject: change my address\r\n\r\nNew address: ...\r\n", "support@bank.example"); err != nil || !bytes.Contains(out, []byte("250 2.0.0 queued as")) {
		t.Fatalf("unsigned: %v\n%s", err, out)
	}
	code, list, errOut := runCLI(t, "", "quarantine", "list", "-data", cfg.Data)
	ids := regexp.MustCompile(`(?m)^([A-Z2-7]{16}) `).FindStringSubmatch(list)
	if code != 0 || ids == nil || !strings.Contains(list, "registered a key") {
		t.Fatalf("quarantine list: %d\n%s\n%s", code, list, errOut)
	}
	if code, show, errOut := runCLI(t, "", "quarantine", "show", "-data", cfg.Data, ids[1]); code != 0 || !strings.Contains(show, "verdict:") || !strings.Contains(show, "unsigned") {
		t.Fatalf("quarantine show: %d\n%s\n%s", code, show, errOut)
	}
	if code, _, errOut := runCLI(t, "", "quarantine", "release", "-data", cfg.Data, ids[1]); code != 2 || !strings.Contains(errOut, "-reason") {
		t.Fatalf("release without a reason: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", "quarantine", "release", "-data", cfg.Data, "-by", "desk-lead", "-reason", "signer confirmed by phone", ids[1]); code != 0 {
		t.Fatal(errOut)
	}
	if code, _, errOut := runCLI(t, "", "quarantine", "release", "-data", cfg.Data, "-reason", "signer confirmed by phone", ids[1]); code != 1 || !strings.Contains(errOut, "already released by desk-lead") {
		t.Fatalf("released twice: %d %s", code, errOut)
	}
	desk, err = waitForMaildir(cfg.Inbound.Delivery.Maildir, 2, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var released bool
	for _, m := range desk {
		released = released || (bytes.HasPrefix(m, []byte("Sealpost-Released:")) && strings.HasPrefix(mime.HeaderValue(mime.ToCRLF(m), "Sealpost-Verdict"), "unsigned"))
	}
	if !released {
		t.Fatal("released message not on the desk with its verdict")
	}
	for _, m := range desk {
		if bytes.HasPrefix(m, []byte("Sealpost-Released:")) && !strings.Contains(mime.HeaderValue(mime.ToCRLF(m), "Sealpost-Released"), "released by desk-lead at ") {
			t.Errorf("the desk copy does not name who released it: %q", mime.HeaderValue(mime.ToCRLF(m), "Sealpost-Released"))
		}
	}

	// Another unsigned message, deleted with a reason: its bytes go, the decision stays.
	if out, err := swaks("From: alice@example.com\r\nTo: support@bank.example\r\nSubject: urgent transfer\r\n\r\nSend it now.\r\n", "support@bank.example"); err != nil || !bytes.Contains(out, []byte("250 2.0.0 queued as")) {
		t.Fatalf("unsigned: %v\n%s", err, out)
	}
	_, list, _ = runCLI(t, "", "quarantine", "list", "-data", cfg.Data)
	del := regexp.MustCompile(`(?m)^([A-Z2-7]{16}) `).FindStringSubmatch(list)
	if del == nil || del[1] == ids[1] {
		t.Fatalf("quarantine list:\n%s", list)
	}
	heldFile := filepath.Join(cfg.Data, "quarantine", del[1]+".eml")
	if _, err := os.Stat(heldFile); err != nil {
		t.Fatalf("the held message's bytes: %v", err)
	}
	if code, _, errOut := runCLI(t, "", "quarantine", "delete", "-data", cfg.Data, "-by", "desk-lead", "-reason", "phishing attempt", del[1]); code != 0 {
		t.Fatal(errOut)
	}
	if code, _, errOut := runCLI(t, "", "quarantine", "release", "-data", cfg.Data, "-reason", "changed my mind", del[1]); code != 1 || !strings.Contains(errOut, "already deleted by desk-lead") {
		t.Fatalf("released after delete: %d %s", code, errOut)
	}
	if _, list, _ := runCLI(t, "", "quarantine", "list", "-data", cfg.Data); strings.Contains(list, del[1]) {
		t.Fatalf("a deleted message is still listed:\n%s", list)
	}
	if _, list, _ := runCLI(t, "", "quarantine", "list", "-data", cfg.Data, "-all"); !regexp.MustCompile(del[1]+`.*deleted by desk-lead`).MatchString(list) ||
		!regexp.MustCompile(ids[1]+`.*released by desk-lead`).MatchString(list) {
		t.Fatalf("quarantine list -all:\n%s", list)
	}
	if _, err := os.Stat(heldFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the deleted message's bytes are still held: %v", err)
	}
	// Both decisions reach the evidence log: who, what, why, about which message.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got []string
		for _, r := range evidenceRecords(t, cfg.Data) {
			if a := r.Action; a != nil && a.Actor == "desk-lead" {
				got = append(got, a.Action+" "+a.Subject+" "+a.Reason)
			}
		}
		want := []string{"held-released " + ids[1] + " signer confirmed by phone", "held-deleted " + del[1] + " phishing attempt"}
		if slices.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("decisions in the evidence log: %q, want %q", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, out, errOut := runCLI(t, "", "evidence", "find", "-data", cfg.Data, "-subject", del[1]); code != 0 || !strings.Contains(out, "held-deleted "+del[1]+" by desk-lead: phishing attempt") {
		t.Fatalf("evidence find -subject: %d\n%s%s", code, out, errOut)
	}
	_, metrics := httpGet(t, "http://"+inst.ops.Addr().String()+"/metrics")
	for _, want := range []string{
		`sealpost_inbound_messages_total{action="deliver",method="smime",status="verified"} 1`,
		`sealpost_inbound_messages_total{action="quarantine",method="",status="unsigned"} 2`,
		`sealpost_queue_delivered_total{class="inbound",queue="desk"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "sealpost_inbound"))
		}
	}
}
