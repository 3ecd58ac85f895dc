package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/logtest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
)

// testInstance starts the gateway on a fresh data directory with alice (S/MIME) and carol
// (OpenPGP) registered; edit may change the configuration first.
func testInstance(t *testing.T, edit func(*Config)) (*instance, Config, *keys.Identity, *openpgp.Entity) {
	t.Helper()
	return testInstanceLogging(t, edit, slog.New(slog.DiscardHandler))
}

func testInstanceLogging(t *testing.T, edit func(*Config), log *slog.Logger) (*instance, Config, *keys.Identity, *openpgp.Entity) {
	t.Helper()
	cfg := defaultConfig()
	cfg.Data, cfg.SMTP.Addr, cfg.Inbound.Listener.Addr, cfg.Ops.Addr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.API.Addr = "127.0.0.1:0"
	if edit != nil {
		edit(&cfg)
	}
	cfg.resolvePaths()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	dir := keys.DataDir(cfg.Data)
	if err := dir.Init(cfg.Senders); err != nil {
		t.Fatal(err)
	}
	alice, carol, err := demoCustomers(dir)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := startInstance(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close() })
	return inst, cfg, alice, carol
}

func submit(t *testing.T, inst *instance, from string, to []string, msg string) sendResult {
	t.Helper()
	c, err := dialSMTP(inst.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return send(c, from, to, []byte(msg))
}

const e2eStatement = "From: statements@bank.example\r\nTo: alice@example.com, carol@example.org\r\nSubject: Statement\r\n" +
	"Message-ID: <e2e-1@bank.example>\r\n\r\nYour balance is 1 234,56 EUR.\r\n"

func TestServeEndToEndWithOpenSSLAndGnuPG(t *testing.T) {
	inst, cfg, alice, carol := testInstance(t, nil)
	res := submit(t, inst, "statements@bank.example", []string{"alice@example.com", "carol@example.org"}, e2eStatement)
	if res.Err != nil || !strings.Contains(res.Reply, "queued as") {
		t.Fatalf("submission: %v %q", res.Err, res.Reply)
	}
	msgs, err := waitForMaildir(cfg.Delivery.Maildir, 2, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	openWithPeers(t, cfg, alice, carol, msgs)
}

// writeIdentity writes id's certificate and its private key (PKCS#8) as PEM files in dir,
// for openssl.
func writeIdentity(t *testing.T, dir, name string, id *keys.Identity) (certFile, keyFile string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(id.Signer)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, keys.EncodeCertificates(id.Certificate()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// opensslOpen decrypts msg as alice with openssl cms and verifies it against the data directory's
// CA with purpose smimesign; it returns the verified content.
func opensslOpen(t *testing.T, cfg Config, alice *keys.Identity, msg []byte) []byte {
	t.Helper()
	files := t.TempDir()
	eml := filepath.Join(files, "m.eml")
	os.WriteFile(eml, msg, 0o600)
	certFile, keyFile := writeIdentity(t, files, "alice", alice)
	ca, err := keys.DataDir(cfg.Data).Export("ca")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(files, "ca.pem")
	os.WriteFile(caFile, ca, 0o600)
	dec := interop.Run(t, nil, "openssl", "cms", "-decrypt", "-in", eml, "-recip", certFile, "-inkey", keyFile)
	return interop.Run(t, dec, "openssl", "cms", "-verify", "-purpose", "smimesign", "-CAfile", caFile)
}

func TestServeRefusesKeylessRecipientAtRcptAndQueuesNothing(t *testing.T) {
	inst, _, _, _ := testInstance(t, nil)
	res := submit(t, inst, "statements@bank.example", []string{"bob@example.net"}, e2eStatement)
	if reason := res.Refused["bob@example.net"]; !strings.Contains(reason, "550") || !strings.Contains(reason, "must be encrypted") {
		t.Fatalf("bob: %q (%v)", reason, res.Err)
	}
	if infos, err := inst.spool.List(); err != nil || len(infos) != 0 {
		t.Fatalf("spool holds %d entries (%v)", len(infos), err)
	}
}

func TestServeTSADownIs451AndQueuesNothing(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String()
	l.Close()
	inst, _, _, _ := testInstance(t, func(c *Config) { c.TSA.URLs = []string{dead}; c.TSA.Timeout = config.Duration(2 * time.Second) })
	res := submit(t, inst, "statements@bank.example", []string{"alice@example.com"}, e2eStatement)
	if res.Err == nil || !strings.Contains(res.Reply, "451") {
		t.Fatalf("TSA down: %q, want 451", res.Reply)
	}
	if infos, err := inst.spool.List(); err != nil || len(infos) != 0 {
		t.Fatalf("spool holds %d entries (%v)", len(infos), err)
	}
}

// TestServeSwaks submits with a real SMTP client.
func TestServeSwaks(t *testing.T) {
	interop.Tool(t, "swaks")
	inst, cfg, _, _ := testInstance(t, nil)
	host, port, _ := net.SplitHostPort(inst.Addr().String())
	out := interop.Run(t, nil, "swaks", "--server", host, "--port", port, "--from", "statements@bank.example",
		"--to", "alice@example.com", "--header", "From: statements@bank.example", "--body", "sent by swaks")
	if !bytes.Contains(out, []byte("250 2.0.0 queued as")) {
		t.Fatalf("swaks did not see the queue ID:\n%s", out)
	}
	if _, err := waitForMaildir(cfg.Delivery.Maildir, 1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestServeDiskFailureIs451: when the spool cannot be written (here its directory vanished under
// the running gateway), the client gets 451 and no 250.
func TestServeDiskFailureIs451(t *testing.T) {
	inst, cfg, _, _ := testInstance(t, nil)
	if err := os.RemoveAll(filepath.Join(cfg.Data, "spool")); err != nil {
		t.Fatal(err)
	}
	res := submit(t, inst, "statements@bank.example", []string{"alice@example.com"}, e2eStatement)
	if res.Err == nil || !strings.Contains(res.Reply, "451") || strings.Contains(res.Reply, "queued as") {
		t.Fatalf("spool gone: %q, want 451", res.Reply)
	}
}

// TestServeLogsNoAddressOrBody: a whole accepted-and-refused exchange through the real listener,
// gateway and queue leaves neither a customer's address nor the message in the logs.
func TestServeLogsNoAddressOrBody(t *testing.T) {
	log, logs := logtest.New()
	inst, cfg, _, _ := testInstanceLogging(t, nil, log)
	submit(t, inst, "statements@bank.example", []string{"alice@example.com", "bob@example.net"}, e2eStatement)
	if _, err := waitForMaildir(cfg.Delivery.Maildir, 1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, secret := range []string{"alice@", "bob@", "1 234,56", "Statement"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"reason=\"recipient has no usable key", "code=550", "queue_id="} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
}

// TestDefaultsThatRunAreThePrintedOnes: plain serve runs the shipped rules that -print-config
// shows: an OTP leaves with its Subject hidden, support mail reaches a keyless customer signed, and
// mail no rule names is refused for a customer without a key.
func TestDefaultsThatRunAreThePrintedOnes(t *testing.T) {
	var printed Config
	if err := json.Unmarshal(exampleConfig(), &printed); err != nil {
		t.Fatal(err)
	}
	inst, cfg, _, _ := testInstance(t, nil)
	if !reflect.DeepEqual(printed.Gateway, cfg.Gateway) {
		t.Fatalf("printed gateway configuration %+v differs from the running %+v", printed.Gateway, cfg.Gateway)
	}
	otp := "From: otp@bank.example\r\nTo: alice@example.com\r\nSubject: Your code is 493817\r\n\r\nCode 493817\r\n"
	if res := submit(t, inst, "otp@bank.example", []string{"alice@example.com"}, otp); res.Err != nil {
		t.Fatalf("OTP: %v", res.Err)
	}
	support := "From: support@bank.example\r\nTo: bob@example.net\r\nSubject: Re: your card\r\n\r\nOn its way.\r\n"
	if res := submit(t, inst, "support@bank.example", []string{"bob@example.net"}, support); res.Err != nil {
		t.Fatalf("support mail to a keyless customer: %v", res.Err)
	}
	other := "From: statements@bank.example\r\nTo: bob@example.net\r\nSubject: News\r\n\r\nNews.\r\n"
	if res := submit(t, inst, "news@bank.example", []string{"bob@example.net"}, other); !strings.Contains(res.Refused["bob@example.net"], "unclassified mail must be encrypted") {
		t.Fatalf("unclassified mail to a keyless customer: %+v", res)
	}
	msgs, err := waitForMaildir(cfg.Delivery.Maildir, 2, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if strings.Contains(mime.HeaderValue(m, "To"), "alice") && (mime.HeaderValue(m, "Subject") != "[...]" || bytes.Contains(m, []byte("493817"))) {
			t.Fatalf("the OTP left with Subject %q", mime.HeaderValue(m, "Subject"))
		}
	}
}
