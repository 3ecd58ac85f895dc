package pgp

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/mime"
)

// ExtractTimestamp returns the value of the first signature in data, and the RFC 3161 token in its
// TimestampNotation (nil if it has none). data is a signed PGP/MIME message (multipart/signed at
// its root) or OpenPGP data holding a signature, armored or binary (e.g. the output of
// gpg --decrypt --unwrap). Neither is verified: this is for handing both to another verifier, e.g.
// openssl ts -verify. A message that is not multipart/signed PGP/MIME is ErrUnsupported.
func ExtractTimestamp(data []byte) (sigValue, token []byte, err error) {
	r, err := signatureData(data)
	if err != nil {
		return nil, nil, err
	}
	pr := packet.NewReader(r)
	for {
		p, err := pr.Next()
		if err == io.EOF {
			return nil, nil, errors.New("no OpenPGP signature found (an encrypted message must be unwrapped first: gpg --decrypt --unwrap)")
		}
		if err != nil {
			return nil, nil, fmt.Errorf("OpenPGP: %w", err)
		}
		switch p := p.(type) {
		case *packet.LiteralData:
			if _, err := io.Copy(io.Discard, p.Body); err != nil {
				return nil, nil, err
			}
		case *packet.Signature:
			value, err := SignatureValue(p)
			if err != nil {
				return nil, nil, err
			}
			return value, TimestampToken(p), nil
		}
	}
}

// signatureData reads the binary OpenPGP packets of data: a PGP/MIME signed message's signature
// part, or data itself, de-armored when it is armored (as a stream: the packets before the
// signature are not all read).
func signatureData(data []byte) (io.Reader, error) {
	if root, err := mime.Parse(mime.ToCRLF(data)); err == nil && root.Header.Get("Content-Type") != "" {
		if root.Err != nil {
			return nil, root.Err
		}
		if classify(root.MediaType, root.Params) != kindSigned {
			return nil, fmt.Errorf("%w: not a signed PGP/MIME message (%s)", ErrUnsupported, root.MediaType)
		}
		bin, err := detachedSignature(root)
		return bytes.NewReader(bin), err
	}
	trimmed := bytes.TrimSpace(data)
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP")) {
		return bytes.NewReader(data), nil
	}
	block, err := armor.Decode(bytes.NewReader(trimmed))
	if err != nil {
		return nil, err
	}
	return block.Body, nil
}
