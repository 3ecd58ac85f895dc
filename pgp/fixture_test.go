package pgp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"os"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/tsa"
)

// fixture: the bank's OpenPGP key, a development CA with the embedded TSA, and three customers.
type fixture struct {
	bank      *openpgp.Entity
	customers []*openpgp.Entity
	ca        *keys.Identity
	tsaID     *keys.Identity
	protector *Protector
	roots     *x509.CertPool
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
	ctx     = context.Background()
)

// v4RSA is how test keys are made: v4 RSA-2048, which GnuPG 2.2 imports (v6 keys it does not).
var v4RSA = &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048, DefaultHash: crypto.SHA256, DefaultCipher: packet.CipherAES256}

func newKey(t testing.TB, name, email string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", email, v4RSA)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func getFixture(t testing.TB) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		f := &fixture{}
		var err error
		f.bank, err = openpgp.NewEntity("Example Bank", "", "statements@bank.example", v4RSA)
		if err != nil {
			fixErr = err
			return
		}
		for _, a := range []string{"alice@example.com", "bob@example.net", "carol@example.org"} {
			e, err := openpgp.NewEntity(a, "", a, v4RSA)
			if err != nil {
				fixErr = err
				return
			}
			f.customers = append(f.customers, e)
		}
		if f.ca, fixErr = keys.NewDevCA("pgp test CA"); fixErr != nil {
			return
		}
		if f.tsaID, fixErr = f.ca.NewDevTSA(); fixErr != nil {
			return
		}
		authority, err := tsa.NewAuthority(f.tsaID.Signer, f.tsaID.Chain)
		if err != nil {
			fixErr = err
			return
		}
		f.roots = x509.NewCertPool()
		f.roots.AddCert(f.ca.Certificate())
		f.protector, fixErr = NewProtector(f.bank, WithTimestamper(authority))
		fix = f
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

// armoredKey returns e's public key, or its secret key, armored.
func armoredKey(t testing.TB, e *openpgp.Entity, secret bool) []byte {
	t.Helper()
	var b bytes.Buffer
	typ := openpgp.PublicKeyType
	if secret {
		typ = openpgp.PrivateKeyType
	}
	w, err := armor.Encode(&b, typ, nil)
	if err != nil {
		t.Fatal(err)
	}
	if secret {
		err = e.SerializePrivate(w, nil)
	} else {
		err = e.Serialize(w)
	}
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.Bytes()
}

func write(t testing.TB, name string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// parts returns the two MIME parts' bodies (after their headers) of a PGP/MIME message, and the
// first part whole (the signed content of multipart/signed).
func parts(t testing.TB, msg []byte) (first, firstBody, secondBody []byte) {
	t.Helper()
	h, body, err := mime.SplitEntity(msg)
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.MediaType(h)
	if err != nil {
		t.Fatal(err)
	}
	_, ps, err := mime.MultipartParts(body, params["boundary"])
	if err != nil || len(ps) != 2 {
		t.Fatalf("want two MIME parts: %v", err)
	}
	_, b1, err := mime.SplitEntity(ps[0])
	if err != nil {
		t.Fatal(err)
	}
	_, b2, err := mime.SplitEntity(ps[1])
	if err != nil {
		t.Fatal(err)
	}
	return ps[0], b1, b2
}

const statement = "From: Example Bank <statements@bank.example>\r\n" +
	"To: Alice <alice@example.com>\r\n" +
	"Subject: Your November statement\r\n" +
	"Message-ID: <pgp-1@bank.example>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: 8bit\r\n\r\n" +
	"Dear Alice,\r\nyour balance is 1 234,56 €.\r\n"
