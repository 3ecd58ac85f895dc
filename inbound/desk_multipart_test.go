package inbound

import (
	"bytes"
	"testing"

	"github.com/sealpost/sealpost/mime"
)

// concatMultipart is how the desk's multiparts were written before mime's builder: the reference
// the builder's output must equal byte for byte.
func concatMultipart(preamble []byte, parts [][]byte, boundary string) []byte {
	var b bytes.Buffer
	if len(preamble) > 0 {
		b.Write(preamble)
		b.WriteString("\r\n")
	}
	for _, p := range parts {
		b.WriteString("--" + boundary + "\r\n")
		b.Write(p)
		b.WriteString("\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return b.Bytes()
}

func TestJoinMultipartShapes(t *testing.T) {
	for name, body := range map[string]string{
		"preamble and parts": "pre\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\n\r\ny\r\n--b--\r\n",
		"parts only":         "--b\r\n\r\nx\r\n--b\r\n\r\n\r\n--b--\r\n",
		"no part":            "--b--\r\n",
		"preamble, no part":  "pre\r\n--b--\r\n",
		"empty part":         "--b\r\n--b--\r\n",
	} {
		preamble, parts, err := mime.MultipartParts([]byte(body), "b")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := joinMultipart(preamble, parts, "b")
		if want := concatMultipart(preamble, parts, "b"); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
}

// FuzzJoinMultipart: whatever a body splits into, the builder writes the bytes the concatenation
// wrote.
func FuzzJoinMultipart(f *testing.F) {
	f.Add([]byte("pre\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n"))
	f.Add([]byte("--b--\r\n"))
	f.Add([]byte("--b\r\n--b\r\n\r\n--b--"))
	f.Fuzz(func(t *testing.T, body []byte) {
		preamble, parts, err := mime.MultipartParts(body, "b")
		if err != nil {
			return
		}
		got, err := joinMultipart(preamble, parts, "b")
		if want := concatMultipart(preamble, parts, "b"); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%q, %v; want %q", got, err, want)
		}
	})
}
