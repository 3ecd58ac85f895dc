package inbound

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/smime"
)

// reply2KB is a customer's 2 KB answer to the desk.
func reply2KB() []byte {
	body := strings.Repeat("I confirm the payee and the amount of the transfer we discussed. \r\n", 31)
	return []byte("From: Alice <alice@customer.example>\r\nTo: support@bank.example\r\nSubject: Re: case 4711\r\n" +
		"Message-ID: <r-bench@customer.example>\r\nIn-Reply-To: <abcdefghijklmnopqrstuvwx.k2@bank.example>\r\n\r\n" + body)
}

// BenchmarkInboundSMIME2KB: the whole inbound pipeline (decrypt AES-256-CBC with the bank's RSA
// key, verify alice's RSA signature and chain, bind, registration and thread lookups in SQLite,
// the desk's message) for a 2 KB signed-and-encrypted S/MIME reply. Compare with
// BenchmarkRSA2048PrivateKeyOp in the same run: one RSA private-key operation per reply is the floor.
func BenchmarkInboundSMIME2KB(b *testing.B) {
	env, msg := smimeReply2KB(b)
	benchEvaluate(b, env, msg)
}

func smimeReply2KB(b *testing.B) (*corpusEnv, []byte) {
	env := newCorpusEnv(b, Config{})
	bank, err := keys.LoadPEM(corpusKey(b, "bank.pem"), corpusKey(b, "bank.key"))
	if err != nil {
		b.Fatal(err)
	}
	p, err := smime.NewProtector(env.alice)
	if err != nil {
		b.Fatal(err)
	}
	msg, err := p.ProtectMessage(context.Background(), reply2KB(), []smime.Recipient{{Certificate: bank.Certificate()}}, smime.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return env, msg
}

// BenchmarkInboundPGP2KB: the same for a PGP/MIME reply (SEIPDv1, AES-256), signed by alice's
// registered OpenPGP key and encrypted to the bank's.
func BenchmarkInboundPGP2KB(b *testing.B) {
	env, msg := pgpReply2KB(b)
	benchEvaluate(b, env, msg)
}

func pgpReply2KB(b *testing.B) (*corpusEnv, []byte) {
	env := newCorpusEnv(b, Config{})
	alice := corpusPGP(b, "alice-pgp.asc")
	p, err := pgp.NewProtector(alice)
	if err != nil {
		b.Fatal(err)
	}
	msg, err := p.ProtectMessage(context.Background(), reply2KB(), []*openpgp.Entity{corpusPGP(b, "bank-pgp.pub.asc")}, pgp.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return env, msg
}

// BenchmarkInboundVsRSA is the inbound target measured on a busy machine: each iteration evaluates
// a 2 KB reply and then makes one RSA-2048 private-key operation, each timed on its own, so that
// drift in the machine's speed affects both alike. It reports their ratio as x-rsa (target ≥ 0.8:
// replies/s ÷ RSA private-key operations/s); ns/op is the pair's.
func BenchmarkInboundVsRSA(b *testing.B) {
	for _, tc := range []struct {
		name  string
		reply func(*testing.B) (*corpusEnv, []byte)
	}{{"SMIME", smimeReply2KB}, {"PGP", pgpReply2KB}} {
		b.Run(tc.name, func(b *testing.B) {
			env, msg := tc.reply(b)
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				b.Fatal(err)
			}
			sum := sha256.Sum256([]byte("x"))
			ctx := context.Background()
			var eval, op time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := env.ib.Evaluate(ctx, msg, t0); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, sum[:]); err != nil {
					b.Fatal(err)
				}
				eval, op = eval+t1.Sub(t0), op+time.Since(t1)
			}
			b.ReportMetric(float64(op)/float64(eval), "x-rsa")
		})
	}
}

func benchEvaluate(b *testing.B, env *corpusEnv, msg []byte) {
	b.Helper()
	ctx := context.Background()
	res, err := env.ib.Evaluate(ctx, msg, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if !res.Verdict.Trusted() || res.Verdict.Encryption == "" {
		b.Fatalf("benchmark reply is not a verified encrypted one: %s", res.Verdict.Header())
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := env.ib.Evaluate(ctx, msg, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRSA2048PrivateKeyOp is the reference: one RSA-2048 private-key operation (a PKCS#1 v1.5
// signature, which costs the same as a decryption).
func BenchmarkRSA2048PrivateKeyOp(b *testing.B) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte("x"))
	for b.Loop() {
		if _, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, sum[:]); err != nil {
			b.Fatal(err)
		}
	}
}
