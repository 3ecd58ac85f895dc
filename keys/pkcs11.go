package keys

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sealpost/sealpost/config"
)

// Reasons LoadPKCS11 fails. Each error it returns wraps one of these, ErrKeyMismatch (the certificate
// is not the HSM key's), ErrUnsupportedKey, or the error of an unreadable
// certificate or PIN file (errors.Is(err, fs.ErrNotExist) for a missing one).
var (
	ErrPKCS11Config  = errors.New("invalid PKCS#11 configuration")
	ErrPKCS11Module  = errors.New("PKCS#11 module missing or not loadable")
	ErrTokenNotFound = errors.New("PKCS#11 token not found")
	ErrPINIncorrect  = errors.New("PKCS#11 PIN incorrect")
	ErrPINLocked     = errors.New("PKCS#11 PIN locked")
	ErrKeyNotFound   = errors.New("key pair not found on PKCS#11 token")
	ErrKeyAmbiguous  = errors.New("several key pairs on the PKCS#11 token match")
)

// pkcs11ModuleCandidates are tried in order when PKCS11Config.Module is empty: where Debian's
// softhsm2 package puts SoftHSM2 (the first is a symlink to the second).
var pkcs11ModuleCandidates = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
}

// PKCS11Config names one of the bank's key pairs on a PKCS#11 token (an HSM) and the certificate
// chain that goes with it. The key never leaves the token; the PIN comes from a file or an
// environment variable, never from the configuration itself.
type PKCS11Config struct {
	// Module is the path of the PKCS#11 library. Empty means SoftHSM2 where Debian installs it: the
	// first existing of /usr/lib/softhsm/libsofthsm2.so and
	// /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so.
	Module string `json:"module,omitempty"`
	// TokenLabel selects the token (CKA_LABEL of the token, as softhsm2-util --show-slots lists it).
	TokenLabel string `json:"token_label"`
	// KeyLabel and KeyID (hex) select the key pair by CKA_LABEL and CKA_ID; at least one is needed,
	// and when both are set both must match. Exactly one key pair may match.
	KeyLabel string `json:"key_label,omitempty"`
	KeyID    string `json:"key_id,omitempty"`
	// PINFile or PINEnv (exactly one) holds the user PIN; see Secret.
	PINFile string `json:"pin_file,omitempty"`
	PINEnv  string `json:"pin_env,omitempty"`
	// Certificate is a PEM file with the chain, leaf first; the leaf's key must be the HSM key's.
	Certificate string `json:"certificate"`
}

// PIN returns where the user PIN comes from.
func (c PKCS11Config) PIN() Secret { return Secret{File: c.PINFile, Env: c.PINEnv} }

// Validate checks that the configuration is complete; it touches no file. It reports every
// problem, each a *config.FieldError named by its key (token_label, key_label, key_id, pin_file,
// certificate) that wraps ErrPKCS11Config.
func (c PKCS11Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &config.FieldError{Path: path, Problem: fmt.Sprintf(format, args...), Err: ErrPKCS11Config})
	}
	if c.TokenLabel == "" {
		bad("token_label", "required: the label of the token (softhsm2-util --show-slots lists them)")
	}
	if c.KeyLabel == "" && c.KeyID == "" {
		bad("key_label", "set key_label or key_id (or both) to select the key pair")
	}
	if c.KeyID != "" {
		if _, err := hex.DecodeString(c.KeyID); err != nil {
			bad("key_id", "%q is not hex", c.KeyID)
		}
	}
	if (c.PINFile == "") == (c.PINEnv == "") {
		bad("pin_file", "set exactly one of pin_file and pin_env")
	}
	if c.Certificate == "" {
		bad("certificate", "required: the PEM file of the key's certificate chain")
	}
	return errors.Join(errs...)
}

// DefaultPKCS11Module returns the first existing SoftHSM2 library of the places Debian installs it,
// the module used when PKCS11Config.Module is empty.
func DefaultPKCS11Module() (string, error) {
	for _, p := range pkcs11ModuleCandidates {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no module configured and SoftHSM2 not found at %s (apt-get install softhsm2)",
		ErrPKCS11Module, strings.Join(pkcs11ModuleCandidates, " or "))
}

// LoadPKCS11 logs into the token cfg names and returns the identity of the key pair there, RSA or
// ECDSA, with the certificate chain from cfg.Certificate. For an RSA key that the token allows to
// decrypt, the identity's Decrypter works, with the implicit rejection smime.Decrypt relies on (see
// rsaDecrypter). The Closer releases the crypto11 context (and the module, when no other context
// uses it); the identity is unusable after it. On error nothing is left open.
//
// PKCS#11 needs cgo (the module is dlopen'ed): in a build with CGO_ENABLED=0, LoadPKCS11 fails
// with ErrPKCS11Module and the rest of the package works.
//
// A PKCS#11 module is loaded once per process and shared by every LoadPKCS11 of that module, and
// the login state is per token: while one identity of a token is open, a second LoadPKCS11 of the
// same token succeeds whatever its PIN (the token answers "already logged in").
func LoadPKCS11(cfg PKCS11Config) (*Identity, io.Closer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	module, err := resolveModule(cfg.Module)
	if err != nil {
		return nil, nil, err
	}
	chain, err := ReadCertificatesFile(cfg.Certificate)
	if err != nil {
		return nil, nil, fmt.Errorf("PKCS#11 key certificate: %w", err)
	}
	pin, err := cfg.PIN().Read()
	if err != nil {
		return nil, nil, fmt.Errorf("PKCS#11 PIN: %w", err)
	}
	return openPKCS11(cfg, module, pin, chain)
}

// resolveModule returns the module's path with symlinks resolved: crypto11 counts references per
// path, and the same library initialised twice under two names fails.
func resolveModule(module string) (string, error) {
	if module == "" {
		var err error
		if module, err = DefaultPKCS11Module(); err != nil {
			return "", err
		}
	}
	resolved, err := filepath.EvalSymlinks(module)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrPKCS11Module, err)
	}
	if fi, err := os.Stat(resolved); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is not a file", ErrPKCS11Module, module)
	}
	return resolved, nil
}
