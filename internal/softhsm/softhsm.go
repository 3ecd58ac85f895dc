package softhsm

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/sealpost/sealpost/keys"
)

// ErrUnavailable: softhsm2-util or the SoftHSM2 library is not installed.
var ErrUnavailable = errors.New("SoftHSM2 not installed (apt-get install softhsm2)")

// Token is an initialised SoftHSM2 token in its own directory.
type Token struct {
	Label   string // the token's label
	PIN     string // the user PIN, random per token
	PINFile string // a 0600 file holding PIN, for PKCS11Config.PINFile
	Module  string // the SoftHSM2 library
	Dir     string // the directory holding the configuration, tokens and files
	Conf    string // the softhsm2.conf to put in SOFTHSM2_CONF
	n       int
}

// Create initialises a token labelled label in dir (which must exist).
func Create(dir, label string) (*Token, error) {
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		return nil, ErrUnavailable
	}
	module, err := keys.DefaultPKCS11Module()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		return nil, err
	}
	tk := &Token{Label: label, PIN: randomHex(8), Module: module, Dir: dir,
		Conf: filepath.Join(dir, "softhsm2.conf"), PINFile: filepath.Join(dir, "user.pin")}
	if err := os.WriteFile(tk.Conf, []byte("directories.tokendir = "+tokens+"\n"+
		"objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(tk.PINFile, []byte(tk.PIN+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := tk.util("--init-token", "--free", "--label", label, "--pin", tk.PIN, "--so-pin", randomHex(8)); err != nil {
		return nil, err
	}
	return tk, nil
}

// util runs softhsm2-util on this token's configuration.
func (tk *Token) util(args ...string) error {
	cmd := exec.Command("softhsm2-util", args...)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+tk.Conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("softhsm2-util %s: %v: %s", args[0], err, bytes.TrimSpace(out))
	}
	return nil
}

// Import imports key (*rsa.PrivateKey or *ecdsa.PrivateKey) as a key pair with the given CKA_LABEL
// and CKA_ID, and returns a configuration naming it by both. Its Certificate is empty.
func (tk *Token) Import(key crypto.Signer, label string, id []byte) (keys.PKCS11Config, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return keys.PKCS11Config{}, err
	}
	tk.n++
	file := filepath.Join(tk.Dir, fmt.Sprintf("key%d.pk8", tk.n))
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return keys.PKCS11Config{}, err
	}
	err = tk.util("--import", file, "--token", tk.Label, "--label", label, "--id", hex.EncodeToString(id), "--pin", tk.PIN)
	if rerr := os.Remove(file); err == nil {
		err = rerr
	}
	if err != nil {
		return keys.PKCS11Config{}, err
	}
	return keys.PKCS11Config{Module: tk.Module, TokenLabel: tk.Label, KeyLabel: label, KeyID: hex.EncodeToString(id), PINFile: tk.PINFile}, nil
}

// ImportIdentity imports id's private key like Import and writes its chain to a PEM file named in
// the returned configuration's Certificate.
func (tk *Token) ImportIdentity(id *keys.Identity, label string, keyID []byte) (keys.PKCS11Config, error) {
	cfg, err := tk.Import(id.Signer, label, keyID)
	if err != nil {
		return cfg, err
	}
	cfg.Certificate = filepath.Join(tk.Dir, fmt.Sprintf("chain%d.pem", tk.n))
	return cfg, os.WriteFile(cfg.Certificate, keys.EncodeCertificates(id.Chain...), 0o600)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
