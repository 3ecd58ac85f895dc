package tsa

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The Authority writes its tokens itself rather than through digitorus/timestamp and pkcs7: their
// reflection-driven encoding/asn1 cost twice the ECDSA signature each token (a token was 6% of a
// relayed message's CPU). What is the same in every token is encoded once, in tokenParts; a token
// adds its TSTInfo, three attributes and the signature (cms.go writes the SignedData, as it
// does S/MIME's). The shape is the one those libraries gave:
//
//	ContentInfo { signedData, [0] SignedData {
//	  version 3, digestAlgorithms { sha256 },
//	  encapContentInfo { id-ct-TSTInfo, [0] OCTET STRING TSTInfo {
//	    version 1, policy, messageImprint, serialNumber (159 random bits), genTime (whole seconds, Z),
//	    accuracy { seconds 1 }, nonce (when asked), tsa [0] { [4] the TSA certificate's subject } } },
//	  certificates [0] (the TSA certificate and its intermediates, when asked),
//	  signerInfos { { version 1, issuerAndSerialNumber, sha256,
//	    signedAttrs [0] { contentType, signingTime, messageDigest, signingCertificateV2 (RFC 5035) },
//	    sha256WithRSAEncryption or ecdsa-with-SHA256, signature } } } }

var (
	errTokenEncoding    = fmt.Errorf("%w: encoding a token", ErrUnavailable)
	oidHashAlgorithmFor = map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA256: oidSHA256, crypto.SHA384: oidSHA384, crypto.SHA512: oidSHA512}
)

// tokenParts are the encodings every token of an Authority shares.
type tokenParts struct {
	policy      []byte // the policy OID
	tsaName     []byte // TSTInfo's tsa field
	chain       []byte // the certificates (content of SignedData's [0] IMPLICIT certificates)
	sid         []byte // IssuerAndSerialNumber of the TSA certificate
	sigAlg      []byte // SignerInfo's signatureAlgorithm
	contentType []byte // the contentType attribute
	ess         []byte // the signingCertificateV2 attribute
}

func newTokenParts(cert *x509.Certificate, parents []*x509.Certificate, policy asn1.ObjectIdentifier, pub crypto.PublicKey) (*tokenParts, error) {
	p := &tokenParts{}
	var err error
	if p.policy, err = build(func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(policy) }); err != nil {
		return nil, err
	}
	if p.tsaName, err = build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(4).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddBytes(cert.RawSubject) })
		})
	}); err != nil {
		return nil, err
	}
	p.chain = slices.Clone(cert.Raw)
	for _, c := range parents {
		p.chain = append(p.chain, c.Raw...)
	}
	if p.sid, err = IssuerAndSerial(cert); err != nil {
		return nil, err
	}
	if p.sigAlg, err = SignatureAlgorithm(pub); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidAuthority, err)
	}
	if p.contentType, err = CMSAttribute(oidAttrContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidTSTInfo) }); err != nil {
		return nil, err
	}
	certHash := sha256.Sum256(cert.Raw)
	if p.ess, err = CMSAttribute(oidAttrSigningCertificateV2, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SigningCertificateV2
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // certs
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ESSCertIDv2, hashAlgorithm sha256 by default
					b.AddASN1OctetString(certHash[:])
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // IssuerSerial
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // GeneralNames
							b.AddASN1(cbasn1.Tag(4).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddBytes(cert.RawIssuer) })
						})
						b.AddASN1BigInt(cert.SerialNumber)
					})
				})
			})
		})
	}); err != nil {
		return nil, err
	}
	return p, nil
}

// issuedToken is a TimeStampToken the Authority made, with what it put in it.
type issuedToken struct {
	der     []byte
	genTime time.Time
	serial  *big.Int
}

// token signs a TimeStampToken over digest (made with h). Only the TSA's own choices are made
// here; the caller has already checked the request.
func (a *Authority) token(h crypto.Hash, digest []byte, nonce *big.Int, certReq bool) (*issuedToken, error) {
	now := a.now()
	if err := a.checkValidity(now); err != nil {
		return nil, err
	}
	hashOID, ok := oidHashAlgorithmFor[h]
	if !ok || len(digest) != h.Size() {
		return nil, fmt.Errorf("%w: message imprint with %v", ErrUnavailable, h)
	}
	var sn [20]byte
	if _, err := rand.Read(sn[:]); err != nil {
		return nil, fmt.Errorf("%w: serial number: %w", ErrUnavailable, err)
	}
	sn[0] &= 0x7f // positive in 20 octets (RFC 3161: up to 160 bits)
	t := &issuedToken{genTime: now.UTC().Truncate(time.Second), serial: new(big.Int).SetBytes(sn[:])}
	p := a.parts
	info, err := build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1Int64(1)
			b.AddBytes(p.policy)
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // messageImprint
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(hashOID)
					b.AddASN1NULL()
				})
				b.AddASN1OctetString(digest)
			})
			b.AddASN1BigInt(t.serial)
			b.AddASN1GeneralizedTime(t.genTime)
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1Int64(int64(tokenAccuracy / time.Second)) })
			if nonce != nil {
				b.AddASN1BigInt(nonce)
			}
			b.AddBytes(p.tsaName)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errTokenEncoding, err)
	}
	infoDigest := sha256.Sum256(info)
	sd := SignedData{Version: 3, ContentType: oidTSTInfo, Content: info, SID: p.sid, SigAlg: p.sigAlg}
	if err := sd.Sign(a.signer, t.genTime, infoDigest[:], p.contentType, p.ess); err != nil {
		return nil, fmt.Errorf("%w: signing token: %w", ErrUnavailable, err)
	}
	if certReq {
		sd.Certificates = p.chain
	}
	if t.der, err = sd.Marshal(); err != nil {
		return nil, fmt.Errorf("%w: %w", errTokenEncoding, err)
	}
	return t, nil
}

// grantedResponse wraps a token in a TimeStampResp with status granted.
func grantedResponse(token []byte) ([]byte, error) {
	return build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1Int64(0) })
			b.AddBytes(token)
		})
	})
}
