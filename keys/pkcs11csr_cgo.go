//go:build cgo

package keys

import (
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"

	"github.com/ThalesGroup/crypto11"
)

// generatePKCS11CSR is NewPKCS11CSR once its arguments are checked: a key pair made in the token,
// and the request it signs. A key pair made for a request that then fails is deleted again.
func generatePKCS11CSR(cfg PKCS11Config, module, pin string, id []byte, tmpl *x509.CertificateRequest, kt KeyType) ([]byte, error) {
	ctx, err := crypto11.Configure(&crypto11.Config{Path: module, TokenLabel: cfg.TokenLabel, Pin: pin})
	if err != nil {
		return nil, configureError(err, module, cfg.TokenLabel)
	}
	defer ctx.Close()
	label := []byte(cfg.KeyLabel)
	if err := refuseExisting(ctx, cfg, id, label); err != nil {
		return nil, err
	}
	if id == nil {
		id = make([]byte, 8)
		if _, err := rand.Read(id); err != nil {
			return nil, err
		}
	}
	var key crypto11.Signer
	switch kt {
	case "", KeyRSA2048:
		key, err = ctx.GenerateRSAKeyPairWithLabel(id, label, 2048)
	case KeyRSA3072:
		key, err = ctx.GenerateRSAKeyPairWithLabel(id, label, 3072)
	case KeyP256:
		key, err = ctx.GenerateECDSAKeyPairWithLabel(id, label, elliptic.P256())
	case KeyP384:
		key, err = ctx.GenerateECDSAKeyPairWithLabel(id, label, elliptic.P384())
	default:
		return nil, fmt.Errorf("unknown key type %q", excerpt(string(kt)))
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key pair on token %q: %w", kt, cfg.TokenLabel, err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		if derr := key.Delete(); derr != nil {
			return nil, fmt.Errorf("%w (and deleting the new key pair %q failed: %w)", err, cfg.KeyLabel, derr)
		}
		return nil, err
	}
	return der, nil
}

// refuseExisting fails when the token has a key pair with the label, or with the ID when one is
// given.
func refuseExisting(ctx *crypto11.Context, cfg PKCS11Config, id, label []byte) error {
	byLabel, err := ctx.FindKeyPairs(nil, label)
	if err != nil {
		return fmt.Errorf("find key pairs on token %q: %w", cfg.TokenLabel, err)
	}
	if len(byLabel) > 0 {
		return fmt.Errorf("%w: label %q on token %q", ErrPKCS11KeyExists, cfg.KeyLabel, cfg.TokenLabel)
	}
	if id == nil {
		return nil
	}
	byID, err := ctx.FindKeyPairs(id, nil)
	if err != nil {
		return fmt.Errorf("find key pairs on token %q: %w", cfg.TokenLabel, err)
	}
	if len(byID) > 0 {
		return fmt.Errorf("%w: id %s on token %q", ErrPKCS11KeyExists, cfg.KeyID, cfg.TokenLabel)
	}
	return nil
}
