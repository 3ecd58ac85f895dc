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
	var inner []byte
	var contentType asn1.ObjectIdentifier
	if gcm {
		contentType = oidAuthEnvelopedData
		inner, err = sealGCM(block, content, ris)
	} else {
		contentType = oidEnvelopedData
		inner, err = sealCBC(block, content, ris)
	}
	if err != nil {
		return nil, false, err
	}
	der, err := marshalContentInfo(contentType, inner)
	return der, gcm, err
}

func sealCBC(block cipher.Block, content []byte, ris []asn1.RawValue) ([]byte, error) {
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(content)%aes.BlockSize
	ct := make([]byte, len(content)+pad)
	copy(ct, content)
	for i := len(content); i < len(ct); i++ {
		ct[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	ivDER, _ := asn1.Marshal(iv)
	return asn1.Marshal(envelopedData{
		Version:        0, // RFC 5652 6.1: only v0 KeyTransRecipientInfos, no originator, no attributes
		RecipientInfos: ris,
		EncryptedCI: encryptedContentInfo{
			ContentType:      oidData,
			ContentEncAlg:    pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: ivDER}},
			EncryptedContent: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: ct},
		},
	})
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
	// No authAttrs, so the additional data is empty (RFC 5083 2.2).
	sealed := aead.Seal(nil, nonce, content, nil)
	ct, tag := sealed[:len(content)], sealed[len(content):]
	params, err := asn1.Marshal(gcmParameters{Nonce: nonce, ICVLen: aead.Overhead()})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(authEnvelopedData{
		Version:        0,
		RecipientInfos: ris,
		AuthEncryptCI: encryptedContentInfo{
			ContentType:      oidData,
			ContentEncAlg:    pkix.AlgorithmIdentifier{Algorithm: oidAES256GCM, Parameters: asn1.RawValue{FullBytes: params}},
			EncryptedContent: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: ct},
		},
		MAC: tag,
	})
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
