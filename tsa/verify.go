package tsa

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"time"
)

// Verify checks a TimeStampToken on its own and returns it, decoded, only if all of these hold:
//
//   - der is one DER ContentInfo of SignedData with one signer and eContentType id-ct-TSTInfo, and the
//     signed content-type attribute says id-ct-TSTInfo too;
//   - the signed message-digest attribute matches the TSTInfo and the CMS signature over the signed
//     attributes verifies with the embedded signer certificate (RSA PKCS #1 v1.5 or ECDSA, with
//     SHA-256/384/512);
//   - the message imprint is SHA-256, SHA-384 or SHA-512 of message (SHA-1 and MD5 are refused);
//   - the signing-certificate attribute (ESSCertIDv2, or ESSCertID) names the signer certificate;
//   - the signer certificate chains to roots at genTime, with the timeStamping extended key usage as its
//     only EKU, marked critical (RFC 3161 section 2.3).
//
// roots must not be nil (nil would mean the system roots, which are not time-stamping roots). The
// token must carry its TSA certificate; intermediate certificates it carries are used to build the
// chain. Verify does not check revocation, nor a nonce (it has none to compare; Client does).
func Verify(der []byte, message []byte, roots *x509.CertPool) (tok *Token, err error) {
	defer recoverMalformed(&err)
	tok, _, err = verify(der, message, roots)
	return tok, err
}

// verify is Verify without the recover, so that fuzzing sees panics instead of ErrMalformed. It also
// returns the TSTInfo for the Client's nonce check.
func verify(der []byte, message []byte, roots *x509.CertPool) (*Token, *tstInfo, error) {
	if roots == nil {
		return nil, nil, fmt.Errorf("%w: no trusted roots given", ErrUntrustedAuthority)
	}
	p, err := parseToken(der)
	if err != nil {
		return nil, nil, err
	}
	if err := p.parseCertificates(); err != nil {
		return nil, nil, err
	}
	cert, err := p.signerCertificate()
	if err != nil {
		return nil, nil, err
	}
	attrs, err := p.checkSignature(cert)
	if err != nil {
		return nil, nil, err
	}
	if err := checkImprint(p.info.MessageImprint, message); err != nil {
		return nil, nil, err
	}
	if err := checkSigningCertificate(attrs, cert); err != nil {
		return nil, nil, err
	}
	if err := checkAuthority(cert, p.certs, roots, p.info.GenTime); err != nil {
		return nil, nil, err
	}
	tok := &Token{
		DER:       bytes.Clone(der),
		Time:      p.info.GenTime,
		Serial:    p.info.SerialNumber,
		Policy:    p.info.Policy,
		Authority: cert,
	}
	return tok, &p.info, nil
}

// checkSignature verifies the CMS signature (RFC 5652 section 5.4) and returns the signed attributes.
func (p *parsedToken) checkSignature(cert *x509.Certificate) (map[string][]byte, error) {
	si := p.signer
	digestHash, ok := strongHash(si.DigestAlgorithm.Algorithm)
	if !ok {
		return nil, fmt.Errorf("%w: signature digest %s", ErrUnsupportedAlgorithm, hashName(si.DigestAlgorithm.Algorithm))
	}
	sigAlg, err := signatureAlgorithm(si.SignatureAlgorithm.Algorithm, digestHash)
	if err != nil {
		return nil, err
	}
	// A token must have signed attributes: the signing-certificate attribute is mandatory (RFC 3161
	// section 2.4.2), and without attributes the content type would not be signed.
	if len(si.SignedAttrs.FullBytes) == 0 || !si.SignedAttrs.IsCompound {
		return nil, fmt.Errorf("%w: no signed attributes", ErrBadSignature)
	}
	attrs, err := parseAttributes(si.SignedAttrs.Bytes)
	if err != nil {
		return nil, err
	}

	var contentType asn1.ObjectIdentifier
	if err := unmarshalDER(attrs[oidAttrContentType.String()], &contentType); err != nil {
		return nil, fmt.Errorf("%w: content-type attribute: %v", ErrBadSignature, err)
	}
	if !contentType.Equal(oidTSTInfo) {
		return nil, fmt.Errorf("%w: signed content type %s, want id-ct-TSTInfo", ErrBadSignature, contentType)
	}
	var digest []byte
	if err := unmarshalDER(attrs[oidAttrMessageDigest.String()], &digest); err != nil {
		return nil, fmt.Errorf("%w: message-digest attribute: %v", ErrBadSignature, err)
	}
	h := digestHash.New()
	h.Write(p.sd.EncapContentInfo.EContent)
	if !bytes.Equal(h.Sum(nil), digest) {
		return nil, fmt.Errorf("%w: message-digest attribute does not match the TSTInfo", ErrBadSignature)
	}

	// The signature covers the DER of the attributes as a SET (RFC 5652 section 5.4): the received
	// bytes with the [0] IMPLICIT tag replaced by the universal SET tag.
	signed := bytes.Clone(si.SignedAttrs.FullBytes)
	signed[0] = 0x31
	if err := cert.CheckSignature(sigAlg, signed, si.Signature); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return attrs, nil
}

// signatureAlgorithm maps a SignerInfo's signatureAlgorithm and digest to what x509 verifies. A
// signature OID that names a hash must agree with the digest algorithm, so that the token cannot say
// two different things about how it was signed.
func signatureAlgorithm(oid asn1.ObjectIdentifier, h crypto.Hash) (x509.SignatureAlgorithm, error) {
	var (
		alg   x509.SignatureAlgorithm
		fixed crypto.Hash // the hash the OID names, if it names one
	)
	switch {
	case oid.Equal(oidRSAEncryption):
		alg = pick(h, x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA)
	case oid.Equal(oidECPublicKey):
		alg = pick(h, x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512)
	case oid.Equal(oidSHA256WithRSA):
		alg, fixed = x509.SHA256WithRSA, crypto.SHA256
	case oid.Equal(oidSHA384WithRSA):
		alg, fixed = x509.SHA384WithRSA, crypto.SHA384
	case oid.Equal(oidSHA512WithRSA):
		alg, fixed = x509.SHA512WithRSA, crypto.SHA512
	case oid.Equal(oidECDSAWithSHA256):
		alg, fixed = x509.ECDSAWithSHA256, crypto.SHA256
	case oid.Equal(oidECDSAWithSHA384):
		alg, fixed = x509.ECDSAWithSHA384, crypto.SHA384
	case oid.Equal(oidECDSAWithSHA512):
		alg, fixed = x509.ECDSAWithSHA512, crypto.SHA512
	default:
		return 0, fmt.Errorf("%w: signature algorithm %s", ErrUnsupportedAlgorithm, oid)
	}
	if fixed != 0 && fixed != h {
		return 0, fmt.Errorf("%w: signature algorithm %s with digest %s", ErrMalformed, oid, h)
	}
	return alg, nil
}

// pick chooses among algorithms for SHA-256, SHA-384 and SHA-512 (h is one of them: strongHash).
func pick(h crypto.Hash, a256, a384, a512 x509.SignatureAlgorithm) x509.SignatureAlgorithm {
	switch h {
	case crypto.SHA384:
		return a384
	case crypto.SHA512:
		return a512
	}
	return a256
}

// parseAttributes decodes a SET OF Attribute into type → the DER of its single value. Duplicate
// types and multi-valued attributes are refused: RFC 5652 section 11 forbids them for the attributes
// that matter here, and allowing them elsewhere would only leave room for ambiguity.
func parseAttributes(der []byte) (map[string][]byte, error) {
	attrs := make(map[string][]byte)
	for len(der) > 0 {
		var a attribute
		rest, err := asn1.Unmarshal(der, &a)
		if err != nil {
			return nil, fmt.Errorf("%w: signed attributes: %v", ErrMalformed, err)
		}
		der = rest
		if a.Values.Class != asn1.ClassUniversal || a.Values.Tag != asn1.TagSet || !a.Values.IsCompound {
			return nil, fmt.Errorf("%w: attribute %s values not a SET", ErrMalformed, a.Type)
		}
		var v asn1.RawValue
		if err := unmarshalDER(a.Values.Bytes, &v); err != nil {
			return nil, fmt.Errorf("%w: attribute %s must have exactly one value", ErrMalformed, a.Type)
		}
		key := a.Type.String()
		if _, dup := attrs[key]; dup {
			return nil, fmt.Errorf("%w: attribute %s repeated", ErrMalformed, a.Type)
		}
		attrs[key] = v.FullBytes
	}
	return attrs, nil
}

// checkImprint compares the TSTInfo's message imprint with the message.
func checkImprint(mi messageImprint, message []byte) error {
	h, ok := strongHash(mi.HashAlgorithm.Algorithm)
	if !ok {
		return fmt.Errorf("%w: message imprint uses %s", ErrUnsupportedAlgorithm, hashName(mi.HashAlgorithm.Algorithm))
	}
	d := h.New()
	d.Write(message)
	if !bytes.Equal(d.Sum(nil), mi.HashedMessage) {
		return ErrImprintMismatch
	}
	return nil
}

// checkSigningCertificate checks that the signing-certificate attribute (RFC 5035 ESSCertIDv2, or RFC
// 2634 ESSCertID) names cert. Without this check a certificate with the same key but other
// attributes (another validity, another EKU) could be substituted under the signature.
func checkSigningCertificate(attrs map[string][]byte, cert *x509.Certificate) error {
	if v2, ok := attrs[oidAttrSigningCertificateV2.String()]; ok {
		var sc signingCertificateV2
		if err := unmarshalDER(v2, &sc); err != nil || len(sc.Certs) == 0 {
			return fmt.Errorf("%w: signingCertificateV2 attribute: %v", ErrMalformed, err)
		}
		id := sc.Certs[0]
		alg := id.HashAlgorithm.Algorithm
		if len(alg) == 0 {
			alg = oidSHA256 // DEFAULT id-sha256
		}
		h, ok := strongHash(alg)
		if !ok {
			return fmt.Errorf("%w: ESSCertIDv2 hash %s", ErrUnsupportedAlgorithm, hashName(alg))
		}
		return matchESSCertID(h, id.CertHash, id.IssuerSerial, cert)
	}
	if v1, ok := attrs[oidAttrSigningCertificate.String()]; ok {
		var sc signingCertificate
		if err := unmarshalDER(v1, &sc); err != nil || len(sc.Certs) == 0 {
			return fmt.Errorf("%w: signingCertificate attribute: %v", ErrMalformed, err)
		}
		// ESSCertID is fixed to SHA-1. Here SHA-1 only names a certificate the signature already
		// covers, which needs second-preimage resistance, not collision resistance.
		return matchESSCertID(crypto.SHA1, sc.Certs[0].CertHash, sc.Certs[0].IssuerSerial, cert)
	}
	return fmt.Errorf("%w: no signing-certificate attribute", ErrBadSignature)
}

func matchESSCertID(h crypto.Hash, certHash []byte, is essIssuerSerial, cert *x509.Certificate) error {
	d := h.New()
	d.Write(cert.Raw)
	if !bytes.Equal(d.Sum(nil), certHash) {
		return fmt.Errorf("%w: signing-certificate attribute names another certificate", ErrBadSignature)
	}
	if is.Serial == nil {
		return nil // issuerSerial is optional
	}
	if is.Serial.Cmp(cert.SerialNumber) != 0 || !generalNamesHaveDirectoryName(is.Issuer, cert.RawIssuer) {
		return fmt.Errorf("%w: signing-certificate issuer/serial names another certificate", ErrBadSignature)
	}
	return nil
}

// generalNamesHaveDirectoryName reports whether GeneralNames holds directoryName [4] name.
func generalNamesHaveDirectoryName(names asn1.RawValue, name []byte) bool {
	if names.Class != asn1.ClassUniversal || names.Tag != asn1.TagSequence {
		return false
	}
	rest := names.Bytes
	for len(rest) > 0 {
		var gn asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &gn); err != nil {
			return false
		}
		if gn.Class == asn1.ClassContextSpecific && gn.Tag == 4 && bytes.Equal(gn.Bytes, name) {
			return true
		}
	}
	return false
}

// checkAuthority checks that cert is a time-stamping certificate chaining to roots at genTime.
func checkAuthority(cert *x509.Certificate, embedded []*x509.Certificate, roots *x509.CertPool, at time.Time) error {
	if err := checkTSACertificate(cert); err != nil {
		return fmt.Errorf("%w: %v", ErrUntrustedAuthority, err)
	}
	inter := x509.NewCertPool()
	for _, c := range embedded {
		if c != cert {
			inter.AddCert(c)
		}
	}
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUntrustedAuthority, err)
	}
	return nil
}

// checkTSACertificate enforces RFC 3161 section 2.3 on a TSA certificate: exactly one extended key
// usage, id-kp-timeStamping, in a critical extension. Go's x509 checks the EKU but not its
// criticality; openssl ts -verify requires it, and so do we, so that both accept the same tokens.
// A key usage extension, if present, must allow digitalSignature or nonRepudiation.
func checkTSACertificate(cert *x509.Certificate) error {
	critical := false
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidExtExtKeyUsage) {
			critical = e.Critical
		}
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageTimeStamping || len(cert.UnknownExtKeyUsage) != 0 {
		return fmt.Errorf("certificate %q: extended key usage must be timeStamping only", cert.Subject)
	}
	if !critical {
		return fmt.Errorf("certificate %q: timeStamping extended key usage is not critical", cert.Subject)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return fmt.Errorf("certificate %q: key usage allows neither digitalSignature nor nonRepudiation", cert.Subject)
	}
	return nil
}
