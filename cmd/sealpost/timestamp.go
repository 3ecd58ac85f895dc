package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/smime"
)

// errNoToken: the signature carries no RFC 3161 token.
var errNoToken = errors.New("the signature carries no RFC 3161 timestamp token")

// cmdTimestampExtract: sealpost timestamp extract [-out DIR] FILE
func cmdTimestampExtract(args []string, stdout io.Writer) error {
	fs := newFlags("timestamp extract", stdout)
	out := fs.String("out", ".", "directory for token.der and sigvalue.bin")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: name one file", errUsage)
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	sigValue, token, kind, err := extractTimestamp(data)
	if err != nil {
		return err
	}
	if token == nil {
		return errNoToken
	}
	tokFile, valueFile := filepath.Join(*out, "token.der"), filepath.Join(*out, "sigvalue.bin")
	if err := os.WriteFile(tokFile, token, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(valueFile, sigValue, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s signature: wrote %s (RFC 3161 token) and %s (the signature value it covers)\n", kind, tokFile, valueFile)
	fmt.Fprintf(stdout, "check: openssl ts -verify -data %s -in %s -token_in -CAfile TSA-ROOT.pem\n", valueFile, tokFile)
	return nil
}

// extractTimestamp finds the signature in data — a signed message (S/MIME or PGP/MIME
// multipart/signed), a CMS SignedData (DER or base64), or OpenPGP data holding a signature (armored
// or binary, e.g. the output of gpg --decrypt --unwrap) — and returns its value and token.
func extractTimestamp(data []byte) (sigValue, token []byte, kind string, err error) {
	if h, body, err := mime.SplitEntity(mime.ToCRLF(data)); err == nil && h.Get("Content-Type") != "" {
		mt, params, err := mime.MediaType(h)
		if err != nil || mt != "multipart/signed" {
			return nil, nil, "", fmt.Errorf("not a signed message (%s); decrypt it first (openssl cms -decrypt, or gpg --decrypt --unwrap)", mt)
		}
		_, parts, err := mime.MultipartParts(body, params["boundary"])
		if err != nil || len(parts) != 2 {
			return nil, nil, "", fmt.Errorf("multipart/signed without two parts: %v", err)
		}
		_, sigBody, err := mime.SplitEntity(parts[1])
		if err != nil {
			return nil, nil, "", err
		}
		if strings.Contains(strings.ToLower(params["protocol"]), "pkcs7") {
			if data, err = mime.DecodeBase64(sigBody); err != nil {
				return nil, nil, "", err
			}
		} else {
			data = sigBody
		}
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP")):
		block, err := armor.Decode(bytes.NewReader(trimmed))
		if err != nil {
			return nil, nil, "", err
		}
		return openPGPTimestamp(block.Body)
	case len(trimmed) > 0 && trimmed[0]&0x80 != 0:
		return openPGPTimestamp(bytes.NewReader(data))
	case len(trimmed) > 0 && trimmed[0] != 0x30:
		if der, err := mime.DecodeBase64(trimmed); err == nil {
			data = der
		}
	}
	sigValue, token, err = smime.TimestampOf(data)
	return sigValue, token, "CMS (S/MIME)", err
}

func openPGPTimestamp(r io.Reader) ([]byte, []byte, string, error) {
	pr := packet.NewReader(r)
	for {
		p, err := pr.Next()
		if err == io.EOF {
			return nil, nil, "", errors.New("no OpenPGP signature found (an encrypted message must be unwrapped first: gpg --decrypt --unwrap)")
		}
		if err != nil {
			return nil, nil, "", fmt.Errorf("OpenPGP: %w", err)
		}
		switch p := p.(type) {
		case *packet.LiteralData:
			if _, err := io.Copy(io.Discard, p.Body); err != nil {
				return nil, nil, "", err
			}
		case *packet.Signature:
			value, err := pgp.SignatureValue(p)
			if err != nil {
				return nil, nil, "", err
			}
			return value, pgp.TimestampToken(p), "OpenPGP", nil
		}
	}
}
