package tsa

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/softhsm/softhsmtest"
	"github.com/sealpost/sealpost/keys"
)

// TestHSMAuthorityOpenSSLVerify runs the embedded Authority with its development ECDSA P-256 key held
// in SoftHSM2 and used over PKCS#11, and has openssl ts -verify accept its tokens (and refuse them for
// an altered message).
func TestHSMAuthorityOpenSSLVerify(t *testing.T) {
	interop.Tool(t, "openssl")
	ca, err := keys.NewDevCA("sealpost HSM test CA")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := ca.NewDevTSA()
	if err != nil {
		t.Fatal(err)
	}
	tk := softhsmtest.New(t)
	cfg := tk.ImportIdentity(&keys.Identity{Signer: dev.Signer, Chain: []*x509.Certificate{dev.Certificate(), ca.Certificate()}}, "bank-tsa", []byte{0x02})
	id := tk.Load(cfg)
	if pub, ok := id.Signer.Public().(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("HSM key is %T, want ECDSA P-256", id.Signer.Public())
	}
	if _, isFileKey := id.Signer.(*ecdsa.PrivateKey); isFileKey {
		t.Fatal("signer is a file key")
	}
	a, err := NewAuthority(id.Signer, id.Chain)
	if err != nil {
		t.Fatal(err)
	}

	msg := []byte("CMS signature value to be time-stamped")
	tok, err := a.Timestamp(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	if _, err := Verify(tok.DER, msg, roots); err != nil {
		t.Fatalf("own Verify: %v", err)
	}
	dir := t.TempDir()
	args := []string{"ts", "-verify", "-in", writeFile(t, dir, "tok.der", tok.DER), "-token_in",
		"-CAfile", writeFile(t, dir, "ca.pem", certPEM(ca.Certificate())),
		"-untrusted", writeFile(t, dir, "tsa.pem", certPEM(id.Certificate()))}
	out := interop.Run(t, nil, "openssl", append(args, "-data", writeFile(t, dir, "msg", msg))...)
	if !bytes.Contains(out, []byte("Verification: OK")) {
		t.Fatalf("openssl did not say OK: %s", out)
	}
	altered := bytes.Clone(msg)
	altered[0] ^= 1
	if out, _, err := interop.Try(t, nil, "openssl", append(args, "-data", writeFile(t, dir, "altered", altered))...); err == nil {
		t.Fatalf("openssl accepted the token for an altered message: %s", out)
	}
}
