package keys

import (
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// ErrPKCS11KeyExists is returned by NewPKCS11CSR when the token already holds a key pair with the
// label or ID asked for: it is never replaced, and a second one would make loading ambiguous.
var ErrPKCS11KeyExists = errors.New("a key pair with that label or id is already on the PKCS#11 token")

// NewPKCS11CSR is NewCSR for a key in an HSM: it generates a key pair of type kt inside the token cfg
// names (RSA-2048 by default; the support identity needs RSA), labelled cfg.KeyLabel, with CKA_ID
// cfg.KeyID (random when empty), sensitive and not extractable, and returns a PEM certificate
// request the token signed. Nothing is written to disk. The CA's certificate (with its chain) goes
// in the file cfg.Certificate names, and LoadPKCS11(cfg) then loads the identity; cfg.Certificate
// may be empty here. A token that already has a key pair with that label or ID gives
// ErrPKCS11KeyExists; PKCS#11 failures give the errors LoadPKCS11 documents.
func NewPKCS11CSR(cfg PKCS11Config, role Role, subject string, emails []string, kt KeyType) ([]byte, error) {
	tmpl, err := csrTemplate(role, subject, emails, kt)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.TokenLabel == "":
		return nil, fmt.Errorf("%w: token_label is required", ErrPKCS11Config)
	case cfg.KeyLabel == "":
		return nil, fmt.Errorf("%w: key_label is required to generate a key pair", ErrPKCS11Config)
	case (cfg.PINFile == "") == (cfg.PINEnv == ""):
		return nil, fmt.Errorf("%w: exactly one of pin_file and pin_env is required", ErrPKCS11Config)
	}
	var id []byte
	if cfg.KeyID != "" {
		if id, err = hex.DecodeString(cfg.KeyID); err != nil {
			return nil, fmt.Errorf("%w: key_id %q is not hex", ErrPKCS11Config, excerpt(cfg.KeyID))
		}
	}
	module, err := resolveModule(cfg.Module)
	if err != nil {
		return nil, err
	}
	pin, err := cfg.PIN().Read()
	if err != nil {
		return nil, fmt.Errorf("PKCS#11 PIN: %w", err)
	}
	der, err := generatePKCS11CSR(cfg, module, pin, id, tmpl, kt)
	if err != nil {
		return nil, fmt.Errorf("%s certificate request: %w", role, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}
