package smime

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
)

// Ratios, not absolute times, are the targets (issue: 2 KB Protect ≥ 0.8× RSA-2048 signatures/s
// without a timestamp, ≥ 0.7× with the embedded one): run them together, e.g.
//
//	go test ./smime -run XXX -bench . -benchmem

// message returns a statement of about size bytes (text plus a base64 attachment).
func message(size int) []byte {
	var b strings.Builder
	b.WriteString("From: Example Bank <statements@bank.example>\r\nTo: alice@example.com\r\n" +
		"Subject: Your statement\r\nMessage-ID: <bench@bank.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\nDear customer, your balance is 1 234,56 €.\r\n--b\r\n" +
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
	key := f.signer.Signer.(*rsa.PrivateKey)
	digest := sha256.Sum256([]byte("sealpost"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkProtect(b *testing.B, size int, timestamped bool) {
	f := getFixture(b)
	p := f.protector
	if !timestamped {
		var err error
		if p, err = NewProtector(f.signer); err != nil {
			b.Fatal(err)
		}
	}
	msg := message(size)
	to := recipients(f.customers[:1], false, false)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.ProtectMessage(ctx, msg, to, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProtect(b *testing.B) {
	for _, tc := range []struct {
		size        int
		timestamped bool
	}{{2 << 10, false}, {2 << 10, true}, {10 << 20, true}} {
		name := fmt.Sprintf("%dKB", tc.size>>10)
		if tc.timestamped {
			name += "/timestamped"
		}
		b.Run(name, func(b *testing.B) { benchmarkProtect(b, tc.size, tc.timestamped) })
	}
}

// BenchmarkBERToDER: what an inbound reply's CMS costs to normalize before it is parsed, for
// sealpost's own enveloped output (BER: indefinite lengths, a constructed OCTET STRING of 64 KB
// chunks at 1 MB) of a 2 KB and a 1 MB message.
func BenchmarkBERToDER(b *testing.B) {
	f := getFixture(b)
	for _, size := range []int{2 << 10, 1 << 20} {
		out, err := f.protector.ProtectMessage(ctx, message(size), recipients(f.customers[:1], false, false), Options{})
		if err != nil {
			b.Fatal(err)
		}
		ber := envelopeDER(b, out)
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(ber)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := BERToDER(ber); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
