package dkim

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// FuzzSign: Sign never panics; it either refuses the input with ErrUnsignable, returns it unchanged
// (no key for the From domain), or returns it behind a DKIM-Signature that go-msgauth verifies.
func FuzzSign(f *testing.F) {
	for _, seed := range []string{
		"From: a@bank.example\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n",
		"From: \"Bank\" <a@BANK.example>\r\nTo: b@example.com,\r\n c@example.com\r\nCc: d@example.com\r\n\r\n \t x  \r\n\r\n\r\n",
		"From: =?utf-8?q?B=C3=A4nk?= <a@bank.example>\r\nSubject: =?iso-8859-1?q?caf=E9?=\r\n\r\n",
		"From: a@other.example\r\n\r\nx\r\n",
		"From: a@bank.example\r\nDKIM-Signature: v=1; a=rsa-sha256; d=bank.example; s=x; h=from; bh=; b=\r\n\r\nx\r\n",
		"From: a@bank.example\r\nX-Empty:\r\nX-Fold: a\r\n \r\n\tb\r\n\r\n",
		"From: a@bank.example\nTo: b@example.com\r\n\r\nhi\r\n",
		"From: a@bank.example\r\nfrom: a@bank.example\r\n\r\nhi\r\n",
		"From : a@bank.example\r\n\r\nhi\r\n",
		" From: a@bank.example\r\n\r\nhi\r\n",
		"\r\n\r\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	file, err := writePKCS8(f.TempDir(), "ed25519.pem", key)
	if err != nil {
		f.Fatal(err)
	}
	s, err := New([]KeyConfig{{Domain: "bank.example", Selector: "fuzz", KeyFile: file}})
	if err != nil {
		f.Fatal(err)
	}
	name, value, err := s.DNSRecord("bank.example")
	if err != nil {
		f.Fatal(err)
	}
	lookup := func(n string) ([]string, error) {
		if n == name {
			return []string{value}, nil
		}
		return nil, errors.New("no such record")
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		in := bytes.Clone(msg)
		out, err := s.Sign(msg)
		if !bytes.Equal(msg, in) {
			t.Fatal("Sign modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrUnsignable) {
				t.Fatalf("error is not ErrUnsignable: %v", err)
			}
			return
		}
		if len(out) == len(msg) {
			return // no key for the From domain
		}
		if !bytes.HasSuffix(out, msg) {
			t.Fatal("signed output does not end with the input")
		}
		h, _ := parseHeader(msg)
		if h.count("DKIM-Signature") > 0 {
			return // other signatures in the input make go-msgauth's verdict about them, not ours
		}
		vs, err := msgauth.VerifyWithOptions(bytes.NewReader(out), &msgauth.VerifyOptions{LookupTXT: lookup})
		if err != nil || len(vs) != 1 || vs[0].Err != nil {
			t.Fatalf("own signature does not verify: %v %+v\n%q", err, vs, out)
		}
	})
}

// FuzzParseKeyFile: a DKIM key file (dkim.keys[].key_file) never panics the loader; what it accepts
// is an RSA or Ed25519 key, what it refuses wraps ErrKeyFormat or ErrUnsupportedKey with a message
// that quotes at most a short excerpt of the file.
func FuzzParseKeyFile(f *testing.F) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(ed)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	block := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	for _, seed := range [][]byte{
		block("PRIVATE KEY", edDER),
		block("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)),
		block("EC PRIVATE KEY", ecDER),
		append(block("EC PARAMETERS", []byte{6, 8, 42}), block("PRIVATE KEY", edDER)...),
		append(block("PRIVATE KEY", edDER), block("PRIVATE KEY", edDER)...),
		block("ENCRYPTED PRIVATE KEY", []byte{0x30, 0}),
		block("CERTIFICATE", []byte{0x30, 0}),
		block("PRIVATE KEY", []byte{0x30, 0x03, 0x02, 0x01, 0x00}),
		[]byte("-----BEGIN " + strings.Repeat("X", 500) + " PRIVATE KEY-----\nAAAA\n-----END " + strings.Repeat("X", 500) + " PRIVATE KEY-----\n"),
		[]byte("not a key"),
		{},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parsePrivateKey(data)
		if err != nil {
			if !errors.Is(err, ErrKeyFormat) && !errors.Is(err, ErrUnsupportedKey) {
				t.Fatalf("refusal %v wraps neither ErrKeyFormat nor ErrUnsupportedKey", err)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("the refusal quotes too much of the file (%d bytes)", len(err.Error()))
			}
			return
		}
		switch s.(type) {
		case *rsa.PrivateKey, ed25519.PrivateKey:
		default:
			t.Fatalf("accepted a %T", s)
		}
	})
}
