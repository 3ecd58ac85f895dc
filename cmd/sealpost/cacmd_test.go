package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

// TestCAIssue: ca issue on a keys init directory writes the PKCS#12 and key 0600 and the chain,
// prints the PKCS#12 password once, and registers the certificate: the shared directory holds it,
// and it passes the recipient directory's checks for outbound mail.
func TestCAIssue(t *testing.T) {
	data, out := t.TempDir(), filepath.Join(t.TempDir(), "issued")
	if code, _, stderr := runCLI(t, "", "keys", "init", "-data", data); code != 0 {
		t.Fatalf("keys init: %d %s", code, stderr)
	}
	const addr = "alice@customer.example"
	code, stdout, stderr := runCLI(t, "", "ca", "issue", "-data", data, addr, "-out", out)
	if code != 0 {
		t.Fatalf("ca issue: %d %s", code, stderr)
	}
	m := regexp.MustCompile(`(?m)^PKCS#12 password \(shown once, not stored\): (\S+)$`).FindStringSubmatch(stdout)
	if m == nil || !strings.Contains(stdout, "registered certificate ") {
		t.Fatalf("ca issue printed:\n%s", stdout)
	}
	for name, perm := range map[string]os.FileMode{addr + ".p12": 0o600, addr + ".key": 0o600, addr + ".pem": 0o644} {
		fi, err := os.Stat(filepath.Join(out, name))
		if err != nil || fi.Mode().Perm() != perm {
			t.Fatalf("%s: %v, mode %v, want %v", name, err, fi, perm)
		}
	}
	id, err := keys.LoadPKCS12(filepath.Join(out, addr+".p12"), m[1])
	if err != nil {
		t.Fatal(err)
	}
	pemID, err := keys.LoadPEM(filepath.Join(out, addr+".pem"), filepath.Join(out, addr+".key"))
	if err != nil || !pemID.Certificate().Equal(id.Certificate()) || len(pemID.Chain) != 2 {
		t.Fatalf("ADDR.pem and ADDR.key: %v", err)
	}
	if bytes.Contains([]byte(stdout), []byte("PRIVATE KEY")) {
		t.Fatal("the key was printed")
	}
	st, err := openStore(data, StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	regs, err := st.Registrations(context.Background(), addr)
	if err != nil || len(regs) != 1 || regs[0].Fingerprint != keys.CertFingerprint(id.Certificate()) || regs[0].Method != store.MethodSMIME {
		t.Fatalf("registrations %+v, %v", regs, err)
	}
	d, err := recipientDirectory(context.Background(), keys.DataDir(data), st)
	if err != nil {
		t.Fatal(err)
	}
	if p := d.Check(id.Certificate()); p != nil {
		t.Fatalf("the recipient directory refuses the issued certificate: %v", p)
	}
	if !slicesHasEmail(id.Certificate(), addr) {
		t.Fatalf("certificate names %v", id.Certificate().EmailAddresses)
	}
}

// TestCAIssueRefuses: no -out, an address that cannot name a file, and a directory without the
// customer CA are refused, with nothing written.
func TestCAIssueRefuses(t *testing.T) {
	data, out := t.TempDir(), filepath.Join(t.TempDir(), "issued")
	for _, args := range [][]string{
		{"ca", "issue", "-data", data, "alice@customer.example"},
		{"ca", "issue", "-data", data, "../alice@customer.example", "-out", out},
		{"ca", "issue", "alice@customer.example", "-out", out},
	} {
		if code, _, _ := runCLI(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", args, code)
		}
	}
	if code, _, stderr := runCLI(t, "", "ca", "issue", "-data", data, "alice@customer.example", "-out", out); code != 1 || !strings.Contains(stderr, "customer-ca") {
		t.Errorf("without the customer CA: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("%s written: %v", out, err)
	}
}

func slicesHasEmail(c *x509.Certificate, addr string) bool {
	return len(c.EmailAddresses) == 1 && c.EmailAddresses[0] == addr
}
