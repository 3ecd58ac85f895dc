package pgp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/tsa"
)

// Protector signs, timestamps and encrypts messages as the bank, in PGP/MIME.
type Protector struct {
	signer       *openpgp.Entity
	signingKey   openpgp.Key
	timestamper  tsa.Timestamper
	allowSEIPDv2 bool
	senders      map[string]bool
	now          func() time.Time
	boundary     func() (string, error)
}

// Option configures a Protector.
type Option func(*Protector)

// WithTimestamper puts an RFC 3161 token from ts on every signature.
func WithTimestamper(ts tsa.Timestamper) Option { return func(p *Protector) { p.timestamper = ts } }

// WithClock makes now the Protector's clock: signature creation times, literal data dates and the
// choice of valid keys (default time.Now). Tests set it for stable output.
func WithClock(now func() time.Time) Option { return func(p *Protector) { p.now = now } }

// WithBoundaries makes next the source of every MIME boundary the Protector writes (default
// mime.NewBoundary). A boundary that occurs in the content is never used: next is asked again.
func WithBoundaries(next func() (string, error)) Option {
	return func(p *Protector) { p.boundary = next }
}

// WithSEIPDv2 allows SEIPD version 2 (AEAD) for messages whose recipients all advertise it. Off by
// default: GnuPG 2.2 cannot read it.
func WithSEIPDv2(allow bool) Option { return func(p *Protector) { p.allowSEIPDv2 = allow } }

// NewProtector returns a Protector signing with signer, whose signing key must be an unlocked v4
// RSA key of at least 2048 bits.
func NewProtector(signer *openpgp.Entity, opts ...Option) (*Protector, error) {
	p := &Protector{signer: signer, senders: map[string]bool{}, now: time.Now, boundary: mime.NewBoundary}
	for _, o := range opts {
		o(p)
	}
	if signer == nil {
		return nil, fmt.Errorf("%w: no signing key", ErrUnsupported)
	}
	key, ok := signer.SigningKey(p.now())
	if !ok || key.PrivateKey == nil || key.PrivateKey.Encrypted {
		return nil, fmt.Errorf("%w: no unlocked signing key", ErrUnsupported)
	}
	if pub, ok := key.PublicKey.PublicKey.(*rsa.PublicKey); !ok || pub.N.BitLen() < 2048 || key.PublicKey.Version != 4 {
		return nil, fmt.Errorf("%w: signing key must be v4 RSA of at least 2048 bits", ErrUnsupported)
	}
	p.signingKey = key
	for _, id := range signer.Identities {
		if n, err := address.Normalize(id.UserId.Email); err == nil {
			p.senders[n] = true
		}
	}
	return p, nil
}

// Options are per-message choices.
type Options struct {
	// HeaderProtection copies the header fields into the signed part (RFC 9788), marked hp and
	// protected-headers="v1"; for encrypted mail the outer header keeps only From and To/Cc as bare
	// addresses, Date, Message-ID and Subject "[...]", with a legacy display in the text.
	HeaderProtection bool
}

func (p *Protector) config() *packet.Config {
	return &packet.Config{DefaultHash: crypto.SHA256, DefaultCipher: packet.CipherAES256, Time: p.now,
		SigningKeyId: p.signingKey.PublicKey.KeyId}
}

// ProtectMessage prepares msg for encryption and protects it (Protect).
func (p *Protector) ProtectMessage(ctx context.Context, msg []byte, to []*openpgp.Entity, opts Options) ([]byte, error) {
	if _, _, err := p.encryptionKeys(to); err != nil {
		return nil, err
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

// encryptionKeys returns each recipient's encryption key, and whether all of them read SEIPDv2
// (and the Protector allows it).
func (p *Protector) encryptionKeys(to []*openpgp.Entity) ([]openpgp.Key, bool, error) {
	if len(to) == 0 {
		return nil, false, ErrNoRecipients
	}
	encKeys := make([]openpgp.Key, len(to))
	aead := p.allowSEIPDv2
	for i, e := range to {
		k, ok := e.EncryptionKey(p.now())
		if !ok {
			return nil, false, fmt.Errorf("%w: %X", ErrRecipientKey, e.PrimaryKey.Fingerprint)
		}
		encKeys[i] = k
		self, _ := e.PrimarySelfSignature()
		aead = aead && self != nil && self.SEIPDv2
	}
	return encKeys, aead, nil
}

// The parts of multipart/encrypted (RFC 3156 4) around the OpenPGP message.
var (
	versionPartHeader = mime.Header{
		mime.NewField("Content-Type", "application/pgp-encrypted"),
		mime.NewField("Content-Description", "PGP/MIME version identification"),
	}
	encryptedPartHeader = mime.Header{
		mime.NewField("Content-Type", `application/octet-stream; name="encrypted.asc"`),
		mime.NewField("Content-Description", "OpenPGP encrypted message"),
		mime.NewField("Content-Disposition", `inline; filename="encrypted.asc"`),
	}
	signaturePartHeader = mime.Header{
		mime.NewField("Content-Type", `application/pgp-signature; name="signature.asc"`),
		mime.NewField("Content-Description", "OpenPGP digital signature"),
		mime.NewField("Content-Disposition", `attachment; filename="signature.asc"`),
	}
)

// Protect signs the prepared payload and encrypts it to every recipient in one OpenPGP message,
// framed as multipart/encrypted (RFC 3156 6.2). prep must have been prepared for encryption; it is
// not changed, so other protectors may share it.
func (p *Protector) Protect(ctx context.Context, prep *mime.Prepared, to []*openpgp.Entity) ([]byte, error) {
	var b bytes.Buffer
	if err := p.protect(ctx, &b, nil, prep, to); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ProtectTo is Protect writing the message to w as it is made (64 KB at a time) instead of
// returning it: sealpost protect then holds a large statement once, not also its ciphertext. On
// an error, what w was given is not a message.
func (p *Protector) ProtectTo(ctx context.Context, w io.Writer, prep *mime.Prepared, to []*openpgp.Entity) error {
	var b bytes.Buffer
	if err := p.protect(ctx, &b, w, prep, to); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// protect writes the message into b, or through b to w when w is set (b then holds the end).
func (p *Protector) protect(ctx context.Context, b *bytes.Buffer, w io.Writer, prep *mime.Prepared, to []*openpgp.Entity) error {
	encKeys, aead, err := p.encryptionKeys(to)
	if err != nil {
		return err
	}
	if !prep.Encrypted {
		return errors.New("pgp: Protect needs a payload prepared for encryption")
	}
	if err := p.checkSender(prep.From); err != nil {
		return err
	}
	// The payload is signed and encrypted from its parts, without assembling a copy of a large body.
	var head bytes.Buffer
	prep.Inner.WriteTo(&head)
	head.WriteString("\r\n")
	contentLen := head.Len() + len(prep.Body)
	sig, err := p.signature(ctx, io.MultiReader(bytes.NewReader(head.Bytes()), bytes.NewReader(prep.Body)))
	if err != nil {
		return err
	}
	if w == nil {
		b.Grow(armoredLen(contentLen+len(sig)) + 4096)
	}
	prep.Outer.WriteTo(b)
	b.WriteString("MIME-Version: 1.0\r\n")
	// The armored ciphertext cannot hold a boundary ("--" is not base64), so nothing is excluded.
	m, err := mime.NewMultipart(b, p.boundary, nil)
	if err != nil {
		return err
	}
	m.ContentType(`multipart/encrypted; protocol="application/pgp-encrypted"`)
	b.WriteString("\r\n")
	m.Preamble("This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)")
	m.Part(versionPartHeader)
	b.WriteString("Version: 1\r\n")
	m.Part(encryptedPartHeader)
	if err := p.encrypt(b, w, encKeys, aead, head.Bytes(), prep.Body, sig); err != nil {
		return err
	}
	m.Close()
	return nil
}

// literalChunk is how much of the literal data encrypt writes at a time.
const literalChunk = 64 << 10

// encrypt writes the armored OpenPGP message to b (through b to w, when set): a session key for
// each of keys, then the encrypted one-pass-signed literal data (head and body) and sig.
func (p *Protector) encrypt(b *bytes.Buffer, w io.Writer, encKeys []openpgp.Key, aead bool, head, body, sig []byte) error {
	aw := newArmor(b, w, "PGP MESSAGE")
	cfg := p.config()
	sessionKey := make([]byte, packet.CipherAES256.KeySize())
	if _, err := rand.Read(sessionKey); err != nil {
		return err
	}
	for _, k := range encKeys {
		if err := packet.SerializeEncryptedKeyAEAD(aw, k.PublicKey, packet.CipherAES256, aead, sessionKey, cfg); err != nil {
			return fmt.Errorf("%w: %v", ErrRecipientKey, err)
		}
	}
	var enc io.WriteCloser
	var err error
	if aead {
		suite := packet.CipherSuite{Cipher: packet.CipherAES256, Mode: packet.AEADModeOCB}
		enc, err = packet.SerializeSymmetricallyEncrypted(aw, packet.CipherAES256, aead, suite, sessionKey, cfg)
	} else {
		enc, err = newSEIPD(aw, sessionKey, cfg.Random())
	}
	if err != nil {
		return err
	}
	ops := &packet.OnePassSignature{Version: 3, SigType: packet.SigTypeBinary, Hash: crypto.SHA256,
		PubKeyAlgo: p.signingKey.PublicKey.PubKeyAlgo, KeyId: p.signingKey.PublicKey.KeyId, IsLast: true}
	if err := ops.Serialize(enc); err != nil {
		return err
	}
	lit, err := packet.SerializeLiteral(nopCloser{enc}, true, "", uint32(p.now().Unix()))
	if err != nil {
		return err
	}
	// Written in chunks: go-crypto's literal writer gathers each write whole for its partial
	// lengths, and the encryption below it takes a buffer of the write's size, so a 10 MB body
	// in one write cost 30 MB.
	for _, part := range [][]byte{head, body} {
		for len(part) > 0 {
			n := min(len(part), literalChunk)
			if _, err := lit.Write(part[:n]); err != nil {
				return err
			}
			part = part[n:]
		}
	}
	if err := lit.Close(); err != nil {
		return err
	}
	if _, err := enc.Write(sig); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return aw.Close()
}

// Sign returns the prepared payload signed but not encrypted, as multipart/signed with an
// application/pgp-signature part over the exact canonical bytes of the first part. prep must have
// been prepared for signing only.
func (p *Protector) Sign(ctx context.Context, prep *mime.Prepared) ([]byte, error) {
	if prep.Encrypted {
		return nil, errors.New("pgp: Sign needs a payload prepared for signing in clear")
	}
	if err := p.checkSender(prep.From); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(prep.Body) + 8192)
	prep.Outer.WriteTo(&b)
	b.WriteString("MIME-Version: 1.0\r\n")
	m, err := mime.NewMultipart(&b, p.boundary, prep)
	if err != nil {
		return nil, err
	}
	m.ContentType(`multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"`)
	b.WriteString("\r\n")
	m.Preamble("This is an OpenPGP/MIME signed message (RFC 4880 and 3156)")
	m.Entity()
	start := b.Len()
	prep.WriteContent(&b)
	sig, err := p.signature(ctx, bytes.NewReader(b.Bytes()[start:]))
	if err != nil {
		return nil, err
	}
	m.Part(signaturePartHeader)
	aw, err := armor.Encode(crlfWriter{&b}, "PGP SIGNATURE", nil)
	if err != nil {
		return nil, err
	}
	if _, err := aw.Write(sig); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	m.Close()
	return b.Bytes(), nil
}

// checkSender requires the From address to be one of the signing key's user IDs.
func (p *Protector) checkSender(from string) error {
	if n, err := address.Normalize(from); err != nil || !p.senders[n] {
		return fmt.Errorf("%w: %s", ErrSenderNotCovered, from)
	}
	return nil
}

// signature returns a binary v4 signature packet over content, with the RFC 3161 token over its
// signature value in the TimestampNotation unhashed notation when a timestamper is set.
func (p *Protector) signature(ctx context.Context, content io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	if err := openpgp.DetachSign(&buf, p.signer, content, p.config()); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if p.timestamper == nil {
		return buf.Bytes(), nil
	}
	pkt, err := packet.Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return nil, err
	}
	sig, ok := pkt.(*packet.Signature)
	if !ok {
		return nil, fmt.Errorf("%w: signer produced %T", ErrUnsupported, pkt)
	}
	value, err := SignatureValue(sig)
	if err != nil {
		return nil, err
	}
	tok, err := p.timestamper.Timestamp(ctx, value)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTimestamp, err)
	}
	return addUnhashedNotation(buf.Bytes(), TimestampNotation, tok.DER)
}

// armoredLen bounds the size of the armored form of n bytes: base64 with a line break every 64
// characters (each CRLF), plus headers and checksum.
func armoredLen(n int) int { return (n+2)/3*4*66/64 + 256 }

// crlfWriter writes to b with every LF turned into CRLF: go-crypto's armor ends lines with LF, and
// mail needs CRLF. Writing through it avoids a second copy of a large armored message.
type crlfWriter struct{ b *bytes.Buffer }

func (w crlfWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.b.Write(p)
			break
		}
		w.b.Write(p[:i])
		w.b.WriteString("\r\n")
		p = p[i+1:]
	}
	return n, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
