package payload

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCanonicalize: no input panics, and whatever is accepted comes out signature-safe and stable
// under a second pass (what is signed is what is sent). Seeds: a few shapes, plus any sample or
// hostile message kept under testdata/messages.
func FuzzCanonicalize(f *testing.F) {
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\ny\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n"))
	f.Add([]byte("\r\n"))
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "messages", "*.eml"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		out, err := canonical(t, string(msg))
		if err != nil {
			return
		}
		if !SignatureSafe(out) {
			t.Fatalf("accepted output is not signature-safe: %q", out)
		}
		again, err := canonical(t, string(out))
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not stable: %v\n%q\n%q", err, out, again)
		}
	})
}

// FuzzPrepare runs the whole preparation, with and without header protection.
func FuzzPrepare(f *testing.F) {
	f.Add([]byte("From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n"), true)
	f.Add([]byte("From: \xc3\xa4 <a@b.example>\r\nSubject: \xc3\xa4\r\n\r\nx"), true)
	f.Fuzz(func(t *testing.T, msg []byte, hp bool) {
		p, err := Prepare(msg, Options{HeaderProtection: hp, Encrypted: hp})
		if err != nil {
			return
		}
		if c := p.Content(); !SignatureSafe(c) {
			t.Fatalf("payload is not signature-safe: %q", c)
		}
	})
}
