package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/sealpost/sealpost/internal/interop"
)

// libToken makes a token with digitorus/timestamp directly, bypassing NewAuthority's checks, so that
// tests can have tokens a proper TSA would never issue.
func libToken(t testing.TB, cert *x509.Certificate, key crypto.Signer, msg []byte, mod func(*timestamp.Timestamp)) []byte {
	t.Helper()
	d := sha256.Sum256(msg)
	ts := timestamp.Timestamp{
		HashAlgorithm:     crypto.SHA256,
		HashedMessage:     d[:],
		Time:              time.Now().UTC(),
		Accuracy:          time.Second,
		Policy:            defaultPolicyOID,
		AddTSACertificate: true,
	}
	if mod != nil {
		mod(&ts)
	}
	resp, err := ts.CreateResponseWithOpts(cert, key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := tokenFromResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// reencode re-marshals a token after mod changed its SignedData; the signer info is kept byte for byte.
func reencode(t testing.TB, der []byte, mod func(*signedData)) []byte {
	t.Helper()
	p, err := parseToken(der)
	if err != nil {
		t.Fatal(err)
	}
	mod(&p.sd)
	sd, err := asn1.Marshal(p.sd)
	if err != nil {
		t.Fatal(err)
	}
	out, err := asn1.Marshal(contentInfo{
		ContentType: oidSignedData,
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sd},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// embed returns the token with exactly certs as its certificates.
func embed(t testing.TB, der []byte, certs ...*x509.Certificate) []byte {
	return reencode(t, der, func(sd *signedData) {
		var raw []byte
		for _, c := range certs {
			raw = append(raw, c.Raw...)
		}
		sd.Certificates = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: raw}
	})
}

// flip returns der with the last byte of the first occurrence of part inverted.
func flip(t testing.TB, der, part []byte) []byte {
	t.Helper()
	i := bytes.Index(der, part)
	if i < 0 || len(part) == 0 {
		t.Fatal("part not found in token")
	}
	out := bytes.Clone(der)
	out[i+len(part)-1] ^= 0xff
	return out
}

func TestVerifyAcceptsAuthorityToken(t *testing.T) {
	ts := newTestTSA(t, nil)
	msg := []byte("m")
	tok, err := ts.a.Timestamp(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(tok.DER, msg, ts.ca.roots)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.DER, tok.DER) || !got.Time.Equal(tok.Time) || got.Serial.Cmp(tok.Serial) != 0 ||
		!got.Policy.Equal(tok.Policy) || !got.Authority.Equal(ts.cert) {
		t.Fatalf("Verify returned %+v, Timestamp %+v", got, tok)
	}
}

// TestVerifyRejectsImprintMismatch: a genuine token does not stamp another message.
func TestVerifyRejectsImprintMismatch(t *testing.T) {
	ts := newTestTSA(t, nil)
	msg := []byte("the signature value")
	tok, err := ts.a.Timestamp(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range [][]byte{[]byte("the signature valuf"), nil, append(bytes.Clone(msg), 0)} {
		if _, err := Verify(tok.DER, other, ts.ca.roots); !errors.Is(err, ErrImprintMismatch) {
			t.Errorf("Verify(%q) = %v, want ErrImprintMismatch", other, err)
		}
	}
}

// TestVerifyRejectsNonCriticalEKU: RFC 3161 2.3 wants the timeStamping EKU critical. Go's x509
// would accept the chain; Verify must not, and neither does openssl.
func TestVerifyRejectsNonCriticalEKU(t *testing.T) {
	ca := newTestCA(t, "CA")
	key := newP256(t)
	msg := []byte("m")
	for _, tc := range []struct {
		name string
		spec tsaCert
	}{
		{"non-critical timeStamping", tsaCert{nonCriticalEKU: true}},
		{"timeStamping plus emailProtection", tsaCert{ekus: []asn1.ObjectIdentifier{oidKPTimeStamping, {1, 3, 6, 1, 5, 5, 7, 3, 4}}}},
		{"no EKU", tsaCert{ekus: []asn1.ObjectIdentifier{}}},
		{"only keyCertSign", tsaCert{keyUsage: x509.KeyUsageCertSign}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := ca.issue(t, key.Public(), tc.spec)
			der := libToken(t, cert, key, msg, nil)
			if _, err := Verify(der, msg, ca.roots); !errors.Is(err, ErrUntrustedAuthority) {
				t.Fatalf("err = %v, want ErrUntrustedAuthority", err)
			}
		})
	}
	t.Run("openssl agrees", func(t *testing.T) {
		interop.Tool(t, "openssl")
		cert := ca.issue(t, key.Public(), tsaCert{nonCriticalEKU: true})
		dir := t.TempDir()
		_, _, err := interop.Try(t, nil, "openssl", "ts", "-verify", "-token_in",
			"-in", writeFile(t, dir, "tok", libToken(t, cert, key, msg, nil)),
			"-data", writeFile(t, dir, "msg", msg), "-CAfile", writeFile(t, dir, "ca.pem", certPEM(ca.cert)))
		if err == nil {
			t.Fatal("openssl accepted a TSA certificate with a non-critical EKU")
		}
	})
}

// TestVerifyRejectsUntrustedChain: a TSA certificate from another CA, or used outside its validity
// at genTime, is not trusted.
func TestVerifyRejectsUntrustedChain(t *testing.T) {
	ts := newTestTSA(t, nil)
	msg := []byte("m")
	tok, err := ts.a.Timestamp(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	other := newTestCA(t, "sealpost test CA") // same name, other key
	if _, err := Verify(tok.DER, msg, other.roots); !errors.Is(err, ErrUntrustedAuthority) {
		t.Errorf("other roots: err = %v, want ErrUntrustedAuthority", err)
	}
	if _, err := Verify(tok.DER, msg, x509.NewCertPool()); !errors.Is(err, ErrUntrustedAuthority) {
		t.Errorf("empty roots: err = %v, want ErrUntrustedAuthority", err)
	}
	if _, err := Verify(tok.DER, msg, nil); !errors.Is(err, ErrUntrustedAuthority) {
		t.Errorf("nil roots: err = %v, want ErrUntrustedAuthority", err)
	}
	early := libToken(t, ts.cert, ts.key, msg, func(x *timestamp.Timestamp) { x.Time = ts.cert.NotBefore.Add(-time.Hour) })
	if _, err := Verify(early, msg, ts.ca.roots); !errors.Is(err, ErrUntrustedAuthority) {
		t.Errorf("genTime before notBefore: err = %v, want ErrUntrustedAuthority", err)
	}
	bare := libToken(t, ts.cert, ts.key, msg, func(x *timestamp.Timestamp) { x.AddTSACertificate = false })
	if _, err := Verify(bare, msg, ts.ca.roots); !errors.Is(err, ErrUntrustedAuthority) {
		t.Errorf("no certificate in token: err = %v, want ErrUntrustedAuthority", err)
	}
}

// TestVerifyRejectsSubstitutedCertificate: a second certificate for the same key, issuer and serial
// (say, with a longer validity) put in place of the real one still verifies the signature; only the
// signing-certificate attribute (ESSCertIDv2) reveals the substitution.
func TestVerifyRejectsSubstitutedCertificate(t *testing.T) {
	ca := newTestCA(t, "CA")
	key := newP256(t)
	real := ca.issue(t, key.Public(), tsaCert{serial: 99})
	forged := ca.issue(t, key.Public(), tsaCert{serial: 99, cn: "substituted", notAfter: time.Now().Add(100 * 24 * time.Hour)})
	msg := []byte("m")
	bare := libToken(t, real, key, msg, func(x *timestamp.Timestamp) { x.AddTSACertificate = false })

	if _, err := Verify(embed(t, bare, real), msg, ca.roots); err != nil {
		t.Fatalf("control: token with the real certificate: %v", err)
	}
	_, err := Verify(embed(t, bare, forged), msg, ca.roots)
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("err = %v, want ErrBadSignature", err)
	}
}

// TestVerifyRejectsTamperedToken: changing any signed byte breaks the token.
func TestVerifyRejectsTamperedToken(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{{"ecdsa", nil}, {"rsa", rsaKey()}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestTSA(t, tc.key)
			msg := []byte("m")
			tok, err := ts.a.Timestamp(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := parseToken(tok.DER)
			if err != nil {
				t.Fatal(err)
			}
			serial, _ := asn1.Marshal(p.info.SerialNumber)
			for _, tamper := range []struct {
				name string
				der  []byte
			}{
				{"signature byte", flip(t, tok.DER, p.signer.Signature)},
				{"TSTInfo serial byte", flip(t, tok.DER, serial)},
				{"signed attribute byte", flip(t, tok.DER, p.signer.SignedAttrs.Bytes[:len(p.signer.SignedAttrs.Bytes)-1])},
			} {
				if _, err := Verify(tamper.der, msg, ts.ca.roots); !errors.Is(err, ErrBadSignature) {
					t.Errorf("%s: err = %v, want ErrBadSignature", tamper.name, err)
				}
			}
		})
	}
}

// TestVerifyRejectsWeakImprint: a token over SHA-1 (here from openssl, which still offers it) is
// refused as a weak algorithm, not accepted and not reported as a mismatch.
func TestVerifyRejectsWeakImprint(t *testing.T) {
	ca := newTestCA(t, "CA")
	o := newOpenSSLTSA(t, ca, newP256(t), "sha256")
	msg := writeFile(t, t.TempDir(), "msg", []byte("m"))
	q := interop.Run(t, nil, "openssl", "ts", "-query", "-data", msg, "-sha1", "-cert")
	der, err := o.reply(t, q, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(der, []byte("m"), ca.roots); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Fatalf("err = %v, want ErrUnsupportedAlgorithm", err)
	}
	q = interop.Run(t, nil, "openssl", "ts", "-query", "-data", msg, "-sha256", "-cert")
	if der, err = o.reply(t, q, true); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(der, []byte("m"), ca.roots); err != nil {
		t.Fatalf("control: openssl SHA-256 token: %v", err)
	}
}

// TestVerifyRejectsGarbage: anything that is not one DER token is ErrMalformed, without a panic.
func TestVerifyRejectsGarbage(t *testing.T) {
	ts := newTestTSA(t, nil)
	msg := []byte("m")
	tok, err := ts.a.Timestamp(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 1024)
	rand.Read(random)
	resp := ts.a.respond(mustQuery(t, msg))
	indefinite := bytes.Clone(tok.DER)
	indefinite[1] = 0x80 // BER indefinite length for the outer SEQUENCE
	for _, tc := range []struct {
		name string
		der  []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"text", []byte("this is not a time-stamp token")},
		{"random", random},
		{"truncated", tok.DER[:len(tok.DER)/2]},
		{"one byte short", tok.DER[:len(tok.DER)-1]},
		{"trailing byte", append(bytes.Clone(tok.DER), 0)},
		{"indefinite length", indefinite},
		{"TimeStampResp instead of token", resp},
		{"two signers", reencode(t, tok.DER, func(sd *signedData) { sd.SignerInfos = append(sd.SignerInfos, sd.SignerInfos[0]) })},
		{"no signer", reencode(t, tok.DER, func(sd *signedData) { sd.SignerInfos = nil })},
		{"eContentType id-data", reencode(t, tok.DER, func(sd *signedData) {
			sd.EncapContentInfo.EContentType = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
		})},
		{"certificates not certificates", reencode(t, tok.DER, func(sd *signedData) {
			sd.Certificates = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: []byte{0x30, 0x00}}
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Verify(tc.der, msg, ts.ca.roots); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

// mustQuery returns a SHA-256 query with certReq for msg.
func mustQuery(t testing.TB, msg []byte) []byte {
	t.Helper()
	q, err := timestamp.CreateRequest(bytes.NewReader(msg), &timestamp.RequestOptions{Hash: crypto.SHA256, Certificates: true, Nonce: bigOne()})
	if err != nil {
		t.Fatal(err)
	}
	return q
}
