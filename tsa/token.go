package tsa

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"
)

// Token is an RFC 3161 TimeStampToken.
type Token struct {
	// DER is the TimeStampToken (a ContentInfo holding SignedData) exactly as it goes into a CMS
	// id-aa-timeStampToken unsigned attribute.
	DER []byte
	// Time is the token's genTime.
	Time time.Time
	// Serial is the TSA's serial number of the token.
	Serial *big.Int
	// Policy is the TSA policy under which the token was issued.
	Policy asn1.ObjectIdentifier
	// Authority is the TSA certificate that signed the token.
	Authority *x509.Certificate
}

// Timestamper obtains a token whose message imprint is SHA-256(message). Authority and Client
// implement it; both are safe for concurrent use.
type Timestamper interface {
	Timestamp(ctx context.Context, message []byte) (*Token, error)
}

var (
	_ Timestamper = (*Authority)(nil)
	_ Timestamper = (*Client)(nil)
)

// parsedToken is a TimeStampToken taken apart, not yet verified.
type parsedToken struct {
	sd     signedData
	signer signerInfo
	info   tstInfo
	certs  []*x509.Certificate
}

// parseToken decodes a TimeStampToken without checking anything cryptographic. It insists on the
// shape RFC 3161 section 2.4.2 gives a token: signedData, one signer, eContentType id-ct-TSTInfo.
func parseToken(der []byte) (*parsedToken, error) {
	var ci contentInfo
	if err := unmarshalDER(der, &ci); err != nil {
		return nil, fmt.Errorf("%w: ContentInfo: %v", ErrMalformed, err)
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, fmt.Errorf("%w: content type %s, want signedData", ErrMalformed, ci.ContentType)
	}
	p := new(parsedToken)
	if err := unmarshalDER(ci.Content.Bytes, &p.sd); err != nil {
		return nil, fmt.Errorf("%w: SignedData: %v", ErrMalformed, err)
	}
	if !p.sd.EncapContentInfo.EContentType.Equal(oidTSTInfo) {
		return nil, fmt.Errorf("%w: eContentType %s, want id-ct-TSTInfo", ErrMalformed, p.sd.EncapContentInfo.EContentType)
	}
	// RFC 3161 2.4.2: the token is signed by the TSA alone. A second signer could only confuse which
	// certificate the caller believes signed it.
	if len(p.sd.SignerInfos) != 1 {
		return nil, fmt.Errorf("%w: %d signers, want 1", ErrMalformed, len(p.sd.SignerInfos))
	}
	p.signer = p.sd.SignerInfos[0]
	if err := unmarshalDER(p.sd.EncapContentInfo.EContent, &p.info); err != nil {
		return nil, fmt.Errorf("%w: TSTInfo: %v", ErrMalformed, err)
	}
	if p.info.Version != 1 {
		return nil, fmt.Errorf("%w: TSTInfo version %d", ErrMalformed, p.info.Version)
	}
	if len(p.info.Policy) == 0 || p.info.SerialNumber == nil {
		return nil, fmt.Errorf("%w: TSTInfo without policy or serial number", ErrMalformed)
	}
	return p, nil
}

// parseCertificates decodes the certificates the token carries. It is separate from parseToken
// because certificate parsing is the costly part, and the Authority, which re-reads its own tokens,
// does not need it.
func (p *parsedToken) parseCertificates() error {
	if len(p.sd.Certificates.FullBytes) == 0 {
		return nil
	}
	certs, err := x509.ParseCertificates(p.sd.Certificates.Bytes)
	if err != nil {
		return fmt.Errorf("%w: certificates: %v", ErrMalformed, err)
	}
	p.certs = certs
	return nil
}

// signerCertificate finds the certificate named by the signer's sid among the embedded ones.
func (p *parsedToken) signerCertificate() (*x509.Certificate, error) {
	sid := p.signer.SID
	switch {
	case sid.Class == asn1.ClassUniversal && sid.Tag == asn1.TagSequence:
		var ias issuerAndSerialNumber
		if err := unmarshalDER(sid.FullBytes, &ias); err != nil || ias.Serial == nil {
			return nil, fmt.Errorf("%w: signer identifier: %v", ErrMalformed, err)
		}
		for _, c := range p.certs {
			if c.SerialNumber.Cmp(ias.Serial) == 0 && string(c.RawIssuer) == string(ias.Issuer.FullBytes) {
				return c, nil
			}
		}
	case sid.Class == asn1.ClassContextSpecific && sid.Tag == 0 && !sid.IsCompound:
		for _, c := range p.certs {
			if len(c.SubjectKeyId) > 0 && string(c.SubjectKeyId) == string(sid.Bytes) {
				return c, nil
			}
		}
	default:
		return nil, fmt.Errorf("%w: signer identifier of unknown form", ErrMalformed)
	}
	// Without the certificate nothing can be checked; RFC 3161 makes the TSA include it when the
	// request says certReq, and this package always asks.
	return nil, fmt.Errorf("%w: token does not carry the signer's certificate", ErrUntrustedAuthority)
}

// recoverMalformed turns a panic in a parser into ErrMalformed. Parsers of network input are run
// under it so that a crafted token or query can never bring the gateway down.
func recoverMalformed(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: parser panic: %v", ErrMalformed, r)
	}
}
