package smime

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"strings"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/tsa"
)

// Protector signs, timestamps and encrypts messages as the bank. It is safe for concurrent use: all
// per-message choices travel in arguments, none in package state.
type Protector struct {
	signer      *keys.Identity
	timestamper tsa.Timestamper
	senders     map[string]bool
}

// Option configures a Protector.
type Option func(*Protector)

// WithTimestamper puts an RFC 3161 token from ts on every signature. Without it signatures carry no
// timestamp.
func WithTimestamper(ts tsa.Timestamper) Option { return func(p *Protector) { p.timestamper = ts } }

// NewProtector returns a Protector signing with signer, whose key must be RSA of at least 2048 bits.
func NewProtector(signer *keys.Identity, opts ...Option) (*Protector, error) {
	if signer == nil || len(signer.Chain) == 0 {
		return nil, errors.New("smime: no signing identity")
	}
	if k, ok := signer.Certificate().PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() < 2048 {
		return nil, fmt.Errorf("%w: signing key must be RSA of at least 2048 bits", ErrUnsupported)
	}
	p := &Protector{signer: signer, senders: map[string]bool{}}
	for _, a := range signer.Certificate().EmailAddresses {
		if n, err := keys.NormalizeAddress(a); err == nil {
			p.senders[n] = true
		}
	}
	for _, o := range opts {
		o(p)
	}
	return p, nil
}

// Options are per-message choices.
type Options struct {
	// HeaderProtection copies the message's header fields into the signed part (RFC 9788). When the
	// message is also encrypted, the outer Subject becomes "[...]" (hcp_baseline), so a one-time
	// passcode in the Subject never travels in clear.
	HeaderProtection bool
}

// Protect signs msg (an RFC 5322 message) and encrypts it to every recipient: the result is an
// application/pkcs7-mime enveloped message whose content is a multipart/signed part. The signed
// content is the message's own MIME entity made canonical: CRLF line ends and a 7-bit transfer
// encoding that no relay will alter, so what is signed is exactly what is sent.
func (p *Protector) Protect(ctx context.Context, msg []byte, to []Recipient, opts Options) ([]byte, error) {
	if len(to) == 0 {
		return nil, ErrNoRecipients
	}
	outer, signed, err := p.signedEntity(ctx, msg, opts, true)
	if err != nil {
		return nil, err
	}
	der, gcm, err := envelope(signed, to)
	if err != nil {
		return nil, err
	}
	smimeType := "enveloped-data"
	if gcm {
		smimeType = "authEnveloped-data"
	}
	var b bytes.Buffer
	b.Grow(base64Len(len(der)) + 4096)
	outer.writeTo(&b)
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: application/pkcs7-mime; smime-type=" + smimeType + "; name=smime.p7m\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\n")
	b.WriteString("Content-Disposition: attachment; filename=smime.p7m\r\n\r\n")
	b.Write(appendBase64(b.AvailableBuffer(), der))
	return b.Bytes(), nil
}

// Sign returns msg signed but not encrypted, as multipart/signed, for mail policy allows in clear.
func (p *Protector) Sign(ctx context.Context, msg []byte, opts Options) ([]byte, error) {
	outer, signed, err := p.signedEntity(ctx, msg, opts, false)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(signed) + 1024)
	outer.writeTo(&b)
	b.WriteString("MIME-Version: 1.0\r\n")
	b.Write(signed)
	return b.Bytes(), nil
}

// signedEntity splits msg into the header fields that stay outside and a multipart/signed entity
// (header and body) over the canonical content.
func (p *Protector) signedEntity(ctx context.Context, msg []byte, opts Options, encrypted bool) (header, []byte, error) {
	h, body, err := splitEntity(toCRLF(msg))
	if err != nil {
		return nil, nil, err
	}
	if err := p.checkSender(h); err != nil {
		return nil, nil, err
	}
	outer := h.without(func(n string) bool { return isContentField(n) || strings.EqualFold(n, "MIME-Version") })
	inner := h.without(func(n string) bool { return !isContentField(n) })
	if inner.get("Content-Type") == "" {
		charset := "us-ascii"
		if !isASCII(body) {
			charset = "utf-8"
		}
		inner = append(inner, newField("Content-Type", "text/plain; charset="+charset))
	}
	inner, body, err = canonicalBody(inner, body, 0)
	if err != nil {
		return nil, nil, err
	}
	if opts.HeaderProtection {
		outer, inner, err = protectHeaders(outer, inner, encrypted)
		if err != nil {
			return nil, nil, err
		}
	}
	// The content is written once, into the multipart body, and signed where it lies.
	for {
		boundary, err := newBoundary()
		if err != nil {
			return nil, nil, err
		}
		var b bytes.Buffer
		b.Grow(len(body) + 16384)
		b.WriteString(`Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256;` + "\r\n")
		b.WriteString(` boundary="` + boundary + `"` + "\r\n\r\n")
		b.WriteString("This is a cryptographically signed message in MIME format.\r\n\r\n")
		b.WriteString("--" + boundary + "\r\n")
		start := b.Len()
		inner.writeTo(&b)
		b.WriteString("\r\n")
		b.Write(body)
		content := b.Bytes()[start:]
		if bytes.Contains(content, []byte(boundary)) {
			continue // astronomically unlikely with 120 random bits, but then it must not be used
		}
		sig, err := p.detachedSignature(ctx, content)
		if err != nil {
			return nil, nil, err
		}
		b.WriteString("\r\n--" + boundary + "\r\n")
		b.WriteString("Content-Type: application/pkcs7-signature; name=smime.p7s\r\n")
		b.WriteString("Content-Transfer-Encoding: base64\r\n")
		b.WriteString("Content-Disposition: attachment; filename=smime.p7s\r\n\r\n")
		b.Write(appendBase64(b.AvailableBuffer(), sig))
		b.WriteString("--" + boundary + "--\r\n")
		return outer, b.Bytes(), nil
	}
}

// checkSender requires a single From address that the signing certificate names (when it names any).
func (p *Protector) checkSender(h header) error {
	if h.count("From") != 1 {
		return ErrNoFrom
	}
	list, err := mail.ParseAddressList(h.get("From"))
	if err != nil || len(list) != 1 {
		return ErrNoFrom
	}
	if len(p.senders) == 0 {
		return nil
	}
	n, err := keys.NormalizeAddress(list[0].Address)
	if err != nil || !p.senders[n] {
		return fmt.Errorf("%w: %s", ErrSenderNotCovered, list[0].Address)
	}
	return nil
}

func newBoundary() (string, error) {
	var r [15]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	return "sealpost-" + hex.EncodeToString(r[:]), nil
}

// unprotected lists header fields that are not copied into the protected part: trace and transport
// fields that belong to the hop, not to the message.
func unprotected(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "received", "return-path", "delivered-to", "x-original-to", "dkim-signature":
		return true
	}
	return strings.HasPrefix(n, "arc-")
}

// obscured says how hcp_baseline (RFC 9788 appendix) treats an outer field of an encrypted message:
// Subject becomes "[...]", Keywords and Comments are removed, everything else stays.
func obscured(f field) (field, bool) {
	switch strings.ToLower(f.name) {
	case "subject":
		return newField(f.name, "[...]"), true
	case "keywords", "comments":
		return field{}, false
	}
	return f, true
}

// protectHeaders implements RFC 9788 on the sending side: the Cryptographic Payload's root part gets
// a copy of each protected header field and hp="cipher" (encrypted) or hp="clear" (signed only); for
// an encrypted message the outer header is obscured and each remaining outer field is recorded in an
// HP-Outer field, so the recipient can see what was exposed.
func protectHeaders(outer, inner header, encrypted bool) (header, header, error) {
	mt, params, err := mediaTypeOf(inner)
	if err != nil {
		return nil, nil, err
	}
	params["hp"] = "clear"
	if encrypted {
		params["hp"] = "cipher"
	}
	newInner := inner.without(func(n string) bool { return strings.EqualFold(n, "Content-Type") })
	newInner = append(newInner, newField("Content-Type", mime.FormatMediaType(mt, params)))
	newOuter := make(header, 0, len(outer))
	for _, f := range outer {
		if unprotected(f.name) {
			newOuter = append(newOuter, f)
			continue
		}
		copied, err := sevenBitField(f)
		if err != nil {
			return nil, nil, err
		}
		newInner = append(newInner, copied)
		if !encrypted {
			newOuter = append(newOuter, f)
			continue
		}
		if o, keep := obscured(f); keep {
			newOuter = append(newOuter, o)
			oc, err := sevenBitField(o)
			if err != nil {
				return nil, nil, err
			}
			newInner = append(newInner, field{name: "HP-Outer", raw: append([]byte("HP-Outer: "), oc.raw...)})
		}
	}
	newInner, err = cleanHeader(newInner)
	if err != nil {
		return nil, nil, err
	}
	return newOuter, newInner, nil
}

// sevenBitField returns f unchanged when it is ASCII, else re-encoded so the signed part stays 7-bit:
// unstructured text as RFC 2047 encoded-words, address lists re-formatted, MIME parameters per
// RFC 2231. Any other 8-bit field is refused.
func sevenBitField(f field) (field, error) {
	if isASCII(f.raw) {
		return f, nil
	}
	v := f.value()
	switch strings.ToLower(f.name) {
	case "subject", "comments", "keywords", "content-description":
		return newField(f.name, mime.QEncoding.Encode("utf-8", v)), nil
	case "content-type", "content-disposition":
		// RFC 2231 encodes non-ASCII parameter values (file names, typically).
		mt, params, err := mime.ParseMediaType(v)
		if err != nil || !isASCII([]byte(mt)) {
			return field{}, fmt.Errorf("%w: header %s: %v", ErrMalformed, f.name, err)
		}
		return newField(f.name, mime.FormatMediaType(mt, params)), nil
	case "from", "to", "cc", "reply-to", "sender":
		list, err := mail.ParseAddressList(v)
		if err != nil {
			return field{}, fmt.Errorf("%w: header %s: %v", ErrMalformed, f.name, err)
		}
		parts := make([]string, len(list))
		for i, a := range list {
			if !isASCII([]byte(a.Address)) {
				return field{}, fmt.Errorf("%w: non-ASCII address in %s (SMTPUTF8 is not supported)", ErrMalformed, f.name)
			}
			parts[i] = a.String()
		}
		return newField(f.name, strings.Join(parts, ", ")), nil
	}
	return field{}, fmt.Errorf("%w: 8-bit header field %s", ErrMalformed, f.name)
}
