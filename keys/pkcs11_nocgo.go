//go:build !cgo

package keys

import (
	"crypto/x509"
	"fmt"
	"io"
)

// openPKCS11 fails: without cgo no PKCS#11 module can be loaded.
func openPKCS11(cfg PKCS11Config, module, _ string, _ []*x509.Certificate) (*Identity, io.Closer, error) {
	return nil, nil, fmt.Errorf("%w: %s: this sealpost was built without cgo (CGO_ENABLED=0), which PKCS#11 needs", ErrPKCS11Module, module)
}
