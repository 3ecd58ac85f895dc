package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

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
// or binary, e.g. the output of gpg --decrypt --unwrap) — and returns its value and token. It only
// picks the protocol: smime and pgp extract.
func extractTimestamp(data []byte) (sigValue, token []byte, kind string, err error) {
	const cms, openPGP = "CMS (S/MIME)", "OpenPGP"
	if root, err := mime.Parse(mime.ToCRLF(data)); err == nil && root.Header.Get("Content-Type") != "" {
		if root.Err != nil || root.MediaType != "multipart/signed" {
			mt := root.MediaType
			if root.Err != nil {
				mt = ""
			}
			return nil, nil, "", fmt.Errorf("not a signed message (%s); decrypt it first (openssl cms -decrypt, or gpg --decrypt --unwrap)", mt)
		}
		if strings.Contains(strings.ToLower(root.Params["protocol"]), "pkcs7") {
			sigValue, token, err = smime.ExtractTimestamp(data)
			return sigValue, token, cms, err
		}
		sigValue, token, err = pgp.ExtractTimestamp(data)
		return sigValue, token, openPGP, err
	}
	if trimmed := bytes.TrimSpace(data); bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP")) || len(trimmed) > 0 && trimmed[0]&0x80 != 0 {
		sigValue, token, err = pgp.ExtractTimestamp(data)
		return sigValue, token, openPGP, err
	}
	sigValue, token, err = smime.ExtractTimestamp(data)
	return sigValue, token, cms, err
}
