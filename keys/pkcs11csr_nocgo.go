//go:build !cgo

package keys

import (
	"crypto/x509"
	"fmt"
)

// generatePKCS11CSR fails: without cgo no PKCS#11 module can be loaded.
func generatePKCS11CSR(_ PKCS11Config, module, _ string, _ []byte, _ *x509.CertificateRequest, _ KeyType) ([]byte, error) {
	return nil, fmt.Errorf("%w: %s: this sealpost was built without cgo (CGO_ENABLED=0), which PKCS#11 needs", ErrPKCS11Module, module)
}
