package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// generator holds where the corpus lives and the temporary state (files fed
// to tools, GnuPG homes) removed when it is done.
type generator struct {
	dir      string // testdata/inbound
	tmp      string // scratch directory
	n        int    // scratch file counter
	gpgHomes []string
}

func (g *generator) key(name string) string { return filepath.Join(g.dir, "keys", name) }

func (g *generator) cleanup() {
	for _, home := range g.gpgHomes {
		// Stops the gpg-agent this home started; nothing else is touched.
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
	}
	_ = os.RemoveAll(g.tmp)
}

// scratch writes data to a new file in the scratch directory.
func (g *generator) scratch(data []byte) string {
	g.n++
	name := filepath.Join(g.tmp, "f"+strconv.Itoa(g.n))
	if err := os.WriteFile(name, data, 0o600); err != nil {
		failf("scratch file: %v", err)
	}
	return name
}

// try runs a tool and returns its standard output, or an error that carries
// its standard error.
func try(stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.Bytes(), &toolError{cmd: name + " " + strings.Join(args, " "), err: err, stderr: stderr.String()}
	}
	return out.Bytes(), nil
}

// must runs a tool that has to succeed.
func must(stdin []byte, name string, args ...string) []byte {
	out, err := try(stdin, name, args...)
	if err != nil {
		failf("%v", err)
	}
	return out
}

type toolError struct {
	cmd, stderr string
	err         error
}

func (e *toolError) Error() string {
	return e.cmd + ": " + e.err.Error() + ": " + strings.TrimSpace(e.stderr)
}

func (e *toolError) Unwrap() error { return e.err }

// crlf turns every line ending into CRLF. Tools write their own lines (MIME
// headers, base64, armor) with LF; content they copy is already CRLF.
func crlf(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// --- S/MIME with openssl ---

// cmsSign signs entity (the canonical CRLF form, signed as is: -binary) as
// signer and returns openssl's S/MIME output: multipart/signed, or
// application/pkcs7-mime signed-data with -nodetach.
func (g *generator) cmsSign(entity []byte, signer, md string, extra ...string) []byte {
	args := []string{"cms", "-sign", "-binary", "-crlfeol", "-md", md,
		"-signer", g.key(signer + ".pem"), "-inkey", g.key(signer + ".key")}
	return crlf(must(entity, "openssl", append(args, extra...)...))
}

// cmsSignDER is cmsSign with DER output (opaque signed-data).
func (g *generator) cmsSignDER(entity []byte, signer string) []byte {
	return must(entity, "openssl", "cms", "-sign", "-nodetach", "-binary", "-md", "sha256", "-outform", "DER",
		"-signer", g.key(signer+".pem"), "-inkey", g.key(signer+".key"))
}

// cmsEncrypt encrypts entity to the bank's certificate and returns openssl's
// S/MIME output (application/pkcs7-mime enveloped-data or authEnveloped-data).
func (g *generator) cmsEncrypt(entity []byte, cipher string, extra ...string) []byte {
	return g.cmsEncryptTo(entity, "bank", cipher, extra...)
}

// cmsEncryptTo is cmsEncrypt to keys/<who>.pem.
func (g *generator) cmsEncryptTo(entity []byte, who, cipher string, extra ...string) []byte {
	args := append([]string{"cms", "-encrypt", "-binary", "-crlfeol", "-" + cipher}, extra...)
	return crlf(must(entity, "openssl", append(args, g.key(who+".pem"))...))
}

// cmsEncryptDER is cmsEncrypt with DER output, for crafting.
func (g *generator) cmsEncryptDER(entity []byte, cipher string) []byte {
	return must(entity, "openssl", "cms", "-encrypt", "-binary", "-outform", "DER", "-"+cipher, g.key("bank.pem"))
}

// --- OpenPGP with gpg ---

// gpgHome makes a fresh GnuPG home holding the given armored keys.
func (g *generator) gpgHome(keys ...string) string {
	home, err := os.MkdirTemp(g.tmp, "gnupg-")
	if err != nil {
		failf("gpg home: %v", err)
	}
	g.gpgHomes = append(g.gpgHomes, home)
	for _, k := range keys {
		must(nil, "gpg", gpgArgs(home, "--import", g.key(k))...)
	}
	return home
}

// gpgArgs is the common prefix: a non-interactive gpg on home that trusts the
// keys it was given (trust is not what the corpus tests).
func gpgArgs(home string, args ...string) []string {
	return append([]string{"--homedir", home, "--batch", "--no-tty", "--yes", "--trust-model", "always",
		"--pinentry-mode", "loopback", "--passphrase", ""}, args...)
}

// gpg runs gpg on home.
func gpg(home string, stdin []byte, args ...string) []byte {
	return must(stdin, "gpg", gpgArgs(home, args...)...)
}
