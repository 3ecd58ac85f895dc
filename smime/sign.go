package smime

import (
	"context"
	"encoding/asn1"
	"fmt"

	"github.com/smallstep/pkcs7"
)

var capabilitiesAttr = func() asn1.RawValue {
	b, err := asn1.Marshal(sealpostCapabilities)
	if err != nil {
		panic(err)
	}
	return asn1.RawValue{FullBytes: b}
}()

// detachedSignature returns a DER CMS SignedData over content: SHA-256, RSA PKCS#1 v1.5, signed
// attributes contentType, signingTime, messageDigest and SMIMECapabilities, the signer's chain, and,
// when a timestamper is set, an RFC 3161 token over the signature value in the unsigned attribute
// id-aa-timeStampToken (RFC 3161 appendix A).
func (p *Protector) detachedSignature(ctx context.Context, content []byte) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	chain := p.signer.Chain
	err = sd.AddSignerChain(chain[0], p.signer.Signer, chain[1:], pkcs7.SignerInfoConfig{
		ExtraSignedAttributes: []pkcs7.Attribute{{Type: oidSMIMECapabilities, Value: capabilitiesAttr}},
	})
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	si := &sd.GetSignedData().SignerInfos[0]
	// pkcs7 leaves the parameters of sha256WithRSAEncryption out; RFC 5754 3.2 says they MUST be
	// NULL. The signature does not cover this field, so it is set after signing.
	if rsaPKCS1(si.DigestEncryptionAlgorithm.Algorithm) {
		si.DigestEncryptionAlgorithm.Parameters = asn1Null
	}
	if p.timestamper != nil {
		// The token must cover the final signature value, so it is added after signing; unsigned
		// attributes are outside the signature, which is what makes this possible.
		tok, err := p.timestamper.Timestamp(ctx, si.EncryptedDigest)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTimestamp, err)
		}
		err = si.SetUnauthenticatedAttributes([]pkcs7.Attribute{{Type: oidAttrTimeStampToken, Value: asn1.RawValue{FullBytes: tok.DER}}})
		if err != nil {
			return nil, fmt.Errorf("%w: attach token: %w", ErrTimestamp, err)
		}
	}
	sd.Detach()
	return sd.Finish()
}

// rsaPKCS1 reports whether oid is an RSA PKCS #1 v1.5 signature algorithm, whose parameters are NULL
// (RFC 8017 A.2.4, RFC 5754 3.2).
func rsaPKCS1(oid asn1.ObjectIdentifier) bool {
	for _, o := range []asn1.ObjectIdentifier{oidRSAEncryption, oidSHA256WithRSA, oidSHA384WithRSA, oidSHA512WithRSA} {
		if oid.Equal(o) {
			return true
		}
	}
	return false
}
