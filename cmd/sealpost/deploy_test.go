package main

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
)

const (
	deployConfig = "../../deploy/sealpost.json"
	deployUnit   = "../../deploy/sealpost.service"
)

// TestDeployConfigLoads: the example production configuration loads with serve's own loader, and
// keeps what makes it the hardened one: listeners on loopback, submission trusted from loopback
// only, delivery over required TLS with the password in a file, external TSAs, and nothing written
// outside the directory the systemd unit makes writable.
func TestDeployConfigLoads(t *testing.T) {
	cfg, err := loadConfig(deployConfig, "")
	if err != nil && !onlyMissingDeployFiles(err) {
		t.Fatalf("deploy/sealpost.json: %v", err)
	}
	for name, addr := range map[string]string{"smtp.addr": cfg.SMTP.Addr, "inbound.listener.addr": cfg.Inbound.Listener.Addr} {
		host, _, err := net.SplitHostPort(addr)
		if ip, perr := netip.ParseAddr(host); err != nil || perr != nil || !ip.IsLoopback() {
			t.Errorf("%s = %q, want a loopback address", name, addr)
		}
	}
	if len(cfg.SMTP.AllowedNetworks) == 0 {
		t.Error("smtp.allowed_networks is empty; want loopback named explicitly")
	}
	for _, n := range cfg.SMTP.AllowedNetworks {
		if p, err := netip.ParsePrefix(n); err != nil || !p.Addr().IsLoopback() {
			t.Errorf("smtp.allowed_networks holds %q, want loopback only", n)
		}
	}
	h := cfg.Delivery.Smarthost
	if h == nil {
		t.Fatal("delivery: want a smarthost")
	}
	if h.TLS != "required" || h.PasswordEnv != "" || !strings.HasPrefix(h.PasswordFile, "/etc/sealpost/") {
		t.Errorf("delivery.smarthost: tls %q, password_file %q, password_env %q; want required TLS and a password file under /etc/sealpost", h.TLS, h.PasswordFile, h.PasswordEnv)
	}
	if len(cfg.TSA.URLs) == 0 {
		t.Error("tsa.urls: want external TSAs in the production example")
	}

	unit := readUnit(t)
	if want := "/usr/local/bin/sealpost serve -config /etc/sealpost/sealpost.json"; !strings.Contains(unit["ExecStart"], want) {
		t.Errorf("ExecStart=%s, want %q", unit["ExecStart"], want)
	}
	writable := strings.Fields(unit["ReadWritePaths"])
	for name, p := range map[string]string{"data": cfg.Data, "delivery.maildir": cfg.Delivery.Maildir, "inbound.delivery.maildir": cfg.Inbound.Delivery.Maildir} {
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) || !underAny(p, writable) {
			t.Errorf("%s = %q is not under the unit's ReadWritePaths %q", name, p, writable)
		}
	}
}

// onlyMissingDeployFiles reports whether err (possibly several joined) says nothing but that files
// the example names under /etc/sealpost or /var/lib/sealpost do not exist on this machine.
func onlyMissingDeployFiles(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !onlyMissingDeployFiles(e) {
				return false
			}
		}
		return true
	}
	var pe *fs.PathError
	return errors.As(err, &pe) && errors.Is(err, fs.ErrNotExist) &&
		underAny(pe.Path, []string{"/etc/sealpost", "/var/lib/sealpost"})
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if rel, err := filepath.Rel(d, p); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return true
		}
	}
	return false
}

// readUnit returns the unit's settings (the last value of each key).
func readUnit(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(deployUnit)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out
}

// TestDeployUnitVerifies runs systemd-analyze verify on the unit, with its ExecStart pointed at a
// stand-in executable (sealpost is not installed here; verify checks that the binary exists).
func TestDeployUnitVerifies(t *testing.T) {
	interop.Tool(t, "systemd-analyze")
	b, err := os.ReadFile(deployUnit)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stand := filepath.Join(dir, "sealpost")
	if err := os.WriteFile(stand, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit := strings.ReplaceAll(string(b), "ExecStart=/usr/local/bin/sealpost ", "ExecStart="+stand+" ")
	if unit == string(b) {
		t.Fatal("the unit's ExecStart does not run /usr/local/bin/sealpost")
	}
	file := filepath.Join(dir, "sealpost.service")
	os.WriteFile(file, []byte(unit), 0o644)
	_, stderr, err := interop.Try(t, nil, "systemd-analyze", "verify", file)
	if err != nil || len(stderr) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, stderr)
	}
}
