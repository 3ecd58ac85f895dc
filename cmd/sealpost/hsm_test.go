package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/softhsm/softhsmtest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/smime"
)

// hsmConfig initialises a data directory, moves the bank's signer and TSA keys into a fresh
// SoftHSM2 token and deletes the key files, so that only the HSM can sign or decrypt.
func hsmConfig(t *testing.T) (Config, *softhsmtest.Token, *keys.Identity) {
	t.Helper()
	tok := softhsmtest.New(t)
	cfg := defaultConfig()
	cfg.Data, cfg.SMTP.Addr, cfg.Inbound.Listener.Addr, cfg.Ops.Addr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.API.Addr = "127.0.0.1:0"
	cfg.resolvePaths()
	dir := keys.DataDir(cfg.Data)
	if err := dir.Init(cfg.Senders); err != nil {
		t.Fatal(err)
	}
	alice, _, err := demoCustomers(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"signer", "tsa"} {
		id, err := dir.Identity(name)
		if err != nil {
			t.Fatal(err)
		}
		p := tok.ImportIdentity(id, "bank-"+name, []byte{byte(i + 1)})
		if name == "signer" {
			cfg.HSM.Signer = &p
		} else {
			cfg.HSM.TSA = &p
		}
		if err := os.Remove(filepath.Join(cfg.Data, name+".key")); err != nil {
			t.Fatal(err)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg, tok, alice
}

// TestServeWithKeysInSoftHSM: with the signer and TSA keys only in SoftHSM2, outbound mail is
// signed and timestamped (OpenSSL verifies it) and a customer's reply encrypted to the bank is
// decrypted by the HSM.
func TestServeWithKeysInSoftHSM(t *testing.T) {
	interop.Tool(t, "openssl")
	cfg, _, alice := hsmConfig(t)
	inst, err := startInstance(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if res := submit(t, inst, "statements@bank.example", []string{"alice@example.com"}, e2eStatement); res.Err != nil {
		t.Fatalf("submission: %v %q", res.Err, res.Reply)
	}
	msgs, err := waitForMaildir(cfg.Delivery.Maildir, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	files := t.TempDir()
	certFile, keyFile := writeIdentity(t, files, "alice", alice)
	if out := opensslOpen(t, cfg, alice, msgs[0]); !bytes.Contains(out, []byte("1 234,56 EUR")) {
		t.Fatalf("openssl verify:\n%s", out)
	}

	// Inbound: alice's signed reply, encrypted by OpenSSL to the bank's certificate (whose key is
	// only in the HSM).
	entity := filepath.Join(files, "entity.txt")
	os.WriteFile(entity, []byte("Content-Type: text/plain\r\n\r\nThanks.\r\n"), 0o600)
	signed := filepath.Join(files, "signed.eml")
	os.WriteFile(signed, interop.Run(t, nil, "openssl", "cms", "-sign", "-in", entity, "-signer", certFile, "-inkey", keyFile, "-binary"), 0o600)
	bank := filepath.Join(files, "bank.pem")
	os.WriteFile(bank, keys.EncodeCertificates(mustCert(t, cfg.HSM.Signer.Certificate)), 0o600)
	enc := interop.Run(t, nil, "openssl", "cms", "-encrypt", "-aes256", "-in", signed, "-binary", bank)
	reply := append([]byte("From: alice@example.com\r\nTo: support@bank.example\r\nSubject: Re\r\n"), enc...)
	replyFile := filepath.Join(files, "reply.eml")
	os.WriteFile(replyFile, reply, 0o600)
	res, err := inst.inbound.pipeline.Evaluate(context.Background(), reply, time.Now())
	if err != nil || res.Verdict.Encryption != "aes256-cbc" || !bytes.Contains(res.Message, []byte("Thanks.")) {
		t.Fatalf("inbound decryption with the HSM key: %v %+v", err, res)
	}
}

func mustCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	cs, err := keys.ReadCertificatesFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return cs[0]
}

// TestServeHSMErrorsAtStart: a wrong PIN or a missing token stops serve at start with a clear
// error, and leaves nothing half-started (the same data directory starts cleanly afterwards).
func TestServeHSMErrorsAtStart(t *testing.T) {
	cfg, tok, _ := hsmConfig(t)
	wrongPIN := filepath.Join(t.TempDir(), "pin")
	os.WriteFile(wrongPIN, []byte("000000\n"), 0o600)
	for _, c := range []struct {
		name string
		edit func(*keys.PKCS11Config)
		want error
		says string
	}{
		{"wrong PIN", func(p *keys.PKCS11Config) { p.PINFile = wrongPIN }, keys.ErrPINIncorrect, "PIN incorrect"},
		{"missing token", func(p *keys.PKCS11Config) { p.TokenLabel = "no-such-token" }, keys.ErrTokenNotFound, "no-such-token"},
		{"missing key", func(p *keys.PKCS11Config) { p.KeyLabel, p.KeyID = "no-such-key", "" }, keys.ErrKeyNotFound, "no-such-key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := cfg
			p := *cfg.HSM.Signer
			c.edit(&p)
			bad.HSM.Signer = &p
			inst, err := startInstance(context.Background(), bad, slog.New(slog.DiscardHandler))
			if err == nil {
				inst.Close()
				t.Fatal("started with a broken HSM configuration")
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), tok.PIN) {
				t.Fatalf("error %q, want %v saying %q (and never the PIN)", err, c.want, c.says)
			}
		})
	}
	inst, err := startInstance(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("the good configuration does not start after the failures: %v", err)
	}
	inst.Close()
}

// TestBenchSoftHSM: sealpost bench -softhsm measures the relay with file keys and with the same keys
// in a SoftHSM2 token, in one run, and prints the ratio.
func TestBenchSoftHSM(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run; skipped with -short")
	}
	interop.Tool(t, "softhsm2-util")
	t.Setenv("SOFTHSM2_CONF", "") // bench points it at its own token; restored afterwards
	code, out, errOut := runCLI(t, "", "bench", "-n", "40", "-c", "4", "-rate", "0", "-softhsm")
	if code != 0 || !strings.Contains(out, "throughput (file keys)") || !strings.Contains(out, "throughput (SoftHSM2 keys)") || !strings.Contains(out, "SoftHSM2 ÷ file keys:") {
		t.Fatalf("bench: %d\n%s\n%s", code, out, errOut)
	}
}

// TestKeysCSRInHSM: with hsm.support configured, keys csr makes the key pair inside the token and
// prints a request the bank's CA (openssl) signs; with the issued chain in hsm.support.certificate,
// serve -check accepts the identity and a reply that openssl encrypted to it is decrypted by the token.
func TestKeysCSRInHSM(t *testing.T) {
	pki := bankPKI(t)
	tok := softhsmtest.New(t)
	data := initData(t)
	chain := filepath.Join(t.TempDir(), "support-chain.pem")
	file := writeConfig(t, map[string]any{"data": data, "identities": "development",
		"hsm": map[string]any{"support": map[string]any{"module": tok.Module, "token_label": tok.Label, "key_label": "bank-support",
			"pin_file": tok.PINFile, "certificate": chain}}})
	code, csr, stderr := runCLI(t, "", "keys", "csr", "support", "-config", file, "-subject", "/CN=Example Bank support/O=Example Bank AG", "-email", "support@bank.example")
	if code != 0 || !strings.HasPrefix(csr, "-----BEGIN CERTIFICATE REQUEST-----") {
		t.Fatalf("keys csr in the HSM: %d %q %q", code, csr, stderr)
	}
	if _, err := os.Stat(filepath.Join(data, "support.pending.key")); !os.IsNotExist(err) {
		t.Fatal("the HSM's key was written to the data directory")
	}
	os.WriteFile(filepath.Join(pki, "hsm.csr"), []byte(csr), 0o600)
	interop.Run(t, nil, "bash", "-c", "cd "+pki+" && openssl x509 -req -in hsm.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -extfile support.ext 2>/dev/null | cat - ca.pem > "+chain)
	if code, stdout, stderr := runCLI(t, "", "serve", "-check", "-config", file); code != 0 {
		t.Fatalf("serve -check with the HSM support identity: %d %q %q", code, stdout, stderr)
	}

	cfg, err := loadConfig(file, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := keys.DataDir(data).Identity("signer")
	if err != nil {
		t.Fatal(err)
	}
	decrypters, closers, err := loadDecrypters(keys.DataDir(data), cfg.HSM, signer)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(closers)
	if decrypters[0].Certificate().Subject.CommonName != "Example Bank support" {
		t.Fatalf("the support identity is %s, not the HSM's", decrypters[0].Certificate().Subject)
	}
	enc := interop.Run(t, []byte("Content-Type: text/plain\r\n\r\nto the desk\r\n"), "openssl", "cms", "-encrypt", "-aes256", "-binary", "-outform", "DER", chain)
	plain, err := smime.Decrypt(enc, decrypters[0])
	if err != nil || !bytes.Contains(plain.Content, []byte("to the desk")) {
		t.Fatalf("the HSM did not decrypt the reply: %v", err)
	}
}
