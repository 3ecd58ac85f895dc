//go:build cgo

package softhsmtest

// cgoEnabled reports whether this build can load a PKCS#11 module: crypto11 needs cgo.
const cgoEnabled = true
