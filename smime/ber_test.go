package smime

import (
	"bytes"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
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
		ref, refErr := berToDERReference(ber)
		if (err == nil) != (refErr == nil) || !bytes.Equal(der, ref) {
			t.Fatalf("BERToDER(% x) = % x, %v; the reference gives % x, %v", ber, der, err, ref, refErr)
		}
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

// berToDERReference is the one-pass, allocating BERToDER sealpost used before the two-pass one:
// FuzzBERToDER requires both to agree on every input.
func berToDERReference(ber []byte) ([]byte, error) {
	if len(ber) > maxBERSize {
		return nil, fmt.Errorf("%w: BER input of %d bytes", ErrMalformed, len(ber))
	}
	out, n, err := refBERValue(ber, 0, make([]byte, 0, len(ber)))
	if err != nil {
		return nil, err
	}
	if n != len(ber) {
		return nil, fmt.Errorf("%w: %d bytes after the BER value", ErrMalformed, len(ber)-n)
	}
	return out, nil
}

// berValue appends the DER form of the TLV at the start of b to out and returns how many input
// bytes it used.
func refBERValue(b []byte, depth int, out []byte) ([]byte, int, error) {
	if depth > maxBERDepth {
		return nil, 0, fmt.Errorf("%w: BER nested too deeply", ErrMalformed)
	}
	class, constructed, tag, length, hl, err := berHeader(b)
	if err != nil {
		return nil, 0, err
	}
	if !constructed {
		out = append(out, tag...)
		out = appendLength(out, length)
		return append(out, b[hl:hl+length]...), hl + length, nil
	}
	// Constructed: convert the children into a scratch buffer, then emit with a definite length.
	var body []byte
	var used int
	if length >= 0 {
		inner := b[hl : hl+length]
		for pos := 0; pos < len(inner); {
			var n int
			if body, n, err = refBERValue(inner[pos:], depth+1, body); err != nil {
				return nil, 0, err
			}
			pos += n
		}
		used = hl + length
	} else {
		pos := hl
		for {
			if pos+1 < len(b) && b[pos] == 0 && b[pos+1] == 0 {
				pos += 2
				break
			}
			if pos >= len(b) {
				return nil, 0, fmt.Errorf("%w: BER without end-of-contents", ErrMalformed)
			}
			var n int
			if body, n, err = refBERValue(b[pos:], depth+1, body); err != nil {
				return nil, 0, err
			}
			pos += n
		}
		used = pos
	}
	if class == 0 && len(tag) == 1 && tag[0]&0x1f == 4 { // universal OCTET STRING: concatenate
		chunks, err := refOctetChunks(body)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, 0x04)
		out = appendLength(out, len(chunks))
		return append(out, chunks...), used, nil
	}
	out = append(out, tag...)
	out = appendLength(out, len(body))
	return append(out, body...), used, nil
}

// octetChunks concatenates the DER OCTET STRINGs in body (already normalized, so each is primitive).
func refOctetChunks(body []byte) ([]byte, error) {
	out := make([]byte, 0, len(body))
	for len(body) > 0 {
		class, constructed, tag, length, hl, err := berHeader(body)
		if err != nil {
			return nil, err
		}
		if class != 0 || constructed || len(tag) != 1 || tag[0] != 0x04 || length < 0 {
			return nil, fmt.Errorf("%w: constructed OCTET STRING holds a non-OCTET STRING", ErrMalformed)
		}
		out = append(out, body[hl:hl+length]...)
		body = body[hl+length:]
	}
	return out, nil
}
