package smime

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"slices"

	// Registered for crypto.Hash.New. MD5 and SHA-1 are verified only so that a weak signature is
	// reported as weak rather than as forged.
	_ "crypto/md5"
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// This file reads CMS SignedData (RFC 5652 section 5) and verifies a SignerInfo. It is written here
// rather than taken from pkcs7, which drops a SignedData whose signer is named by
// subjectKeyIdentifier (its parse error is ignored: "SignedData without signers") and verifies
// neither RSASSA-PSS nor a signer whose certificate the message does not carry.

var (
	oidAttrContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}

	oidSHA224 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}

	oidSHA224WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 14}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidRSASSAPSS       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidECPublicKey     = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidECDSAWithSHA224 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 1}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidEd25519         = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// signedDataASN is SignedData (RFC 5652 5.1) as encoding/asn1 reads it; the parts whose form varies
// are kept raw.
type signedDataASN struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContentInfo struct {
		EContentType asn1.ObjectIdentifier
		EContent     asn1.RawValue `asn1:"optional,tag:0"`
	}
	Certificates asn1.RawValue   `asn1:"optional,tag:0"`
	CRLs         asn1.RawValue   `asn1:"optional,tag:1"`
	SignerInfos  []asn1.RawValue `asn1:"set"`
}

// signerInfoASN is SignerInfo (RFC 5652 5.3). SID is issuerAndSerialNumber (a SEQUENCE) or
// [0] IMPLICIT subjectKeyIdentifier; receivers must accept both.
type signerInfoASN struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type attributeASN struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue `asn1:"set"`
}

// attribute is one CMS attribute with its values (each a whole DER element).
type attribute struct {
	typ    asn1.ObjectIdentifier
	values [][]byte
}

// signedData is a SignedData taken apart, nothing verified yet.
type signedData struct {
	contentType asn1.ObjectIdentifier
	content     []byte // eContent; nil when detached
	attached    bool
	certs       []*x509.Certificate // the certificates that parse
	unreadable  []unreadableCert    // those Go cannot parse (e.g. a brainpool or SM2 key)
	signers     []*signerInfo
}

// unreadableCert identifies a carried certificate that x509.ParseCertificate refuses, so that a
// signer using it is reported as unsupported rather than unknown.
type unreadableCert struct {
	issuer []byte
	serial *big.Int
	ski    []byte
	keyAlg asn1.ObjectIdentifier
	err    error
}

// maxCarriedCertificates bounds the certificates read from one SignedData: clients send the
// signer's chain, a handful; parsing thousands would only cost time.
const maxCarriedCertificates = 32

type signerInfo struct {
	sid         asn1.RawValue
	digestAlg   pkix.AlgorithmIdentifier
	signedAttrs []byte // DER of the signed attributes with the SET tag (what is signed); nil if absent
	signed      []attribute
	attrsErr    error // the signed attributes did not parse
	sigAlg      pkix.AlgorithmIdentifier
	signature   []byte
	unsigned    []attribute
}

// parseSignedData reads a DER ContentInfo holding SignedData. Only the structure is checked; a
// SignedData without a SignerInfo is ErrMalformed (it signs nothing).
func parseSignedData(der []byte) (*signedData, error) {
	var ci contentInfo
	if rest, err := asn1.Unmarshal(der, &ci); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: ContentInfo", ErrMalformed)
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, fmt.Errorf("%w: content type %v is not signed-data", ErrMalformed, ci.ContentType)
	}
	var raw signedDataASN
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &raw); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: SignedData: %v", ErrMalformed, err)
	}
	sd := &signedData{contentType: raw.EncapContentInfo.EContentType}
	if ec := raw.EncapContentInfo.EContent; len(ec.FullBytes) > 0 {
		// encoding/asn1 leaves the [0] EXPLICIT wrapper on a RawValue: its content is the OCTET
		// STRING (primitive, after BERToDER).
		var str asn1.RawValue
		if rest, err := asn1.Unmarshal(ec.Bytes, &str); err != nil || len(rest) != 0 ||
			str.Class != asn1.ClassUniversal || str.Tag != asn1.TagOctetString || str.IsCompound {
			return nil, fmt.Errorf("%w: eContent is not an OCTET STRING", ErrMalformed)
		}
		sd.content, sd.attached = str.Bytes, true
	}
	for rest, n := raw.Certificates.Bytes, 0; len(rest) > 0 && n < maxCarriedCertificates; n++ {
		var c asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &c); err != nil {
			return nil, fmt.Errorf("%w: certificates: %v", ErrMalformed, err)
		}
		// CertificateChoices: only a plain certificate can name a signer; attribute and other
		// certificates are skipped, and so is one that does not parse (it cannot be verified).
		if c.Class != asn1.ClassUniversal || c.Tag != asn1.TagSequence {
			continue
		}
		cert, err := x509.ParseCertificate(c.FullBytes)
		if err == nil {
			sd.certs = append(sd.certs, cert)
		} else if u, ok := readCertIdentity(c.FullBytes); ok {
			u.err = err
			sd.unreadable = append(sd.unreadable, u)
		}
	}
	for _, r := range raw.SignerInfos {
		si, err := parseSignerInfo(r.FullBytes)
		if err != nil {
			return nil, err
		}
		sd.signers = append(sd.signers, si)
	}
	if len(sd.signers) == 0 {
		return nil, fmt.Errorf("%w: SignedData without signers", ErrMalformed)
	}
	return sd, nil
}

func parseSignerInfo(der []byte) (*signerInfo, error) {
	var raw signerInfoASN
	if rest, err := asn1.Unmarshal(der, &raw); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: SignerInfo: %v", ErrMalformed, err)
	}
	si := &signerInfo{sid: raw.SID, digestAlg: raw.DigestAlgorithm, sigAlg: raw.SignatureAlgorithm, signature: raw.Signature}
	if len(raw.SignedAttrs.FullBytes) > 0 {
		// The signature covers the DER of the attributes as a SET OF (RFC 5652 5.4): the received
		// bytes with the [0] IMPLICIT tag replaced by the universal SET tag.
		si.signedAttrs = bytes.Clone(raw.SignedAttrs.FullBytes)
		si.signedAttrs[0] = 0x31
		si.signed, si.attrsErr = parseAttributes(raw.SignedAttrs.Bytes)
	}
	// Unsigned attributes only carry the timestamp token here; ones that do not parse are ignored.
	si.unsigned, _ = parseAttributes(raw.UnsignedAttrs.Bytes)
	return si, nil
}

func parseAttributes(b []byte) ([]attribute, error) {
	var out []attribute
	for len(b) > 0 {
		var a attributeASN
		var err error
		if b, err = asn1.Unmarshal(b, &a); err != nil {
			return out, fmt.Errorf("attribute: %v", err)
		}
		at := attribute{typ: a.Type}
		for v := a.Values.Bytes; len(v) > 0; {
			var e asn1.RawValue
			if v, err = asn1.Unmarshal(v, &e); err != nil {
				return out, fmt.Errorf("attribute %v: %v", a.Type, err)
			}
			at.values = append(at.values, e.FullBytes)
		}
		out = append(out, at)
	}
	return out, nil
}

// attrValue returns the single value of the attribute typ, or an error when it is missing, repeated
// or has several values (RFC 5652 11: content-type and message-digest have exactly one).
func attrValue(attrs []attribute, typ asn1.ObjectIdentifier) ([]byte, error) {
	var found []byte
	n := 0
	for _, a := range attrs {
		if a.typ.Equal(typ) {
			n++
			if len(a.values) == 1 {
				found = a.values[0]
			}
		}
	}
	if n != 1 || found == nil {
		return nil, fmt.Errorf("%d %v attributes, want one with one value", n, typ)
	}
	return found, nil
}

// timestampTokens returns the values of the id-aa-timeStampToken unsigned attributes.
func (si *signerInfo) timestampTokens() [][]byte {
	var out [][]byte
	for _, a := range si.unsigned {
		if a.typ.Equal(oidAttrTimeStampToken) {
			out = append(out, a.values...)
		}
	}
	return out
}

// capabilities returns the SMIMECapabilities the signed attributes announce.
func (si *signerInfo) capabilities() []asn1.ObjectIdentifier {
	var out []asn1.ObjectIdentifier
	for _, a := range si.signed {
		if !a.typ.Equal(oidSMIMECapabilities) || len(a.values) == 0 {
			continue
		}
		var caps []smimeCapability
		if _, err := asn1.Unmarshal(a.values[0], &caps); err == nil {
			for _, c := range caps {
				out = append(out, c.ID)
			}
		}
	}
	return out
}

// findSigner returns the certificate that signed si over content: among the certificates the
// SignerInfo's sid names, those in the message first, then known ones (which a message made with
// openssl cms -nocerts needs), the first whose key verifies the signature. When none does, it returns
// the first named certificate with its verification error, or ErrUnknownSigner when none is named.
// The error wraps ErrSignature or ErrUnsupported.
func findSigner(sd *signedData, si *signerInfo, content []byte, known []*x509.Certificate) (*x509.Certificate, error) {
	id := parseSID(si.sid)
	var tried []*x509.Certificate
	var firstErr error
	for _, pool := range [][]*x509.Certificate{sd.certs, known} {
		for _, c := range pool {
			if len(tried) == maxSignerCandidates {
				break
			}
			if c == nil || !id.names(c) || slices.ContainsFunc(tried, c.Equal) {
				continue
			}
			tried = append(tried, c)
			err := si.verify(c, sd.contentType, content)
			if err == nil {
				return c, nil
			}
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if len(tried) > 0 {
		return tried[0], firstErr
	}
	for _, u := range sd.unreadable {
		if id.namesUnreadable(u) {
			return nil, fmt.Errorf("%w: the signer's certificate (key algorithm %v) cannot be read: %v", ErrUnsupported, u.keyAlg, u.err)
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrSignature, ErrUnknownSigner)
}

// signerID is a SignerIdentifier (RFC 5652 5.3) read once, to be compared with many certificates.
type signerID struct {
	ski    []byte
	issuer []byte
	serial *big.Int
}

// parseSID reads issuerAndSerialNumber or [0] subjectKeyIdentifier; any other form names no
// certificate.
func parseSID(rid asn1.RawValue) signerID {
	if rid.Class == asn1.ClassContextSpecific && rid.Tag == 0 && !rid.IsCompound {
		return signerID{ski: rid.Bytes}
	}
	var ias issuerAndSerial
	if rest, err := asn1.Unmarshal(rid.FullBytes, &ias); err != nil || len(rest) != 0 || ias.Serial == nil {
		return signerID{}
	}
	return signerID{issuer: ias.Issuer.FullBytes, serial: ias.Serial}
}

func (id signerID) namesUnreadable(u unreadableCert) bool {
	switch {
	case len(id.ski) > 0:
		return bytes.Equal(id.ski, u.ski)
	case id.serial != nil:
		return id.serial.Cmp(u.serial) == 0 && bytes.Equal(id.issuer, u.issuer)
	}
	return false
}

// certIdentityASN is as much of a Certificate (RFC 5280 4.1) as identifying it needs.
type certIdentityASN struct {
	TBS struct {
		Version  int `asn1:"optional,explicit,default:0,tag:0"`
		Serial   *big.Int
		SigAlg   asn1.RawValue
		Issuer   asn1.RawValue
		Validity asn1.RawValue
		Subject  asn1.RawValue
		SPKI     struct {
			Algorithm pkix.AlgorithmIdentifier
			Key       asn1.BitString
		}
		IssuerUID  asn1.BitString   `asn1:"optional,tag:1"`
		SubjectUID asn1.BitString   `asn1:"optional,tag:2"`
		Extensions []pkix.Extension `asn1:"optional,explicit,tag:3"`
	}
	SigAlg asn1.RawValue
	Sig    asn1.BitString
}

var oidExtSubjectKeyID = asn1.ObjectIdentifier{2, 5, 29, 14}

// readCertIdentity reads the issuer, serial number, key identifier and key algorithm of a
// certificate that x509 cannot parse.
func readCertIdentity(der []byte) (unreadableCert, bool) {
	var c certIdentityASN
	if rest, err := asn1.Unmarshal(der, &c); err != nil || len(rest) != 0 || c.TBS.Serial == nil {
		return unreadableCert{}, false
	}
	u := unreadableCert{issuer: c.TBS.Issuer.FullBytes, serial: c.TBS.Serial, keyAlg: c.TBS.SPKI.Algorithm.Algorithm}
	for _, e := range c.TBS.Extensions {
		if e.Id.Equal(oidExtSubjectKeyID) {
			_, _ = asn1.Unmarshal(e.Value, &u.ski)
		}
	}
	return u, true
}

func (id signerID) names(c *x509.Certificate) bool {
	switch {
	case len(id.ski) > 0:
		return bytes.Equal(id.ski, c.SubjectKeyId)
	case id.serial != nil:
		return id.serial.Cmp(c.SerialNumber) == 0 && bytes.Equal(id.issuer, c.RawIssuer)
	}
	return false
}

// maxSignerCandidates bounds the certificates tried for one SignerInfo: a crafted message could carry
// many certificates naming the same key identifier, each costing a public-key operation.
const maxSignerCandidates = 8

// verify checks si over content with cert's key: the message-digest and content-type signed
// attributes, then the signature value. Errors wrap ErrSignature (not valid) or ErrUnsupported (an
// algorithm or key sealpost cannot check, so validity is unknown).
func (si *signerInfo) verify(cert *x509.Certificate, contentType asn1.ObjectIdentifier, content []byte) error {
	digest, err := hashOf(si.digestAlg.Algorithm)
	if err != nil {
		return err
	}
	scheme, err := schemeOf(si.sigAlg, digest)
	if err != nil {
		return err
	}
	data := content
	if si.signedAttrs != nil {
		if err := si.checkSignedAttrs(digest, contentType, content); err != nil {
			return err
		}
		data = si.signedAttrs
	}
	return scheme.verify(cert.PublicKey, data, si.signature)
}

func (si *signerInfo) checkSignedAttrs(digest crypto.Hash, contentType asn1.ObjectIdentifier, content []byte) error {
	if si.attrsErr != nil {
		return fmt.Errorf("%w: signed attributes: %v", ErrSignature, si.attrsErr)
	}
	ctDER, err := attrValue(si.signed, oidAttrContentType)
	if err != nil {
		return fmt.Errorf("%w: content-type attribute: %v", ErrSignature, err)
	}
	var ct asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(ctDER, &ct); err != nil || len(rest) != 0 || !ct.Equal(contentType) {
		return fmt.Errorf("%w: content-type attribute does not say %v", ErrSignature, contentType)
	}
	mdDER, err := attrValue(si.signed, oidAttrMessageDigest)
	if err != nil {
		return fmt.Errorf("%w: message-digest attribute: %v", ErrSignature, err)
	}
	var md []byte
	if rest, err := asn1.Unmarshal(mdDER, &md); err != nil || len(rest) != 0 {
		return fmt.Errorf("%w: message-digest attribute is not an OCTET STRING", ErrSignature)
	}
	h := digest.New()
	h.Write(content)
	if subtle.ConstantTimeCompare(h.Sum(nil), md) != 1 {
		return fmt.Errorf("%w: message digest does not match the content", ErrSignature)
	}
	return nil
}

// digestHashes are the digest algorithms read. MD5 and SHA-1 are included so that signatures
// using them verify and are then reported weak.
var digestHashes = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
}{
	{oidMD5, crypto.MD5}, {oidSHA1, crypto.SHA1}, {oidSHA224, crypto.SHA224},
	{oidSHA256, crypto.SHA256}, {oidSHA384, crypto.SHA384}, {oidSHA512, crypto.SHA512},
}

// hashOf maps a digest algorithm OID to its hash; anything not in digestHashes is ErrUnsupported.
func hashOf(oid asn1.ObjectIdentifier) (crypto.Hash, error) {
	for _, d := range digestHashes {
		if oid.Equal(d.oid) {
			return d.hash, nil
		}
	}
	return 0, fmt.Errorf("%w: digest algorithm %v", ErrUnsupported, oid)
}

// signatureScheme is how a signature value is checked: which key type, over which hash, with which
// padding.
type signatureScheme struct {
	alg  asn1.ObjectIdentifier
	key  string      // "rsa", "ecdsa", "ed25519"
	hash crypto.Hash // the hash the signature is computed over; 0 for Ed25519 (pure)
	pss  *rsa.PSSOptions
}

// fixedSchemes are the signature algorithms that name their key type and hash themselves.
var fixedSchemes = []struct {
	oid  asn1.ObjectIdentifier
	key  string
	hash crypto.Hash
}{
	{oidMD5WithRSA, "rsa", crypto.MD5}, {oidSHA1WithRSA, "rsa", crypto.SHA1}, {oidSHA1WithRSAOI, "rsa", crypto.SHA1},
	{oidSHA224WithRSA, "rsa", crypto.SHA224}, {oidSHA256WithRSA, "rsa", crypto.SHA256},
	{oidSHA384WithRSA, "rsa", crypto.SHA384}, {oidSHA512WithRSA, "rsa", crypto.SHA512},
	{oidECDSAWithSHA1, "ecdsa", crypto.SHA1}, {oidECDSAWithSHA224, "ecdsa", crypto.SHA224},
	{oidECDSAWithSHA256, "ecdsa", crypto.SHA256}, {oidECDSAWithSHA384, "ecdsa", crypto.SHA384},
	{oidECDSAWithSHA512, "ecdsa", crypto.SHA512},
}

// schemeOf reads a SignerInfo's signatureAlgorithm. digest is the digestAlgorithm's hash, which the
// algorithms that name no hash of their own (rsaEncryption, id-ecPublicKey) sign with.
func schemeOf(alg pkix.AlgorithmIdentifier, digest crypto.Hash) (signatureScheme, error) {
	s := signatureScheme{alg: alg.Algorithm}
	o := alg.Algorithm
	switch {
	case o.Equal(oidRSAEncryption):
		s.key, s.hash = "rsa", digest
	case o.Equal(oidECPublicKey):
		s.key, s.hash = "ecdsa", digest
	case o.Equal(oidRSASSAPSS):
		h, opts, err := pssOptions(alg.Parameters.FullBytes)
		if err != nil {
			return s, err
		}
		s.key, s.hash, s.pss = "rsa", h, opts
	case o.Equal(oidEd25519):
		s.key = "ed25519" // RFC 8419: pure EdDSA over the signed attributes
	default:
		for _, f := range fixedSchemes {
			if o.Equal(f.oid) {
				s.key, s.hash = f.key, f.hash
				return s, nil
			}
		}
		return s, fmt.Errorf("%w: signature algorithm %v", ErrUnsupported, o)
	}
	return s, nil
}

// pssParams is RSASSA-PSS-params (RFC 4055 3.1), whose defaults are SHA-1, MGF1 with SHA-1 and a
// 20-byte salt.
type pssParams struct {
	Hash       pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:0"`
	MGF        pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:1"`
	SaltLength int                      `asn1:"optional,explicit,tag:2,default:20"`
	Trailer    int                      `asn1:"optional,explicit,tag:3,default:1"`
}

// pssOptions reads RSASSA-PSS parameters (RFC 4056 for CMS). Go verifies PSS only with MGF1 over the
// same hash as the message, which is what RFC 4056 recommends and every client writes; other
// combinations are ErrUnsupported, never a bad signature.
func pssOptions(params []byte) (crypto.Hash, *rsa.PSSOptions, error) {
	p := pssParams{SaltLength: 20, Trailer: 1}
	if len(params) > 0 && !bytes.Equal(params, []byte{0x05, 0x00}) {
		if rest, err := asn1.Unmarshal(params, &p); err != nil || len(rest) != 0 {
			return 0, nil, fmt.Errorf("%w: RSASSA-PSS parameters", ErrSignature)
		}
	}
	h := crypto.SHA1
	if len(p.Hash.Algorithm) > 0 {
		var err error
		if h, err = hashOf(p.Hash.Algorithm); err != nil {
			return 0, nil, err
		}
	}
	mgfHash := crypto.SHA1
	if len(p.MGF.Algorithm) > 0 {
		if !p.MGF.Algorithm.Equal(oidMGF1) {
			return 0, nil, fmt.Errorf("%w: RSASSA-PSS mask generation %v", ErrUnsupported, p.MGF.Algorithm)
		}
		var inner pkix.AlgorithmIdentifier
		if rest, err := asn1.Unmarshal(p.MGF.Parameters.FullBytes, &inner); err != nil || len(rest) != 0 {
			return 0, nil, fmt.Errorf("%w: RSASSA-PSS MGF1 parameters", ErrSignature)
		}
		var err error
		if mgfHash, err = hashOf(inner.Algorithm); err != nil {
			return 0, nil, err
		}
	}
	switch {
	case mgfHash != h:
		return 0, nil, fmt.Errorf("%w: RSASSA-PSS with MGF1-%v over %v", ErrUnsupported, mgfHash, h)
	case p.Trailer != 1:
		return 0, nil, fmt.Errorf("%w: RSASSA-PSS trailer field %d", ErrUnsupported, p.Trailer)
	case p.SaltLength < 0:
		return 0, nil, fmt.Errorf("%w: RSASSA-PSS salt length %d", ErrSignature, p.SaltLength)
	}
	// The salt length is the one the parameters state, checked exactly: Go's "auto" would accept any.
	return h, &rsa.PSSOptions{SaltLength: p.SaltLength, Hash: h}, nil
}

// verify checks sig over data with pub.
func (s signatureScheme) verify(pub crypto.PublicKey, data, sig []byte) error {
	var hashed []byte
	if s.hash != 0 {
		h := s.hash.New()
		h.Write(data)
		hashed = h.Sum(nil)
	}
	var ok bool
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if s.key != "rsa" {
			return fmt.Errorf("%w: %v signature with an RSA key", ErrSignature, s.alg)
		}
		if k.N.BitLen() < 1024 {
			// Go refuses to compute with these at all; they are reported weak as well.
			return fmt.Errorf("%w: RSA key of %d bits", ErrUnsupported, k.N.BitLen())
		}
		var err error
		if s.pss != nil {
			err = rsa.VerifyPSS(k, s.hash, hashed, sig, s.pss)
		} else {
			err = rsa.VerifyPKCS1v15(k, s.hash, hashed, sig)
		}
		ok = err == nil
	case *ecdsa.PublicKey:
		if s.key != "ecdsa" {
			return fmt.Errorf("%w: %v signature with an ECDSA key", ErrSignature, s.alg)
		}
		ok = ecdsa.VerifyASN1(k, hashed, sig)
	case ed25519.PublicKey:
		if s.key != "ed25519" {
			return fmt.Errorf("%w: %v signature with an Ed25519 key", ErrSignature, s.alg)
		}
		ok = ed25519.Verify(k, data, sig)
	default:
		return fmt.Errorf("%w: signer key type %T", ErrUnsupported, pub)
	}
	if !ok {
		return fmt.Errorf("%w: %v signature value does not verify", ErrSignature, s.alg)
	}
	return nil
}
