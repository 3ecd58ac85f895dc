package smime

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	stdmime "mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smallstep/pkcs7"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/mime"
)

// splitSigned parses a multipart/signed entity and returns the exact signed bytes and the DER
// signature.
func splitSigned(t testing.TB, entity []byte) (content, sig []byte) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(entity))
	if err != nil {
		t.Fatalf("parse signed entity: %v", err)
	}
	mt, params, err := stdmime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/signed" || params["protocol"] != "application/pkcs7-signature" || params["micalg"] != "sha-256" {
		t.Fatalf("want multipart/signed pkcs7-signature sha-256, got %q (%v)", m.Header.Get("Content-Type"), err)
	}
	body, _ := io.ReadAll(m.Body)
	delim := []byte("\r\n--" + params["boundary"])
	start := bytes.Index(body, []byte("--"+params["boundary"]+"\r\n"))
	rest := body[start+len(params["boundary"])+4:]
	end := bytes.Index(rest, delim)
	content = rest[:end]
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	if _, err := mr.NextRawPart(); err != nil {
		t.Fatal(err)
	}
	p, err := mr.NextRawPart()
	if err != nil {
		t.Fatal(err)
	}
	if p.Header.Get("Content-Type") != "application/pkcs7-signature; name=smime.p7s" {
		t.Fatalf("signature part type %q", p.Header.Get("Content-Type"))
	}
	b64, _ := io.ReadAll(p)
	sig, err = base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(b64)))
	if err != nil {
		t.Fatal(err)
	}
	return content, sig
}

// timestampOf returns the signature value and the RFC 3161 token in its unsigned attributes.
func timestampOf(t testing.TB, sig []byte) (sigValue, token []byte) {
	t.Helper()
	p7, err := pkcs7.Parse(sig)
	if err != nil {
		t.Fatal(err)
	}
	if len(p7.Signers) != 1 {
		t.Fatalf("%d signers, want 1", len(p7.Signers))
	}
	si := p7.Signers[0]
	for _, a := range si.UnauthenticatedAttributes {
		if a.Type.Equal(oidAttrTimeStampToken) {
			return si.EncryptedDigest, a.Value.Bytes
		}
	}
	t.Fatal("no id-aa-timeStampToken unsigned attribute")
	return nil, nil
}

func TestOpenSSLDecryptsAndVerifies(t *testing.T) {
	interop.Tool(t, "openssl")
	f := getFixture(t)
	files := f.files(t)
	tests := []struct {
		name       string
		recipients int
		gcm, oaep  bool
		smimeType  string
	}{
		{"OneRecipientCBC", 1, false, false, "enveloped-data"},
		{"ThreeRecipientsCBC", 3, false, false, "enveloped-data"},
		{"OneRecipientGCM", 1, true, false, "authEnveloped-data"},
		{"ThreeRecipientsGCM", 3, true, false, "authEnveloped-data"},
		{"ThreeRecipientsOAEP", 3, false, true, "enveloped-data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := f.protector.ProtectMessage(ctx, []byte(statement), recipients(f.customers[:tt.recipients], tt.gcm, tt.oaep), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(out, []byte("smime-type="+tt.smimeType)) {
				t.Fatalf("output is not %s:\n%s", tt.smimeType, head(out))
			}
			if !mime.SignatureSafe(out) {
				t.Fatal("protected output is not 7-bit signature-safe")
			}
			eml := filepath.Join(files.dir, tt.name+".eml")
			write(t, eml, out)
			for i := 0; i < tt.recipients; i++ {
				dec := interop.Run(t, nil, "openssl", "cms", "-decrypt", "-in", eml, "-recip", files.certs[i], "-inkey", files.keys[i])
				decFile := filepath.Join(files.dir, tt.name+"-dec.eml")
				write(t, decFile, dec)
				verified := interop.Run(t, nil, "openssl", "cms", "-verify", "-purpose", "smimesign", "-CAfile", files.ca, "-in", decFile)
				if !bytes.Contains(verified, []byte("statement.pdf")) || !bytes.Contains(verified, []byte("1 234,56 =E2=82=AC")) {
					t.Fatalf("recipient %d: verified content is not the statement:\n%s", i, verified)
				}
				content, sig := splitSigned(t, dec)
				if !bytes.Equal(normalizeLF(verified), normalizeLF(content)) {
					t.Fatalf("openssl verified different bytes than the signed part")
				}
				checkTimestamp(t, files, sig)
			}
		})
	}
}

func normalizeLF(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// checkTimestamp has openssl ts -verify check the token against the signature value it covers, and
// fail once that value is changed.
func checkTimestamp(t testing.TB, files pemFiles, sig []byte) {
	t.Helper()
	sigValue, token := timestampOf(t, sig)
	dataFile, tokFile := filepath.Join(files.dir, "sigvalue.bin"), filepath.Join(files.dir, "token.der")
	write(t, dataFile, sigValue)
	write(t, tokFile, token)
	interop.Run(t, nil, "openssl", "ts", "-verify", "-data", dataFile, "-in", tokFile, "-token_in", "-CAfile", files.ca, "-untrusted", files.tsa)
	bad := bytes.Clone(sigValue)
	bad[len(bad)/2] ^= 1
	write(t, dataFile, bad)
	if _, _, err := interop.Try(t, nil, "openssl", "ts", "-verify", "-data", dataFile, "-in", tokFile, "-token_in", "-CAfile", files.ca, "-untrusted", files.tsa); err == nil {
		t.Fatal("openssl ts -verify accepted the token over a different signature value")
	}
}

func TestOpenSSLVerifiesSignOnly(t *testing.T) {
	interop.Tool(t, "openssl")
	f := getFixture(t)
	files := f.files(t)
	out, err := f.protector.SignMessage(ctx, []byte(statement), Options{})
	if err != nil {
		t.Fatal(err)
	}
	eml := filepath.Join(files.dir, "signed.eml")
	write(t, eml, out)
	interop.Run(t, nil, "openssl", "cms", "-verify", "-purpose", "smimesign", "-CAfile", files.ca, "-in", eml)
	_, sig := splitSigned(t, out[bytes.Index(out, []byte("Content-Type: multipart/signed")):])
	checkTimestamp(t, files, sig)
}

// TestTamperedOutputFailsVerification flips one byte and expects the real peer to refuse: in the
// signed content of sign-only mail, and in the ciphertext of CBC and GCM mail.
func TestTamperedOutputFailsVerification(t *testing.T) {
	interop.Tool(t, "openssl")
	f := getFixture(t)
	files := f.files(t)
	t.Run("SignedContent", func(t *testing.T) {
		out, err := f.protector.SignMessage(ctx, []byte(statement), Options{})
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(out, []byte("JVBERi0x"))
		out[i] = 'K'
		write(t, filepath.Join(files.dir, "t.eml"), out)
		if _, _, err := interop.Try(t, nil, "openssl", "cms", "-verify", "-purpose", "smimesign", "-CAfile", files.ca, "-in", filepath.Join(files.dir, "t.eml")); err == nil {
			t.Fatal("openssl verified tampered content")
		}
	})
	for _, gcm := range []bool{false, true} {
		name := map[bool]string{false: "CBCCiphertext", true: "GCMCiphertext"}[gcm]
		t.Run(name, func(t *testing.T) {
			out, err := f.protector.ProtectMessage(ctx, []byte(statement), recipients(f.customers[:1], gcm, false), Options{})
			if err != nil {
				t.Fatal(err)
			}
			hdrEnd := bytes.Index(out, []byte("\r\n\r\n")) + 4
			der, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(out[hdrEnd:])))
			if err != nil {
				t.Fatal(err)
			}
			der[len(der)-200] ^= 0x01 // inside the encrypted content, before the GCM tag
			write(t, filepath.Join(files.dir, "t.der"), der)
			dec, _, err := interop.Try(t, nil, "openssl", "cms", "-decrypt", "-inform", "DER", "-in", filepath.Join(files.dir, "t.der"), "-recip", files.certs[0], "-inkey", files.keys[0])
			if err != nil {
				return // GCM (and CBC with broken padding) fail here
			}
			if gcm {
				t.Fatal("openssl decrypted tampered AES-GCM content")
			}
			write(t, filepath.Join(files.dir, "t.eml"), dec)
			if _, _, err := interop.Try(t, nil, "openssl", "cms", "-verify", "-purpose", "smimesign", "-CAfile", files.ca, "-in", filepath.Join(files.dir, "t.eml")); err == nil {
				t.Fatal("tampered CBC ciphertext decrypted to content that still verifies")
			}
		})
	}
}

func head(b []byte) []byte {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i > 0 {
		return b[:i]
	}
	return b
}

// TestOpenSSLDecryptsLargeMessage covers the multi-byte DER lengths of the hand-laid envelopes.
func TestOpenSSLDecryptsLargeMessage(t *testing.T) {
	interop.Tool(t, "openssl")
	f := getFixture(t)
	files := f.files(t)
	msg := message(1 << 20)
	for _, gcm := range []bool{false, true} {
		out, err := f.protector.ProtectMessage(ctx, msg, recipients(f.customers[:1], gcm, false), Options{})
		if err != nil {
			t.Fatal(err)
		}
		eml := filepath.Join(files.dir, "large.eml")
		write(t, eml, out)
		dec := interop.Run(t, nil, "openssl", "cms", "-decrypt", "-in", eml, "-recip", files.certs[0], "-inkey", files.keys[0])
		write(t, eml, dec)
		verified := interop.Run(t, nil, "openssl", "cms", "-verify", "-purpose", "smimesign", "-CAfile", files.ca, "-in", eml)
		content, _ := splitSigned(t, dec)
		if len(content) < 1_000_000 || !bytes.Equal(normalizeLF(verified), normalizeLF(content)) {
			t.Fatalf("gcm=%v: openssl verified %d bytes, want the whole %d-byte signed part", gcm, len(verified), len(content))
		}
	}
}

// TestOpenSSLReadsLargeStatements: statements whose plaintext ends at, just before and just after
// the edges of the chunks the CBC envelope is encrypted in (and a 3 MB one), CBC and GCM, are
// decrypted and verified by OpenSSL, and their signed content is the canonical statement byte for
// byte (the pieces of the signed entity are encrypted without being joined).
func TestOpenSSLReadsLargeStatements(t *testing.T) {
	interop.Tool(t, "openssl")
	f := getFixture(t)
	files := f.files(t)
	head := "From: statements@bank.example\r\nTo: customer0@example.com\r\nSubject: Statement\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"s1\"\r\n\r\n--s1\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n--s1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	line := strings.Repeat("QUJD", 19) + "\r\n" // 78 bytes
	for _, size := range []int{cbcChunk - 200, cbcChunk, cbcChunk + 90, 2*cbcChunk + 1000, 3 << 20} {
		for _, gcm := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/gcm=%v", size, gcm), func(t *testing.T) {
				msg := []byte(head + strings.Repeat(line, size/len(line)) + "--s1--\r\n")
				out, err := f.protector.ProtectMessage(ctx, msg, recipients(f.customers[:1], gcm, false), Options{})
				if err != nil {
					t.Fatal(err)
				}
				prep, err := mime.Prepare(msg, mime.Options{Encrypted: true})
				if err != nil {
					t.Fatal(err)
				}
				d, err := Decrypt(envelopeDER(t, out), f.customers[0])
				if err != nil {
					t.Fatal(err)
				}
				if content, _ := splitSigned(t, d.Content); !bytes.Equal(content, prep.Content()) {
					t.Fatalf("signed content (%d bytes) is not the canonical statement (%d bytes)", len(content), len(prep.Content()))
				}
				eml := filepath.Join(files.dir, "large.eml")
				write(t, eml, out)
				dec := interop.Run(t, nil, "openssl", "cms", "-decrypt", "-in", eml, "-recip", files.certs[0], "-inkey", files.keys[0])
				if !bytes.Equal(dec, d.Content) {
					t.Fatalf("OpenSSL decrypted %d bytes, sealpost %d", len(dec), len(d.Content))
				}
				decFile := filepath.Join(files.dir, "large-dec.eml")
				write(t, decFile, dec)
				interop.Run(t, nil, "openssl", "cms", "-verify", "-purpose", "smimesign", "-CAfile", files.ca, "-in", decFile, "-out", os.DevNull)
			})
		}
	}
}

// TestEnvelopeAtChunkEdges: plaintexts of every length around the CBC chunk's edges (where the
// padding fills or overflows the last chunk), given in uneven pieces, decrypt to the pieces joined,
// by sealpost's reader and by OpenSSL.
func TestEnvelopeAtChunkEdges(t *testing.T) {
	interop.Tool(t, "openssl")
	f := getFixture(t)
	files := f.files(t)
	for _, n := range []int{0, 1, 15, 16, 17, cbcChunk - 17, cbcChunk - 16, cbcChunk - 1, cbcChunk, cbcChunk + 1, 2 * cbcChunk} {
		for _, gcm := range []bool{false, true} {
			plain := make([]byte, n)
			for i := range plain {
				plain[i] = byte(i*31 + i>>8)
			}
			pieces := [][]byte{plain[:n/3], plain[n/3 : n/3], plain[n/3 : n-n/5], plain[n-n/5:]}
			out := mime.Base64Appender{}
			if err := envelope(&out, pieces, recipients(f.customers[:1], gcm, false)); err != nil {
				t.Fatal(err)
			}
			der, err := mime.DecodeBase64(out.Close())
			if err != nil {
				t.Fatal(err)
			}
			d, err := Decrypt(der, f.customers[0])
			if err != nil {
				t.Fatalf("%d bytes, gcm=%v: %v", n, gcm, err)
			}
			if !bytes.Equal(d.Content, plain) {
				t.Fatalf("%d bytes, gcm=%v: decrypted %d bytes that differ", n, gcm, len(d.Content))
			}
			if n == cbcChunk-16 || n == cbcChunk {
				in := filepath.Join(files.dir, "edge.der")
				write(t, in, der)
				dec := interop.Run(t, nil, "openssl", "cms", "-decrypt", "-inform", "DER", "-in", in, "-recip", files.certs[0], "-inkey", files.keys[0], "-binary")
				if !bytes.Equal(dec, plain) {
					t.Fatalf("%d bytes, gcm=%v: OpenSSL decrypted %d bytes that differ", n, gcm, len(dec))
				}
			}
		}
	}
}
