package smime

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/softhsm/softhsmtest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/tsa"
)

// TestHSMSignatureOpenSSLVerifies signs and timestamps with the fixture's signer and TSA keys held in
// SoftHSM2 (RSA-2048 and ECDSA P-256, used over PKCS#11), and has openssl verify the signature, the
// chain and the timestamp, for sign-only and for encrypted mail.
func TestHSMSignatureOpenSSLVerifies(t *testing.T) {
	interop.Tool(t, "openssl")
	f := getFixture(t)
	files := f.files(t)
	tk := softhsmtest.New(t)
	signer := tk.Load(tk.ImportIdentity(f.signer, "bank-signer", []byte{0x01}))
	tsaID := tk.Load(tk.ImportIdentity(f.tsaID, "bank-tsa", []byte{0x02}))
	authority, err := tsa.NewAuthority(tsaID.Signer, tsaID.Chain)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProtector(signer, WithTimestamper(authority))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Sign", func(t *testing.T) {
		out, err := p.SignMessage(ctx, []byte(statement), Options{})
		if err != nil {
			t.Fatal(err)
		}
		eml := filepath.Join(files.dir, "hsm-signed.eml")
		write(t, eml, out)
		interop.Run(t, nil, "openssl", "cms", "-verify", "-purpose", "smimesign", "-CAfile", files.ca, "-in", eml)
		_, sig := splitSigned(t, out[bytes.Index(out, []byte("Content-Type: multipart/signed")):])
		checkTimestamp(t, files, sig)
	})
	t.Run("Protect", func(t *testing.T) {
		out, err := p.ProtectMessage(ctx, []byte(statement), recipients(f.customers[:1], true, false), Options{})
		if err != nil {
			t.Fatal(err)
		}
		eml := filepath.Join(files.dir, "hsm-protected.eml")
		write(t, eml, out)
		dec := interop.Run(t, nil, "openssl", "cms", "-decrypt", "-in", eml, "-recip", files.certs[0], "-inkey", files.keys[0])
		write(t, eml, dec)
		verified := interop.Run(t, nil, "openssl", "cms", "-verify", "-purpose", "smimesign", "-CAfile", files.ca, "-in", eml)
		if content, sig := splitSigned(t, dec); !bytes.Equal(normalizeLF(verified), normalizeLF(content)) {
			t.Fatal("openssl verified different bytes than the signed part")
		} else {
			checkTimestamp(t, files, sig)
		}
	})
}

// TestHSMDecryptOpenSSL has openssl encrypt to a customer certificate whose key is in SoftHSM2 and
// Decrypt open it over PKCS#11: PKCS#1 v1.5 and OAEP (SHA-1, all SoftHSM2 2.6 offers) key
// transport, CBC and GCM. A corrupted encrypted key must fail as ErrDecrypt, as with a key in a
// file: the HSM key gives implicit rejection too, so the failure comes from the content, never from
// the key unwrapping.
func TestHSMDecryptOpenSSL(t *testing.T) {
	interop.Tool(t, "openssl")
	f := getFixture(t)
	files := f.files(t)
	tk := softhsmtest.New(t)
	id := tk.Load(tk.ImportIdentity(f.customers[1], "support", []byte{0x03}))
	if id.Decrypter() == nil {
		t.Fatal("HSM identity cannot decrypt")
	}
	want := mime.ToCRLF([]byte(customerEntity))
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"aes256-cbc", []string{"-aes256", "-recip", files.certs[1]}},
		{"aes128-gcm", []string{"-aes-128-gcm", "-recip", files.certs[1]}},
		{"aes256-cbc keyid", []string{"-aes256", "-keyid", "-recip", files.certs[1]}},
		{"aes256-gcm oaep", []string{"-aes-256-gcm", "-recip", files.certs[1], "-keyopt", "rsa_padding_mode:oaep"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der := interop.Run(t, []byte(customerEntity), "openssl", append([]string{"cms", "-encrypt", "-outform", "DER"}, tc.args...)...)
			d, err := Decrypt(der, id)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.Content, want) {
				t.Fatalf("decrypted %q", d.Content)
			}
		})
	}
	t.Run("corrupted encrypted key", func(t *testing.T) {
		der := interop.Run(t, []byte(customerEntity), "openssl", "cms", "-encrypt", "-outform", "DER", "-aes-256-gcm", "-recip", files.certs[1])
		ek := encryptedKeyOf(t, der)
		i := bytes.Index(der, ek)
		der[i+len(ek)/2] ^= 0x40
		for _, k := range []struct {
			name string
			id   *keys.Identity
		}{{"file", f.customers[1]}, {"HSM", id}} {
			if d, err := Decrypt(der, k.id); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("%s key: got %v, %v; want ErrDecrypt", k.name, d, err)
			}
		}
	})
}

// encryptedKeyOf returns the encrypted content key of the first recipient of an AuthEnvelopedData.
func encryptedKeyOf(t *testing.T, der []byte) []byte {
	t.Helper()
	var ci contentInfo
	var ad authEnvelopedData
	var ri keyTransRecipientInfo
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &ad); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(ad.RecipientInfos[0].FullBytes, &ri); err != nil {
		t.Fatal(err)
	}
	return ri.EncryptedKey
}
