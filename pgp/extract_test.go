package pgp

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
)

// TestExtractTimestamp: the protector's PGP/MIME signed message, its armored signature part and
// that signature in binary all give the signature value and token the inbound verifier finds, and
// openssl ts -verify accepts the token over that value and no other.
func TestExtractTimestamp(t *testing.T) {
	f := getFixture(t)
	signed, err := f.protector.SignMessage(ctx, []byte(statement), Options{})
	if err != nil {
		t.Fatal(err)
	}
	in, err := inspectVerified(signed, InboundOptions{Signers: openpgp.EntityList{f.bank}, TSARoots: f.roots})
	if err != nil {
		t.Fatal(err)
	}
	wantValue, err := SignatureValue(in.Signature)
	if err != nil {
		t.Fatal(err)
	}
	wantToken := TimestampToken(in.Signature)
	_, _, armored := parts(t, signed)
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		t.Fatal(err)
	}
	binary, err := io.ReadAll(block.Body)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"message": signed, "armored": armored, "binary": binary} {
		value, token, err := ExtractTimestamp(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(value, wantValue) || !bytes.Equal(token, wantToken) || len(token) == 0 {
			t.Fatalf("%s: extracted value/token differ from the verifier's (token %d bytes)", name, len(token))
		}
	}
	t.Run("openssl", func(t *testing.T) {
		interop.Tool(t, "openssl")
		value, token, err := ExtractTimestamp(signed)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		data := write(t, filepath.Join(dir, "sigvalue.bin"), value)
		tok := write(t, filepath.Join(dir, "token.der"), token)
		ca := write(t, filepath.Join(dir, "ca.pem"), keys.EncodeCertificates(f.ca.Certificate()))
		tsaPEM := write(t, filepath.Join(dir, "tsa.pem"), keys.EncodeCertificates(f.tsaID.Chain...))
		interop.Run(t, nil, "openssl", "ts", "-verify", "-data", data, "-in", tok, "-token_in", "-CAfile", ca, "-untrusted", tsaPEM)
		value[0] ^= 1
		write(t, data, value)
		if _, _, err := interop.Try(t, nil, "openssl", "ts", "-verify", "-data", data, "-in", tok, "-token_in", "-CAfile", ca, "-untrusted", tsaPEM); err == nil {
			t.Fatal("openssl accepted the token for another signature value")
		}
	})
}

// TestExtractTimestampRefuses: an encrypted message is not a signed one, and encrypted OpenPGP
// data that was not unwrapped shows no signature.
func TestExtractTimestampRefuses(t *testing.T) {
	f := getFixture(t)
	encrypted, err := f.protector.ProtectMessage(ctx, []byte(statement), f.customers[:1], Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ExtractTimestamp(encrypted); !errors.Is(err, ErrUnsupported) {
		t.Errorf("encrypted message: %v, want ErrUnsupported", err)
	}
	var b bytes.Buffer
	w, err := openpgp.SymmetricallyEncrypt(&b, []byte("secret"), nil, v4RSA)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("signed inside"))
	w.Close()
	if v, tok, err := ExtractTimestamp(b.Bytes()); err == nil {
		t.Errorf("encrypted data gave a signature value (%d bytes) and token (%d bytes)", len(v), len(tok))
	}
}
