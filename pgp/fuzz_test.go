package pgp

import (
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// FuzzInspectOwnOutput feeds PGP/MIME messages (MIME framing, armor, OpenPGP packets) shaped like
// Protect's output to Inspect, as the customer would verify them: errors are fine, panics are not,
// and nothing may come out verified unless it was signed by the bank.
func FuzzInspectOwnOutput(f *testing.F) {
	fx := getFixture(f)
	enc, err := fx.protector.ProtectMessage(ctx, []byte(statement), fx.customers[:1], Options{})
	if err != nil {
		f.Fatal(err)
	}
	signed, err := fx.protector.SignMessage(ctx, []byte(statement), Options{HeaderProtection: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add(signed)
	f.Add(signed[:len(signed)/2])
	f.Add([]byte("Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=x\r\n\r\n--x\r\n\r\nVersion: 1\r\n--x\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nwcBMA\r\n-----END PGP MESSAGE-----\r\n--x--\r\n"))
	keyring := openpgp.EntityList{fx.bank, fx.customers[0]}
	f.Fuzz(func(t *testing.T, msg []byte) {
		o, err := inspectVerified(msg, InboundOptions{Decrypt: keyring, Signers: keyring, TSARoots: fx.roots})
		if err == nil && o.Signer != fx.bank {
			t.Fatalf("verified a signature by %v", o.Signer)
		}
	})
}

// FuzzSignaturePacket: the packet-level code that reads and writes the timestamp notation must not
// panic on any packet.
func FuzzSignaturePacket(f *testing.F) {
	f.Add([]byte{0xc2, 0x08, 4, 0, 1, 8, 0, 0, 0, 0})
	f.Add([]byte{0x88, 0x03, 4, 0, 1})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		_, _ = unhashedNotation(pkt, TimestampNotation)
		if out, err := addUnhashedNotation(pkt, TimestampNotation, []byte("token")); err == nil {
			if v, err := unhashedNotation(out, TimestampNotation); err != nil || string(v) != "token" {
				t.Fatalf("notation written but not read back: %q, %v", v, err)
			}
		}
	})
}
