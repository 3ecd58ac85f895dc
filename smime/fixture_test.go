package smime

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/tsa"
)

// fixture is one bank (CA, signer, embedded TSA) and three customers, made once per test binary:
// RSA key generation is the slow part.
type fixture struct {
	ca, signer, tsaID *keys.Identity
	authority         *tsa.Authority
	customers         []*keys.Identity
	protector         *Protector // with the embedded timestamper
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

const bankSender = "statements@bank.example"

func getFixture(t testing.TB) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		f := &fixture{}
		if f.ca, fixErr = keys.NewDevCA("smime test CA"); fixErr != nil {
			return
		}
		if f.signer, fixErr = f.ca.NewDevSigner([]string{bankSender, "otp@bank.example"}); fixErr != nil {
			return
		}
		if f.tsaID, fixErr = f.ca.NewDevTSA(); fixErr != nil {
			return
		}
		if f.authority, fixErr = tsa.NewAuthority(f.tsaID.Signer, f.tsaID.Chain); fixErr != nil {
			return
		}
		for _, a := range []string{"alice@example.com", "bob@example.net", "carol@example.org"} {
			c, err := f.ca.NewDevCustomer(a)
			if err != nil {
				fixErr = err
				return
			}
			f.customers = append(f.customers, c)
		}
		f.protector, fixErr = NewProtector(f.signer, WithTimestamper(f.authority))
		fix = f
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

// files writes the CA, TSA chain and each customer's certificate and key as PEM into a temp dir.
type pemFiles struct {
	dir, ca, tsa string
	certs, keys  []string
}

func (f *fixture) files(t testing.TB) pemFiles {
	t.Helper()
	dir := t.TempDir()
	p := pemFiles{dir: dir, ca: filepath.Join(dir, "ca.pem"), tsa: filepath.Join(dir, "tsa.pem")}
	write(t, p.ca, keys.EncodeCertificates(f.ca.Certificate()))
	write(t, p.tsa, keys.EncodeCertificates(f.tsaID.Chain...))
	for i, c := range f.customers {
		cf, kf := filepath.Join(dir, "cust"+string(rune('0'+i))+".pem"), filepath.Join(dir, "cust"+string(rune('0'+i))+".key")
		write(t, cf, keys.EncodeCertificates(c.Certificate()))
		der, err := x509.MarshalPKCS8PrivateKey(c.Signer)
		if err != nil {
			t.Fatal(err)
		}
		write(t, kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		p.certs, p.keys = append(p.certs, cf), append(p.keys, kf)
	}
	return p
}

func write(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func recipients(ids []*keys.Identity, gcm, oaep bool) []Recipient {
	out := make([]Recipient, len(ids))
	for i, id := range ids {
		out[i] = Recipient{Certificate: id.Certificate(), GCM: gcm, OAEP: oaep}
	}
	return out
}

var ctx = context.Background()

// statement is a realistic bank message: UTF-8 text in 8bit (which must be re-encoded before signing)
// and a PDF-like attachment.
const statement = "From: Example Bank <statements@bank.example>\n" +
	"To: Alice <alice@example.com>\n" +
	"Subject: Your November statement\n" +
	"Date: Sun, 22 Nov 2026 10:00:00 +0000\n" +
	"Message-ID: <stmt-1@bank.example>\n" +
	"MIME-Version: 1.0\n" +
	"Content-Type: multipart/mixed; boundary=\"outer\"\n" +
	"\n" +
	"--outer\n" +
	"Content-Type: text/plain; charset=utf-8\n" +
	"Content-Transfer-Encoding: 8bit\n" +
	"\n" +
	"Dear Alice,   \n" +
	"your balance is 1 234,56 €.\n" +
	"From now on statements are signed.\n" +
	"--outer\n" +
	"Content-Type: application/pdf; name=statement.pdf\n" +
	"Content-Transfer-Encoding: base64\n" +
	"\n" +
	"JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoKJSVFT0YK\n" +
	"--outer--\n"
