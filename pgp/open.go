package pgp

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/tsa"
)

// Opened is a PGP/MIME message taken apart by Open.
type Opened struct {
	Content   []byte            // the signed MIME entity, exactly as signed
	Signer    *openpgp.Entity   // the verified signer, from the keyring
	Signature *packet.Signature // the verified signature
	Timestamp *tsa.Token        // the verified RFC 3161 token, or nil if there was none
	Encrypted bool
}

// OpenOptions says what Open trusts and decrypts with.
type OpenOptions struct {
	// Keyring holds the signers to trust and, for encrypted mail, the recipient's unlocked secret key.
	Keyring  openpgp.EntityList
	TSARoots *x509.CertPool // trust anchors for timestamp authorities
	Now      time.Time      // zero means now
}

var strongHashes = []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512}

// maxArmored bounds the armored part that Open decodes.
const maxArmored = 64 << 20

// Open decrypts (if multipart/encrypted) and verifies a message in the form Protect and Sign
// produce. Encrypted content must be integrity-protected (MDC or AEAD), be signed with SHA-256 or
// better, and a timestamp, when present, must verify against TSARoots.
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
	mt, params, err := mime.MediaType(h)
	if err != nil {
		return nil, err
	}
	cfg := &packet.Config{Time: func() time.Time {
		if opts.Now.IsZero() {
			return time.Now()
		}
		return opts.Now
	}}
	_, parts, err := mime.MultipartParts(body, params["boundary"])
	if err != nil {
		return nil, err
	}
	o = &Opened{}
	switch {
	case mt == "multipart/encrypted" && strings.EqualFold(params["protocol"], "application/pgp-encrypted"):
		if len(parts) != 2 {
			return nil, fmt.Errorf("%w: multipart/encrypted with %d parts", ErrMalformed, len(parts))
		}
		if err := o.decrypt(parts[1], opts.Keyring, cfg); err != nil {
			return nil, err
		}
	case mt == "multipart/signed" && strings.EqualFold(params["protocol"], "application/pgp-signature"):
		if len(parts) != 2 {
			return nil, fmt.Errorf("%w: multipart/signed with %d parts", ErrMalformed, len(parts))
		}
		_, sigBody, err := mime.SplitEntity(parts[1])
		if err != nil {
			return nil, err
		}
		o.Content = parts[0]
		block, err := armor.Decode(bytes.NewReader(sigBody))
		if err != nil || block.Type != "PGP SIGNATURE" {
			return nil, fmt.Errorf("%w: signature part is not an armored signature", ErrMalformed)
		}
		sig, signer, err := openpgp.VerifyDetachedSignatureAndHash(opts.Keyring, bytes.NewReader(o.Content), block.Body, strongHashes, cfg)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSignature, err)
		}
		o.Signature, o.Signer = sig, signer
	default:
		return nil, fmt.Errorf("%w: not PGP/MIME (%s)", ErrSignature, mt)
	}
	if o.Signature.Hash != crypto.SHA256 && o.Signature.Hash != crypto.SHA384 && o.Signature.Hash != crypto.SHA512 {
		return nil, fmt.Errorf("%w: hash %v is not SHA-256 or better", ErrSignature, o.Signature.Hash)
	}
	if tok := TimestampToken(o.Signature); tok != nil {
		if opts.TSARoots == nil {
			return nil, fmt.Errorf("%w: timestamp present but no TSA roots configured", ErrSignature)
		}
		value, err := SignatureValue(o.Signature)
		if err != nil {
			return nil, err
		}
		if o.Timestamp, err = tsa.Verify(tok, value, opts.TSARoots); err != nil {
			return nil, fmt.Errorf("%w: timestamp: %w", ErrSignature, err)
		}
	}
	return o, nil
}

// decrypt opens the armored OpenPGP message in part and verifies its signature.
func (o *Opened) decrypt(part []byte, keyring openpgp.EntityList, cfg *packet.Config) error {
	_, armored, err := mime.SplitEntity(part)
	if err != nil {
		return err
	}
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		return fmt.Errorf("%w: armor: %v", ErrMalformed, err)
	}
	md, err := openpgp.ReadMessage(io.LimitReader(block.Body, maxArmored), keyring, nil, cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	if !md.IsEncrypted {
		return fmt.Errorf("%w: multipart/encrypted holds an unencrypted message", ErrDecrypt)
	}
	content, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, maxArmored))
	if err != nil {
		// go-crypto reports a failed MDC or AEAD check here: nothing of the content is released.
		return fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	if !md.IsSigned || md.SignedBy == nil || md.SignatureError != nil || md.Signature == nil {
		return fmt.Errorf("%w: encrypted content not signed by a known key (%v)", ErrSignature, md.SignatureError)
	}
	o.Content, o.Encrypted, o.Signature, o.Signer = content, true, md.Signature, md.SignedBy.Entity
	return nil
}
