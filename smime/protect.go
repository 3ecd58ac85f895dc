package smime

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/tsa"
)

// Protector signs, timestamps and encrypts messages as the bank. It is safe for concurrent use: all
// per-message choices travel in arguments, none in package state.
type Protector struct {
	signer      *keys.Identity
	timestamper tsa.Timestamper
	senders     map[string]bool
	now         func() time.Time       // the signingTime attribute
	boundary    func() (string, error) // multipart boundaries
}

// Option configures a Protector.
type Option func(*Protector)

// WithTimestamper puts an RFC 3161 token from ts on every signature. Without it signatures carry no
// timestamp.
func WithTimestamper(ts tsa.Timestamper) Option { return func(p *Protector) { p.timestamper = ts } }

// WithClock makes now the source of the signingTime attribute (default time.Now). Tests set it for
// byte-stable output.
func WithClock(now func() time.Time) Option { return func(p *Protector) { p.now = now } }

// WithBoundaries makes next the source of every MIME boundary the Protector writes (default
// mime.NewBoundary). A boundary that occurs in the content is never used: next is asked again.
func WithBoundaries(next func() (string, error)) Option {
	return func(p *Protector) { p.boundary = next }
}

// NewProtector returns a Protector signing with signer, whose key must be RSA of at least 2048 bits.
func NewProtector(signer *keys.Identity, opts ...Option) (*Protector, error) {
	if signer == nil || len(signer.Chain) == 0 {
		return nil, errors.New("smime: no signing identity")
	}
	if k, ok := signer.Certificate().PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() < 2048 {
		return nil, fmt.Errorf("%w: signing key must be RSA of at least 2048 bits", ErrUnsupported)
	}
	p := &Protector{signer: signer, senders: map[string]bool{}, now: time.Now, boundary: mime.NewBoundary}
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
	// HeaderProtection copies the message's header fields into the signed part (RFC 9788), marked
	// hp and protected-headers="v1". When the message is also encrypted, the outer header keeps
	// only From, To and Cc as bare addresses, Date, Message-ID and Subject "[...]", and the hidden
	// user-facing fields lead the text as a legacy display, so a one-time passcode in any header
	// field or display name never travels in clear.
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
	b.Grow(mime.Base64Len(len(der)) + 4096)
	outer.WriteTo(&b)
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: application/pkcs7-mime; smime-type=" + smimeType + "; name=smime.p7m\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\n")
	b.WriteString("Content-Disposition: attachment; filename=smime.p7m\r\n\r\n")
	b.Write(mime.AppendBase64(b.AvailableBuffer(), der))
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
	outer.WriteTo(&b)
	b.WriteString("MIME-Version: 1.0\r\n")
	b.Write(signed)
	return b.Bytes(), nil
}

// signedEntity splits msg into the header fields that stay outside and a multipart/signed entity
// (header and body) over the canonical payload.
func (p *Protector) signedEntity(ctx context.Context, msg []byte, opts Options, encrypted bool) (mime.Header, []byte, error) {
	prep, err := mime.Prepare(msg, mime.Options{HeaderProtection: opts.HeaderProtection, Encrypted: encrypted, Boundary: p.boundary})
	if err != nil {
		return nil, nil, err
	}
	if err := p.checkSender(prep.From); err != nil {
		return nil, nil, err
	}
	// The content is written once, into the multipart body, and signed where it lies.
	for {
		boundary, err := p.boundary()
		if err != nil {
			return nil, nil, err
		}
		var b bytes.Buffer
		b.Grow(len(prep.Body) + 16384)
		b.WriteString(`Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256;` + "\r\n")
		b.WriteString(` boundary="` + boundary + `"` + "\r\n\r\n")
		b.WriteString("This is a cryptographically signed message in MIME format.\r\n\r\n")
		b.WriteString("--" + boundary + "\r\n")
		start := b.Len()
		prep.WriteContent(&b)
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
		b.Write(mime.AppendBase64(b.AvailableBuffer(), sig))
		b.WriteString("--" + boundary + "--\r\n")
		return prep.Outer, b.Bytes(), nil
	}
}

// checkSender requires the From address to be one the signing certificate names (when it names any).
func (p *Protector) checkSender(from string) error {
	if len(p.senders) == 0 {
		return nil
	}
	n, err := keys.NormalizeAddress(from)
	if err != nil || !p.senders[n] {
		return fmt.Errorf("%w: %s", ErrSenderNotCovered, from)
	}
	return nil
}
