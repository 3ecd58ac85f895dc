package interop

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// packages names the Debian package that provides each tool, for the skip message.
var packages = map[string]string{
	"openssl":         "openssl",
	"gpg":             "gnupg",
	"gpgsm":           "gpgsm",
	"sq":              "sq",
	"rnp":             "rnp",
	"rnpkeys":         "rnp",
	"cmsutil":         "libnss3-tools",
	"certutil":        "libnss3-tools",
	"pk12util":        "libnss3-tools",
	"swaks":           "swaks",
	"dkimverify":      "python3-dkim",
	"opendkim":        "opendkim",
	"softhsm2-util":   "softhsm2",
	"postfix":         "postfix",
	"systemd-analyze": "systemd",
	"chromium":        "chromium",
}

// Required reports whether SEALPOST_INTEROP=require is set.
func Required() bool { return os.Getenv("SEALPOST_INTEROP") == "require" }

// Tool returns the path of the named peer, or skips (fails when Required) if it is not installed.
// Besides PATH it looks in /usr/sbin and /sbin, where daemons such as opendkim and postfix live
// but which are not on every user's PATH.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if path, err := exec.LookPath(dir + "/" + name); err == nil {
			return path
		}
	}
	pkg := packages[name]
	if pkg == "" {
		pkg = name
	}
	if Required() {
		t.Fatalf("interop peer %q not installed (Debian package %s) and SEALPOST_INTEROP=require", name, pkg)
	}
	t.Skipf("interop peer %q not installed (apt-get install %s); set SEALPOST_INTEROP=require to fail instead", name, pkg)
	return ""
}

// Run runs the peer with args and stdin, and returns its stdout. It fails the test, showing stderr, when
// the peer exits non-zero.
func Run(t testing.TB, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	out, stderr, err := Try(t, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr)
	}
	return out
}

// Try runs the peer like Run but returns its error and stderr instead of failing, for tests that expect the
// peer to reject something.
func Try(t testing.TB, stdin []byte, name string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	cmd := exec.Command(Tool(t, name), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// GPGSMHome makes a throw-away GnuPG home for gpgsm (skipping, or failing under
// SEALPOST_INTEROP=require, without gpgsm and gpgconf), sets GNUPGHOME to it for the test, lets
// the agent take passphrases on the loopback (gpgsm --pinentry-mode loopback), and kills the
// agent and removes the home at the end. The path is short: the agent's socket path is limited.
func GPGSMHome(t *testing.T) string {
	t.Helper()
	Tool(t, "gpgsm")
	Tool(t, "gpgconf")
	home, err := os.MkdirTemp("", "gs")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GNUPGHOME", home)
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--kill", "all").Run()
		_ = os.RemoveAll(home)
	})
	if err := os.WriteFile(home+"/gpg-agent.conf", []byte("allow-loopback-pinentry\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

// WKSClient is GnuPG's gpg-wks-client, which Debian installs outside PATH; it skips or fails as
// Tool does when it is missing.
func WKSClient(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/lib/gnupg/gpg-wks-client", "/usr/libexec/gpg-wks-client"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return Tool(t, "gpg-wks-client")
}
