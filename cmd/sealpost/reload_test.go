package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/logtest"
	"github.com/sealpost/sealpost/keys"
)

// waitFor polls cond until it holds; the limit only stops a broken test from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReloadOnImport: a certificate imported while the gateway runs is used without a restart: keys
// import writes it to the store, whose change feed reloads the directory serve hands the gateway.
func TestReloadOnImport(t *testing.T) {
	log, logs := logtest.New()
	inst, cfg, _, _ := testInstanceLogging(t, nil, log)
	if res := submit(t, inst, "statements@bank.example", []string{"bob@example.net"}, e2eStatement); res.Refused["bob@example.net"] == "" {
		t.Fatalf("bob accepted before he has a certificate: %+v", res)
	}
	bob := newDevCustomer(t, cfg, "bob@example.net")
	before, _ := os.ReadDir(filepath.Join(cfg.Data, "recipients"))
	f := filepath.Join(t.TempDir(), "bob.pem")
	os.WriteFile(f, keys.EncodeCertificates(bob.Certificate()), 0o600)
	if code, _, errOut := runCLI(t, "", "keys", "import", "-data", cfg.Data, f); code != 0 {
		t.Fatal(errOut)
	}
	if after, _ := os.ReadDir(filepath.Join(cfg.Data, "recipients")); len(after) != len(before) {
		t.Fatalf("keys import wrote under recipients/ (%d entries, %d before): it writes to the store", len(after), len(before))
	}
	waitFor(t, "the reload", func() bool { return strings.Contains(logs.String(), "trigger=\"store change\"") })
	if res := submit(t, inst, "statements@bank.example", []string{"bob@example.net"}, e2eStatement); res.Err != nil || len(res.Refused) != 0 {
		t.Fatalf("bob after reload: %+v", res)
	}
	if code, _, errOut := runCLI(t, "", "keys", "remove", "-data", cfg.Data, "bob@example.net"); code != 0 {
		t.Fatal(errOut)
	}
	waitFor(t, "bob refused again", func() bool {
		return submit(t, inst, "statements@bank.example", []string{"bob@example.net"}, e2eStatement).Refused["bob@example.net"] != ""
	})
}

// TestReloadOnFileChange: recipients/ stays an import path: a certificate copied there while the
// gateway runs is used without a restart.
func TestReloadOnFileChange(t *testing.T) {
	log, logs := logtest.New()
	inst, cfg, _, _ := testInstanceLogging(t, nil, log)
	bob := newDevCustomer(t, cfg, "bob@example.net")
	if err := os.WriteFile(filepath.Join(cfg.Data, "recipients", "bob.pem"), keys.EncodeCertificates(bob.Certificate()), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload", func() bool { return strings.Contains(logs.String(), "trigger=\"file change\"") })
	if res := submit(t, inst, "statements@bank.example", []string{"bob@example.net"}, e2eStatement); res.Err != nil || len(res.Refused) != 0 {
		t.Fatalf("bob after reload: %+v", res)
	}
}

// newDevCustomer issues a customer certificate from the data directory's development CA.
func newDevCustomer(t *testing.T, cfg Config, addr string) *keys.Identity {
	t.Helper()
	ca, err := keys.DataDir(cfg.Data).Identity("ca")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.NewDevCustomer(addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReloadKeepsOldStateOnBadFile: a broken file in recipients/ is refused as a whole; the gateway
// keeps serving with what it had and says why; once the file is fixed, the reload goes through.
// keys' TestWatcherKeepsOldDirectoryOnBadFile checks the watcher alone; this one, the gateway.
func TestReloadKeepsOldStateOnBadFile(t *testing.T) {
	log, logs := logtest.New()
	inst, cfg, _, _ := testInstanceLogging(t, nil, log)
	bad := filepath.Join(cfg.Data, "recipients", "broken.pem")
	if err := os.WriteFile(bad, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := inst.watcher.Reload(context.Background(), "request")
	if err == nil || !strings.Contains(logs.String(), "previous one stays in use") || !strings.Contains(logs.String(), "broken.pem") {
		t.Fatalf("bad file: %v\n%s", err, logs)
	}
	if res := submit(t, inst, "statements@bank.example", []string{"alice@example.com"}, e2eStatement); res.Err != nil {
		t.Fatalf("alice after a refused reload: %+v", res)
	}
	os.Remove(bad)
	if err := inst.watcher.Reload(context.Background(), "request"); err != nil {
		t.Fatal(err)
	}
}

// TestSIGHUPReloads: the built binary reloads its directory on SIGHUP and keeps serving.
func TestSIGHUPReloads(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	tmp := t.TempDir()
	bin := testBinary(t)
	addr := freeAddr(t)
	cfgFile := filepath.Join(tmp, "config.json")
	os.WriteFile(cfgFile, []byte(`{"data": "`+filepath.Join(tmp, "data")+`", "identities": "development", "smtp": {"addr": "`+addr+`"}, "inbound": {"enabled": false}, "ops": {"enabled": false}, "api": {"enabled": false}}`), 0o600)
	cmd := exec.Command(bin, "serve", "-config", cfgFile)
	stderr := &logtest.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, "the listener", func() bool { return strings.Contains(stderr.String(), "sealpost serving") })
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGHUP reload", func() bool { return strings.Contains(stderr.String(), "trigger=SIGHUP") })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGHUP and SIGTERM: %v\n%s", err, stderr)
	}
}
