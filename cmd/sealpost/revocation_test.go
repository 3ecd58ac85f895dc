package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/outbound"
)

// TestServeRefusesRevokedCertificateAtRcpt: grace and heidi registered certificates of a CA whose
// CRL (`openssl ca -gencrl`) lists heidi's as revoked: grace's statement is accepted, heidi's is
// refused at RCPT naming the revocation; when the CRL cannot be had, a soft-fail class still
// sends, a hard-fail class answers 451 4.7.5.
func TestServeRefusesRevokedCertificateAtRcpt(t *testing.T) {
	o := interop.NewOpenSSLCA(t, "Customer CA")
	o.Issue(t, "grace", "grace@example.com", "usr")
	o.Issue(t, "heidi", "heidi@example.com", "usr")
	o.Revoke(t, "heidi", "keyCompromise")
	o.GenCRL(t)
	inst, cfg, _, _ := testInstance(t, func(c *Config) {
		p := c.Gateway.Policies[outbound.ClassOTP]
		p.Revocation = outbound.RevocationHardFail
		c.Gateway.Policies[outbound.ClassOTP] = p
	})
	ca := filepath.Join(o.Dir, "ca.pem")
	if code, _, errOut := runCLI(t, "", "keys", "import", "-data", cfg.Data, "-root", ca); code != 0 {
		t.Fatalf("import the CA: %s", errOut)
	}
	for _, n := range []string{"grace", "heidi"} {
		if code, _, errOut := runCLI(t, "", "keys", "import", "-data", cfg.Data, filepath.Join(o.Dir, n+".pem")); code != 0 {
			t.Fatalf("import %s: %s", n, errOut)
		}
	}
	broken := interop.NewOpenSSLCA(t, "Unreachable CA") // its CRL server answers 404
	broken.Issue(t, "ivan", "ivan@example.com", "usr")
	for _, f := range []string{"-root " + filepath.Join(broken.Dir, "ca.pem"), filepath.Join(broken.Dir, "ivan.pem")} {
		args := append([]string{"keys", "import", "-data", cfg.Data}, strings.Fields(f)...)
		if code, _, errOut := runCLI(t, "", args...); code != 0 {
			t.Fatalf("%s: %s", f, errOut)
		}
	}
	// roots/ is read again on reload, as after the SIGHUP an operator sends.
	if err := inst.watcher.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	statement := "From: statements@bank.example\r\nTo: grace@example.com, heidi@example.com\r\nSubject: Statement\r\n\r\nBalance 1,00 EUR.\r\n"
	res := submit(t, inst, "statements@bank.example", []string{"grace@example.com", "heidi@example.com"}, statement)
	if _, refused := res.Refused["grace@example.com"]; refused || res.Err != nil {
		t.Fatalf("grace: %+v", res)
	}
	if r := res.Refused["heidi@example.com"]; !strings.Contains(r, "550") || !strings.Contains(r, "revoked") || !strings.Contains(r, "keyCompromise") {
		t.Fatalf("heidi, revoked: %q; want 550 naming the revocation", r)
	}

	if res := submit(t, inst, "statements@bank.example", []string{"ivan@example.com"}, strings.ReplaceAll(statement, "grace@example.com, heidi", "ivan")); res.Err != nil {
		t.Fatalf("a statement (soft-fail) to ivan, whose CRL cannot be had: %+v", res)
	}
	otp := "From: otp@bank.example\r\nTo: ivan@example.com\r\nSubject: code\r\n\r\nYour code is 123456.\r\n"
	if r := submit(t, inst, "otp@bank.example", []string{"ivan@example.com"}, otp).Refused["ivan@example.com"]; !strings.Contains(r, "451") || !strings.Contains(r, "revocation") {
		t.Fatalf("an OTP (hard-fail) to ivan: %q; want 451 4.7.5", r)
	}
}
