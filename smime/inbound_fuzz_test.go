package smime

import (
	"crypto/x509"
	"os/exec"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
)

// FuzzInspect feeds whole messages to Inspect: errors are fine, panics are not, and an accepted result
// that claims a clean signature must name a signer.
func FuzzInspect(f *testing.F) {
	fx := getFixture(f)
	var seeds [][]byte
	if out, err := fx.protector.SignMessage(ctx, []byte(statement), Options{}); err == nil {
		seeds = append(seeds, out)
	}
	for _, gcm := range []bool{false, true} {
		if out, err := fx.protector.ProtectMessage(ctx, []byte(statement), recipients(fx.customers[:1], gcm, gcm), Options{}); err == nil {
			seeds = append(seeds, out)
		}
	}
	if _, err := exec.LookPath("openssl"); err == nil {
		files := fx.files(f)
		sign := func(in []byte, extra ...string) []byte {
			return interop.Run(f, in, "openssl", append([]string{"cms", "-sign", "-md", "sha256", "-signer", files.certs[0], "-inkey", files.keys[0]}, extra...)...)
		}
		detached := sign([]byte(customerEntity))
		seeds = append(seeds, detached, sign([]byte(customerEntity), "-nodetach", "-stream"),
			sign([]byte(customerEntity), "-keyid", "-nocerts", "-keyopt", "rsa_padding_mode:pss"),
			interop.Run(f, detached, "openssl", "cms", "-encrypt", "-aes256", "-stream", "-recip", files.certs[0]),
			interop.Run(f, detached, "openssl", "cms", "-encrypt", "-aes-256-gcm", "-keyid", "-recip", files.certs[0]))
	}
	for _, s := range seeds {
		f.Add(s)
		f.Add(s[:len(s)/2])
		f.Add(s[:len(s)-len(s)/10])
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pkcs7-mime\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQA=\r\n--b--\r\n"))
	roots := x509.NewCertPool()
	roots.AddCert(fx.ca.Certificate())
	opts := InboundOptions{Identities: fx.customers[:1], Roots: roots, TSARoots: roots, Certificates: []*x509.Certificate{fx.customers[0].Certificate()}}
	f.Fuzz(func(t *testing.T, msg []byte) {
		in, err := Inspect(msg, opts)
		if err != nil {
			return
		}
		if in.Signed && in.SignatureErr == nil && in.Unsupported == nil && in.Signer == nil {
			t.Fatal("clean signature without a signer")
		}
		if in.ChainErr == nil && in.Unsupported == nil && in.Signed && len(in.SignerChain) == 0 {
			t.Fatal("no chain error and no chain")
		}
	})
}
