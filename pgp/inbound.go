package pgp

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"runtime/debug"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/tsa"
)

// Errors Inspect returns, beside ErrMalformed, ErrDecrypt and ErrUnsupported.
var (
	// ErrNoIntegrity: the message holds Symmetrically Encrypted Data (packet tag 9), which has no
	// MDC or AEAD tag; it is refused before anything is decrypted.
	ErrNoIntegrity = errors.New("encrypted data without integrity protection (no MDC or AEAD)")
	// ErrNotForUs: the message is encrypted, but to none of the keys Inspect may decrypt with.
	ErrNotForUs = errors.New("not encrypted to any of the bank's keys")
	// ErrUnknownKey: a signature's issuer is not among the known signer keys. Inspect reports it in
	// Inbound.SignatureErr instead of ErrSignature: the signature may be fine, its key is not known.
	ErrUnknownKey = errors.New("signer key not known")
)

const (
	// maxKeyPackets bounds the encrypted session keys tried per message: each may cost an RSA
	// private-key operation.
	maxKeyPackets = 32
	// maxSignaturePackets bounds the (one-pass) signature packets read per OpenPGP message.
	maxSignaturePackets = 16
	// maxArmored bounds the OpenPGP data of one part, and the literal data once decrypted.
	maxArmored = 64 << 20
)

var strongHashes = []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512}

// InboundOptions says what Inspect decrypts with and which signer keys it knows.
type InboundOptions struct {
	Decrypt  openpgp.EntityList // the bank's unlocked secret keys (may be empty)
	Signers  openpgp.EntityList // customers' public keys known to the bank (registered/imported)
	TSARoots *x509.CertPool     // nil: a token present is reported in TimestampErr as unverifiable
	Arrival  time.Time          // zero: now; the time keys are judged at when there is no valid token
}

// Inbound is what Inspect found in a customer's message: facts, not a verdict.
//
// With several signature layers (signed, encrypted, signed) the signer fields (IssuerKeyID,
// IssuerFingerprint, Signer, Fingerprint, Signature, SignedAt, Timestamp) are the innermost
// signature's, while SignatureErr, TimestampErr, KeyErr and WeakAlgorithm join the findings of every
// layer, so that a bad outer signature never disappears behind a good inner one.
type Inbound struct {
	// Content is the innermost MIME entity (CRLF) once encryption and signatures are removed; for a
	// signed entity, exactly the signed bytes (a decrypted literal with bare LFs is made CRLF).
	Content   []byte
	Encrypted bool
	AEAD      bool   // every encryption layer was SEIPDv2 (or the AEAD packet); false with MDC
	Cipher    string // e.g. "aes256": the innermost encryption layer's symmetric cipher; "" when not encrypted
	Signed    bool   // a signature was found (inline one-pass in the encrypted message, or a multipart/signed)
	// SignatureErr is nil iff every signature verifies with a key from Signers. A failure wraps
	// ErrSignature; an issuer not in Signers wraps ErrUnknownKey (and not ErrSignature).
	SignatureErr      error
	IssuerKeyID       uint64            // from the signature, also when the key is unknown
	IssuerFingerprint []byte            // from the signature's issuer fingerprint subpacket when present
	Signer            *openpgp.Entity   // nil unless the signature verified
	Fingerprint       string            // upper-case hex fingerprint of the signer's PRIMARY key, "" when unknown
	Signature         *packet.Signature // the signature packet reported on; nil when unsigned
	SignedAt          time.Time         // the verified token's genTime if a sealpost token is present, else Arrival
	Timestamp         *tsa.Token
	TimestampErr      error // a token was present but could not be verified
	// KeyErr: the signer key (or its signing subkey) was revoked (keys.ErrRevoked, whatever the
	// revocation's date), expired (keys.ErrExpired) or not yet valid (keys.ErrNotYetValid) at
	// SignedAt, or cannot sign (keys.ErrNoSigningKey). Only judged for a verified signature.
	KeyErr error
	// WeakAlgorithm: a hash other than SHA-256/384/512, or an RSA/DSA/ElGamal key below 2048 bits.
	WeakAlgorithm error
	// CoversRoot: Content is the message root inside only encryption and signature layers. It is
	// false when Inspect walked into a part of an unsigned multipart (e.g. a multipart/mixed holding
	// a text part and a multipart/signed part): then Content is that part's content only and the
	// other parts are dropped.
	CoversRoot bool
	Layers     []string // outermost first, e.g. "pgp-encrypted seipd-v1 aes256", "pgp-onepass-signed", "pgp-signed"
}

// Err says whether Content may be taken as signed by Signer: nil when there is a signature and
// every signature layer verified with a key from Signers that was valid at SignedAt, carries no
// weak algorithm and no token that failed, and the signed part is the message root. Otherwise it
// wraps ErrSignature and joins the findings (so errors.Is finds, say, a tsa error). It does not
// bind the signer to an address: that is the caller's verdict.
func (in *Inbound) Err() error {
	return mime.Findings(ErrSignature, in.Signed, in.CoversRoot, in.Signer != nil, "no verified signer",
		in.SignatureErr, in.KeyErr, in.TimestampErr, in.WeakAlgorithm)
}

// Inspect takes an inbound PGP/MIME message (RFC 3156) apart: it decrypts multipart/encrypted
// layers (SEIPD v1 with MDC, SEIPD v2 and the AEAD packet, to any of opts.Decrypt), verifies
// one-pass signatures inside them and multipart/signed detached signatures, each signature's
// sealpost timestamp token and its key's validity, and reports what it found. A plain multipart is
// walked into its first PGP/MIME part; anything else is returned as it is, unsigned.
//
// It returns an error only when the message cannot be processed at all: malformed (ErrMalformed,
// also when decrypted or signed content is not a MIME entity), encrypted to none of the keys
// (ErrNotForUs), without integrity protection (ErrNoIntegrity, refused before any session key is
// decrypted), undecryptable or failing its MDC/AEAD check (ErrDecrypt: nothing is released), or
// nested deeper than 8 layers (ErrUnsupported). Inline PGP in a text/plain part is not PGP/MIME
// and comes back as plain content. It never panics. It is safe for concurrent use with shared
// options: the keys are only read.
func Inspect(msg []byte, opts InboundOptions) (in *Inbound, err error) {
	defer func() {
		if r := recover(); r != nil {
			in, err = nil, &recoveredPanic{value: r, stack: debug.Stack()}
		}
	}()
	return mime.InspectWith(msg, mime.MaxLayers, NewLayer(opts), ErrUnsupported)
}

// Layer is PGP/MIME for mime.Walk: it recognises PGP/MIME entities, removes their layers and
// keeps the facts of every one it removed. A Layer serves one message.
type Layer struct{ w *walker }

// NewLayer returns a Layer that decrypts and verifies with opts.
func NewLayer(opts InboundOptions) *Layer {
	if opts.Arrival.IsZero() {
		opts.Arrival = time.Now()
	}
	return &Layer{w: &walker{opts: opts, in: &Inbound{}, aead: true}}
}

// Recognise reports whether e is PGP/MIME: multipart/encrypted or multipart/signed with an
// OpenPGP protocol (RFC 3156).
func (l *Layer) Recognise(e *mime.Entity) bool { return classify(e.MediaType, e.Params) != kindPlain }

// Unwrap removes one PGP/MIME layer from e: it verifies a signature, or decrypts (and verifies
// the signature inside).
func (l *Layer) Unwrap(e *mime.Entity, _ bool) (s mime.Step, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = mime.Step{}, &recoveredPanic{value: r, stack: debug.Stack()}
		}
	}()
	n, signed := len(l.w.in.Layers), l.w.in.Signed
	l.w.in.Signed = false
	if classify(e.MediaType, e.Params) == kindSigned {
		s.Inner, err = l.w.signed(e)
	} else {
		s.Inner, err = l.w.encrypted(e)
	}
	s.Signed, l.w.in.Signed = l.w.in.Signed, l.w.in.Signed || signed
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
	in.AEAD = in.Encrypted && w.aead
	in.CoversRoot = walked.Root
	if !in.Signed {
		in.SignedAt = w.opts.Arrival
	}
	in.SignatureErr, in.TimestampErr = errors.Join(w.sigErrs...), errors.Join(w.tsErrs...)
	in.KeyErr, in.WeakAlgorithm = errors.Join(w.keyErrs...), errors.Join(w.weakErrs...)
	return in
}

// recoveredPanic is a panic inside a parser, turned into ErrMalformed. Its own type lets the fuzz
// target tell it from an ordinary refusal.
type recoveredPanic struct {
	value any
	stack []byte
}

func (p *recoveredPanic) Error() string {
	return fmt.Sprintf("%v: internal error: %v", ErrMalformed, p.value)
}
func (p *recoveredPanic) Unwrap() error { return ErrMalformed }

type walker struct {
	opts                               InboundOptions
	in                                 *Inbound
	aead                               bool // every encryption layer so far was AEAD
	sigErrs, tsErrs, keyErrs, weakErrs []error
}

// entity kinds
const (
	kindPlain = iota
	kindEncrypted
	kindSigned
)

func classify(mt string, params map[string]string) int {
	proto := strings.ToLower(params["protocol"])
	switch {
	case mt == "multipart/encrypted" && proto == "application/pgp-encrypted":
		return kindEncrypted
	case mt == "multipart/signed" && proto == "application/pgp-signature":
		return kindSigned
	}
	return kindPlain
}

// detachedSignature returns the binary OpenPGP data of the signature part of e, a PGP/MIME
// multipart/signed entity.
func detachedSignature(e *mime.Entity) ([]byte, error) {
	_, sp, err := e.SignedParts()
	if err != nil {
		return nil, err
	}
	if sp.MediaType != "application/pgp-signature" {
		return nil, fmt.Errorf("%w: signature part is %s", ErrMalformed, sp.MediaType)
	}
	return openPGPData(sp, "PGP SIGNATURE")
}

// openPGPData returns the binary OpenPGP data of a MIME part: transfer encoding undone, then
// de-armored (armor block type want) unless the part already is binary.
func openPGPData(part *mime.Entity, want string) ([]byte, error) {
	h, body := part.Header, part.Body
	var err error
	switch cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); cte {
	case "", "7bit", "8bit", "binary":
	case "base64":
		if body, err = mime.DecodeBase64(body); err != nil {
			return nil, err
		}
	case "quoted-printable":
		if body, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body))); err != nil {
			return nil, fmt.Errorf("%w: quoted-printable: %v", ErrMalformed, err)
		}
	default:
		return nil, fmt.Errorf("%w: transfer encoding %q", ErrUnsupported, cte)
	}
	var r io.Reader
	if bytes.Contains(body, []byte("-----BEGIN PGP ")) {
		block, err := armor.Decode(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("%w: armor: %v", ErrMalformed, err)
		}
		if block.Type != want {
			return nil, fmt.Errorf("%w: armored %q, want %q", ErrMalformed, block.Type, want)
		}
		r = block.Body
	} else if len(body) > 0 && body[0]&0x80 != 0 {
		r = bytes.NewReader(body)
	} else {
		return nil, fmt.Errorf("%w: part holds no OpenPGP data", ErrMalformed)
	}
	bin, err := io.ReadAll(io.LimitReader(r, maxArmored+1))
	if err != nil {
		return nil, fmt.Errorf("%w: armor: %v", ErrMalformed, err)
	}
	if len(bin) > maxArmored {
		return nil, fmt.Errorf("%w: OpenPGP data larger than %d bytes", ErrUnsupported, maxArmored)
	}
	return bin, nil
}

// signed handles multipart/signed; protocol="application/pgp-signature" (RFC 3156 5), and returns
// the signed part.
func (w *walker) signed(e *mime.Entity) (*mime.Entity, error) {
	bin, err := detachedSignature(e)
	if err != nil {
		return nil, err
	}
	var sig *packet.Signature
	pr := packet.NewReader(bytes.NewReader(bin))
	for sig == nil {
		p, err := pr.Next()
		if err == io.EOF {
			break // reported below as a signature error: the signed part itself can be read
		}
		if err != nil {
			return nil, fmt.Errorf("%w: signature part: %v", ErrMalformed, err)
		}
		sig, _ = p.(*packet.Signature)
	}
	w.verify(sig, e.Parts[0].Raw, "pgp-signed", 0)
	return e.Parts[0], nil
}

// encrypted handles multipart/encrypted; protocol="application/pgp-encrypted" (RFC 3156 4), and
// returns the decrypted entity.
func (w *walker) encrypted(e *mime.Entity) (*mime.Entity, error) {
	if e.PartsErr != nil {
		return nil, e.PartsErr
	}
	if len(e.Parts) != 2 {
		return nil, fmt.Errorf("%w: multipart/encrypted with %d parts", ErrMalformed, len(e.Parts))
	}
	if e.Parts[1].Header == nil { // its Content-Type is not read: the protocol says what it holds
		return nil, e.Parts[1].Err
	}
	bin, err := openPGPData(e.Parts[1], "PGP MESSAGE")
	if err != nil {
		return nil, err
	}
	d, err := w.decrypt(bin)
	if err != nil {
		return nil, err
	}
	in := w.in
	in.Encrypted, in.Cipher = true, d.cipher
	w.aead = w.aead && d.aead
	in.Layers = append(in.Layers, d.layer)
	if len(d.ops) > 0 || len(d.sigs) > 0 {
		sig, hint, layer := pickSignature(d.ops, d.sigs)
		w.verify(sig, d.content, layer, hint)
	}
	return mime.Parse(mime.ToCRLF(d.content))
}

// decrypted is one OpenPGP message after decryption and its integrity check.
type decrypted struct {
	content []byte // the literal data
	aead    bool
	cipher  string
	layer   string
	ops     []*packet.OnePassSignature
	sigs    []*packet.Signature // in packet order: signatures before the literal data, then after it
}

// decrypt decrypts one binary OpenPGP message. It reads the packets itself rather than through
// openpgp.ReadMessage to refuse Symmetrically Encrypted Data at packet level, before any key is
// used, to learn the cipher, and to release nothing before the MDC or the last AEAD tag checked.
func (w *walker) decrypt(bin []byte) (*decrypted, error) {
	eks, edp, err := encryptedPackets(packet.NewReader(bytes.NewReader(bin)))
	if err != nil {
		return nil, err
	}
	rc, ek, err := w.openSessionKey(eks, edp)
	if err != nil {
		return nil, err
	}
	d := &decrypted{}
	if err := d.describe(edp, ek); err != nil {
		return nil, err
	}
	readErr := d.readPlaintext(rc)
	closeErr := rc.Close() // checks the MDC, or the final AEAD tag, reading to the end first
	switch {
	case closeErr != nil:
		return nil, fmt.Errorf("%w: integrity check: %v", ErrDecrypt, closeErr)
	case errors.Is(readErr, pgperrors.ErrMDCHashMismatch), errors.Is(readErr, pgperrors.ErrAEADTagVerification):
		return nil, fmt.Errorf("%w: integrity check: %v", ErrDecrypt, readErr)
	case readErr != nil:
		return nil, readErr
	}
	return d, nil
}

// encryptedPackets reads the session key packets up to the encrypted data packet. Encrypted data
// without integrity protection is refused here, before any session key is decrypted.
func encryptedPackets(pr *packet.Reader) ([]*packet.EncryptedKey, packet.EncryptedDataPacket, error) {
	var eks []*packet.EncryptedKey
	for {
		p, err := pr.Next()
		if err == io.EOF {
			return nil, nil, fmt.Errorf("%w: no encrypted data in multipart/encrypted", ErrMalformed)
		}
		if err != nil {
			if _, ok := err.(pgperrors.UnsupportedError); ok {
				return nil, nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
			}
			return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		switch p := p.(type) {
		case *packet.EncryptedKey:
			if len(eks) == maxKeyPackets {
				return nil, nil, fmt.Errorf("%w: more than %d encrypted session keys", ErrUnsupported, maxKeyPackets)
			}
			eks = append(eks, p)
		case *packet.SymmetricKeyEncrypted, packet.Padding:
			// a passphrase (the bank has none), or padding
		case *packet.SymmetricallyEncrypted:
			if !p.IntegrityProtected {
				return nil, nil, ErrNoIntegrity
			}
			return eks, p, nil
		case *packet.AEADEncrypted:
			return eks, p, nil
		default:
			return nil, nil, fmt.Errorf("%w: multipart/encrypted holds %T, not encrypted data", ErrMalformed, p)
		}
	}
}

// describe names the encryption layer from its packets, refusing a v5/v6 session key for a v1
// encrypted packet.
func (d *decrypted) describe(edp packet.EncryptedDataPacket, ek *packet.EncryptedKey) error {
	if v2, ok := edp.(*packet.SymmetricallyEncrypted); ok && v2.Version == 2 {
		d.aead, d.cipher = true, cipherName(v2.Cipher)
		d.layer = "pgp-encrypted seipd-v2 " + d.cipher + " " + aeadModeName(v2.Mode)
		return nil
	}
	if ek.Version == 6 || ek.Version == 5 {
		return fmt.Errorf("%w: v%d session key for a v1 encrypted packet", ErrMalformed, ek.Version)
	}
	d.cipher = cipherName(ek.CipherFunc)
	if _, ok := edp.(*packet.AEADEncrypted); ok {
		d.aead, d.layer = true, "pgp-encrypted aead "+d.cipher
	} else {
		d.layer = "pgp-encrypted seipd-v1 " + d.cipher
	}
	return nil
}

// openSessionKey decrypts a session key addressed to one of the Decrypt keys and starts
// decrypting edp with it.
func (w *walker) openSessionKey(eks []*packet.EncryptedKey, edp packet.EncryptedDataPacket) (io.ReadCloser, *packet.EncryptedKey, error) {
	var matched bool
	var lastErr error
	var ids []string
	for _, ek := range eks {
		ids = append(ids, fmt.Sprintf("%016X", ek.KeyId))
		var cands []openpgp.Key
		if ek.KeyId == 0 { // anonymous recipient: try every key
			for _, e := range w.opts.Decrypt {
				cands = append(cands, w.opts.Decrypt.KeysById(e.PrimaryKey.KeyId)...)
				for _, sk := range e.Subkeys {
					cands = append(cands, w.opts.Decrypt.KeysById(sk.PublicKey.KeyId)...)
				}
			}
		} else {
			cands = w.opts.Decrypt.KeysById(ek.KeyId)
		}
		for _, k := range cands {
			if k.PrivateKey == nil {
				continue
			}
			matched = true
			if k.PrivateKey.Encrypted {
				lastErr = fmt.Errorf("secret key %016X is locked", k.PublicKey.KeyId)
				continue
			}
			if err := ek.Decrypt(k.PrivateKey, nil); err != nil {
				lastErr = err
				continue
			}
			rc, err := edp.Decrypt(ek.CipherFunc, ek.Key)
			if err != nil {
				lastErr = err
				continue
			}
			return rc, ek, nil
		}
	}
	if !matched {
		return nil, nil, fmt.Errorf("%w: encrypted to [%s]", ErrNotForUs, strings.Join(ids, " "))
	}
	return nil, nil, fmt.Errorf("%w: %v", ErrDecrypt, lastErr)
}

// readPlaintext reads the decrypted packets: compression, one-pass signatures, the literal data
// and the signatures after it.
func (d *decrypted) readPlaintext(rc io.Reader) error {
	pr := packet.NewReader(rc)
	limit := int64(maxArmored)
	addSig := func(p packet.Packet) error {
		switch p := p.(type) {
		case *packet.Signature:
			d.sigs = append(d.sigs, p)
		case *packet.OnePassSignature:
			d.ops = append(d.ops, p)
		}
		if len(d.sigs)+len(d.ops) > maxSignaturePackets {
			return fmt.Errorf("%w: more than %d signature packets", ErrUnsupported, maxSignaturePackets)
		}
		return nil
	}
	for {
		p, err := pr.Next()
		if err == io.EOF {
			return fmt.Errorf("%w: no literal data in the encrypted message", ErrMalformed)
		}
		if err != nil {
			return fmt.Errorf("%w: decrypted packets: %w", ErrMalformed, err)
		}
		switch p := p.(type) {
		case *packet.Compressed:
			if err := pr.Push(p.LimitedBodyReader(&limit)); err != nil {
				return fmt.Errorf("%w: %v", ErrUnsupported, err)
			}
			continue
		case *packet.LiteralData:
			body, err := io.ReadAll(io.LimitReader(p.Body, maxArmored+1))
			if err != nil {
				return fmt.Errorf("%w: literal data: %w", ErrMalformed, err)
			}
			if len(body) > maxArmored {
				return fmt.Errorf("%w: literal data larger than %d bytes", ErrUnsupported, maxArmored)
			}
			d.content = body
			for {
				p, err := pr.Next()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return fmt.Errorf("%w: packets after the literal data: %w", ErrMalformed, err)
				}
				if err := addSig(p); err != nil {
					return err
				}
			}
		}
		if err := addSig(p); err != nil {
			return err
		}
	}
}

// pickSignature chooses the signature to verify over the literal data: the one for the first
// (outermost) one-pass signature packet, or, in the old form without one, the first signature. A
// one-pass signature packet without its signature gives a nil signature and the key ID it named.
func pickSignature(ops []*packet.OnePassSignature, sigs []*packet.Signature) (*packet.Signature, uint64, string) {
	if len(ops) == 0 {
		return sigs[0], 0, "pgp-inline-signed"
	}
	want := ops[0].KeyId
	for _, s := range sigs {
		if s.IssuerKeyId != nil && *s.IssuerKeyId == want {
			return s, want, "pgp-onepass-signed"
		}
	}
	if len(sigs) > 0 {
		// nested one-pass signatures close in reverse order: the outermost signature comes last
		return sigs[len(sigs)-1], want, "pgp-onepass-signed"
	}
	return nil, want, "pgp-onepass-signed"
}

// verify records the facts of one signature layer over content. Later (inner) layers overwrite
// the signer facts; errors accumulate. hint is the issuer key ID a one-pass packet announced.
func (w *walker) verify(sig *packet.Signature, content []byte, layer string, hint uint64) {
	in := w.in
	in.Layers = append(in.Layers, layer)
	in.Signed = true
	in.Signer, in.Fingerprint, in.Signature, in.Timestamp = nil, "", sig, nil
	in.IssuerKeyID, in.IssuerFingerprint = hint, nil
	in.SignedAt = w.opts.Arrival
	fail := func(list *[]error, base error, format string, args ...any) {
		*list = append(*list, fmt.Errorf("%s: %w: "+format, append([]any{layer, base}, args...)...))
	}
	if sig == nil {
		fail(&w.sigErrs, ErrSignature, "no signature packet that can be read")
		return
	}
	w.issuer(sig)
	if !strongHash(sig.Hash) {
		fail(&w.weakErrs, errWeak, "hash %v", sig.Hash)
	}
	w.timestamp(sig, fail)
	if !w.documentSignature(sig, fail) {
		return
	}
	key := w.signerKey(sig, content, fail)
	if key == nil {
		return
	}
	if exp := keys.PGPSignatureExpiry(sig); !exp.IsZero() && in.SignedAt.After(exp) {
		fail(&w.sigErrs, ErrSignature, "signature expired %s", exp.UTC().Format(time.RFC3339))
	}
	in.Signer = key.Entity
	in.Fingerprint = fmt.Sprintf("%X", key.Entity.PrimaryKey.Fingerprint)
	w.judgeKey(*key, layer, fail)
}

// failFunc records one finding of a signature layer in one of the walker's lists.
type failFunc func(list *[]error, base error, format string, args ...any)

// issuer records the key ID and fingerprint the signature names (the hint stays when it names
// neither).
func (w *walker) issuer(sig *packet.Signature) {
	in := w.in
	if sig.IssuerKeyId != nil {
		in.IssuerKeyID = *sig.IssuerKeyId
	} else if fp := sig.IssuerFingerprint; len(fp) == 20 {
		in.IssuerKeyID = beUint64(fp[12:])
	} else if len(fp) == 32 {
		in.IssuerKeyID = beUint64(fp[:8])
	}
	if len(sig.IssuerFingerprint) > 0 {
		in.IssuerFingerprint = append([]byte(nil), sig.IssuerFingerprint...)
	}
}

// timestamp verifies the signature's sealpost timestamp token, if any: a valid one sets SignedAt.
func (w *walker) timestamp(sig *packet.Signature, fail failFunc) {
	tok := TimestampToken(sig)
	if tok == nil {
		return
	}
	if w.opts.TSARoots == nil {
		fail(&w.tsErrs, errTimestamp, "token present, no TSA roots configured to verify it")
	} else if value, err := SignatureValue(sig); err != nil {
		fail(&w.tsErrs, errTimestamp, "%w", err)
	} else if t, err := tsa.Verify(tok, value, w.opts.TSARoots); err != nil {
		fail(&w.tsErrs, errTimestamp, "%w", err)
	} else {
		w.in.Timestamp, w.in.SignedAt = t, t.Time
	}
}

// documentSignature reports whether sig is a document signature (binary or text) without an
// unknown critical notation; else it records why not.
func (w *walker) documentSignature(sig *packet.Signature, fail failFunc) bool {
	if sig.SigType != packet.SigTypeBinary && sig.SigType != packet.SigTypeText {
		fail(&w.sigErrs, ErrSignature, "signature type %#x is not a document signature", sig.SigType)
		return false
	}
	for _, n := range sig.Notations {
		if n.IsCritical {
			fail(&w.sigErrs, ErrSignature, "unknown critical notation %q", printable(n.Name))
			return false
		}
	}
	return true
}

// signerKey returns the known signer key (matching the issuer's key ID and fingerprint) that sig
// verifies over content with; nil, with the finding recorded, when none does.
func (w *walker) signerKey(sig *packet.Signature, content []byte, fail failFunc) *openpgp.Key {
	in := w.in
	var cands []openpgp.Key
	for _, k := range w.opts.Signers.KeysById(in.IssuerKeyID) {
		if len(in.IssuerFingerprint) == 0 || bytes.Equal(in.IssuerFingerprint, k.PublicKey.Fingerprint) {
			cands = append(cands, k)
		}
	}
	if len(cands) == 0 {
		fail(&w.sigErrs, ErrUnknownKey, "issuer %016X", in.IssuerKeyID)
		return nil
	}
	var verr error
	for i := range cands {
		if verr = verifyOver(cands[i].PublicKey, sig, content); verr == nil {
			return &cands[i]
		}
	}
	fail(&w.sigErrs, ErrSignature, "issuer %016X: %v", in.IssuerKeyID, verr)
	return nil
}

// judgeKey records what is wrong with the key that made a verified signature: a weak primary or
// signing key, and the key's validity at SignedAt (package keys' rules).
func (w *walker) judgeKey(key openpgp.Key, layer string, fail failFunc) {
	for _, pk := range []*packet.PublicKey{key.Entity.PrimaryKey, key.PublicKey} {
		if desc, weak := keys.WeakPGPKey(pk); weak {
			fail(&w.weakErrs, errWeak, "key %016X is %s", pk.KeyId, desc)
		}
		if pk == key.PublicKey {
			break
		}
	}
	if err := keys.CheckPGPSigner(key, w.in.SignedAt); err != nil {
		w.keyErrs = append(w.keyErrs, fmt.Errorf("%s: key %s: %w", layer, w.in.Fingerprint, err))
	}
}

var (
	errWeak      = errors.New("weak algorithm")
	errTimestamp = errors.New("timestamp token not verified")
)

// verifyOver checks sig over content with pk: binary signatures over the bytes, text signatures
// over their canonical (CRLF) form.
func verifyOver(pk *packet.PublicKey, sig *packet.Signature, content []byte) error {
	h, err := sig.PrepareVerify()
	if err != nil {
		return err
	}
	var wrapped io.Writer = h
	if sig.SigType == packet.SigTypeText {
		wrapped = openpgp.NewCanonicalTextHash(h)
	}
	if _, err := wrapped.Write(content); err != nil {
		return err
	}
	return pk.VerifySignature(h, sig)
}

func strongHash(h crypto.Hash) bool {
	for _, s := range strongHashes {
		if h == s {
			return true
		}
	}
	return false
}

func cipherName(c packet.CipherFunction) string {
	switch c {
	case packet.Cipher3DES:
		return "3des"
	case packet.CipherCAST5:
		return "cast5"
	case packet.CipherAES128:
		return "aes128"
	case packet.CipherAES192:
		return "aes192"
	case packet.CipherAES256:
		return "aes256"
	}
	return fmt.Sprintf("cipher-%d", c)
}

func aeadModeName(m packet.AEADMode) string {
	switch m {
	case packet.AEADModeEAX:
		return "eax"
	case packet.AEADModeOCB:
		return "ocb"
	case packet.AEADModeGCM:
		return "gcm"
	}
	return fmt.Sprintf("aead-%d", m)
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}

// printable keeps customer-supplied text (notation names) fit for an error message.
func printable(s string) string {
	const maxLen = 64
	var b strings.Builder
	for i, r := range s {
		if i >= maxLen {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
