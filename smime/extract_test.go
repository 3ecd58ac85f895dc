package smime

import (
	"bytes"
	"encoding/base64"
	"errors"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
)

// TestExtractTimestamp: the protector's signed message, its signature part as DER and as base64
// all give the signature value and token that an independent CMS parser (go.mozilla.org/pkcs7)
// finds, and openssl ts -verify accepts the token over that value and no other.
func TestExtractTimestamp(t *testing.T) {
	f := getFixture(t)
	signed, err := f.protector.SignMessage(ctx, []byte(statement), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, der := splitSigned(t, signed)
	wantValue, wantToken := timestampOf(t, der)
	for name, in := range map[string][]byte{
		"message": signed,
		"der":     der,
		"base64":  []byte(base64.StdEncoding.EncodeToString(der) + "\r\n"),
	} {
		value, token, err := ExtractTimestamp(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(value, wantValue) || !bytes.Equal(token, wantToken) || len(token) == 0 {
			t.Fatalf("%s: extracted value/token differ from pkcs7's (token %d bytes)", name, len(token))
		}
	}
	t.Run("openssl", func(t *testing.T) {
		interop.Tool(t, "openssl")
		value, token, err := ExtractTimestamp(signed)
		if err != nil {
			t.Fatal(err)
		}
		files := f.files(t)
		dataFile, tokFile := filepath.Join(files.dir, "sigvalue.bin"), filepath.Join(files.dir, "token.der")
		write(t, dataFile, value)
		write(t, tokFile, token)
		interop.Run(t, nil, "openssl", "ts", "-verify", "-data", dataFile, "-in", tokFile, "-token_in", "-CAfile", files.ca, "-untrusted", files.tsa)
		value[len(value)/2] ^= 1
		write(t, dataFile, value)
		if _, _, err := interop.Try(t, nil, "openssl", "ts", "-verify", "-data", dataFile, "-in", tokFile, "-token_in", "-CAfile", files.ca, "-untrusted", files.tsa); err == nil {
			t.Fatal("openssl ts -verify accepted the token over a different signature value")
		}
	})
}

// TestExtractTimestampRefuses: an enveloped message is not a signed one, and text is no CMS.
func TestExtractTimestampRefuses(t *testing.T) {
	f := getFixture(t)
	enveloped, err := f.protector.ProtectMessage(ctx, []byte(statement), recipients(f.customers[:1], false, false), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ExtractTimestamp(enveloped); !errors.Is(err, ErrUnsupported) {
		t.Errorf("enveloped message: %v, want ErrUnsupported", err)
	}
	if _, _, err := ExtractTimestamp([]byte("From: a@b.example\r\n\r\nHello\r\n")); !errors.Is(err, ErrMalformed) {
		t.Errorf("unsigned text: %v, want ErrMalformed", err)
	}
}
