package tsa

// The CMS (RFC 5652) that sealpost writes: a SignedData with one signer, as an RFC 3161 token is and
// as smime's signatures are (smime uses these; tsa is the package it may import for them). It is the
// writing half only: tsa and smime read CMS with their own checks. Everything is DER, encoded with
// cryptobyte: the reflection-driven encoding/asn1 cost more than an ECDSA signature per token.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// oidAttrSigningTime is the signingTime attribute (RFC 5652 11.3).
var oidAttrSigningTime = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}

// build returns what f adds to a fresh builder.
func build(f func(b *cryptobyte.Builder)) ([]byte, error) {
	var b cryptobyte.Builder
	f(&b)
	return b.Bytes()
}

// CMSAttribute encodes an Attribute (RFC 5652 5.3) with one value, which value adds.
func CMSAttribute(oid asn1.ObjectIdentifier, value func(b *cryptobyte.Builder)) ([]byte, error) {
	return build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1(cbasn1.SET, value)
		})
	})
}

// signingTimeAttribute encodes the signingTime attribute for t, in UTC: UTCTime through 2049,
// GeneralizedTime from 2050 (RFC 5652 11.3).
func signingTimeAttribute(t time.Time) ([]byte, error) {
	t = t.UTC()
	return CMSAttribute(oidAttrSigningTime, func(b *cryptobyte.Builder) {
		if y := t.Year(); y >= 1950 && y < 2050 {
			b.AddASN1UTCTime(t)
		} else {
			b.AddASN1GeneralizedTime(t)
		}
	})
}

// messageDigestAttribute encodes the messageDigest attribute holding digest.
func messageDigestAttribute(digest []byte) ([]byte, error) {
	return CMSAttribute(oidAttrMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(digest) })
}

// signedAttributes sorts attrs (encoded Attributes) into DER SET OF order (X.690 11.6: no
// encoding of an Attribute is a prefix of another, so byte order is that order) and returns the
// DER of the SET OF: what the signature covers (RFC 5652 5.4), not the [0] they have in the
// SignerInfo.
func signedAttributes(attrs [][]byte) ([]byte, error) {
	slices.SortFunc(attrs, bytes.Compare)
	return build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			for _, a := range attrs {
				b.AddBytes(a)
			}
		})
	})
}

// SignatureAlgorithm is the signatureAlgorithm of a SignerInfo whose key signs SHA-256 digests:
// sha256WithRSAEncryption with NULL parameters (RFC 4055, RFC 5754 3.2), or ecdsa-with-SHA256.
func SignatureAlgorithm(pub crypto.PublicKey) ([]byte, error) {
	var alg asn1.ObjectIdentifier
	switch pub.(type) {
	case *rsa.PublicKey:
		alg = oidSHA256WithRSA
	case *ecdsa.PublicKey:
		alg = oidECDSAWithSHA256
	default:
		return nil, fmt.Errorf("unsupported key type %T", pub)
	}
	return build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(alg)
			if alg.Equal(oidSHA256WithRSA) {
				b.AddASN1NULL()
			}
		})
	})
}

// Sign completes sd's signed attributes and its signature: the attributes are fixed (what the
// caller encodes once) with a signingTime of at and a messageDigest of digest (the content's
// SHA-256), in DER SET OF order, and the signature is signer's over the SHA-256 of their SET OF
// encoding (RFC 5652 5.4: the SET OF tag, not the [0] they have in the SignerInfo).
func (sd *SignedData) Sign(signer crypto.Signer, at time.Time, digest []byte, fixed ...[]byte) error {
	signingTime, err := signingTimeAttribute(at)
	if err != nil {
		return err
	}
	messageDigest, err := messageDigestAttribute(digest)
	if err != nil {
		return err
	}
	attrs := append(slices.Clone(fixed), signingTime, messageDigest)
	set, err := signedAttributes(attrs)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(set)
	sig, err := signer.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return err
	}
	if len(sig) == 0 {
		return errors.New("empty signature")
	}
	sd.SignedAttrs, sd.Signature = attrs, sig
	return nil
}

// SignedData is a CMS SignedData with one signer, digested with SHA-256 and signed over signed
// attributes, as a ContentInfo.
type SignedData struct {
	Version      int64                 // 1 for id-data content, 3 otherwise (RFC 5652 5.1)
	ContentType  asn1.ObjectIdentifier // eContentType
	Content      []byte                // eContent; nil: detached
	Certificates []byte                // DER certificates, concatenated; nil: none
	SID          []byte                // the signer's IssuerAndSerialNumber
	SignedAttrs  [][]byte              // in DER SET OF order (Sign sets them)
	SigAlg       []byte                // signatureAlgorithm, an AlgorithmIdentifier
	Signature    []byte
	Unsigned     [][]byte // encoded unsigned Attributes; nil: none
}

// Marshal encodes sd as a ContentInfo.
func (sd *SignedData) Marshal() ([]byte, error) {
	sha256Alg := func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidSHA256) })
	}
	attrs := func(tag cbasn1.Tag, list [][]byte) func(b *cryptobyte.Builder) {
		return func(b *cryptobyte.Builder) {
			b.AddASN1(tag.ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				for _, a := range list {
					b.AddBytes(a)
				}
			})
		}
	}
	return build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ContentInfo
			b.AddASN1ObjectIdentifier(oidSignedData)
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1Int64(sd.Version)
					b.AddASN1(cbasn1.SET, sha256Alg)
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // encapContentInfo
						b.AddASN1ObjectIdentifier(sd.ContentType)
						if sd.Content != nil {
							b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddASN1OctetString(sd.Content) })
						}
					})
					if sd.Certificates != nil {
						b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddBytes(sd.Certificates) })
					}
					b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignerInfo
							b.AddASN1Int64(1)
							b.AddBytes(sd.SID)
							sha256Alg(b)
							attrs(0, sd.SignedAttrs)(b)
							b.AddBytes(sd.SigAlg)
							b.AddASN1OctetString(sd.Signature)
							if sd.Unsigned != nil {
								attrs(1, sd.Unsigned)(b)
							}
						})
					})
				})
			})
		})
	})
}

// IssuerAndSerial encodes a certificate's IssuerAndSerialNumber (RFC 5652 10.2.4).
func IssuerAndSerial(c *x509.Certificate) ([]byte, error) {
	return build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(c.RawIssuer)
			b.AddASN1BigInt(c.SerialNumber)
		})
	})
}
