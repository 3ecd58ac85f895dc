// Package softhsmtest gives tests and benchmarks a throw-away SoftHSM2 token (package softhsm),
// failing the test instead of returning errors.
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
package softhsmtest
