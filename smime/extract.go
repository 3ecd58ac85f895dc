package smime

import (
	"bytes"
	"fmt"

	"github.com/sealpost/sealpost/mime"
)

// ExtractTimestamp returns the signature value of the single signer, and the RFC 3161 token in its
// id-aa-timeStampToken attribute (nil if it has none), of data: a signed S/MIME message
// (multipart/signed at its root), or a CMS SignedData in DER or base64. Neither is verified: this
// is for handing both to another verifier, e.g. openssl ts -verify. A message that is not
// multipart/signed S/MIME is ErrUnsupported.
func ExtractTimestamp(data []byte) (sigValue, token []byte, err error) {
	if root, err := mime.Parse(mime.ToCRLF(data)); err == nil && root.Header.Get("Content-Type") != "" {
		if root.Err != nil {
			return nil, nil, root.Err
		}
		if classify(root.Header, root.MediaType, root.Params) != kindDetached {
			return nil, nil, fmt.Errorf("%w: not a signed S/MIME message (%s)", ErrUnsupported, root.MediaType)
		}
		sig, err := detachedSignature(root)
		if err != nil {
			return nil, nil, err
		}
		return TimestampOf(sig)
	}
	// Not a message: the CMS itself. Base64 is undone unless it already is DER (a SEQUENCE).
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] != 0x30 {
		if der, err := mime.DecodeBase64(trimmed); err == nil {
			data = der
		}
	}
	return TimestampOf(data)
}
