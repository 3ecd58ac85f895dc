package main

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"unicode"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
)

// TestHelpEveryCommand: every command and subcommand answers -h and `sealpost help …` with exit 0,
// its usage line on stdout and nothing on stderr; a flag its synopsis names is one it parses.
func TestHelpEveryCommand(t *testing.T) {
	flagLine := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)
	synopsisFlag := regexp.MustCompile(`(?:^|[\s\[|])-([a-z][a-z0-9-]*)`)
	for _, c := range commandTable() {
		words := strings.Fields(c.name)
		t.Run(strings.Join(words, "_"), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", append([]string{"help"}, words...)...)
			if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "usage: sealpost "+c.name+" ") {
				t.Fatalf("help %s: code %d, stderr %q, stdout %q", c.name, code, stderr, stdout)
			}
			if c.name == "help" {
				return
			}
			code, dashH, stderr := runCLI(t, "", append(words, "-h")...)
			if code != 0 || stderr != "" || dashH != stdout {
				t.Fatalf("%s -h: code %d, stderr %q; differs from help %s:\n%s\n---\n%s", c.name, code, stderr, c.name, dashH, stdout)
			}
			if subs := subcommands(c.name); len(subs) > 0 {
				for _, s := range subs {
					if !strings.Contains(stdout, strings.TrimPrefix(s.name, c.name+" ")+" ") {
						t.Errorf("help %s does not list %s", c.name, s.name)
					}
				}
				return
			}
			parsed := map[string]bool{}
			for _, m := range flagLine.FindAllStringSubmatch(stdout, -1) {
				parsed[m[1]] = true
			}
			for _, m := range synopsisFlag.FindAllStringSubmatch(c.synopsis, -1) {
				if !parsed[m[1]] {
					t.Errorf("%s: the synopsis names -%s, which the command does not parse (flags: %v)", c.name, m[1], parsed)
				}
			}
		})
	}
	if code, stdout, _ := runCLI(t, "", "help"); code != 0 || !strings.Contains(stdout, "keys") || !strings.Contains(stdout, "quarantine") {
		t.Fatalf("help: %d %q", code, stdout)
	}
	for _, args := range [][]string{{"help", "nonsense"}, {"help", "keys", "nonsense"}, {"keys", "nonsense"}} {
		if code, stdout, stderr := runCLI(t, "", args...); code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: code %d, stdout %q, stderr %q; want 2, nothing, one line", args, code, stdout, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCLI(t, "", "version")
	if code != 0 || !strings.HasPrefix(stdout, "sealpost ") || !strings.Contains(stdout, "revision ") || !strings.Contains(stdout, runtime.Version()) {
		t.Fatalf("version: %d %q", code, stdout)
	}
}

// TestFlagsAfterArguments: flags are accepted after positional arguments in every command, and
// "--" ends the flags.
func TestFlagsAfterArguments(t *testing.T) {
	data := initData(t)
	msg := filepath.Join(t.TempDir(), "m.eml")
	os.WriteFile(msg, []byte("From: alice@example.com\r\nTo: support@bank.example\r\nSubject: hi\r\n\r\nunsigned\r\n"), 0o600)
	tests := []struct {
		name string
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{"KeysExport", []string{"keys", "export", "ca", "-data", data}, 0, "BEGIN CERTIFICATE"},
		{"QuarantineShow", []string{"quarantine", "show", "NOPE", "-data", data}, 1, "not found"},
		{"VerifyFile", []string{"verify", msg, "-data", data}, 1, "verdict:"},
		{"TimestampExtract", []string{"timestamp", "extract", msg, "-out", t.TempDir()}, 1, "malformed message"},
		{"DashDashEndsFlags", []string{"keys", "export", "-data", data, "--", "-root"}, 2, "keys export ca|"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", tt.args...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.out) {
				t.Fatalf("%v: code %d (want %d), stdout %q, stderr %q (want %q)", tt.args, code, tt.code, stdout, stderr, tt.out)
			}
		})
	}
}

// TestVerifyStdin: `verify -` reads the message from standard input and judges it as the file.
func TestVerifyStdin(t *testing.T) {
	data := initData(t)
	msg := "From: alice@example.com\r\nTo: support@bank.example\r\nSubject: hi\r\n\r\nunsigned\r\n"
	f := filepath.Join(t.TempDir(), "m.eml")
	os.WriteFile(f, []byte(msg), 0o600)
	codeFile, fromFile, _ := runCLI(t, "", "verify", "-data", data, f)
	code, fromStdin, stderr := runCLI(t, msg, "verify", "-data", data, "-")
	if code != codeFile || fromStdin != fromFile || !strings.Contains(fromStdin, "verdict: unsigned") {
		t.Fatalf("verify -: code %d %q %q; from the file: code %d %q", code, fromStdin, stderr, codeFile, fromFile)
	}
}

// TestErrorsDoNotEchoInput: binary garbage on stdin gives one short, printable error line, and a
// missing data directory is named as such.
func TestErrorsDoNotEchoInput(t *testing.T) {
	data := initData(t)
	garbage := make([]byte, 4096)
	rand.Read(garbage)
	for _, in := range []string{string(garbage), "From: statements@bank.example\r\n" + strings.Repeat("\x01\xff", 3000) + "\r\n\r\nx"} {
		code, stdout, stderr := runCLI(t, in, "protect", "-data", data, "-from", "statements@bank.example", "-sign-only")
		if code != 1 || stdout != "" || len(stderr) > 300 || strings.Count(stderr, "\n") != 1 {
			t.Fatalf("protect with garbage: code %d, %d bytes out, stderr (%d bytes) %q", code, len(stdout), len(stderr), stderr)
		}
		for _, r := range strings.TrimSuffix(stderr, "\n") {
			if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
				t.Fatalf("stderr holds an unprintable %U: %q", r, stderr)
			}
		}
	}
	missing := filepath.Join(t.TempDir(), "nonexistent")
	code, _, stderr := runCLI(t, cliMessage, "protect", "-data", missing, "-from", "statements@bank.example", "-to", "alice@example.com")
	if code != 1 || !strings.Contains(stderr, "data directory "+missing+" does not exist") || strings.Contains(stderr, "recipient") {
		t.Fatalf("protect -data missing: %d %q", code, stderr)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("protect created the missing data directory")
	}
	if code, _, stderr := runCLI(t, "", "keys", "list", "-data", missing); code != 1 || !strings.Contains(stderr, "does not exist") {
		t.Fatalf("keys list -data missing: %d %q", code, stderr)
	}
}

// TestKeysListAndRemove: two certificates for one address are told apart by fingerprint and state;
// keys remove unregisters one (by fingerprint) or all of an address's keys.
func TestKeysListAndRemove(t *testing.T) {
	data := initData(t)
	ca, err := keys.DataDir(data).Identity("ca")
	if err != nil {
		t.Fatal(err)
	}
	var fps []string
	var files []string
	for range 2 {
		alice, err := ca.NewDevCustomer("alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "alice.pem")
		os.WriteFile(f, keys.EncodeCertificates(alice.Certificate()), 0o644)
		files = append(files, f)
		fps = append(fps, keys.CertFingerprint(alice.Certificate()))
	}
	if code, _, stderr := runCLI(t, "", append([]string{"keys", "import", "-data", data}, files...)...); code != 0 {
		t.Fatalf("import: %s", stderr)
	}
	_, list, _ := runCLI(t, "", "keys", "list", "-data", data)
	for _, fp := range fps {
		if !regexp.MustCompile(`(?m)^alice@example\.com +S/MIME +registered +` + fp[:16] + ` +registered, usable `).MatchString(list) {
			t.Fatalf("keys list does not show %s as registered and usable:\n%s", fp[:16], list)
		}
	}

	if code, _, stderr := runCLI(t, "", "keys", "remove", "-data", data, "alice@example.com", "00000000000000000000"); code != 1 || !strings.Contains(stderr, "no key with fingerprint") {
		t.Fatalf("remove unknown fingerprint: %d %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "", "keys", "remove", "-data", data, "alice@example.com", fps[0][:8]); code != 2 {
		t.Fatalf("remove with 8 digits: %d %q, want a usage error", code, stderr)
	}
	code, stdout, stderr := runCLI(t, "", "keys", "remove", "alice@example.com", strings.ToLower(fps[0][:20]), "-data", data)
	if code != 0 || !strings.Contains(stdout, "removed S/MIME "+fps[0][:16]) {
		t.Fatalf("remove one: %d %q %q", code, stdout, stderr)
	}
	_, list, _ = runCLI(t, "", "keys", "list", "-data", data)
	if strings.Contains(list, fps[0][:16]) || !strings.Contains(list, fps[1][:16]) {
		t.Fatalf("after removing one of two:\n%s", list)
	}
	if code, stdout, stderr := runCLI(t, "", "keys", "remove", "-data", data, "alice@example.com"); code != 0 || !strings.Contains(stdout, fps[1][:16]) {
		t.Fatalf("remove all: %d %q %q", code, stdout, stderr)
	}
	if _, list, _ = runCLI(t, "", "keys", "list", "-data", data); strings.Contains(list, "alice@") {
		t.Fatalf("alice still listed:\n%s", list)
	}
	if code, _, stderr := runCLI(t, "", "keys", "remove", "-data", data, "alice@example.com"); code != 1 || !strings.Contains(stderr, "no registered key") {
		t.Fatalf("remove again: %d %q", code, stderr)
	}
}

// initData makes a data directory with development identities.
func initData(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	if code, _, stderr := runCLI(t, "", "keys", "init", "-data", data); code != 0 {
		t.Fatalf("keys init: %s", stderr)
	}
	return data
}

// TestDemoKeepsData: demo -data DIR keeps the customers' keys and prints, for each delivered
// message, a command that opens it with openssl or gpg; the test runs each one.
func TestDemoKeepsData(t *testing.T) {
	interop.Tool(t, "openssl")
	interop.Tool(t, "gpg")
	data := filepath.Join(t.TempDir(), "demo")
	code, stdout, stderr := runCLI(t, "", "demo", "-data", data)
	if code != 0 {
		t.Fatalf("demo -data: %s", stderr)
	}
	var commands []string
	for _, l := range strings.Split(stdout, "\n") {
		if _, c, ok := strings.Cut(l, "open it: "); ok {
			commands = append(commands, c)
		}
	}
	want := [][]string{
		{"your balance on 22 November", "CMS Verification successful"},
		{"Your one-time code is 493817", "Good signature from \"sealpost bank signer"},
		{"your card is on its way", "CMS Verification successful"},
	}
	if len(commands) != len(want) || strings.Contains(stdout, "removed now") {
		t.Fatalf("want %d open commands and no removal:\n%s", len(want), stdout)
	}
	for _, c := range commands {
		out, err := exec.Command("bash", "-o", "pipefail", "-c", c).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c, err, out)
		}
		matched := false
		for _, w := range want {
			if strings.Contains(string(out), w[0]) && strings.Contains(string(out), w[1]) {
				matched = true
			}
		}
		if !matched {
			t.Fatalf("%s opened no expected message:\n%s", c, out)
		}
	}
}
