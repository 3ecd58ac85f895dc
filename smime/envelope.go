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

// envelope encrypts content for every recipient under one fresh AES-256 key: AES-256-GCM in
// AuthEnvelopedData when all recipients read it, else AES-256-CBC in EnvelopedData. It returns the
// DER ContentInfo and whether GCM was used.
func envelope(content []byte, to []Recipient) ([]byte, bool, error) {
	if len(to) == 0 {
		return nil, false, ErrNoRecipients
	}
	gcm := true
	for _, r := range to {
		gcm = gcm && r.GCM
	}
	cek := make([]byte, 32)
	if _, err := rand.Read(cek); err != nil {
		return nil, false, err
	}
	ris := make([]asn1.RawValue, len(to))
	for i, r := range to {
		ri, err := keyTransRecipient(r, cek)
		if err != nil {
			return nil, false, err
		}
		ris[i] = asn1.RawValue{FullBytes: ri}
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, false, err
	}
	var der []byte
	if gcm {
		der, err = sealGCM(block, content, ris)
	} else {
		der, err = sealCBC(block, content, ris)
	}
	return der, gcm, err
}

// The envelopes are laid out by hand around the ciphertext, which is encrypted in place in the final
// buffer: encoding/asn1 would copy a 10 MB ciphertext twice more.

func sealCBC(block cipher.Block, content []byte, ris []asn1.RawValue) ([]byte, error) {
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	ivDER, _ := asn1.Marshal(iv)
	pad := aes.BlockSize - len(content)%aes.BlockSize
	der, ct, err := layoutEnvelope(oidEnvelopedData, ris,
		pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: ivDER}}, len(content)+pad, nil)
	if err != nil {
		return nil, err
	}
	copy(ct, content)
	for i := len(content); i < len(ct); i++ {
		ct[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	return der, nil
}

func sealGCM(block cipher.Block, content []byte, ris []asn1.RawValue) ([]byte, error) {
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	params, err := asn1.Marshal(gcmParameters{Nonce: nonce, ICVLen: aead.Overhead()})
	if err != nil {
		return nil, err
	}
	tag := make([]byte, aead.Overhead())
	der, ct, err := layoutEnvelope(oidAuthEnvelopedData, ris,
		pkix.AlgorithmIdentifier{Algorithm: oidAES256GCM, Parameters: asn1.RawValue{FullBytes: params}}, len(content), tag)
	if err != nil {
		return nil, err
	}
	// No authAttrs, so the additional data is empty (RFC 5083 2.2). Seal writes ciphertext||tag;
	// the tag goes into the separate mac field that follows.
	sealed := aead.Seal(make([]byte, 0, len(content)+aead.Overhead()), nonce, content, nil)
	copy(ct, sealed[:len(content)])
	copy(der[len(der)-len(tag):], sealed[len(content):])
	return der, nil
}

// layoutEnvelope returns the DER of a ContentInfo holding an EnvelopedData (mac == nil) or an
// AuthEnvelopedData, version 0, with room for ctLen bytes of ciphertext, and the slice of it where
// the ciphertext goes. For AuthEnvelopedData the mac's bytes are reserved at the very end.
func layoutEnvelope(contentType asn1.ObjectIdentifier, ris []asn1.RawValue, alg pkix.AlgorithmIdentifier, ctLen int, mac []byte) ([]byte, []byte, error) {
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
	if mac != nil {
		bodyLen += tlvLen(len(mac))
	}
	explicitLen := tlvLen(bodyLen)
	total := tlvLen(len(typeOID) + tlvLen(explicitLen))

	der := make([]byte, 0, total)
	der = appendHeader(der, 0x30, len(typeOID)+tlvLen(explicitLen))
	der = append(der, typeOID...)
	der = appendHeader(der, 0xa0, explicitLen)
	der = appendHeader(der, 0x30, bodyLen)
	der = append(der, version...)
	der = append(der, setDER...)
	der = appendHeader(der, 0x30, eciLen)
	der = append(der, dataOID...)
	der = append(der, algDER...)
	der = appendHeader(der, 0x80, ctLen) // [0] IMPLICIT OCTET STRING
	start := len(der)
	der = der[:start+ctLen]
	if mac != nil {
		der = appendHeader(der, 0x04, len(mac))
		der = append(der, mac...)
	}
	if len(der) != total {
		return nil, nil, fmt.Errorf("envelope layout: %d bytes, expected %d", len(der), total)
	}
	return der, der[start : start+ctLen], nil
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
