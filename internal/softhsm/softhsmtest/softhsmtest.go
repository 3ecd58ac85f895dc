package softhsmtest

import (
	"crypto"
	"errors"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/softhsm"
	"github.com/sealpost/sealpost/keys"
)

// DefaultLabel is the label of the token New initialises.
const DefaultLabel = "sealpost-test"

// Token is a softhsm.Token whose methods fail the test on error.
type Token struct {
	*softhsm.Token
	tb testing.TB
}

// New initialises a fresh token labelled DefaultLabel; see the package comment for its constraints.
func New(tb testing.TB) *Token {
	tb.Helper()
	if !cgoEnabled {
		unavailable(tb, "PKCS#11 needs cgo", "build with CGO_ENABLED=1 and gcc")
	}
	tk, err := softhsm.Create(tb.TempDir(), DefaultLabel)
	if errors.Is(err, softhsm.ErrUnavailable) {
		unavailable(tb, err.Error(), "apt-get install softhsm2")
	}
	if err != nil {
		tb.Fatalf("softhsm: %v", err)
	}
	tb.Setenv("SOFTHSM2_CONF", tk.Conf)
	return &Token{Token: tk, tb: tb}
}

// ImportKey imports key (*rsa.PrivateKey or *ecdsa.PrivateKey) as a key pair, private and public
// objects, with the given CKA_LABEL and CKA_ID, and returns a configuration naming it by both. Its
// Certificate is empty.
func (tk *Token) ImportKey(key crypto.Signer, label string, id []byte) keys.PKCS11Config {
	tk.tb.Helper()
	cfg, err := tk.Import(key, label, id)
	if err != nil {
		tk.tb.Fatalf("softhsm: %v", err)
	}
	return cfg
}

// ImportIdentity imports id's private key like ImportKey and writes its chain to a PEM file named in
// the returned configuration's Certificate.
func (tk *Token) ImportIdentity(id *keys.Identity, label string, keyID []byte) keys.PKCS11Config {
	tk.tb.Helper()
	cfg, err := tk.Token.ImportIdentity(id, label, keyID)
	if err != nil {
		tk.tb.Fatalf("softhsm: %v", err)
	}
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
