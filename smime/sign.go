package smime

import (
	"context"
	"crypto/sha256"
	"encoding/asn1"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/sealpost/sealpost/tsa"
)

// signedParts are the encodings every signature of a Protector shares, made by NewProtector.
type signedParts struct {
	certs        []byte // the signer's chain (content of SignedData's [0] IMPLICIT certificates)
	sid          []byte // IssuerAndSerialNumber of the signer's certificate
	contentType  []byte // the contentType attribute (id-data)
	capabilities []byte // the SMIMECapabilities attribute (sealpostCapabilities)
	sigAlg       []byte // sha256WithRSAEncryption, its parameters NULL
}

func (p *Protector) encodeSignedParts() error {
	chain := p.signer.Chain
	var sp signedParts
	for _, c := range chain {
		sp.certs = append(sp.certs, c.Raw...)
	}
	var err error
	if sp.sid, err = tsa.IssuerAndSerial(chain[0]); err != nil {
		return err
	}
	if sp.sigAlg, err = tsa.SignatureAlgorithm(chain[0].PublicKey); err != nil {
		return err
	}
	if sp.contentType, err = tsa.CMSAttribute(oidAttrContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) }); err != nil {
		return err
	}
	caps, err := asn1.Marshal(sealpostCapabilities)
	if err != nil {
		return err
	}
	if sp.capabilities, err = tsa.CMSAttribute(oidSMIMECapabilities, func(b *cryptobyte.Builder) { b.AddBytes(caps) }); err != nil {
		return err
	}
	p.parts = &sp
	return nil
}

// detachedSignature returns a DER CMS SignedData over content (signDigest of its SHA-256).
func (p *Protector) detachedSignature(ctx context.Context, content []byte) ([]byte, error) {
	digest := sha256.Sum256(content)
	return p.signDigest(ctx, digest[:])
}

// signDigest returns a DER CMS SignedData over the content whose SHA-256 is digest, detached:
// SHA-256, RSA PKCS#1 v1.5 (sha256WithRSAEncryption, its parameters NULL as RFC 5754 3.2 says), the
// signed attributes contentType, signingTime (the Protector's clock), messageDigest and
// SMIMECapabilities, the signer's chain, and, when a timestamper is set, an RFC 3161 token over the
// signature value in the unsigned attribute id-aa-timeStampToken (RFC 3161 appendix A). It writes
// what smallstep/pkcs7 wrote, byte for byte (the golden files), without its reflection-driven
// encoding/asn1 or a copy of the content: only its digest is needed.
func (p *Protector) signDigest(ctx context.Context, digest []byte) ([]byte, error) {
	when := time.Now()
	if p.now != nil {
		when = p.now()
	}
	sp := p.parts
	sd := tsa.SignedData{Version: 1, ContentType: oidData, Certificates: sp.certs, SID: sp.sid, SigAlg: sp.sigAlg}
	if err := sd.Sign(p.signer.Signer, when, digest, sp.contentType, sp.capabilities); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if p.timestamper != nil {
		// The token covers the final signature value; unsigned attributes are outside the
		// signature, which is what makes this possible.
		tok, err := p.timestamper.Timestamp(ctx, sd.Signature)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTimestamp, err)
		}
		a, err := tsa.CMSAttribute(oidAttrTimeStampToken, func(b *cryptobyte.Builder) { b.AddBytes(tok.DER) })
		if err != nil {
			return nil, fmt.Errorf("%w: attach token: %w", ErrTimestamp, err)
		}
		sd.Unsigned = [][]byte{a}
	}
	out, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return out, nil
}
