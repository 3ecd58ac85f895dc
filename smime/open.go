package smime

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/tsa"
)

// ErrSignature is returned by Open when a signature is missing, does not verify, uses a weak
// algorithm, or its signer does not chain to a trusted root with email protection.
var ErrSignature = errors.New("signature not valid")

// Opened is a message taken apart by Open.
type Opened struct {
	// Content is the signed MIME entity (header fields and body) exactly as signed.
	Content []byte
	// Signer is the verified signer's certificate.
	Signer *x509.Certificate
	// Timestamp is the verified RFC 3161 token over the signature, or nil if it carried none.
	Timestamp *tsa.Token
	// Encrypted and Authenticated describe the envelope (Authenticated: AES-GCM).
	Encrypted, Authenticated bool
}

// OpenOptions says what Open trusts.
type OpenOptions struct {
	Roots    *x509.CertPool // trust anchors for signers (emailProtection)
	TSARoots *x509.CertPool // trust anchors for timestamp authorities
	// Identity decrypts enveloped messages; nil means the message must be signed only.
	Identity *keys.Identity
	// Now is the arrival time, used for the chain check when there is no timestamp. Zero means now.
	Now time.Time
}

// Open decrypts (if enveloped) and verifies a message in the form Protect and Sign produce: an
// optional EnvelopedData/AuthEnvelopedData around a detached multipart/signed. The signer's chain is
// checked at the timestamp's time when a valid token is present, else at arrival, with the
// emailProtection usage, SHA-256 or better, and RSA keys of at least 2048 bits; the signing time the
// signer claims is not trusted for this. It is the verifying half of sealpost's own output; inbound
// mail from other clients needs the fuller pipeline of the gateway.
func Open(msg []byte, opts OpenOptions) (o *Opened, err error) {
	defer func() {
		if r := recover(); r != nil {
			o, err = nil, fmt.Errorf("%w: %v", ErrMalformed, r)
		}
	}()
	h, body, err := mime.SplitEntity(mime.ToCRLF(msg))
	if err != nil {
		return nil, err
	}
	o = &Opened{}
	mt, params, err := mime.MediaType(h)
	if err != nil {
		return nil, err
	}
	if mt == "application/pkcs7-mime" || mt == "application/x-pkcs7-mime" {
		st := strings.ToLower(params["smime-type"])
		if st != "enveloped-data" && st != "authenveloped-data" {
			return nil, fmt.Errorf("%w: smime-type %q", ErrUnsupported, st)
		}
		if opts.Identity == nil {
			return nil, fmt.Errorf("%w: no key to decrypt with", ErrNotForUs)
		}
		der, err := mime.DecodeBase64(body)
		if err != nil {
			return nil, err
		}
		d, err := Decrypt(der, opts.Identity)
		if err != nil {
			return nil, err
		}
		o.Encrypted, o.Authenticated = true, d.Authenticated
		if h, body, err = mime.SplitEntity(mime.ToCRLF(d.Content)); err != nil {
			return nil, err
		}
		if mt, params, err = mime.MediaType(h); err != nil {
			return nil, err
		}
	}
	proto := strings.ToLower(params["protocol"])
	if mt != "multipart/signed" || (proto != "application/pkcs7-signature" && proto != "application/x-pkcs7-signature") {
		return nil, fmt.Errorf("%w: not signed (%s)", ErrSignature, mt)
	}
	_, parts, err := mime.MultipartParts(body, params["boundary"])
	if err != nil {
		return nil, err
	}
	if len(parts) != 2 {
		return nil, fmt.Errorf("%w: multipart/signed with %d parts", ErrMalformed, len(parts))
	}
	sh, sb, err := mime.SplitEntity(parts[1])
	if err != nil {
		return nil, err
	}
	if st, _, _ := mime.MediaType(sh); st != "application/pkcs7-signature" && st != "application/x-pkcs7-signature" {
		return nil, fmt.Errorf("%w: second part is %s", ErrMalformed, st)
	}
	sig, err := mime.DecodeBase64(sb)
	if err != nil {
		return nil, err
	}
	o.Content = parts[0]
	if err := verifyDetached(o, sig, opts); err != nil {
		return nil, err
	}
	return o, nil
}

func verifyDetached(o *Opened, sig []byte, opts OpenOptions) error {
	der, err := BERToDER(sig)
	if err != nil {
		return err
	}
	sd, err := parseSignedData(der)
	if err != nil {
		return err
	}
	if len(sd.signers) != 1 {
		return fmt.Errorf("%w: %d signers", ErrSignature, len(sd.signers))
	}
	si := sd.signers[0]
	if h, err := hashOf(si.digestAlg.Algorithm); err != nil || (h != crypto.SHA256 && h != crypto.SHA384 && h != crypto.SHA512) || weakOID(si.sigAlg.Algorithm) {
		return fmt.Errorf("%w: digest algorithm %v is not SHA-256 or better", ErrSignature, si.digestAlg.Algorithm)
	}
	signer, err := findSigner(sd, si, o.Content, nil)
	if err != nil { // signature and digest only: the chain is checked below
		return fmt.Errorf("%w: %w", ErrSignature, err)
	}
	if k, ok := signer.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() < 2048 {
		return fmt.Errorf("%w: signer key is not RSA of at least 2048 bits", ErrSignature)
	}
	at := opts.Now
	if at.IsZero() {
		at = time.Now()
	}
	for _, t := range si.timestampTokens() {
		if opts.TSARoots == nil {
			return fmt.Errorf("%w: timestamp present but no TSA roots configured", ErrSignature)
		}
		tok, err := tsa.Verify(t, si.signature, opts.TSARoots)
		if err != nil {
			return fmt.Errorf("%w: timestamp: %w", ErrSignature, err)
		}
		o.Timestamp, at = tok, tok.Time
	}
	if _, err := signerChains(signer, sd.certs, nil, opts.Roots, at); err != nil {
		return fmt.Errorf("%w: signer %s: %v", ErrSignature, signer.Subject, err)
	}
	o.Signer = signer
	return nil
}

// Header returns the decoded value of a header field of the opened content (e.g. the protected
// Subject of an OTP).
func (o *Opened) Header(name string) string { return mime.HeaderValue(o.Content, name) }

// TimestampOf returns the signature value of the single signer of a DER CMS SignedData and the RFC
// 3161 token in its id-aa-timeStampToken attribute (nil if it has none), without verifying either:
// for handing both to another verifier, e.g. openssl ts -verify.
func TimestampOf(signedData []byte) (sigValue, token []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			sigValue, token, err = nil, nil, fmt.Errorf("%w: %v", ErrMalformed, r)
		}
	}()
	der, err := BERToDER(signedData)
	if err != nil {
		return nil, nil, err
	}
	sd, err := parseSignedData(der)
	if err != nil {
		return nil, nil, err
	}
	if len(sd.signers) != 1 {
		return nil, nil, fmt.Errorf("%w: %d signers", ErrMalformed, len(sd.signers))
	}
	si := sd.signers[0]
	if t := si.timestampTokens(); len(t) > 0 {
		return si.signature, t[0], nil
	}
	return si.signature, nil, nil
}
