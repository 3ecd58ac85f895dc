package keys_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/keys"
)

// TestPKCS11ConfigValidate: every incomplete setting is reported at its key, and wraps ErrPKCS11Config.
func TestPKCS11ConfigValidate(t *testing.T) {
	good := keys.PKCS11Config{TokenLabel: "bank", KeyLabel: "signer", PINFile: "/etc/sealpost/pin", Certificate: "/etc/sealpost/signer.pem"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(*keys.PKCS11Config)) keys.PKCS11Config { c := good; f(&c); return c }
	for _, tc := range []struct {
		name  string
		cfg   keys.PKCS11Config
		paths []string
	}{
		{"no token label", edit(func(c *keys.PKCS11Config) { c.TokenLabel = "" }), []string{"token_label"}},
		{"no key selector", edit(func(c *keys.PKCS11Config) { c.KeyLabel = "" }), []string{"key_label"}},
		{"key ID not hex", edit(func(c *keys.PKCS11Config) { c.KeyID = "0x01" }), []string{"key_id"}},
		{"two PIN sources", edit(func(c *keys.PKCS11Config) { c.PINEnv = "HSM_PIN" }), []string{"pin_file"}},
		{"no PIN source", edit(func(c *keys.PKCS11Config) { c.PINFile = "" }), []string{"pin_file"}},
		{"no certificate", edit(func(c *keys.PKCS11Config) { c.Certificate = "" }), []string{"certificate"}},
		{"everything", keys.PKCS11Config{KeyID: "xy"}, []string{"token_label", "key_id", "pin_file", "certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var paths []string
			for _, fe := range config.FieldErrors(err) {
				paths = append(paths, fe.Path)
			}
			if !slices.Equal(paths, tc.paths) || !errors.Is(err, keys.ErrPKCS11Config) {
				t.Fatalf("Validate = %v: problems at %q, want %q wrapping ErrPKCS11Config", err, paths, tc.paths)
			}
		})
	}
}
