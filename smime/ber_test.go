package smime

import (
	"bytes"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/mime"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBERToDER(t *testing.T) {
	for _, tc := range []struct{ name, ber, der string }{
		{"DER unchanged", "30 06 02 01 05 04 01 41", "30 06 02 01 05 04 01 41"},
		{"indefinite sequence", "30 80 02 01 05 00 00", "30 03 02 01 05"},
		{"nested indefinite", "30 80 a0 80 04 02 41 42 00 00 00 00", "30 06 a0 04 04 02 41 42"},
		{"constructed OCTET STRING", "24 80 04 02 41 42 04 01 43 00 00", "04 03 41 42 43"},
		{"nested constructed OCTET STRING", "24 80 24 80 04 01 41 00 00 04 01 42 00 00", "04 02 41 42"},
		{"definite constructed OCTET STRING", "24 06 04 01 41 04 01 42", "04 02 41 42"},
		{"[0] IMPLICIT constructed kept", "a0 80 04 01 41 04 01 42 00 00", "a0 06 04 01 41 04 01 42"},
		{"non-minimal length", "04 81 01 41", "04 01 41"},
		{"high tag number", "bf 81 00 80 05 00 00 00", "bf 81 00 02 05 00"},
	} {
		got, err := BERToDER(unhex(t, tc.ber))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if want := unhex(t, tc.der); !bytes.Equal(got, want) {
			t.Errorf("%s: got % x, want % x", tc.name, got, want)
		}
	}
	long := bytes.Repeat([]byte{0x41}, 300)
	got, err := BERToDER(append(append([]byte{0x24, 0x80, 0x04, 0x82, 0x01, 0x2c}, long...), 0, 0))
	if err != nil || !bytes.Equal(got, append([]byte{0x04, 0x82, 0x01, 0x2c}, long...)) {
		t.Fatalf("long OCTET STRING: % x, %v", got[:8], err)
	}
}

func TestBERToDERRejects(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x30, 0x80}, maxBERDepth+2), bytes.Repeat([]byte{0, 0}, maxBERDepth+2)...)
	for name, ber := range map[string][]byte{
		"empty":                      {},
		"truncated header":           {0x30},
		"length beyond data":         {0x04, 0x05, 0x41},
		"missing end-of-contents":    {0x30, 0x80, 0x02, 0x01, 0x05},
		"indefinite primitive":       {0x04, 0x80, 0x41, 0x00, 0x00},
		"trailing bytes":             {0x05, 0x00, 0x05},
		"OCTET STRING holds INTEGER": {0x24, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00},
		"five-byte length":           {0x04, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00},
		"unterminated high tag":      {0x1f, 0x81, 0x81},
		"too deep":                   deep,
		"huge declared length":       {0x04, 0x84, 0x7f, 0xff, 0xff, 0xff},
		"constructed child too long": {0x30, 0x03, 0x04, 0x05, 0x41},
	} {
		if _, err := BERToDER(ber); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

// TestBERToDEROpenSSLStream: openssl's -stream output is BER with indefinite lengths, which
// encoding/asn1 refuses; normalized, it parses and keeps the ciphertext whole.
func TestBERToDEROpenSSLStream(t *testing.T) {
	e := newInboundEnv(t)
	ber := interop.Run(t, []byte(customerEntity), "openssl", "cms", "-encrypt", "-aes256", "-stream", "-outform", "DER", "-recip", e.files.certs[1])
	if !bytes.HasPrefix(ber, []byte{0x30, 0x80}) {
		t.Fatalf("openssl -stream output is not indefinite-length BER: % x", ber[:4])
	}
	var ci contentInfo
	if _, err := asn1.Unmarshal(ber, &ci); err == nil {
		t.Fatal("encoding/asn1 read BER: the normalizer may be unnecessary")
	}
	der, err := BERToDER(ber)
	if err != nil {
		t.Fatal(err)
	}
	again, err := BERToDER(der)
	if err != nil || !bytes.Equal(again, der) {
		t.Fatalf("not idempotent: %v", err)
	}
	d, err := Decrypt(der, e.f.customers[1])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Content, mime.ToCRLF([]byte(customerEntity))) {
		t.Fatalf("decrypted %q", d.Content)
	}
}

func FuzzBERToDER(f *testing.F) {
	for _, s := range []string{"30800201050000", "24800402414204014300 00", "a0800401410000", "bf8100800500 0000", "3003040541"} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, ber []byte) {
		der, err := BERToDER(ber)
		if err != nil {
			return
		}
		// Output is definite-length and stable: normalizing it again changes nothing.
		again, err := BERToDER(der)
		if err != nil || !bytes.Equal(again, der) {
			t.Fatalf("not idempotent on % x: % x, %v", ber, again, err)
		}
	})
}
