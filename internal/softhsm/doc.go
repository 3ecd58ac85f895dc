// Package softhsm makes throw-away SoftHSM2 tokens (Debian softhsm2), so the bank's keys can be used
// over PKCS#11 exactly as from a real HSM: by `sealpost bench -softhsm` and, through softhsmtest, by
// tests.
//
// SoftHSM2 reads SOFTHSM2_CONF when its module is initialised. Create runs softhsm2-util with the
// token's configuration in its own environment only; the caller points the process at Token.Conf
// (os.Setenv, or t.Setenv in tests) before keys.LoadPKCS11.
package softhsm
