package main

import (
	"bytes"
	"crypto/x509"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/tsa"
)

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, strings.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

const cliMessage = "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\nHello\r\n"

func TestCLIKeysAndProtect(t *testing.T) {
	data := t.TempDir()
	if code, _, stderr := runCLI(t, "", "keys", "init", "-data", data); code != 0 {
		t.Fatalf("keys init: %d %s", code, stderr)
	}
	ca, err := keys.DataDir(data).Identity("ca")
	if err != nil {
		t.Fatal(err)
	}
	alice, err := ca.NewDevCustomer("alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(t.TempDir(), "alice.pem")
	if err := os.WriteFile(certFile, keys.EncodeCertificates(alice.Certificate()), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o644)

	// A bad file among good ones imports nothing.
	if code, stdout, stderr := runCLI(t, "", "keys", "import", "-data", data, certFile, garbage); code != 1 || stdout != "" || !strings.Contains(stderr, "garbage.pem") {
		t.Fatalf("import with a bad file: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, stdout, _ := runCLI(t, "", "keys", "list", "-data", data); strings.Contains(stdout, "alice@example.com") {
		t.Fatal("a failed import left alice's certificate behind")
	}
	if code, stdout, stderr := runCLI(t, "", "keys", "import", "-data", data, certFile); code != 0 || !strings.Contains(stdout, "recipient alice@example.com: usable") {
		t.Fatalf("import: %d %q %q", code, stdout, stderr)
	}
	if code, stdout, _ := runCLI(t, "", "keys", "list", "-data", data); code != 0 || !strings.Contains(stdout, "alice@example.com") || !strings.Contains(stdout, "usable") {
		t.Fatalf("list: %d %q", code, stdout)
	}
	for _, what := range []string{"ca", "signer", "tsa"} {
		if code, stdout, _ := runCLI(t, "", "keys", "export", "-data", data, what); code != 0 || !strings.HasPrefix(stdout, "-----BEGIN CERTIFICATE-----") || strings.Contains(stdout, "PRIVATE") {
			t.Fatalf("export %s: %d %q", what, code, stdout)
		}
	}

	code, stdout, stderr := runCLI(t, cliMessage, "protect", "-data", data, "-from", "statements@bank.example", "-to", "alice@example.com")
	if code != 0 || !strings.Contains(stdout, "application/pkcs7-mime; smime-type=enveloped-data") {
		t.Fatalf("protect: %d %q", code, stderr)
	}
	code, stdout, _ = runCLI(t, cliMessage, "protect", "-data", data, "-from", "statements@bank.example", "-sign-only")
	if code != 0 || !strings.Contains(stdout, "multipart/signed") {
		t.Fatalf("protect -sign-only: %d", code)
	}

	failures := []struct {
		name, stdin string
		args        []string
		code        int
		stderr      string
	}{
		{"KeylessRecipient", cliMessage, []string{"-to", "alice@example.com,bob@example.net"}, 1, "recipient bob@example.net: no certificate or OpenPGP key"},
		{"FromMismatch", cliMessage, []string{"-from", "otp@bank.example", "-to", "alice@example.com"}, 1, "differs from the message's From"},
		{"SenderNotInCertificate", strings.Replace(cliMessage, "statements@bank.example", "x@evil.example", 1), []string{"-from", "x@evil.example", "-to", "alice@example.com"}, 1, "not named in the signing certificate"},
		{"NoRecipients", cliMessage, nil, 2, "-to is required"},
		{"MalformedMIME", "From: statements@bank.example\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n", []string{"-to", "alice@example.com"}, 1, "closing boundary"},
		{"MissingPKCS12Password", cliMessage, []string{"-to", "alice@example.com", "-signer-p12", "x.p12"}, 1, "PKCS#12 password"},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			args := append([]string{"protect", "-data", data}, f.args...)
			if !strings.Contains(strings.Join(f.args, " "), "-from") {
				args = append(args, "-from", "statements@bank.example")
			}
			code, stdout, stderr := runCLI(t, f.stdin, args...)
			if code != f.code || stdout != "" || !strings.Contains(stderr, f.stderr) || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("code %d (want %d), stdout %d bytes (want none), stderr %q (want one line with %q)", code, f.code, len(stdout), stderr, f.stderr)
			}
		})
	}
}

func TestCLIUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"nonsense"}, {"keys"}, {"keys", "list"}, {"keys", "export", "-data", "x", "secret"}, {"protect", "-bogus"}} {
		if code, stdout, _ := runCLI(t, "", args...); code != 2 || stdout != "" {
			t.Errorf("%v: code %d stdout %q, want 2 and nothing", args, code, stdout)
		}
	}
	if code, _, stderr := runCLI(t, "", "keys", "list", "-data", t.TempDir()); code != 0 {
		t.Errorf("list of an empty directory should succeed: %s", stderr)
	}
	if code, _, stderr := runCLI(t, cliMessage, "protect", "-data", t.TempDir(), "-from", "statements@bank.example", "-sign-only"); code != 1 || !strings.Contains(stderr, "keys init") {
		t.Errorf("protect on an uninitialised directory should say to run keys init: %q", stderr)
	}
}

// TestDemo runs the demo as a newcomer would: three customers over SMTP, one refusal, and each
// delivered message opened.
func TestDemo(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "demo")
	if code != 0 {
		t.Fatalf("demo failed: %s", stderr)
	}
	for _, want := range []string{
		"statement → alice@example.com  250 2.0.0 queued as",
		"otp       → carol@example.org  250 2.0.0 queued as",
		"support   → bob@example.net    250 2.0.0 queued as",
		"statement → bob@example.net    refused at RCPT, nothing queued",
		"delivered → alice: S/MIME",
		"delivered → carol: PGP/MIME",
		`outer Subject "[...]"; the code is only inside: "Your code is 493817"`,
		"delivered → bob:   signed only",
		"which is removed now; sealpost demo -data DIR keeps it",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
}

// TestCLIProtectWithHTTPTSA sends the timestamp request over real HTTP (the embedded authority's
// RFC 3161 handler on loopback), and refuses to produce anything when the TSA is down.
func TestCLIProtectWithHTTPTSA(t *testing.T) {
	data := t.TempDir()
	dir := keys.DataDir(data)
	if err := dir.Init([]string{"statements@bank.example"}); err != nil {
		t.Fatal(err)
	}
	id, err := dir.Identity("tsa")
	if err != nil {
		t.Fatal(err)
	}
	authority, err := tsa.NewAuthority(id.Signer, id.Chain)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(authority)
	defer srv.Close()

	code, stdout, stderr := runCLI(t, cliMessage, "protect", "-data", data, "-from", "statements@bank.example", "-sign-only", "-tsa", "http://127.0.0.1:1/,"+srv.URL)
	if code != 0 {
		t.Fatalf("protect with an HTTP TSA (first one down): %s", stderr)
	}
	ca, _ := dir.Identity("ca")
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	o, err := pipelinetest.InspectSMIME([]byte(stdout), smime.InboundOptions{Roots: roots, TSARoots: roots})
	if err != nil || o.Timestamp == nil {
		t.Fatalf("output does not verify with a timestamp: %v", err)
	}

	srv.Close()
	code, stdout, stderr = runCLI(t, cliMessage, "protect", "-data", data, "-from", "statements@bank.example", "-sign-only", "-tsa", srv.URL, "-tsa-timeout", "2s")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "timestamp") {
		t.Fatalf("TSA down: code %d, %d bytes on stdout, stderr %q; want 1, nothing, a timestamp error", code, len(stdout), stderr)
	}
}
