package pgp

import (
	"errors"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// FuzzInspect feeds whole messages to Inspect: errors are fine, panics are not (Inspect turns them
// into a recoveredPanic, which fails here), and a signature reported clean must name a known signer.
func FuzzInspect(f *testing.F) {
	fx := getFixture(f)
	alice := fx.customers[0]
	entity := []byte(replyEntity)
	var seeds [][]byte
	seeds = append(seeds, goCryptoReply(f, fx.bank, alice, entity, entity), goCryptoReply(f, fx.bank, nil, entity, nil),
		sedReply(f, fx.bank, entity))
	if out, err := fx.protector.SignMessage(ctx, []byte(statement), Options{}); err == nil {
		seeds = append(seeds, out, reply(mixed(out[len(replyHeader):])))
	}
	if out, err := fx.protector.ProtectMessage(ctx, []byte(statement), []*openpgp.Entity{fx.bank}, Options{}); err == nil {
		seeds = append(seeds, out)
	}
	cfg := *v4RSA
	cfg.AEADConfig = &packet.AEADConfig{}
	if modern, err := openpgp.NewEntity("modern", "", "support@bank.example", &cfg); err == nil {
		if p, err := NewProtector(fx.bank, WithSEIPDv2(true)); err == nil {
			if out, err := p.ProtectMessage(ctx, []byte(statement), []*openpgp.Entity{modern}, Options{}); err == nil {
				seeds = append(seeds, out)
			}
		}
	}
	for _, s := range seeds {
		f.Add(s)
		f.Add(s[:len(s)/2])
		f.Add(s[:len(s)-len(s)/10])
	}
	f.Add([]byte(replyHeader + replyEntity))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=c\r\n\r\n--c\r\n\r\nVersion: 1\r\n--c\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nwcBMA\r\n-----END PGP MESSAGE-----\r\n--c--\r\n--b--\r\n"))
	f.Add([]byte("\x85\x01\x0c garbage \xff\xfe"))
	signers := openpgp.EntityList{alice, fx.bank}
	opts := InboundOptions{Decrypt: openpgp.EntityList{fx.bank}, Signers: signers, TSARoots: fx.roots, Arrival: time.Now()}
	f.Fuzz(func(t *testing.T, msg []byte) {
		in, err := Inspect(msg, opts)
		var p *recoveredPanic
		if errors.As(err, &p) {
			t.Fatalf("panic: %v\n%s", p.value, p.stack)
		}
		if err != nil {
			return
		}
		if in.Signed && in.SignatureErr == nil && in.Signer != alice && in.Signer != fx.bank {
			t.Fatalf("clean signature by %v", in.Signer)
		}
		if in.Signer != nil && in.Fingerprint == "" {
			t.Fatal("signer without fingerprint")
		}
	})
}
