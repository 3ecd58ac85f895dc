package smime

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
)

// TestSignatureAlgorithmNULLParameters is the regression test for item 15's second finding:
// sealpost's SignerInfo named sha256WithRSAEncryption without parameters, where RFC 5754 3.2
// requires NULL. openssl shows the field; the interop tests (openssl, NSS, gpgsm) keep verifying it.
func TestSignatureAlgorithmNULLParameters(t *testing.T) {
	f := getFixture(t)
	der, err := f.protector.detachedSignature(ctx, []byte(customerEntity))
	if err != nil {
		t.Fatal(err)
	}
	sd, err := parseSignedData(der)
	if err != nil {
		t.Fatal(err)
	}
	alg := sd.signers[0].sigAlg
	if !alg.Algorithm.Equal(oidSHA256WithRSA) || !bytes.Equal(alg.Parameters.FullBytes, []byte{0x05, 0x00}) {
		t.Fatalf("signatureAlgorithm %v parameters %x, want sha256WithRSAEncryption with NULL", alg.Algorithm, alg.Parameters.FullBytes)
	}
	if d := sd.signers[0].digestAlg; !d.Algorithm.Equal(oidSHA256) || len(d.Parameters.FullBytes) != 0 {
		t.Fatalf("digestAlgorithm %v parameters %x, want SHA-256 with parameters absent (RFC 5754 2)", d.Algorithm, d.Parameters.FullBytes)
	}
	t.Run("openssl shows it", func(t *testing.T) {
		interop.Tool(t, "openssl")
		p := filepath.Join(t.TempDir(), "sig.der")
		write(t, p, der)
		out := string(interop.Run(t, nil, "openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", p))
		i := strings.Index(out, "signatureAlgorithm:")
		if i < 0 || !strings.Contains(out[i:min(len(out), i+200)], "parameter: NULL") {
			t.Fatalf("openssl cms -print does not show NULL parameters:\n%s", out[max(0, i):min(len(out), i+200)])
		}
	})
}
