// Package softhsm gives tests and benchmarks a throw-away SoftHSM2 token, so the bank's keys can be
// used over PKCS#11 exactly as from a real HSM.
//
// New writes a softhsm2.conf whose token directory is in t.TempDir(), points SOFTHSM2_CONF at it
// with t.Setenv, and initialises a token there with softhsm2-util. Consequences callers must respect:
//
//   - t.Setenv panics in a test that called t.Parallel (or whose parent did): tests using a Token
//     cannot be parallel. Subtests of one test may share its Token.
//   - SoftHSM2 reads SOFTHSM2_CONF when the module is initialised, and the module is initialised once
//     per process while any crypto11 context on it is open. Close every io.Closer from
//     keys.LoadPKCS11 before the test ends (Token.Load does it with t.Cleanup), or the next test's
//     token will not be found.
//
// When softhsm2-util (Debian package softhsm2) or the SoftHSM2 library is missing, or the test binary
// was built without cgo, New skips the test, or fails it when SEALPOST_INTEROP=require.
package softhsm

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
)

// DefaultLabel is the label of the token New initialises.
const DefaultLabel = "sealpost-test"

// Token is an initialised SoftHSM2 token in a temporary directory.
type Token struct {
	Label   string // the token's label
	PIN     string // the user PIN, random per token
	PINFile string // a 0600 file holding PIN, for PKCS11Config.PINFile
	Module  string // the SoftHSM2 library
	Dir     string // the temporary directory holding the configuration, tokens and files
	tb      testing.TB
	n       int
}

// New initialises a fresh token labelled DefaultLabel; see the package comment for its constraints.
func New(tb testing.TB) *Token {
	tb.Helper()
	if !cgoEnabled {
		unavailable(tb, "PKCS#11 needs cgo", "build with CGO_ENABLED=1 and gcc")
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		unavailable(tb, "softhsm2-util not installed", "apt-get install softhsm2")
	}
	module, err := keys.DefaultPKCS11Module()
	if err != nil {
		unavailable(tb, "the SoftHSM2 PKCS#11 library not installed", "apt-get install softhsm2")
	}
	dir := tb.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		tb.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	write(tb, conf, []byte("directories.tokendir = "+tokens+"\n"+
		"objectstore.backend = file\n"+
		"log.level = ERROR\n"+
		"slots.removable = false\n"))
	tb.Setenv("SOFTHSM2_CONF", conf)

	tk := &Token{Label: DefaultLabel, PIN: randomHex(tb, 8), Module: module, Dir: dir, tb: tb}
	tk.PINFile = filepath.Join(dir, "user.pin")
	write(tb, tk.PINFile, []byte(tk.PIN+"\n"))
	interop.Run(tb, nil, "softhsm2-util", "--init-token", "--free", "--label", tk.Label,
		"--pin", tk.PIN, "--so-pin", randomHex(tb, 8))
	return tk
}

// ImportKey imports key (*rsa.PrivateKey or *ecdsa.PrivateKey) as a key pair, private and public
// objects, with the given CKA_LABEL and CKA_ID, and returns a configuration naming it by both. Its
// Certificate is empty.
func (tk *Token) ImportKey(key crypto.Signer, label string, id []byte) keys.PKCS11Config {
	tk.tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tk.tb.Fatalf("softhsm: %v", err)
	}
	tk.n++
	file := filepath.Join(tk.Dir, fmt.Sprintf("key%d.pk8", tk.n))
	write(tk.tb, file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	interop.Run(tk.tb, nil, "softhsm2-util", "--import", file, "--token", tk.Label,
		"--label", label, "--id", hex.EncodeToString(id), "--pin", tk.PIN)
	if err := os.Remove(file); err != nil {
		tk.tb.Fatal(err)
	}
	return keys.PKCS11Config{
		Module:     tk.Module,
		TokenLabel: tk.Label,
		KeyLabel:   label,
		KeyID:      hex.EncodeToString(id),
		PINFile:    tk.PINFile,
	}
}

// ImportIdentity imports id's private key like ImportKey and writes its chain to a PEM file named in
// the returned configuration's Certificate.
func (tk *Token) ImportIdentity(id *keys.Identity, label string, keyID []byte) keys.PKCS11Config {
	tk.tb.Helper()
	cfg := tk.ImportKey(id.Signer, label, keyID)
	cfg.Certificate = filepath.Join(tk.Dir, fmt.Sprintf("chain%d.pem", tk.n))
	write(tk.tb, cfg.Certificate, keys.EncodeCertificates(id.Chain...))
	return cfg
}

// Load is keys.LoadPKCS11 that fails the test on error and closes the context when the test ends.
func (tk *Token) Load(cfg keys.PKCS11Config) *keys.Identity {
	tk.tb.Helper()
	id, closer, err := keys.LoadPKCS11(cfg)
	if err != nil {
		tk.tb.Fatalf("softhsm: LoadPKCS11: %v", err)
	}
	tk.tb.Cleanup(func() {
		if err := closer.Close(); err != nil {
			tk.tb.Errorf("softhsm: close PKCS#11 context: %v", err)
		}
	})
	return id
}

// unavailable skips, or fails under SEALPOST_INTEROP=require, as interop.Tool does for a missing
// peer.
func unavailable(tb testing.TB, why, fix string) {
	tb.Helper()
	if interop.Required() {
		tb.Fatalf("%s (%s) and SEALPOST_INTEROP=require", why, fix)
	}
	tb.Skipf("%s (%s); set SEALPOST_INTEROP=require to fail instead", why, fix)
}

func randomHex(tb testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func write(tb testing.TB, name string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}
