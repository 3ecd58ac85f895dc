package dkim

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
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
