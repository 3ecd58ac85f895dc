package smime

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/smallstep/pkcs7"
)

var capabilitiesAttr = func() asn1.RawValue {
	b, err := asn1.Marshal(sealpostCapabilities)
	if err != nil {
		panic(err)
	}
	return asn1.RawValue{FullBytes: b}
}()

// detachedSignature returns a DER CMS SignedData over content (signDigest of its SHA-256).
func (p *Protector) detachedSignature(ctx context.Context, content []byte) ([]byte, error) {
	digest := sha256.Sum256(content)
	return p.signDigest(ctx, digest[:])
}

// signDigest returns a DER CMS SignedData over the content whose SHA-256 is digest, detached:
// SHA-256, RSA PKCS#1 v1.5, signed attributes contentType, signingTime, messageDigest and
// SMIMECapabilities, the signer's chain, and, when a timestamper is set, an RFC 3161 token over the
// signature value in the unsigned attribute id-aa-timeStampToken (RFC 3161 appendix A).
//
// pkcs7 hashes the content it is given, which would need the content whole (a 10 MB statement
// copied once more, and encoded once more as an OCTET STRING it then drops). It is given none, signs
// with a stand-in, and the real key signs once the attributes hold digest (and the clock's time).
func (p *Protector) signDigest(ctx context.Context, digest []byte) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(nil)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	chain := p.signer.Chain
	err = sd.AddSignerChain(chain[0], deferredSigner{p.signer.Signer}, chain[1:], pkcs7.SignerInfoConfig{
		ExtraSignedAttributes: []pkcs7.Attribute{{Type: oidSMIMECapabilities, Value: capabilitiesAttr}},
	})
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	si := &sd.GetSignedData().SignerInfos[0]
	attrs := make([]attrOf, len(si.AuthenticatedAttributes))
	for i, a := range si.AuthenticatedAttributes {
		attrs[i] = attrOf(a)
	}
	if si.EncryptedDigest, err = p.signAttributes(attrs, digest); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	for i, a := range attrs {
		si.AuthenticatedAttributes[i].Type, si.AuthenticatedAttributes[i].Value = a.Type, a.Value
	}
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

// deferredSigner stands in for the signing key inside pkcs7: it has the key's public half (which
// names the algorithm) and an empty signature.
type deferredSigner struct{ crypto.Signer }

func (deferredSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, nil }

// attrOf is pkcs7's (unexported) attribute type: Attribute (RFC 5652 5.3).
type attrOf struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"set"`
}

// oidAttrSigningTime is the signingTime attribute (RFC 5652 11.3).
var oidAttrSigningTime = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}

// signAttributes sets the messageDigest attribute among attrs (pkcs7's signed attributes, changed
// in place) to digest and, with a clock set, the signingTime attribute to the Protector's clock,
// restores the DER SET OF order and signs their DER encoding (RFC 5652 5.4: the SET OF tag, not the
// [0] of the SignerInfo).
func (p *Protector) signAttributes(attrs []attrOf, digest []byte) ([]byte, error) {
	md, err := asn1.Marshal(digest)
	if err != nil {
		return nil, err
	}
	var when []byte
	if p.now != nil {
		if when, err = asn1.Marshal(p.now().UTC()); err != nil {
			return nil, err
		}
	}
	found := false
	for i := range attrs {
		switch {
		case attrs[i].Type.Equal(oidAttrMessageDigest):
			attrs[i].Value.Bytes, found = md, true
		case attrs[i].Type.Equal(oidAttrSigningTime) && when != nil:
			attrs[i].Value.Bytes = when
		}
	}
	if !found {
		return nil, errors.New("no messageDigest attribute to set")
	}
	enc := make([][]byte, len(attrs))
	for i := range attrs {
		if enc[i], err = asn1.Marshal(attrs[i]); err != nil {
			return nil, err
		}
	}
	sort.Sort(byEncoding{attrs, enc})
	set, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: bytes.Join(enc, nil)})
	if err != nil {
		return nil, err
	}
	signed := sha256.Sum256(set)
	sig, err := p.signer.Signer.Sign(rand.Reader, signed[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	if len(sig) == 0 {
		return nil, errors.New("empty signature")
	}
	return sig, nil
}

// byEncoding sorts attributes by their DER encodings (X.690 11.6, SET OF).
type byEncoding struct {
	attrs []attrOf
	enc   [][]byte
}

func (b byEncoding) Len() int           { return len(b.attrs) }
func (b byEncoding) Less(i, j int) bool { return bytes.Compare(b.enc[i], b.enc[j]) < 0 }
func (b byEncoding) Swap(i, j int) {
	b.attrs[i], b.attrs[j] = b.attrs[j], b.attrs[i]
	b.enc[i], b.enc[j] = b.enc[j], b.enc[i]
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
