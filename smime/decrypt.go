package smime

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"

	"github.com/sealpost/sealpost/keys"
)

// Decrypted is the result of opening an enveloped message.
type Decrypted struct {
	Content []byte
	// Authenticated is true for AES-GCM AuthEnvelopedData. CBC content is not authenticated: whoever
	// knows the recipient's certificate can forge or modify it (EFAIL), so it may be trusted only
	// under a valid signature from the expected sender.
	Authenticated bool
	Algorithm     asn1.ObjectIdentifier
}

// Decrypt opens a DER EnvelopedData or AuthEnvelopedData ContentInfo with id's RSA key. It accepts
// recipients named by issuerAndSerialNumber or subjectKeyIdentifier and RSA PKCS#1 v1.5 or OAEP key
// transport. It never panics on hostile input.
func Decrypt(der []byte, id *keys.Identity) (d *Decrypted, err error) {
	defer func() {
		if r := recover(); r != nil {
			d, err = nil, fmt.Errorf("%w: CMS structure: %v", ErrMalformed, r)
		}
	}()
	env, err := parseEnveloped(der)
	if err != nil {
		return nil, err
	}
	// Whom the message is for comes first: mail to someone else is ErrNotForUs whatever cipher it
	// uses, so that its sender hears "not encrypted to the bank", not "unsupported algorithm".
	ri, err := recipientFor(env.ris, id.Certificate())
	if err != nil {
		return nil, err
	}
	dec := id.Decrypter()
	if dec == nil {
		return nil, fmt.Errorf("%w: key cannot decrypt", ErrUnsupported)
	}
	if env.authAttrs {
		return nil, fmt.Errorf("%w: authenticated attributes", ErrUnsupported)
	}
	keyLen, gcm, err := contentKeyLen(env.eci.ContentEncAlg.Algorithm)
	if err != nil {
		return nil, err
	}
	if gcm != env.auth {
		return nil, fmt.Errorf("%w: %v in the wrong envelope type", ErrUnsupported, env.eci.ContentEncAlg.Algorithm)
	}
	cek, err := unwrapKey(ri, dec, keyLen)
	if err != nil {
		return nil, err
	}
	return openContent(env, cek, gcm)
}

// enveloped is an EnvelopedData or AuthEnvelopedData (auth), as far as decryption needs it.
type enveloped struct {
	ris       []asn1.RawValue
	eci       encryptedContentInfo
	mac       []byte
	authAttrs bool
	auth      bool
}

// parseEnveloped reads the ContentInfo of an enveloped message.
func parseEnveloped(der []byte) (enveloped, error) {
	var ci contentInfo
	if rest, err := asn1.Unmarshal(der, &ci); err != nil || len(rest) != 0 {
		return enveloped{}, fmt.Errorf("%w: ContentInfo", ErrMalformed)
	}
	switch {
	case ci.ContentType.Equal(oidEnvelopedData):
		var ed envelopedData
		if _, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err != nil {
			return enveloped{}, fmt.Errorf("%w: EnvelopedData: %v", ErrMalformed, err)
		}
		return enveloped{ris: ed.RecipientInfos, eci: ed.EncryptedCI}, nil
	case ci.ContentType.Equal(oidAuthEnvelopedData):
		var ad authEnvelopedData
		if _, err := asn1.Unmarshal(ci.Content.Bytes, &ad); err != nil {
			return enveloped{}, fmt.Errorf("%w: AuthEnvelopedData: %v", ErrMalformed, err)
		}
		return enveloped{ris: ad.RecipientInfos, eci: ad.AuthEncryptCI, mac: ad.MAC, authAttrs: len(ad.AuthAttrs.FullBytes) != 0, auth: true}, nil
	}
	return enveloped{}, fmt.Errorf("%w: content type %v is not enveloped", ErrUnsupported, ci.ContentType)
}

// openContent decrypts the content with the content-encryption key: AES-GCM (checking the tag)
// or AES-CBC.
func openContent(env enveloped, cek []byte, gcm bool) (*Decrypted, error) {
	ct, err := octets(env.eci.EncryptedContent)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	out := &Decrypted{Authenticated: gcm, Algorithm: env.eci.ContentEncAlg.Algorithm}
	if gcm {
		out.Content, err = openGCM(block, env.eci.ContentEncAlg.Parameters.FullBytes, ct, env.mac)
	} else {
		out.Content, err = openCBC(block, env.eci.ContentEncAlg.Parameters.FullBytes, ct)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func contentKeyLen(alg asn1.ObjectIdentifier) (int, bool, error) {
	switch {
	case alg.Equal(oidAES128CBC):
		return 16, false, nil
	case alg.Equal(oidAES192CBC):
		return 24, false, nil
	case alg.Equal(oidAES256CBC):
		return 32, false, nil
	case alg.Equal(oidAES128GCM):
		return 16, true, nil
	case alg.Equal(oidAES192GCM):
		return 24, true, nil
	case alg.Equal(oidAES256GCM):
		return 32, true, nil
	}
	return 0, false, fmt.Errorf("%w: content encryption %v", ErrUnsupported, alg)
}

// octets returns the content of a [0] IMPLICIT OCTET STRING, primitive or (BER) constructed.
func octets(v asn1.RawValue) ([]byte, error) {
	if !v.IsCompound {
		return v.Bytes, nil
	}
	var out []byte
	for rest := v.Bytes; len(rest) > 0; {
		var chunk []byte
		var err error
		if rest, err = asn1.Unmarshal(rest, &chunk); err != nil {
			return nil, fmt.Errorf("%w: encrypted content: %v", ErrMalformed, err)
		}
		out = append(out, chunk...)
	}
	return out, nil
}

// recipientFor returns the key transport RecipientInfo that names cert, or ErrNotForUs.
func recipientFor(ris []asn1.RawValue, cert *x509.Certificate) (*keyTransRecipientInfo, error) {
	for _, raw := range ris {
		var ri keyTransRecipientInfo
		if _, err := asn1.Unmarshal(raw.FullBytes, &ri); err != nil {
			continue // kari, kekri, pwri, ori: not for an RSA key
		}
		if namesCertificate(ri.RID, cert) {
			return &ri, nil
		}
	}
	return nil, ErrNotForUs
}

// unwrapKey unwraps the content key from ri. PKCS#1 v1.5 unwrapping uses SessionKeyLen, so a bad
// padding yields a random key rather than an error an attacker could observe (Bleichenbacher); the
// content decryption then fails like any other corruption.
func unwrapKey(ri *keyTransRecipientInfo, dec crypto.Decrypter, keyLen int) ([]byte, error) {
	alg := ri.KeyEncAlg.Algorithm
	switch {
	case alg.Equal(oidRSAEncryption):
		//lint:ignore SA1019 customers' clients send PKCS#1 v1.5; implicit rejection makes it safe here
		return dec.Decrypt(rand.Reader, ri.EncryptedKey, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: keyLen})
	case alg.Equal(oidRSAESOAEP):
		h, mgf, err := oaepHashes(ri.KeyEncAlg.Parameters.FullBytes)
		if err != nil {
			return nil, err
		}
		cek, err := dec.Decrypt(rand.Reader, ri.EncryptedKey, &rsa.OAEPOptions{Hash: h, MGFHash: mgf})
		if err != nil || len(cek) != keyLen {
			return nil, ErrDecrypt
		}
		return cek, nil
	}
	return nil, fmt.Errorf("%w: key transport %v", ErrUnsupported, alg)
}

func namesCertificate(rid asn1.RawValue, cert *x509.Certificate) bool {
	if rid.Class == asn1.ClassContextSpecific && rid.Tag == 0 {
		return len(cert.SubjectKeyId) > 0 && bytes.Equal(rid.Bytes, cert.SubjectKeyId)
	}
	var ias issuerAndSerial
	if _, err := asn1.Unmarshal(rid.FullBytes, &ias); err != nil || ias.Serial == nil {
		return false
	}
	return bytes.Equal(ias.Issuer.FullBytes, cert.RawIssuer) && ias.Serial.Cmp(cert.SerialNumber) == 0
}

func oaepHashes(params []byte) (crypto.Hash, crypto.Hash, error) {
	h, mgf := crypto.SHA1, crypto.SHA1 // RFC 8017 defaults
	if len(params) == 0 {
		return h, mgf, nil
	}
	var p rsaesOAEPParams
	if _, err := asn1.Unmarshal(params, &p); err != nil {
		return 0, 0, fmt.Errorf("%w: OAEP parameters", ErrMalformed)
	}
	pick := func(alg pkix.AlgorithmIdentifier, def crypto.Hash) (crypto.Hash, error) {
		switch {
		case len(alg.Algorithm) == 0:
			return def, nil
		case alg.Algorithm.Equal(oidSHA256):
			return crypto.SHA256, nil
		case alg.Algorithm.Equal(asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}):
			return crypto.SHA1, nil
		}
		return 0, fmt.Errorf("%w: OAEP hash %v", ErrUnsupported, alg.Algorithm)
	}
	var err error
	if h, err = pick(p.Hash, h); err != nil {
		return 0, 0, err
	}
	if len(p.MGF.Algorithm) > 0 {
		var inner pkix.AlgorithmIdentifier
		if !p.MGF.Algorithm.Equal(oidMGF1) {
			return 0, 0, fmt.Errorf("%w: mask generation %v", ErrUnsupported, p.MGF.Algorithm)
		}
		if _, err := asn1.Unmarshal(p.MGF.Parameters.FullBytes, &inner); err != nil {
			return 0, 0, fmt.Errorf("%w: MGF1 parameters", ErrMalformed)
		}
		if mgf, err = pick(inner, mgf); err != nil {
			return 0, 0, err
		}
	}
	return h, mgf, nil
}

func openCBC(block cipher.Block, params, ct []byte) ([]byte, error) {
	var iv []byte
	if _, err := asn1.Unmarshal(params, &iv); err != nil || len(iv) != aes.BlockSize {
		return nil, fmt.Errorf("%w: CBC IV", ErrMalformed)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, ErrDecrypt
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, ErrDecrypt
	}
	for _, c := range pt[len(pt)-pad:] {
		if int(c) != pad {
			return nil, ErrDecrypt
		}
	}
	return pt[:len(pt)-pad], nil
}

func openGCM(block cipher.Block, params, ct, mac []byte) ([]byte, error) {
	var p gcmParameters
	if _, err := asn1.Unmarshal(params, &p); err != nil {
		return nil, fmt.Errorf("%w: GCM parameters", ErrMalformed)
	}
	if len(p.Nonce) != 12 || p.ICVLen < 12 || p.ICVLen > 16 || len(mac) != p.ICVLen {
		return nil, fmt.Errorf("%w: GCM nonce or tag length", ErrUnsupported)
	}
	aead, err := cipher.NewGCMWithTagSize(block, p.ICVLen)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, p.Nonce, append(ct[:len(ct):len(ct)], mac...), nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
