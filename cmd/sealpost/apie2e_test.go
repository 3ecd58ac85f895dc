package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealpost/sealpost/api"
	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
)

// apiCall sends one request to inst's API with a token of scope and decodes a JSON answer into out.
func apiCall(t *testing.T, inst *instance, method, path, secret, contentType string, body []byte, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+inst.api.Addr().String()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// testAPIToken makes a token with scopes in inst's store.
func testAPIToken(t *testing.T, inst *instance, scopes ...string) string {
	t.Helper()
	secret, _, err := api.CreateToken(context.Background(), inst.data.store, "test", scopes, time.Now(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// TestServeAPIIssuedCertificateEndToEnd: a request made with openssl goes through the API to the
// customer CA; the certificate is registered at once, a statement over SMTP is encrypted to it, and
// openssl opens it with the customer's key and verifies the bank's signature. The same with the
// PKCS#12 path, read by openssl pkcs12. After the revocation the customer is refused again.
func TestServeAPIIssuedCertificateEndToEnd(t *testing.T) {
	inst, cfg, _, _ := testInstance(t, nil)
	secret := testAPIToken(t, inst, api.ScopeCustomers)
	files := t.TempDir()
	keyFile, csrFile := filepath.Join(files, "jo.key"), filepath.Join(files, "jo.csr")
	interop.Run(t, nil, "openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-subj", "/CN=jo@example.com",
		"-addext", "subjectAltName=email:jo@example.com", "-out", csrFile)
	csr, err := os.ReadFile(csrFile)
	if err != nil {
		t.Fatal(err)
	}
	var got api.IssuedCertificate
	if code := apiCall(t, inst, "POST", "/v1/customers/jo@example.com/certificates", secret, "application/pkcs10", csr, &got); code != http.StatusCreated {
		t.Fatalf("issue: %d", code)
	}
	msg := "From: statements@bank.example\r\nTo: jo@example.com\r\nSubject: Statement\r\n\r\nYour balance is 42,00 EUR\r\n"
	opened := deliverAndOpen(t, inst, cfg, "jo@example.com", msg, []byte(got.Certificate), keyFile)
	if !bytes.Contains(opened, []byte("42,00 EUR")) {
		t.Fatalf("the statement opened by jo's key:\n%s", opened)
	}

	var p12 api.IssuedCertificate
	if code := apiCall(t, inst, "POST", "/v1/customers/kim@example.com/certificates", secret, "", nil, &p12); code != http.StatusCreated || p12.PKCS12 == nil {
		t.Fatalf("issue with a PKCS#12: %d", code)
	}
	p12File, kimKey := filepath.Join(files, "kim.p12"), filepath.Join(files, "kim.key")
	os.WriteFile(p12File, p12.PKCS12, 0o600)
	key := interop.Run(t, nil, "openssl", "pkcs12", "-in", p12File, "-passin", "pass:"+p12.Password, "-nodes", "-nocerts")
	os.WriteFile(kimKey, key, 0o600)
	opened = deliverAndOpen(t, inst, cfg, "kim@example.com", "From: statements@bank.example\r\nTo: kim@example.com\r\nSubject: Statement\r\n\r\nYour balance is 7,00 EUR\r\n", []byte(p12.Certificate), kimKey)
	if !bytes.Contains(opened, []byte("7,00 EUR")) {
		t.Fatalf("the statement opened by kim's PKCS#12 key:\n%s", opened)
	}

	if code := apiCall(t, inst, "DELETE", "/v1/customers/jo@example.com/certificates/"+got.Serial, secret, "", nil, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}
	waitFor(t, "jo refused after the revocation", func() bool {
		return submit(t, inst, "statements@bank.example", []string{"jo@example.com"}, msg).Refused["jo@example.com"] != ""
	})
}

// deliverAndOpen submits msg to addr, waits for the newest delivery and opens it with openssl as
// the customer (certificate and key files), verifying the bank's signature; it returns the content.
func deliverAndOpen(t *testing.T, inst *instance, cfg Config, addr, msg string, certPEM []byte, keyFile string) []byte {
	t.Helper()
	before, _ := os.ReadDir(filepath.Join(cfg.Delivery.Maildir, "new"))
	waitFor(t, addr+" accepted", func() bool {
		res := submit(t, inst, "statements@bank.example", []string{addr}, msg)
		return res.Err == nil && len(res.Refused) == 0
	})
	if _, err := waitForMaildir(cfg.Delivery.Maildir, len(before)+1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	files := t.TempDir()
	eml, certFile, caFile := filepath.Join(files, "m.eml"), filepath.Join(files, "c.pem"), filepath.Join(files, "ca.pem")
	os.WriteFile(eml, newest(t, cfg), 0o600)
	os.WriteFile(certFile, certPEM, 0o600)
	ca, err := keys.DataDir(cfg.Data).Export("ca")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(caFile, ca, 0o600)
	dec := interop.Run(t, nil, "openssl", "cms", "-decrypt", "-in", eml, "-recip", certFile, "-inkey", keyFile)
	return interop.Run(t, dec, "openssl", "cms", "-verify", "-purpose", "smimesign", "-CAfile", caFile)
}

// newest is the most recently delivered message of the maildir.
func newest(t *testing.T, cfg Config) []byte {
	t.Helper()
	dir := filepath.Join(cfg.Delivery.Maildir, "new")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var best string
	var at time.Time
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && !fi.ModTime().Before(at) {
			best, at = e.Name(), fi.ModTime()
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, best))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
