package smime

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/mime"
)

// seedMessages are the fuzz seeds for message parsing: the sample statement, the canonicalisation
// cases and every hostile message under testdata/messages.
func seedMessages(f *testing.F) {
	f.Add([]byte(statement))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\ny\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n"))
	f.Add([]byte("\r\n"))
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "messages", "*.eml"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
}

// FuzzProtect runs the whole Sign path (header split, sender check, header protection, canonical
// form): it must never panic, and accepted output must be 7-bit signature-safe.
func FuzzProtect(f *testing.F) {
	seedMessages(f)
	f.Add([]byte("From: statements@bank.example\r\nSubject: \xc3\xa4\r\n\r\nx"))
	fx := getFixture(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		out, err := fx.protector.SignMessage(ctx, msg, Options{HeaderProtection: len(msg)%2 == 0})
		if err != nil {
			return
		}
		body := out[bytes.Index(out, []byte("Content-Type: multipart/signed")):]
		if !mime.SignatureSafe(body) {
			t.Fatalf("signed entity is not signature-safe: %q", body)
		}
	})
}

// FuzzDecrypt feeds CMS structures to Decrypt: errors are fine, panics are not.
func FuzzDecrypt(f *testing.F) {
	fx := getFixture(f)
	for _, gcm := range []bool{false, true} {
		out, err := fx.protector.ProtectMessage(ctx, []byte(statement), recipients(fx.customers[:1], gcm, gcm), Options{})
		if err != nil {
			f.Fatal(err)
		}
		der := envelopeDER(f, out)
		f.Add(der)
		f.Add(der[:len(der)/2])
	}
	f.Add([]byte{0x30, 0x80, 0x06, 0x00, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		_, _ = Decrypt(der, fx.customers[0])
	})
}
