package smime

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/tsa"
)

// InboundOptions says what Inspect can decrypt with and what it trusts.
type InboundOptions struct {
	Identities []*keys.Identity // decryption identities (the bank's support identities); may be empty
	Roots      *x509.CertPool   // trust anchors for signers
	TSARoots   *x509.CertPool   // trust anchors for timestamp tokens (nil: tokens are reported unverified)
	Arrival    time.Time        // chain-check time when there is no valid token; zero: now
	// Certificates are customers' certificates the bank already holds (the recipient directory,
	// which includes every registered one). A signature whose certificate the message does not
	// carry (openssl cms -nocerts) is verified with the one of these its SignerInfo names. They
	// are candidates, not trust: a signer found here is chain-checked like one the message carries.
	Certificates []*x509.Certificate
	// Intermediates are CA certificates to build signers' chains with, beside those the message
	// carries (nil: only those).
	Intermediates *x509.CertPool
	// Chains keeps verified chains from one message to the next (nil: each is built again). It is
	// used only when it was made for these Roots and Intermediates.
	Chains *ChainCache
}

// Inbound is what Inspect found in a customer's message: facts, not a verdict.
//
// With several signature layers (triple wrap: signed, encrypted, signed) the Signer, SignerChain,
// SignedAt, Timestamp and Capabilities are the innermost signature's (the author's), while
// SignatureErr, Unsupported, ChainErr, TimestampErr and WeakAlgorithm join the findings of every
// layer, so that a bad outer signature never disappears behind a good inner one.
type Inbound struct {
	Content       []byte // the innermost MIME entity once envelopes and signatures are removed
	Encrypted     bool   // at least one envelope layer
	Authenticated bool   // every envelope layer was AES-GCM AuthEnvelopedData (false when not encrypted)
	Signed        bool   // a signature layer was found
	SignatureErr  error  // the CMS signature does not verify over the signed bytes (wraps ErrSignature)
	// Unsupported: a signature uses an algorithm or key sealpost cannot check (wraps
	// ErrUnsupported), so whether it is valid is unknown; it is not in SignatureErr. A signature is
	// valid only when both are nil.
	Unsupported error
	// Signer: the certificate that verifies the signature, else the one the SignerInfo names; nil
	// when none is known (SignatureErr wraps ErrUnknownSigner) or the one carried cannot be read
	// (Unsupported).
	Signer      *x509.Certificate
	SignerChain [][]*x509.Certificate
	// SignatureValue is the innermost SignerInfo's signature (what a timestamp token covers).
	SignatureValue []byte
	ChainErr       error     // nil iff Signer chains to Roots with emailProtection at SignedAt
	SignedAt       time.Time // the verified token's genTime, else Arrival
	Timestamp      *tsa.Token
	TimestampErr   error // a token was present but did not verify
	WeakAlgorithm  error // SHA-1/MD5 digest or signature algorithm, or an RSA key below 2048 bits
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

// Err says whether Content may be taken as signed by Signer: nil when there is a signature and
// every signature layer verified, chained to Roots with emailProtection, carries no weak algorithm
// and no token that failed, and the signed part is the message root. Otherwise it wraps
// ErrSignature and joins the findings (so errors.Is finds, say, a tsa error). It does not bind the
// signer to an address: that is the caller's verdict.
func (in *Inbound) Err() error {
	return mime.Findings(ErrSignature, in.Signed, in.CoversRoot, in.Signer != nil, "no signer certificate",
		in.SignatureErr, in.Unsupported, in.ChainErr, in.TimestampErr, in.WeakAlgorithm)
}

// Inspect takes an inbound message apart: it removes envelope layers (EnvelopedData AES-CBC and
// AuthEnvelopedData AES-GCM, BER or DER, to any of opts.Identities) and signature layers (detached
// multipart/signed and opaque signed-data, pkcs7 and x-pkcs7 labels, octet-stream with .p7s/.p7m
// names), verifies each signature, its timestamp token and the signer's chain, and reports what it
// found. It returns an error only when the message cannot be processed at all: malformed, encrypted
// to none of the identities (ErrNotForUs), nested deeper than 8 layers, undecryptable (ErrDecrypt)
// or unsupported. Every verification outcome is reported in the fields. It never panics.
//
// Inspect walks S/MIME layers only; to walk S/MIME and OpenPGP layers in one pass, give a Layer
// to mime.Walk beside pgp's.
func Inspect(msg []byte, opts InboundOptions) (in *Inbound, err error) {
	defer func() {
		if r := recover(); r != nil {
			in, err = nil, fmt.Errorf("%w: %v", ErrMalformed, r)
		}
	}()
	return mime.InspectWith(msg, mime.MaxLayers, NewLayer(opts), ErrUnsupported)
}

// Layer is S/MIME for mime.Walk: it recognises S/MIME entities, removes their layers and keeps
// the facts of every one it removed. A Layer serves one message.
type Layer struct{ w *walker }

// NewLayer returns a Layer that decrypts and verifies with opts.
func NewLayer(opts InboundOptions) *Layer {
	if opts.Arrival.IsZero() {
		opts.Arrival = time.Now()
	}
	return &Layer{w: &walker{opts: opts, in: &Inbound{Authenticated: true}}}
}

// Recognise reports whether e is S/MIME: multipart/signed with a pkcs7-signature protocol,
// pkcs7-mime, or an octet-stream named .p7m.
func (l *Layer) Recognise(e *mime.Entity) bool {
	k := classify(e.Header, e.MediaType, e.Params)
	return k == kindDetached || k == kindCMS
}

// Unwrap removes one S/MIME layer from e: it verifies a signature or decrypts an envelope.
func (l *Layer) Unwrap(e *mime.Entity, root bool) (s mime.Step, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = mime.Step{}, fmt.Errorf("%w: %v", ErrMalformed, r)
		}
	}()
	l.w.root = root
	n := len(l.w.in.Layers)
	if classify(e.Header, e.MediaType, e.Params) == kindDetached {
		s.Inner, err = l.w.detached(e)
		s.Signed = true
	} else {
		var der []byte
		if der, err = decodeBody(e.Header, e.Body); err == nil {
			s.Inner, s.Signed, err = l.w.cms(der)
		}
	}
	if err != nil {
		return mime.Step{}, err
	}
	s.Layers = l.w.in.Layers[n:len(l.w.in.Layers):len(l.w.in.Layers)]
	return s, nil
}

// Result returns the facts of every layer removed in the walk, with walked's content.
func (l *Layer) Result(walked *mime.Walked) *Inbound {
	w := l.w
	in := w.in
	in.Content = walked.Content.Raw
	if !in.Encrypted {
		in.Authenticated = false
	}
	if !in.Signed {
		in.SignedAt = w.opts.Arrival
	}
	in.SignatureErr, in.ChainErr = errors.Join(w.sigErrs...), errors.Join(w.chainErrs...)
	in.Unsupported = errors.Join(w.unsupErrs...)
	in.TimestampErr, in.WeakAlgorithm = errors.Join(w.tsErrs...), errors.Join(w.weakErrs...)
	return in
}

type walker struct {
	opts                                 InboundOptions
	in                                   *Inbound
	root                                 bool // no plain multipart above the current entity
	sigErrs, chainErrs, tsErrs, weakErrs []error
	unsupErrs                            []error
}

// entity kinds
const (
	kindPlain = iota
	kindDetached
	kindCMS // pkcs7-mime or .p7m: enveloped or opaque signed, told apart by the CMS content type
)

func classify(h mime.Header, mt string, params map[string]string) int {
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
	}
	return kindPlain
}

// detachedSignature returns the CMS bytes (BER or DER) of the signature part of e, a multipart/signed
// S/MIME entity.
func detachedSignature(e *mime.Entity) ([]byte, error) {
	_, sp, err := e.SignedParts()
	if err != nil {
		return nil, err
	}
	if st := sp.MediaType; st != "application/pkcs7-signature" && st != "application/x-pkcs7-signature" &&
		(st != "application/octet-stream" || !hasExt(sp.Header, sp.Params, ".p7s")) {
		return nil, fmt.Errorf("%w: signature part is %s", ErrMalformed, st)
	}
	return decodeBody(sp.Header, sp.Body)
}

// hasExt reports whether the Content-Type name= or Content-Disposition filename= ends in ext.
func hasExt(h mime.Header, params map[string]string, ext string) bool {
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
	return mime.MediaType(mime.Header{mime.NewField("Content-Type", strings.Join(strings.Fields(v), " "))})
}

// decodeBody undoes the part's transfer encoding (base64, or none for binary).
func decodeBody(h mime.Header, body []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		return mime.DecodeBase64(body)
	case "", "binary", "8bit", "7bit":
		if d, err := mime.DecodeBase64(body); err == nil && len(d) > 0 {
			return d, nil // some clients leave the base64 header out
		}
		return body, nil
	}
	return nil, fmt.Errorf("%w: transfer encoding %q for CMS", ErrUnsupported, h.Get("Content-Transfer-Encoding"))
}

// detached verifies a multipart/signed S/MIME entity and returns its signed part.
func (w *walker) detached(e *mime.Entity) (*mime.Entity, error) {
	sig, err := detachedSignature(e)
	if err != nil {
		return nil, err
	}
	der, err := BERToDER(sig)
	if err != nil {
		return nil, err
	}
	sd, err := parseSignedData(der)
	if err != nil {
		return nil, err
	}
	w.verify(sd, e.Parts[0].Raw, "signed-detached")
	return e.Parts[0], nil
}

// cms removes one opaque signed-data or envelope layer and returns the entity inside; signed says
// which it was.
func (w *walker) cms(ber []byte) (inner *mime.Entity, signed bool, err error) {
	der, err := BERToDER(ber)
	if err != nil {
		return nil, false, err
	}
	var ci contentInfo
	if rest, err := asn1.Unmarshal(der, &ci); err != nil || len(rest) != 0 {
		return nil, false, fmt.Errorf("%w: ContentInfo", ErrMalformed)
	}
	switch {
	case ci.ContentType.Equal(oidSignedData):
		sd, err := parseSignedData(der)
		if err != nil {
			return nil, false, err
		}
		if !sd.attached {
			return nil, false, fmt.Errorf("%w: opaque signed-data without content", ErrMalformed)
		}
		w.verify(sd, sd.content, "signed-opaque")
		inner, err := mime.Parse(mime.ToCRLF(sd.content))
		return inner, true, err
	case ci.ContentType.Equal(oidEnvelopedData), ci.ContentType.Equal(oidAuthEnvelopedData):
		d, err := w.decrypt(der)
		if err != nil {
			return nil, false, err
		}
		w.in.Encrypted = true
		w.in.Authenticated = w.in.Authenticated && d.Authenticated
		kind := "enveloped-data"
		if ci.ContentType.Equal(oidAuthEnvelopedData) {
			kind = "authenveloped-data"
		}
		w.in.Layers = append(w.in.Layers, kind+" "+algName(d.Algorithm))
		inner, err := mime.Parse(mime.ToCRLF(d.Content))
		return inner, false, err
	}
	return nil, false, fmt.Errorf("%w: CMS content type %v", ErrUnsupported, ci.ContentType)
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
func (w *walker) verify(sd *signedData, content []byte, layer string) {
	in := w.in
	in.Layers = append(in.Layers, layer)
	in.Signed = true
	in.CoversRoot = w.root
	in.Signer, in.SignerChain, in.Timestamp, in.Capabilities, in.SignatureValue = nil, nil, nil, nil, nil
	in.SignedAt = w.opts.Arrival
	fail := func(list *[]error, base error, format string, args ...any) {
		if base != nil {
			*list = append(*list, fmt.Errorf("%s: %w: "+format, append([]any{layer, base}, args...)...))
		} else {
			*list = append(*list, fmt.Errorf("%s: "+format, append([]any{layer}, args...)...))
		}
	}
	if len(sd.signers) != 1 {
		fail(&w.sigErrs, ErrSignature, "%d signers, want 1", len(sd.signers))
		fail(&w.chainErrs, nil, "no single signer to chain")
		return
	}
	si := sd.signers[0]
	in.SignatureValue = si.signature
	w.weak(si, fail)
	signer := w.signer(sd, si, content, fail)
	if signer == nil {
		return
	}
	in.Signer = signer
	if k, ok := signer.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() < 2048 {
		fail(&w.weakErrs, nil, "RSA key of %d bits", k.N.BitLen())
	}
	in.Capabilities = si.capabilities()
	w.timestamps(si, fail)
	chains, err := w.chains(signer, sd.certs, in.SignedAt)
	if err != nil {
		fail(&w.chainErrs, nil, "signer %s: %w", signer.Subject, err)
	}
	in.SignerChain = chains
}

// failFunc records one finding of a signature layer in one of the walker's lists.
type failFunc func(list *[]error, base error, format string, args ...any)

// signer checks the signature over content and returns the signer's certificate (the one that
// verifies it, else the one the SignerInfo names), recording what went wrong; nil when none is
// known or the one carried cannot be read.
func (w *walker) signer(sd *signedData, si *signerInfo, content []byte, fail failFunc) *x509.Certificate {
	signer, err := findSigner(sd, si, content, w.opts.Certificates)
	switch {
	case errors.Is(err, ErrUnsupported):
		// Not checked is not forged: this goes to its own list, never to the signature errors.
		fail(&w.unsupErrs, nil, "%w", err)
	case err != nil:
		fail(&w.sigErrs, nil, "%w", err)
	}
	if signer == nil && !errors.Is(err, ErrUnsupported) { // an unreadable certificate cannot be chained either
		fail(&w.chainErrs, nil, "no signer certificate to chain")
	}
	return signer
}

// timestamps verifies the SignerInfo's timestamp tokens: a valid one sets SignedAt.
func (w *walker) timestamps(si *signerInfo, fail failFunc) {
	for _, t := range si.timestampTokens() {
		if w.opts.TSARoots == nil {
			fail(&w.tsErrs, nil, "timestamp token present, no TSA roots configured")
			continue
		}
		tok, err := tsa.Verify(t, si.signature, w.opts.TSARoots)
		if err != nil {
			fail(&w.tsErrs, nil, "timestamp: %w", err)
			continue
		}
		w.in.Timestamp, w.in.SignedAt = tok, tok.Time
	}
}

// weak records the weak algorithms a SignerInfo uses: MD5 or SHA-1 as its digest or inside its
// signature algorithm (RSASSA-PSS parameters included).
func (w *walker) weak(si *signerInfo, fail failFunc) {
	if weakOID(si.digestAlg.Algorithm) {
		fail(&w.weakErrs, nil, "digest algorithm %v", si.digestAlg.Algorithm)
	}
	d, _ := hashOf(si.digestAlg.Algorithm)
	s, err := schemeOf(si.sigAlg, d)
	switch {
	case weakOID(si.sigAlg.Algorithm):
		fail(&w.weakErrs, nil, "signature algorithm %v", si.sigAlg.Algorithm)
	case err == nil && s.hash != d && (s.hash == crypto.MD5 || s.hash == crypto.SHA1):
		fail(&w.weakErrs, nil, "signature algorithm %v over %v", si.sigAlg.Algorithm, s.hash)
	}
}

// chains is signerChains through the options' cache, when it is the one for their pools.
func (w *walker) chains(signer *x509.Certificate, carried []*x509.Certificate, at time.Time) ([][]*x509.Certificate, error) {
	c := w.opts.Chains
	if c == nil || c.roots != w.opts.Roots || c.known != w.opts.Intermediates {
		return signerChains(signer, carried, w.opts.Intermediates, w.opts.Roots, at)
	}
	k := chainKey(signer, carried)
	if chains, ok := c.get(k, at); ok {
		return chains, nil
	}
	chains, err := signerChains(signer, carried, w.opts.Intermediates, w.opts.Roots, at)
	if err == nil {
		c.put(k, chains)
	}
	return chains, err
}

// signerChains checks signer's chain to roots at time at with the emailProtection usage, using the
// message's certificates and known intermediates to build it. roots nil means no root, never the
// system pool.
func signerChains(signer *x509.Certificate, carried []*x509.Certificate, known, roots *x509.CertPool, at time.Time) ([][]*x509.Certificate, error) {
	inter := x509.NewCertPool()
	if known != nil {
		inter = known.Clone()
	}
	for _, c := range carried {
		if c != signer {
			inter.AddCert(c)
		}
	}
	if roots == nil {
		roots = x509.NewCertPool()
	}
	return signer.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}})
}
