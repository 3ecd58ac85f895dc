package smime

import (
	"errors"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/mime"
)

// TestDecryptNotForUsBeforeAlgorithm is the regression test for item 15's first finding: a 3DES
// message to someone else was refused as "unsupported algorithm" because the cipher was checked
// before the recipients. Whom it is for comes first, whatever the envelope holds.
func TestDecryptNotForUsBeforeAlgorithm(t *testing.T) {
	e := newInboundEnv(t)
	bank := e.f.customers[1]
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"3DES", []string{"-des3"}},
		{"3DES keyid", []string{"-des3", "-keyid"}},
		{"AES-256-GCM", []string{"-aes-256-gcm"}},
		{"3DES OAEP", []string{"-des3", "-recip", "CERT", "-keyopt", "rsa_padding_mode:oaep"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enveloped := func(cert string) []byte {
				args := append([]string{"cms", "-encrypt", "-outform", "DER"}, tc.args...)
				for i, a := range args {
					if a == "CERT" {
						args[i] = cert
						return interop.Run(t, []byte(customerEntity), "openssl", args...)
					}
				}
				return interop.Run(t, []byte(customerEntity), "openssl", append(args, "-recip", cert)...)
			}
			other := enveloped(e.files.certs[2])
			if _, err := Decrypt(other, bank); !errors.Is(err, ErrNotForUs) || errors.Is(err, ErrUnsupported) {
				t.Fatalf("to someone else: %v, want ErrNotForUs", err)
			}
			msg := reply(append([]byte("Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\n"),
				mime.EncodeBase64(other)...))
			if _, err := Inspect(msg, e.opts); !errors.Is(err, ErrNotForUs) {
				t.Fatalf("Inspect, to someone else: %v, want ErrNotForUs", err)
			}
			if strings.HasPrefix(tc.name, "3DES") {
				if _, err := Decrypt(enveloped(e.files.certs[1]), bank); !errors.Is(err, ErrUnsupported) {
					t.Fatalf("3DES to the bank: %v, want ErrUnsupported", err)
				}
			}
		})
	}
}
