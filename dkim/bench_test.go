package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
)

// BenchmarkSign2KB signs a 2 KB message with each key type. Compare with BenchmarkRSA2048Sign from
// the same run: DKIM's cost beyond the one RSA signature is hashing and canonicalisation.
func BenchmarkSign2KB(b *testing.B) {
	dir := b.TempDir()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	msg := statement("alice@example.com", 2000)
	if len(msg) < 2000 || len(msg) > 2150 {
		b.Fatalf("message is %d bytes, want about 2 KB", len(msg))
	}
	for _, c := range []struct {
		name string
		key  crypto.Signer
	}{{"rsa2048", rsaKey}, {"ed25519", edKey}} {
		file, err := writePKCS8(dir, c.name+".pem", c.key)
		if err != nil {
			b.Fatal(err)
		}
		s, err := New([]KeyConfig{{Domain: "bank.example", Selector: "bench", KeyFile: file}})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRSA2048Sign is one bare RSA-2048 PKCS#1 v1.5 signature, the yardstick for
// BenchmarkSign2KB.
func BenchmarkRSA2048Sign(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("sealpost"))
	for b.Loop() {
		if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}
