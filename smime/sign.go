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
	if p.timestamper != nil {
		// The token must cover the final signature value, so it is added after signing; unsigned
		// attributes are outside the signature, which is what makes this possible.
		si := &sd.GetSignedData().SignerInfos[0]
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
