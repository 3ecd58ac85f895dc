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

// TestGPGSMVerifiesSignature: gpgsm 2.2 (GnuPG's S/MIME) accepts sealpost's detached signature, with
// its NULL parameters and timestamp token, as a good signature chaining to the trusted CA. openssl
// and NSS check the same signature in TestOpenSSLVerifiesSignOnly and TestNSSDecryptsAndVerifies.
func TestGPGSMVerifiesSignature(t *testing.T) {
	e := newInboundEnv(t)
	gpgsmHome(t, e)
	content := []byte(customerEntity)
	der, err := e.f.protector.detachedSignature(ctx, content)
	if err != nil {
		t.Fatal(err)
	}
	status := gpgsm(t, nil, "--status-fd", "1", "--verify", writeTemp(t, der), writeTemp(t, content))
	for _, want := range []string{"[GNUPG:] GOODSIG", "[GNUPG:] VALIDSIG", "[GNUPG:] TRUST_FULLY"} {
		if !bytes.Contains(status, []byte(want)) {
			t.Fatalf("gpgsm --verify: no %s:\n%s", want, status)
		}
	}
	bad := bytes.Replace(content, []byte("November"), []byte("december"), 1)
	if out, _, err := interop.Try(t, nil, "gpgsm", "--batch", "--disable-crl-checks", "--disable-policy-checks", "--status-fd", "1",
		"--verify", writeTemp(t, der), writeTemp(t, bad)); err == nil && !bytes.Contains(out, []byte("BADSIG")) {
		t.Fatalf("gpgsm accepted tampered content:\n%s", out)
	}
}
