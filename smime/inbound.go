package smime

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"path"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/sealpost/sealpost/internal/payload"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/tsa"
)

// maxInboundDepth bounds the S/MIME layers (and plain multiparts walked through) of one message.
const maxInboundDepth = 8

// InboundOptions says what Inspect can decrypt with and what it trusts.
type InboundOptions struct {
	Identities []*keys.Identity // decryption identities (the bank's support identities); may be empty
	Roots      *x509.CertPool   // trust anchors for signers
	TSARoots   *x509.CertPool   // trust anchors for timestamp tokens (nil: tokens are reported unverified)
	Arrival    time.Time        // chain-check time when there is no valid token; zero: now
}

// Inbound is what Inspect found in a customer's message: facts, not a verdict.
//
// With several signature layers (triple wrap: signed, encrypted, signed) the Signer, SignerChain,
// SignedAt, Timestamp and Capabilities are the innermost signature's (the author's), while
// SignatureErr, ChainErr, TimestampErr and WeakAlgorithm join the findings of every layer, so that
// a bad outer signature never disappears behind a good inner one.
type Inbound struct {
	Content       []byte // the innermost MIME entity once envelopes and signatures are removed
	Encrypted     bool   // at least one envelope layer
	Authenticated bool   // every envelope layer was AES-GCM AuthEnvelopedData (false when not encrypted)
	Signed        bool   // a signature layer was found
	SignatureErr  error  // nil iff the CMS signature verifies over the signed bytes (wraps ErrSignature)
	Signer        *x509.Certificate
	SignerChain   [][]*x509.Certificate
	ChainErr      error     // nil iff Signer chains to Roots with emailProtection at SignedAt
	SignedAt      time.Time // the verified token's genTime, else Arrival
	Timestamp     *tsa.Token
	TimestampErr  error // a token was present but did not verify
	WeakAlgorithm error // SHA-1/MD5 digest or signature algorithm, or an RSA key below 2048 bits
	// CoversRoot: the signed entity is the root of the message, inside only envelopes and signatures.
	// It is false when the signed part sits in an unsigned multipart (then Content is that signed
	// part's content only, and the other, unsigned parts are dropped).
	CoversRoot   bool
	Capabilities []asn1.ObjectIdentifier // SMIMECapabilities from the signed attributes, in order
	Layers       []string                // outermost first, e.g. "enveloped-data aes256-CBC", "signed-detached"
}

// SupportsGCM reports whether the signer announced AES-GCM in its SMIMECapabilities.
func (in *Inbound) SupportsGCM() bool {
	for _, c := range in.Capabilities {
		if c.Equal(oidAES128GCM) || c.Equal(oidAES256GCM) {
			return true
		}
	}
	return false
}

// Inspect takes an inbound message apart: it removes envelope layers (EnvelopedData AES-CBC and
// AuthEnvelopedData AES-GCM, BER or DER, to any of opts.Identities) and signature layers (detached
// multipart/signed and opaque signed-data, pkcs7 and x-pkcs7 labels, octet-stream with .p7s/.p7m
// names), verifies each signature, its timestamp token and the signer's chain, and reports what it
// found. It returns an error only when the message cannot be processed at all: malformed, encrypted
// to none of the identities (ErrNotForUs), nested deeper than 8 layers, undecryptable (ErrDecrypt)
// or unsupported. Every verification outcome is reported in the fields. It never panics.
func Inspect(msg []byte, opts InboundOptions) (in *Inbound, err error) {
	defer func() {
		if r := recover(); r != nil {
			in, err = nil, fmt.Errorf("%w: %v", ErrMalformed, r)
		}
	}()
	if opts.Arrival.IsZero() {
		opts.Arrival = time.Now()
	}
	w := &walker{opts: opts, in: &Inbound{Authenticated: true}, root: true}
	if err := w.walk(payload.ToCRLF(msg), 0); err != nil {
		return nil, err
	}
	in = w.in
	if !in.Encrypted {
		in.Authenticated = false
	}
	if !in.Signed {
		in.SignedAt = opts.Arrival
	}
	in.SignatureErr, in.ChainErr = errors.Join(w.sigErrs...), errors.Join(w.chainErrs...)
	in.TimestampErr, in.WeakAlgorithm = errors.Join(w.tsErrs...), errors.Join(w.weakErrs...)
	return in, nil
}

type walker struct {
	opts                                 InboundOptions
	in                                   *Inbound
	root                                 bool // no plain multipart above the current entity
	sigErrs, chainErrs, tsErrs, weakErrs []error
}

// entity kinds
const (
	kindPlain = iota
	kindDetached
	kindCMS // pkcs7-mime or .p7m: enveloped or opaque signed, told apart by the CMS content type
	kindMultipart
)

func (w *walker) walk(entity []byte, depth int) error {
	if depth >= maxInboundDepth {
		return fmt.Errorf("%w: more than %d nested layers", ErrUnsupported, maxInboundDepth)
	}
	h, body, err := payload.SplitEntity(entity)
	if err != nil {
		return err
	}
	mt, params, err := payload.MediaType(h)
	if err != nil {
		return err
	}
	switch classify(h, mt, params) {
	case kindDetached:
		return w.detached(body, params, depth)
	case kindCMS:
		der, err := decodeBody(h, body)
		if err != nil {
			return err
		}
		return w.cms(der, depth)
	case kindMultipart:
		_, parts, err := payload.MultipartParts(body, params["boundary"])
		if err != nil {
			return err
		}
		p, found, err := payload.FirstProtected(parts, depth+1, maxInboundDepth, smimeKind)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		if found {
			w.root = false
			return w.walk(p, depth+1)
		}
	}
	w.in.Content = entity
	return nil
}

// smimeKind is classify in payload's terms, for payload.FirstProtected.
func smimeKind(h payload.Header, mt string, params map[string]string) payload.PartKind {
	switch classify(h, mt, params) {
	case kindDetached, kindCMS:
		return payload.PartProtected
	case kindMultipart:
		return payload.PartMultipart
	}
	return payload.PartOther
}

func classify(h payload.Header, mt string, params map[string]string) int {
	switch {
	case mt == "multipart/signed":
		proto := strings.ToLower(params["protocol"])
		if proto == "application/pkcs7-signature" || proto == "application/x-pkcs7-signature" {
			return kindDetached
		}
		return kindPlain // e.g. PGP/MIME: not ours
	case mt == "application/pkcs7-mime" || mt == "application/x-pkcs7-mime":
		return kindCMS
	case mt == "application/octet-stream" && hasExt(h, params, ".p7m"):
		return kindCMS
	case strings.HasPrefix(mt, "multipart/"):
		return kindMultipart
	}
	return kindPlain
}

// hasExt reports whether the Content-Type name= or Content-Disposition filename= ends in ext.
func hasExt(h payload.Header, params map[string]string, ext string) bool {
	names := []string{params["name"]}
	if cd := h.Get("Content-Disposition"); cd != "" {
		if _, dp, err := parseDisposition(cd); err == nil {
			names = append(names, dp["filename"])
		}
	}
	for _, n := range names {
		if n != "" && strings.EqualFold(path.Ext(strings.TrimSpace(n)), ext) {
			return true
		}
	}
	return false
}

func parseDisposition(v string) (string, map[string]string, error) {
	return payload.MediaType(payload.Header{payload.NewField("Content-Type", strings.Join(strings.Fields(v), " "))})
}

// decodeBody undoes the part's transfer encoding (base64, or none for binary).
func decodeBody(h payload.Header, body []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		return payload.DecodeBase64(body)
	case "", "binary", "8bit", "7bit":
		if d, err := payload.DecodeBase64(body); err == nil && len(d) > 0 {
			return d, nil // some clients leave the base64 header out
		}
		return body, nil
	}
	return nil, fmt.Errorf("%w: transfer encoding %q for CMS", ErrUnsupported, h.Get("Content-Transfer-Encoding"))
}

func (w *walker) detached(body []byte, params map[string]string, depth int) error {
	_, parts, err := payload.MultipartParts(body, params["boundary"])
	if err != nil {
		return err
	}
	if len(parts) != 2 {
		return fmt.Errorf("%w: multipart/signed with %d parts", ErrMalformed, len(parts))
	}
	sh, sb, err := payload.SplitEntity(parts[1])
	if err != nil {
		return err
	}
	st, sp, err := payload.MediaType(sh)
	if err != nil {
		return err
	}
	if st != "application/pkcs7-signature" && st != "application/x-pkcs7-signature" &&
		(st != "application/octet-stream" || !hasExt(sh, sp, ".p7s")) {
		return fmt.Errorf("%w: signature part is %s", ErrMalformed, st)
	}
	sig, err := decodeBody(sh, sb)
	if err != nil {
		return err
	}
	der, err := BERToDER(sig)
	if err != nil {
		return err
	}
	p7, err := parseSigned(der)
	if err != nil {
		return err
	}
	w.verify(p7, parts[0], "signed-detached")
	return w.walk(parts[0], depth+1)
}

func (w *walker) cms(ber []byte, depth int) error {
	der, err := BERToDER(ber)
	if err != nil {
		return err
	}
	var ci contentInfo
	if rest, err := asn1.Unmarshal(der, &ci); err != nil || len(rest) != 0 {
		return fmt.Errorf("%w: ContentInfo", ErrMalformed)
	}
	switch {
	case ci.ContentType.Equal(oidSignedData):
		p7, err := parseSigned(der)
		if err != nil {
			return err
		}
		content := p7.Content
		w.verify(p7, content, "signed-opaque")
		return w.walk(payload.ToCRLF(content), depth+1)
	case ci.ContentType.Equal(oidEnvelopedData), ci.ContentType.Equal(oidAuthEnvelopedData):
		d, err := w.decrypt(der)
		if err != nil {
			return err
		}
		w.in.Encrypted = true
		w.in.Authenticated = w.in.Authenticated && d.Authenticated
		kind := "enveloped-data"
		if ci.ContentType.Equal(oidAuthEnvelopedData) {
			kind = "authenveloped-data"
		}
		w.in.Layers = append(w.in.Layers, kind+" "+algName(d.Algorithm))
		return w.walk(payload.ToCRLF(d.Content), depth+1)
	}
	return fmt.Errorf("%w: CMS content type %v", ErrUnsupported, ci.ContentType)
}

func (w *walker) decrypt(der []byte) (*Decrypted, error) {
	if len(w.opts.Identities) == 0 {
		return nil, fmt.Errorf("%w: no identity to decrypt with", ErrNotForUs)
	}
	for _, id := range w.opts.Identities {
		d, err := Decrypt(der, id)
		if errors.Is(err, ErrNotForUs) {
			continue
		}
		return d, err
	}
	return nil, ErrNotForUs
}

func algName(oid asn1.ObjectIdentifier) string {
	for _, a := range []struct {
		oid  asn1.ObjectIdentifier
		name string
	}{
		{oidAES128CBC, "aes128-CBC"}, {oidAES192CBC, "aes192-CBC"}, {oidAES256CBC, "aes256-CBC"},
		{oidAES128GCM, "aes128-GCM"}, {oidAES192GCM, "aes192-GCM"}, {oidAES256GCM, "aes256-GCM"},
	} {
		if oid.Equal(a.oid) {
			return a.name
		}
	}
	return oid.String()
}

func parseSigned(der []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() {
		if r := recover(); r != nil {
			p7, err = nil, fmt.Errorf("%w: SignedData: %v", ErrMalformed, r)
		}
	}()
	if p7, err = pkcs7.Parse(der); err != nil {
		return nil, fmt.Errorf("%w: SignedData: %v", ErrMalformed, err)
	}
	if len(p7.Signers) == 0 {
		return nil, fmt.Errorf("%w: SignedData without signers", ErrMalformed)
	}
	return p7, nil
}

var (
	oidMD5           = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}
	oidSHA1          = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidMD5WithRSA    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 4}
	oidSHA1WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidSHA1WithRSAOI = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 29}
	oidECDSAWithSHA1 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}
)

func weakOID(oid asn1.ObjectIdentifier) bool {
	for _, w := range []asn1.ObjectIdentifier{oidMD5, oidSHA1, oidMD5WithRSA, oidSHA1WithRSA, oidSHA1WithRSAOI, oidECDSAWithSHA1} {
		if oid.Equal(w) {
			return true
		}
	}
	return false
}

// verify records the facts of one signature layer over content. Later (inner) layers overwrite the
// signer facts; errors accumulate.
func (w *walker) verify(p7 *pkcs7.PKCS7, content []byte, layer string) {
	in := w.in
	in.Layers = append(in.Layers, layer)
	in.Signed = true
	in.CoversRoot = w.root
	in.Signer, in.SignerChain, in.Timestamp, in.Capabilities = nil, nil, nil, nil
	in.SignedAt = w.opts.Arrival
	fail := func(list *[]error, base error, format string, args ...any) {
		if base != nil {
			*list = append(*list, fmt.Errorf("%s: %w: "+format, append([]any{layer, base}, args...)...))
		} else {
			*list = append(*list, fmt.Errorf("%s: "+format, append([]any{layer}, args...)...))
		}
	}
	if len(p7.Signers) != 1 {
		fail(&w.sigErrs, ErrSignature, "%d signers, want 1", len(p7.Signers))
		fail(&w.chainErrs, nil, "no single signer to chain")
		return
	}
	si := p7.Signers[0]
	signer := signerCert(p7.Certificates, si.IssuerAndSerialNumber.IssuerName.FullBytes, si.IssuerAndSerialNumber.SerialNumber)
	if signer == nil {
		fail(&w.sigErrs, ErrSignature, "no certificate for the signer")
		fail(&w.chainErrs, nil, "no signer certificate to chain")
		return
	}
	in.Signer = signer
	if weakOID(si.DigestAlgorithm.Algorithm) {
		fail(&w.weakErrs, nil, "digest algorithm %v", si.DigestAlgorithm.Algorithm)
	}
	if weakOID(si.DigestEncryptionAlgorithm.Algorithm) {
		fail(&w.weakErrs, nil, "signature algorithm %v", si.DigestEncryptionAlgorithm.Algorithm)
	}
	switch k := signer.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			fail(&w.weakErrs, nil, "RSA key of %d bits", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
	default:
		fail(&w.weakErrs, nil, "signer key type %T", k)
	}

	// The signature math is pkcs7's. It also compares the signer's claimed signingTime with the
	// certificate's validity, which is the chain check's business (at a trusted time), so it is given
	// a copy of the certificate without validity limits.
	loose := *signer
	loose.NotBefore, loose.NotAfter = time.Time{}, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	check := *p7
	check.Content = content
	check.Certificates = []*x509.Certificate{&loose}
	if err := check.Verify(); err != nil {
		fail(&w.sigErrs, ErrSignature, "%v", err)
	}

	for _, a := range si.AuthenticatedAttributes {
		if a.Type.Equal(oidSMIMECapabilities) {
			var caps []smimeCapability
			if _, err := asn1.Unmarshal(a.Value.Bytes, &caps); err == nil {
				for _, c := range caps {
					in.Capabilities = append(in.Capabilities, c.ID)
				}
			}
		}
	}
	for _, a := range si.UnauthenticatedAttributes {
		if !a.Type.Equal(oidAttrTimeStampToken) {
			continue
		}
		if w.opts.TSARoots == nil {
			fail(&w.tsErrs, nil, "timestamp token present, no TSA roots configured")
			continue
		}
		tok, err := tsa.Verify(a.Value.Bytes, si.EncryptedDigest, w.opts.TSARoots)
		if err != nil {
			fail(&w.tsErrs, nil, "timestamp: %w", err)
			continue
		}
		in.Timestamp, in.SignedAt = tok, tok.Time
	}

	inter := x509.NewCertPool()
	for _, c := range p7.Certificates {
		if c != signer {
			inter.AddCert(c)
		}
	}
	roots := w.opts.Roots
	if roots == nil {
		roots = x509.NewCertPool() // never the system pool by accident
	}
	chains, err := signer.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: in.SignedAt,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}})
	if err != nil {
		fail(&w.chainErrs, nil, "signer %s: %w", signer.Subject, err)
	}
	in.SignerChain = chains
}

func signerCert(certs []*x509.Certificate, issuer []byte, serial *big.Int) *x509.Certificate {
	if serial == nil {
		return nil
	}
	for _, c := range certs {
		if c.SerialNumber.Cmp(serial) == 0 && bytes.Equal(c.RawIssuer, issuer) {
			return c
		}
	}
	return nil
}
