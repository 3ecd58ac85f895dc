package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/api"
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
		// The CA publishes no CRL yet: imported, with the status named unknown.
		code, out, errOut := runCLI(t, "", "keys", "import", "-data", cfg.Data, filepath.Join(o.Dir, n+".pem"))
		if code != 0 || !strings.Contains(out, "revocation status unknown") {
			t.Fatalf("import %s: %s%s", n, out, errOut)
		}
	}
	// heidi's key is compromised after she registered it.
	o.Revoke(t, "heidi", "keyCompromise")
	o.GenCRL(t)
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

// TestRegistrationRefusesRevokedCertificate: a certificate its CA's CRL lists as revoked is
// refused when it is registered, through the API (409 revoked, naming the reason) and by keys
// import, and nothing is stored; one whose CA cannot be asked is registered (RCPT asks again).
func TestRegistrationRefusesRevokedCertificate(t *testing.T) {
	o := interop.NewOpenSSLCA(t, "Customer CA")
	o.Issue(t, "kate", "kate@example.com", "usr")
	o.Revoke(t, "kate", "keyCompromise")
	o.GenCRL(t)
	inst, cfg, _, _ := testInstance(t, nil)
	if code, _, errOut := runCLI(t, "", "keys", "import", "-data", cfg.Data, "-root", filepath.Join(o.Dir, "ca.pem")); code != 0 {
		t.Fatalf("import the CA: %s", errOut)
	}
	if err := inst.watcher.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	kate, err := os.ReadFile(filepath.Join(o.Dir, "kate.pem"))
	if err != nil {
		t.Fatal(err)
	}
	secret := testAPIToken(t, inst, api.ScopeCustomers)
	var problem struct{ Type, Detail string }
	req, _ := http.NewRequest(http.MethodPut, "http://"+inst.api.Addr().String()+"/v1/customers/kate@example.com/keys", bytes.NewReader(kate))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/x-pem-file")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&problem)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.HasSuffix(problem.Type, "revoked") || !strings.Contains(problem.Detail, "keyCompromise") {
		t.Fatalf("PUT a revoked certificate: %d %+v; want 409 revoked naming keyCompromise", resp.StatusCode, problem)
	}
	code, out, errOut := runCLI(t, "", "keys", "import", "-data", cfg.Data, filepath.Join(o.Dir, "kate.pem"))
	if code == 0 || !strings.Contains(errOut, "revoked") || !strings.Contains(errOut, "keyCompromise") {
		t.Fatalf("keys import of a revoked certificate: exit %d\n%s%s", code, out, errOut)
	}
	if regs, err := inst.data.store.Registrations(context.Background(), "kate@example.com"); err != nil || len(regs) != 0 {
		t.Fatalf("registrations after both refusals: %+v %v", regs, err)
	}

	down := interop.NewOpenSSLCA(t, "Unreachable CA") // its CRL server answers 404
	down.Issue(t, "liam", "liam@example.com", "usr")
	if code, _, errOut := runCLI(t, "", "keys", "import", "-data", cfg.Data, "-root", filepath.Join(down.Dir, "ca.pem")); code != 0 {
		t.Fatalf("import the CA: %s", errOut)
	}
	if err := inst.watcher.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	liam, err := os.ReadFile(filepath.Join(down.Dir, "liam.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if code := apiCall(t, inst, http.MethodPut, "/v1/customers/liam@example.com/keys", secret, "application/x-pem-file", liam, nil); code != http.StatusCreated {
		t.Fatalf("PUT a certificate whose CA cannot be asked: %d; want 201", code)
	}
}
