package smime

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"

	"github.com/sealpost/sealpost/mime"
)

// Recipient is one certificate to encrypt to, with what its client is known to read.
type Recipient struct {
	Certificate *x509.Certificate
	// GCM: the recipient's client reads AES-GCM AuthEnvelopedData (RFC 5083/5084), e.g. because its
	// signed mail announced it in SMIMECapabilities. A message uses GCM only if every recipient does.
	GCM bool
	// OAEP: wrap the content key with RSAES-OAEP (SHA-256, MGF1-SHA-256) instead of PKCS#1 v1.5.
	OAEP bool
}

// envelope encrypts content (the pieces joined) for every recipient under one fresh AES-256 key:
// AES-256-GCM in AuthEnvelopedData when all recipients read it, else AES-256-CBC in EnvelopedData.
// It appends the DER ContentInfo's RFC 2045 base64 to out, never holding the DER whole.
func envelope(out *mime.Base64Appender, content [][]byte, to []Recipient) error {
	if len(to) == 0 {
		return ErrNoRecipients
	}
	cek := make([]byte, 32)
	if _, err := rand.Read(cek); err != nil {
		return err
	}
	ris := make([]asn1.RawValue, len(to))
	for i, r := range to {
		ri, err := keyTransRecipient(r, cek)
		if err != nil {
			return err
		}
		ris[i] = asn1.RawValue{FullBytes: ri}
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return err
	}
	if allGCM(to) {
		return sealGCM(out, block, content, ris)
	}
	return sealCBC(out, block, content, ris)
}

// envelopeLen is the length of the pieces joined: the plaintext.
func envelopeLen(content [][]byte) int {
	n := 0
	for _, c := range content {
		n += len(c)
	}
	return n
}

// The envelopes are framed by hand around the ciphertext, which goes straight into the base64:
// encoding/asn1 would copy a 10 MB ciphertext twice more, and the DER whole would be one more.

// cbcChunk is how much plaintext sealCBC encrypts at a time: a multiple of the block size.
const cbcChunk = 64 << 10

func sealCBC(out *mime.Base64Appender, block cipher.Block, content [][]byte, ris []asn1.RawValue) error {
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(iv); err != nil {
		return err
	}
	ivDER, _ := asn1.Marshal(iv)
	n := envelopeLen(content)
	pad := aes.BlockSize - n%aes.BlockSize
	head, _, err := frameEnvelope(oidEnvelopedData, ris,
		pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: ivDER}}, n+pad, 0)
	if err != nil {
		return err
	}
	out.Write(head)
	// The pieces are encrypted through one buffer; the mode carries the chaining across calls.
	cbc := cipher.NewCBCEncrypter(block, iv)
	buf := make([]byte, 0, min(cbcChunk, n+pad))
	flush := func() {
		cbc.CryptBlocks(buf, buf)
		out.Write(buf)
		buf = buf[:0]
	}
	for _, c := range content {
		for len(c) > 0 {
			k := min(len(c), cap(buf)-len(buf))
			buf, c = append(buf, c[:k]...), c[k:]
			if len(buf) == cap(buf) {
				flush()
			}
		}
	}
	for range pad {
		if len(buf) == cap(buf) {
			flush()
		}
		buf = append(buf, byte(pad))
	}
	flush()
	return nil
}

func sealGCM(out *mime.Base64Appender, block cipher.Block, content [][]byte, ris []asn1.RawValue) error {
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	params, err := asn1.Marshal(gcmParameters{Nonce: nonce, ICVLen: aead.Overhead()})
	if err != nil {
		return err
	}
	n := envelopeLen(content)
	head, macHead, err := frameEnvelope(oidAuthEnvelopedData, ris,
		pkix.AlgorithmIdentifier{Algorithm: oidAES256GCM, Parameters: asn1.RawValue{FullBytes: params}}, n, aead.Overhead())
	if err != nil {
		return err
	}
	// GCM seals a whole plaintext: the pieces are joined once, into a buffer with room for the tag,
	// and sealed in place. No authAttrs, so the additional data is empty (RFC 5083 2.2). Seal
	// writes ciphertext||tag; the tag goes into the separate mac field that follows.
	pt := make([]byte, 0, n+aead.Overhead())
	for _, c := range content {
		pt = append(pt, c...)
	}
	sealed := aead.Seal(pt[:0], nonce, pt, nil)
	out.Write(head)
	out.Write(sealed[:n])
	out.Write(macHead)
	out.Write(sealed[n:])
	return nil
}

// frameEnvelope returns the DER of a ContentInfo holding an EnvelopedData (macLen 0) or an
// AuthEnvelopedData, version 0, with ctLen bytes of ciphertext, in two pieces: head, all that comes
// before the ciphertext, and macHead, the mac's tag and length after it (nil for EnvelopedData), so
// that the DER is head, the ciphertext, macHead and the macLen bytes of the mac.
func frameEnvelope(contentType asn1.ObjectIdentifier, ris []asn1.RawValue, alg pkix.AlgorithmIdentifier, ctLen, macLen int) (head, macHead []byte, err error) {
	setDER, err := asn1.MarshalWithParams(ris, "set")
	if err != nil {
		return nil, nil, err
	}
	dataOID, _ := asn1.Marshal(oidData)
	algDER, err := asn1.Marshal(alg)
	if err != nil {
		return nil, nil, err
	}
	typeOID, _ := asn1.Marshal(contentType)
	version := []byte{0x02, 0x01, 0x00}

	eciLen := len(dataOID) + len(algDER) + tlvLen(ctLen)
	bodyLen := len(version) + len(setDER) + tlvLen(eciLen)
	if macLen > 0 {
		bodyLen += tlvLen(macLen)
	}
	explicitLen := tlvLen(bodyLen)
	total := tlvLen(len(typeOID) + tlvLen(explicitLen))

	head = appendHeader(nil, 0x30, len(typeOID)+tlvLen(explicitLen))
	head = append(head, typeOID...)
	head = appendHeader(head, 0xa0, explicitLen)
	head = appendHeader(head, 0x30, bodyLen)
	head = append(head, version...)
	head = append(head, setDER...)
	head = appendHeader(head, 0x30, eciLen)
	head = append(head, dataOID...)
	head = append(head, algDER...)
	head = appendHeader(head, 0x80, ctLen) // [0] IMPLICIT OCTET STRING
	if macLen > 0 {
		macHead = appendHeader(nil, 0x04, macLen)
	}
	if n := len(head) + ctLen + len(macHead) + macLen; n != total {
		return nil, nil, fmt.Errorf("envelope layout: %d bytes, expected %d", n, total)
	}
	return head, macHead, nil
}

// tlvLen is the size of a DER element whose content is n bytes (one-byte tag).
func tlvLen(n int) int { return len(appendHeader(nil, 0, n)) + n }

// appendHeader appends a DER tag and definite length.
func appendHeader(b []byte, tag byte, n int) []byte {
	b = append(b, tag)
	if n < 0x80 {
		return append(b, byte(n))
	}
	var l []byte
	for v := n; v > 0; v >>= 8 {
		l = append([]byte{byte(v)}, l...)
	}
	b = append(b, 0x80|byte(len(l)))
	return append(b, l...)
}

// keyTransRecipient wraps cek for r, naming the certificate by issuer and serial number, which every
// client understands.
func keyTransRecipient(r Recipient, cek []byte) ([]byte, error) {
	pub, ok := r.Certificate.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: recipient key is %T, not RSA", ErrUnsupported, r.Certificate.PublicKey)
	}
	var alg pkix.AlgorithmIdentifier
	var ek []byte
	var err error
	if r.OAEP {
		ek, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, cek, nil)
		alg = pkix.AlgorithmIdentifier{Algorithm: oidRSAESOAEP, Parameters: oaepSHA256Params}
	} else {
		// PKCS#1 v1.5 is the default key transport because it is what every mail client reads (NSS
		// 3.87 reads nothing else); OAEP is opt-in per recipient. Bleichenbacher-style oracles are
		// a decryption-side concern, handled in Decrypt.
		//lint:ignore SA1019 deliberate for interoperability, see above
		ek, err = rsa.EncryptPKCS1v15(rand.Reader, pub, cek)
		alg = pkix.AlgorithmIdentifier{Algorithm: oidRSAEncryption, Parameters: asn1Null}
	}
	if err != nil {
		return nil, fmt.Errorf("wrap content key: %w", err)
	}
	ias, err := asn1.Marshal(issuerAndSerial{Issuer: asn1.RawValue{FullBytes: r.Certificate.RawIssuer}, Serial: r.Certificate.SerialNumber})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(keyTransRecipientInfo{Version: 0, RID: asn1.RawValue{FullBytes: ias}, KeyEncAlg: alg, EncryptedKey: ek})
}

// oaepSHA256Params spells out SHA-256 and MGF1-SHA-256: the defaults would be SHA-1, and leaving
// the MGF out is what makes other libraries' output unreadable to OpenSSL (LIBRARIES.md).
var oaepSHA256Params = func() asn1.RawValue {
	sha := pkix.AlgorithmIdentifier{Algorithm: oidSHA256}
	shaDER, _ := asn1.Marshal(sha)
	b, err := asn1.Marshal(rsaesOAEPParams{Hash: sha, MGF: pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: shaDER}}})
	if err != nil {
		panic(err)
	}
	return asn1.RawValue{FullBytes: b}
}()

// marshalContentInfo wraps inner in a ContentInfo. The [0] EXPLICIT tag is written by hand: encoding/asn1
// ignores "explicit" on a RawValue field when marshalling.
func marshalContentInfo(contentType asn1.ObjectIdentifier, inner []byte) ([]byte, error) {
	return asn1.Marshal(contentInfo{ContentType: contentType,
		Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}})
}
