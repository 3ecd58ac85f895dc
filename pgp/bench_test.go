package pgp

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Run together, so ratios come from one run:  go test ./pgp -run XXX -bench . -benchmem

func message(size int) []byte {
	var b strings.Builder
	b.WriteString("From: Example Bank <statements@bank.example>\r\nTo: alice@example.com\r\nSubject: Statement\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nBalance 1 234,56 €.\r\n--b\r\n" +
		"Content-Type: application/pdf; name=s.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	line := strings.Repeat("QUJDRA", 12) + "\r\n"
	for b.Len() < size-len("--b--\r\n") {
		b.WriteString(line)
	}
	b.WriteString("--b--\r\n")
	return []byte(b.String())
}

func BenchmarkRSA2048Sign(b *testing.B) {
	f := getFixture(b)
	key := f.bank.PrivateKey.PrivateKey.(*rsa.PrivateKey)
	digest := sha256.Sum256([]byte("sealpost"))
	for b.Loop() {
		if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProtect(b *testing.B) {
	f := getFixture(b)
	plain, err := NewProtector(f.bank)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		size int
		p    *Protector
		name string
	}{{2 << 10, plain, "2KB"}, {2 << 10, f.protector, "2KB/timestamped"}, {10 << 20, f.protector, "10MB/timestamped"}} {
		b.Run(tc.name, func(b *testing.B) {
			msg := message(tc.size)
			to := []*openpgp.Entity{f.customers[0]}
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.p.ProtectMessage(ctx, msg, to, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
