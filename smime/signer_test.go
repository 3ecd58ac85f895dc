package smime

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
)

// These tests cover how Inspect finds and verifies a signer (issue 11 items 11, 12 and 13): the
// SignerIdentifier forms of RFC 5652 5.3, RSASSA-PSS (RFC 8551 2.2, RFC 4056), algorithms sealpost
// cannot check, and signatures whose certificate the message does not carry. The signing peer is
// openssl.

// opaque wraps DER signed-data as a client labels it.
func opaque(der []byte) []byte {
	return append([]byte("Content-Type: application/pkcs7-mime; smime-type=signed-data; name=\"smime.p7m\"\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\n"), mime.EncodeBase64(der)...)
}

// TestInspectSignerBySubjectKeyIdentifier is the regression test for item 11: a SignerInfo that names
// its certificate by subjectKeyIdentifier (openssl cms -sign -keyid) was dropped by the pkcs7 parser,
// and the reply bounced with "554 5.6.0 ... SignedData without signers".
func TestInspectSignerBySubjectKeyIdentifier(t *testing.T) {
	e := newInboundEnv(t)
	detached := e.aliceSigns(t, []byte(customerEntity), "-keyid")
	for _, tc := range []struct {
		name   string
		msg    []byte
		layers []string
	}{
		{"detached", detached, []string{"signed-detached"}},
		{"opaque BER stream", e.aliceSigns(t, []byte(customerEntity), "-keyid", "-nodetach", "-stream"), []string{"signed-opaque"}},
		{"opaque DER", opaque(e.aliceSigns(t, []byte(customerEntity), "-keyid", "-nodetach", "-outform", "DER")), []string{"signed-opaque"}},
		{"encrypted to a keyid recipient", e.encrypt(t, detached, "-aes-256-gcm", "-keyid"), []string{"authenveloped-data aes256-GCM", "signed-detached"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.assertClean(t, e.inspect(t, reply(tc.msg)), tc.layers...)
		})
	}
	t.Run("tampered", func(t *testing.T) {
		in := e.inspect(t, reply(relabel(t, bytes.Clone(detached), "November", "december")))
		if !errors.Is(in.SignatureErr, ErrSignature) || in.Signer == nil {
			t.Fatalf("tampered keyid signature: SignatureErr %v, signer %v", in.SignatureErr, in.Signer)
		}
	})
}

// pssCases are the RSASSA-PSS signatures openssl makes: its default salt (the maximum), a salt as
// long as the digest (what RFC 4056 recommends and Outlook writes), no salt, and SHA-384/512.
var pssCases = []struct {
	name string
	args []string
}{
	{"sha256 max salt", []string{"-md", "sha256", "-keyopt", "rsa_padding_mode:pss"}},
	{"sha256 digest salt", []string{"-md", "sha256", "-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_pss_saltlen:digest"}},
	{"sha256 no salt", []string{"-md", "sha256", "-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_pss_saltlen:0"}},
	{"sha384", []string{"-md", "sha384", "-keyopt", "rsa_padding_mode:pss"}},
	{"sha512 keyid", []string{"-md", "sha512", "-keyid", "-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_pss_saltlen:digest"}},
}

// TestInspectRSAPSS is the regression test for the first half of item 12: RSASSA-PSS signatures
// were reported as failed signatures (pkcs7 has no PSS). They verify now, a tampered one still fails,
// and PSS parameters Go cannot check are Unsupported, never a bad signature.
func TestInspectRSAPSS(t *testing.T) {
	e := newInboundEnv(t)
	for _, tc := range pssCases {
		t.Run(tc.name, func(t *testing.T) {
			signed := e.sign(t, []byte(customerEntity), e.files.certs[0], e.files.keys[0], tc.args...)
			if !bytes.Contains(signed, []byte("micalg=")) {
				t.Fatalf("not a multipart/signed:\n%s", signed)
			}
			e.assertClean(t, e.inspect(t, reply(signed)), "signed-detached")

			in := e.inspect(t, reply(relabel(t, bytes.Clone(signed), "November", "december")))
			if !errors.Is(in.SignatureErr, ErrSignature) || in.Unsupported != nil {
				t.Fatalf("tampered PSS signature: SignatureErr %v, Unsupported %v", in.SignatureErr, in.Unsupported)
			}
		})
	}
	t.Run("opaque encrypted", func(t *testing.T) {
		signed := e.aliceSigns(t, []byte(customerEntity), "-nodetach", "-keyopt", "rsa_padding_mode:pss")
		e.assertClean(t, e.inspect(t, reply(e.encrypt(t, signed, "-aes256"))), "enveloped-data aes256-CBC", "signed-opaque")
	})
	t.Run("MGF1 over another hash", func(t *testing.T) {
		signed := e.aliceSigns(t, []byte(customerEntity), "-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_mgf1_md:sha512")
		in := e.inspect(t, reply(signed))
		if !errors.Is(in.Unsupported, ErrUnsupported) || in.SignatureErr != nil {
			t.Fatalf("PSS with MGF1-SHA-512 over SHA-256: Unsupported %v, SignatureErr %v; want only Unsupported", in.Unsupported, in.SignatureErr)
		}
		if in.Signer == nil || !in.Signer.Equal(e.f.customers[0].Certificate()) || in.ChainErr != nil {
			t.Fatalf("the signer is still named and chain-checked: %v, %v", in.Signer, in.ChainErr)
		}
	})
	t.Run("SHA-1 is weak, not forged", func(t *testing.T) {
		signed, stderr, err := interop.Try(t, []byte(customerEntity), "openssl", "cms", "-sign", "-signer", e.files.certs[0],
			"-inkey", e.files.keys[0], "-md", "sha1", "-keyopt", "rsa_padding_mode:pss")
		if err != nil {
			t.Skipf("openssl refuses SHA-1 PSS signing: %s", stderr)
		}
		in := e.inspect(t, reply(signed))
		if in.WeakAlgorithm == nil || in.SignatureErr != nil || in.Unsupported != nil {
			t.Fatalf("SHA-1 PSS: weak %v, SignatureErr %v, Unsupported %v", in.WeakAlgorithm, in.SignatureErr, in.Unsupported)
		}
	})
}

// opensslLeaf makes a key with openssl genpkey (genpkey's arguments) and has the fixture CA
// certify it for address with openssl x509 -req, since Go cannot hold every key type openssl
// makes. It returns the certificate and key files.
func (e *inboundEnv) opensslLeaf(t *testing.T, name, address string, genpkey ...string) (certFile, keyFile string) {
	t.Helper()
	dir := e.dir()
	caCert, caKey := writeIdentity(t, dir, "ca-signing", e.f.ca)
	keyFile, certFile = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pem")
	csr, ext := filepath.Join(dir, name+".csr"), filepath.Join(dir, name+".ext")
	interop.Run(t, nil, "openssl", append([]string{"genpkey"}, append(genpkey, "-out", keyFile)...)...)
	interop.Run(t, nil, "openssl", "req", "-new", "-key", keyFile, "-subj", "/CN="+address, "-out", csr)
	write(t, ext, []byte("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"+
		"extendedKeyUsage=emailProtection\nsubjectKeyIdentifier=hash\nsubjectAltName=email:"+address+"\n"))
	interop.Run(t, nil, "openssl", "x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-CAcreateserial",
		"-days", "30", "-extfile", ext, "-out", certFile)
	return certFile, keyFile
}

// TestInspectUnsupportedSignatureAlgorithm is the regression test for the second half of item 12:
// a signature sealpost cannot check is reported in Unsupported, never in SignatureErr (the finding
// of a forged signature), whether it is intact or not.
func TestInspectUnsupportedSignatureAlgorithm(t *testing.T) {
	e := newInboundEnv(t)
	t.Run("brainpool key", func(t *testing.T) {
		// ECDSA on brainpoolP256r1 (used by German CAs): openssl signs and verifies it, Go cannot
		// read the certificate.
		cert, key := e.opensslLeaf(t, "brainpool", "alice@example.com", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:brainpoolP256r1")
		signed := e.sign(t, []byte(customerEntity), cert, key, "-md", "sha256")
		for _, msg := range [][]byte{signed, relabel(t, bytes.Clone(signed), "November", "december")} {
			in := e.inspect(t, reply(msg))
			if !in.Signed || !errors.Is(in.Unsupported, ErrUnsupported) || in.SignatureErr != nil || in.ChainErr != nil {
				t.Fatalf("brainpool: Unsupported %v, SignatureErr %v, ChainErr %v; want only Unsupported", in.Unsupported, in.SignatureErr, in.ChainErr)
			}
		}
		// The same signature without the certificate is an unknown signer, as for any key.
		in := e.inspect(t, reply(e.sign(t, []byte(customerEntity), cert, key, "-md", "sha256", "-nocerts")))
		if !errors.Is(in.SignatureErr, ErrUnknownSigner) {
			t.Fatalf("brainpool -nocerts: SignatureErr %v", in.SignatureErr)
		}
	})
	t.Run("unknown signature OID", func(t *testing.T) {
		der := e.aliceSigns(t, []byte(customerEntity), "-outform", "DER")
		// The SignerInfo's rsaEncryption is the last one in the DER (the certificates come first);
		// 1.2.840.113549.1.1.127 names nothing.
		rsa := []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01}
		i := bytes.LastIndex(der, rsa)
		if i < 0 {
			t.Fatal("no rsaEncryption in openssl's signature")
		}
		der[i+len(rsa)-1] = 0x7f
		in := e.inspect(t, reply(detachedMessage([]byte(customerEntity), der)))
		if !errors.Is(in.Unsupported, ErrUnsupported) || in.SignatureErr != nil {
			t.Fatalf("unknown OID: Unsupported %v, SignatureErr %v", in.Unsupported, in.SignatureErr)
		}
		if in.Signer == nil || !in.Signer.Equal(e.f.customers[0].Certificate()) {
			t.Fatalf("signer %v, want Alice's certificate", in.Signer)
		}
	})
	t.Run("Ed25519 is checked", func(t *testing.T) {
		// OpenSSL 3.0 cannot sign CMS with EdDSA ("invalid digest"), so this one is made in Go
		// (RFC 8419: SHA-512 message digest, pure Ed25519 over the signed attributes).
		pub, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := e.f.ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "alice@example.com"},
			EmailAddresses: []string{"alice@example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, BasicConstraintsValid: true}, pub)
		if err != nil {
			t.Fatal(err)
		}
		sign := func(b []byte) []byte { return ed25519.Sign(priv, b) }
		der := goSignedData(t, cert, oidSHA512, oidEd25519, sign, []byte(customerEntity))
		in := e.inspect(t, reply(detachedMessage([]byte(customerEntity), der)))
		if in.SignatureErr != nil || in.Unsupported != nil || in.ChainErr != nil || in.WeakAlgorithm != nil || !in.Signer.Equal(cert) {
			t.Fatalf("Ed25519: SignatureErr %v, Unsupported %v, chain %v, weak %v", in.SignatureErr, in.Unsupported, in.ChainErr, in.WeakAlgorithm)
		}
		in = e.inspect(t, reply(detachedMessage([]byte(strings.Replace(customerEntity, "November", "december", 1)), der)))
		if !errors.Is(in.SignatureErr, ErrSignature) {
			t.Fatalf("tampered Ed25519: SignatureErr %v", in.SignatureErr)
		}
	})
}

// goSignedData is a detached DER SignedData over content made in Go, for signatures openssl does
// not write: signed attributes contentType and messageDigest, digest and signature algorithms as
// given, the signer named by issuer and serial number, its certificate included.
func goSignedData(t *testing.T, cert *x509.Certificate, digestOID, sigOID asn1.ObjectIdentifier, sign func([]byte) []byte, content []byte) []byte {
	t.Helper()
	tlv := func(class, tag int, parts ...[]byte) []byte {
		b, err := asn1.Marshal(asn1.RawValue{Class: class, Tag: tag, IsCompound: tag == asn1.TagSequence || tag == asn1.TagSet || class != asn1.ClassUniversal, Bytes: bytes.Join(parts, nil)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	oid := func(o asn1.ObjectIdentifier) []byte { b, _ := asn1.Marshal(o); return b }
	h, err := hashOf(digestOID)
	if err != nil {
		t.Fatal(err)
	}
	d := h.New()
	d.Write(content)
	md, _ := asn1.Marshal(d.Sum(nil))
	attrs := tlv(0, asn1.TagSet,
		tlv(0, asn1.TagSequence, oid(oidAttrContentType), tlv(0, asn1.TagSet, oid(oidData))),
		tlv(0, asn1.TagSequence, oid(oidAttrMessageDigest), tlv(0, asn1.TagSet, md)))
	sig, _ := asn1.Marshal(sign(attrs))
	ias, _ := asn1.Marshal(issuerAndSerial{Issuer: asn1.RawValue{FullBytes: cert.RawIssuer}, Serial: cert.SerialNumber})
	version, _ := asn1.Marshal(1)
	digestAlg := tlv(0, asn1.TagSequence, oid(digestOID))
	implicitAttrs := append([]byte{0xa0}, attrs[1:]...)
	si := tlv(0, asn1.TagSequence, version, ias, digestAlg, implicitAttrs, tlv(0, asn1.TagSequence, oid(sigOID)), sig)
	sd := tlv(0, asn1.TagSequence, version, tlv(0, asn1.TagSet, digestAlg), tlv(0, asn1.TagSequence, oid(oidData)),
		tlv(asn1.ClassContextSpecific, 0, cert.Raw), tlv(0, asn1.TagSet, si))
	ci, err := marshalContentInfo(oidSignedData, sd)
	if err != nil {
		t.Fatal(err)
	}
	return ci
}

// detachedMessage is a multipart/signed entity from a signed part and a DER signature.
func detachedMessage(content, sigDER []byte) []byte {
	return []byte("MIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"b\"\r\n\r\n" +
		"--b\r\n" + string(content) + "\r\n--b\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + string(mime.EncodeBase64(sigDER)) + "\r\n--b--\r\n")
}

// TestInspectSignerWithoutCertificates is the regression test for item 13: openssl cms -sign
// -nocerts leaves the signer's certificate out. Without known certificates that is an unknown
// signer (not a bad signature); with the customer's certificate among InboundOptions.Certificates it
// verifies, and its chain is built with InboundOptions.Intermediates when the message carries none.
func TestInspectSignerWithoutCertificates(t *testing.T) {
	e := newInboundEnv(t)
	alice := e.f.customers[0].Certificate()
	known := func(certs ...*x509.Certificate) *inboundEnv {
		c := *e
		c.opts.Certificates = certs
		return &c
	}
	plain := e.aliceSigns(t, []byte(customerEntity), "-nocerts")
	keyid := e.aliceSigns(t, []byte(customerEntity), "-nocerts", "-keyid")
	pss := e.aliceSigns(t, []byte(customerEntity), "-nocerts", "-keyid", "-keyopt", "rsa_padding_mode:pss")

	t.Run("unknown signer", func(t *testing.T) {
		for _, env := range []*inboundEnv{e, known(e.f.customers[1].Certificate(), e.f.customers[2].Certificate())} {
			in := env.inspect(t, reply(plain))
			if !errors.Is(in.SignatureErr, ErrUnknownSigner) || !errors.Is(in.SignatureErr, ErrSignature) || in.Signer != nil || in.ChainErr == nil {
				t.Fatalf("SignatureErr %v, signer %v, chain %v; want ErrUnknownSigner and no signer", in.SignatureErr, in.Signer, in.ChainErr)
			}
		}
	})
	for name, msg := range map[string][]byte{"issuer and serial": plain, "keyid": keyid, "keyid PSS": pss,
		"opaque": opaque(e.aliceSigns(t, []byte(customerEntity), "-nocerts", "-nodetach", "-outform", "DER"))} {
		t.Run("known "+name, func(t *testing.T) {
			env := known(e.f.customers[2].Certificate(), alice)
			layer := "signed-detached"
			if strings.HasPrefix(name, "opaque") {
				layer = "signed-opaque"
			}
			env.assertClean(t, env.inspect(t, reply(msg)), layer)
		})
	}
	t.Run("look-alike key identifier", func(t *testing.T) {
		// A known certificate with Alice's key identifier but another key must not be taken for hers,
		// nor hide hers.
		key, err := keys.NewRSAKey()
		if err != nil {
			t.Fatal(err)
		}
		fake, err := e.f.ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "alice@example.com"},
			EmailAddresses: []string{"alice@example.com"}, SubjectKeyId: alice.SubjectKeyId,
			NotBefore: alice.NotBefore, NotAfter: alice.NotAfter, BasicConstraintsValid: true,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}, key.Public())
		if err != nil {
			t.Fatal(err)
		}
		env := known(fake, alice)
		env.assertClean(t, env.inspect(t, reply(keyid)), "signed-detached")
		env = known(fake)
		in := env.inspect(t, reply(keyid))
		if !errors.Is(in.SignatureErr, ErrSignature) || errors.Is(in.SignatureErr, ErrUnknownSigner) || !in.Signer.Equal(fake) {
			t.Fatalf("only the look-alike known: SignatureErr %v, signer %v", in.SignatureErr, in.Signer)
		}
	})
	t.Run("intermediate CA", func(t *testing.T) {
		interKey, err := keys.NewRSAKey()
		if err != nil {
			t.Fatal(err)
		}
		interCert, err := e.f.ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "customer intermediate"},
			NotBefore: alice.NotBefore, NotAfter: alice.NotAfter, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign}, interKey.Public())
		if err != nil {
			t.Fatal(err)
		}
		inter := &keys.Identity{Signer: interKey, Chain: []*x509.Certificate{interCert, e.f.ca.Certificate()}}
		dave, err := inter.NewDevCustomer("alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		cf, kf := writeIdentity(t, e.dir(), "dave", dave)
		msg := reply(e.sign(t, []byte(customerEntity), cf, kf, "-md", "sha256", "-nocerts"))
		env := known(dave.Certificate())
		if in := env.inspect(t, msg); in.SignatureErr != nil || in.ChainErr == nil {
			t.Fatalf("no intermediate anywhere: SignatureErr %v, ChainErr %v; want a chain error only", in.SignatureErr, in.ChainErr)
		}
		env.opts.Intermediates = x509.NewCertPool()
		env.opts.Intermediates.AddCert(interCert)
		in := env.inspect(t, msg)
		if in.SignatureErr != nil || in.ChainErr != nil || len(in.SignerChain) == 0 || len(in.SignerChain[0]) != 3 {
			t.Fatalf("with the known intermediate: SignatureErr %v, ChainErr %v, chain %v", in.SignatureErr, in.ChainErr, in.SignerChain)
		}
	})
}

// FuzzSignedData feeds DER to the SignedData parser and signer search with known certificates: errors
// are fine, panics are not, and a signer found without error must verify the content.
func FuzzSignedData(f *testing.F) {
	fx := getFixture(f)
	content := []byte(customerEntity)
	der, err := fx.protector.detachedSignature(ctx, content)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(der)
	f.Add(der[:len(der)/2])
	if _, err := osexec.LookPath("openssl"); err == nil {
		files := fx.files(f)
		for _, extra := range [][]string{{"-keyid"}, {"-nocerts"}, {"-keyid", "-nocerts", "-keyopt", "rsa_padding_mode:pss"}, {"-nodetach", "-md", "sha512"}} {
			args := append([]string{"cms", "-sign", "-binary", "-outform", "DER", "-signer", files.certs[0], "-inkey", files.keys[0]}, extra...)
			f.Add(interop.Run(f, content, "openssl", args...))
		}
	}
	known := []*x509.Certificate{fx.signer.Certificate(), fx.customers[0].Certificate()}
	f.Fuzz(func(t *testing.T, der []byte) {
		sd, err := parseSignedData(der)
		if err != nil {
			return
		}
		for _, si := range sd.signers {
			signer, err := findSigner(sd, si, content, known)
			if err == nil && (signer == nil || si.verify(signer, sd.contentType, content) != nil) {
				t.Fatal("signer found without verifying")
			}
			if err != nil && !errors.Is(err, ErrSignature) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error outside the contract: %v", err)
			}
		}
	})
}
