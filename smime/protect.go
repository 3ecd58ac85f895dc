package smime

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sealpost/sealpost/address"
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
	parts       *signedParts           // what every signature holds alike
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
	p := &Protector{signer: signer, senders: map[string]bool{}, boundary: mime.NewBoundary}
	for _, a := range signer.Certificate().EmailAddresses {
		if n, err := address.Normalize(a); err == nil {
			p.senders[n] = true
		}
	}
	for _, o := range opts {
		o(p)
	}
	if err := p.encodeSignedParts(); err != nil {
		return nil, fmt.Errorf("smime: %w", err)
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

// ProtectMessage prepares msg (an RFC 5322 message) for encryption and protects it (Protect).
func (p *Protector) ProtectMessage(ctx context.Context, msg []byte, to []Recipient, opts Options) ([]byte, error) {
	if len(to) == 0 {
		return nil, ErrNoRecipients
	}
	prep, err := mime.Prepare(msg, p.prepareOptions(opts, true))
	if err != nil {
		return nil, err
	}
	return p.Protect(ctx, prep, to)
}

// SignMessage prepares msg for signing in clear and signs it (Sign).
func (p *Protector) SignMessage(ctx context.Context, msg []byte, opts Options) ([]byte, error) {
	prep, err := mime.Prepare(msg, p.prepareOptions(opts, false))
	if err != nil {
		return nil, err
	}
	return p.Sign(ctx, prep)
}

// prepareOptions are the mime.Options for opts, with the Protector's boundaries.
func (p *Protector) prepareOptions(opts Options, encrypted bool) mime.Options {
	return mime.Options{HeaderProtection: opts.HeaderProtection, Encrypted: encrypted, Boundary: p.boundary}
}

// Protect signs the prepared payload and encrypts it to every recipient: the result is an
// application/pkcs7-mime enveloped message whose content is a multipart/signed part. The signed
// content is the payload as mime.Prepare made it canonical: CRLF line ends and a 7-bit transfer
// encoding that no relay will alter, so what is signed is exactly what is sent. prep must have been
// prepared for encryption; it is not changed, so other protectors may share it.
func (p *Protector) Protect(ctx context.Context, prep *mime.Prepared, to []Recipient) ([]byte, error) {
	// The output is written once, into a buffer of its size: the DER is the plaintext, its padding
	// or tag, and a frame of at most a few hundred bytes per recipient, all in base64.
	var out mime.Base64Appender
	err := p.protect(ctx, prep, to, &out, func(n int) { out.Dst = make([]byte, 0, n) })
	if err != nil {
		return nil, err
	}
	return out.Close(), nil
}

// ProtectTo is Protect writing the message to w as it is made, through a buffer of
// mime.FlushAt bytes (sealpost protect: a 10 MB statement is not held twice). Nothing is written
// when the message cannot be signed or a recipient's key cannot wrap the content key; an error of
// w's ends it.
func (p *Protector) ProtectTo(ctx context.Context, w io.Writer, prep *mime.Prepared, to []Recipient) error {
	out := mime.Base64Appender{W: w, Dst: make([]byte, 0, mime.FlushAt+4096)}
	if err := p.protect(ctx, prep, to, &out, func(int) {}); err != nil {
		return err
	}
	out.Close()
	return out.Flush()
}

// protect writes the enveloped message into out, once size(n) has been told how many bytes it is
// at most.
func (p *Protector) protect(ctx context.Context, prep *mime.Prepared, to []Recipient, out *mime.Base64Appender, size func(n int)) error {
	if len(to) == 0 {
		return ErrNoRecipients
	}
	if !prep.Encrypted {
		return errors.New("smime: Protect needs a payload prepared for encryption")
	}
	signed, err := p.signedPieces(ctx, prep)
	if err != nil {
		return err
	}
	smimeType := "enveloped-data"
	if allGCM(to) {
		smimeType = "authEnveloped-data"
	}
	var hdr bytes.Buffer
	prep.Outer.WriteTo(&hdr)
	hdr.WriteString("MIME-Version: 1.0\r\n")
	hdr.WriteString("Content-Type: application/pkcs7-mime; smime-type=" + smimeType + "; name=smime.p7m\r\n")
	hdr.WriteString("Content-Transfer-Encoding: base64\r\n")
	hdr.WriteString("Content-Disposition: attachment; filename=smime.p7m\r\n\r\n")
	size(hdr.Len() + mime.Base64Len(envelopeLen(signed)+2*aesBlock+1024+1024*len(to)))
	out.Dst = append(out.Dst, hdr.Bytes()...)
	if err := envelope(out, signed, to); err != nil {
		return err
	}
	return out.Flush()
}

// allGCM reports whether every recipient reads AES-GCM (then the message uses it).
func allGCM(to []Recipient) bool {
	for _, r := range to {
		if !r.GCM {
			return false
		}
	}
	return true
}

// aesBlock is AES's block size and GCM's tag size.
const aesBlock = 16

// Sign returns the prepared payload signed but not encrypted, as multipart/signed, for mail policy
// allows in clear. prep must have been prepared for signing only.
func (p *Protector) Sign(ctx context.Context, prep *mime.Prepared) ([]byte, error) {
	if prep.Encrypted {
		return nil, errors.New("smime: Sign needs a payload prepared for signing in clear")
	}
	signed, err := p.signedPieces(ctx, prep)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(envelopeLen(signed) + 1024)
	prep.Outer.WriteTo(&b)
	b.WriteString("MIME-Version: 1.0\r\n")
	for _, s := range signed {
		b.Write(s)
	}
	return b.Bytes(), nil
}

// Signed-part header of the detached signature.
var p7sHeader = mime.Header{
	mime.NewField("Content-Type", "application/pkcs7-signature; name=smime.p7s"),
	mime.NewField("Content-Transfer-Encoding", "base64"),
	mime.NewField("Content-Disposition", "attachment; filename=smime.p7s"),
}

// signedPieces returns a multipart/signed entity (header and body) over prep's payload, once the
// From address is one the signing certificate covers, as three pieces to be joined: what comes
// before the payload's body (the entity's header, the preamble, the delimiter, the payload's
// header), the body itself (prep.Body, not copied) and what follows it (the signature part and the
// close delimiter). The signature is over the payload entity, hashed where it lies.
func (p *Protector) signedPieces(ctx context.Context, prep *mime.Prepared) ([][]byte, error) {
	if err := p.checkSender(prep.From); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(16384)
	m, err := mime.NewMultipart(&b, p.boundary, prep)
	if err != nil {
		return nil, err
	}
	m.ContentType(`multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256`)
	b.WriteString("\r\n")
	m.Preamble("This is a cryptographically signed message in MIME format.\r\n")
	m.Entity()
	start := b.Len()
	prep.Inner.WriteTo(&b)
	b.WriteString("\r\n")
	bodyAt := b.Len()
	h := sha256.New()
	h.Write(b.Bytes()[start:])
	h.Write(prep.Body)
	sig, err := p.signDigest(ctx, h.Sum(nil))
	if err != nil {
		return nil, err
	}
	m.Part(p7sHeader)
	b64 := mime.AppendBase64(b.AvailableBuffer(), sig)
	b.Write(b64[:len(b64)-2]) // its last line break is the close delimiter's
	m.Close()
	all := b.Bytes()
	return [][]byte{all[:bodyAt], prep.Body, all[bodyAt:]}, nil
}

// checkSender requires the From address to be one the signing certificate names (when it names any).
func (p *Protector) checkSender(from string) error {
	if len(p.senders) == 0 {
		return nil
	}
	n, err := address.Normalize(from)
	if err != nil || !p.senders[n] {
		return fmt.Errorf("%w: %s", ErrSenderNotCovered, from)
	}
	return nil
}
