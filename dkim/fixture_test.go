package dkim

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/tsa"
)

// fixture holds what every test shares: DKIM keys for bank.example and sealpost's protectors, built
// from a development data directory the way the gateway's tests build theirs.
type fixture struct {
	dir     string
	rsaFile string // RSA-2048, PKCS#8
	edFile  string // Ed25519, PKCS#8
	rsa     *Signer
	ed      *Signer
	smime   *smime.Protector
	pgp     *pgp.Protector
	alice   smime.Recipient // S/MIME customer
	carol   *openpgp.Entity // OpenPGP customer
}

var (
	fixOnce    sync.Once
	fix        *fixture
	fixErr     error
	fixtureDir string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

func getFixture(t testing.TB) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		// Shared by every test, so not any one test's TempDir; TestMain removes it.
		if fixtureDir, fixErr = os.MkdirTemp("", "sealpost-dkim-"); fixErr == nil {
			fix, fixErr = newFixture(fixtureDir)
		}
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func newFixture(tmp string) (*fixture, error) {
	f := &fixture{dir: tmp}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if f.rsaFile, err = writePKCS8(tmp, "rsa.pem", rsaKey); err != nil {
		return nil, err
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if f.edFile, err = writePKCS8(tmp, "ed25519.pem", edKey); err != nil {
		return nil, err
	}
	if f.rsa, err = New([]KeyConfig{{Domain: "bank.example", Selector: "rsa2026", KeyFile: f.rsaFile}}); err != nil {
		return nil, err
	}
	if f.ed, err = New([]KeyConfig{{Domain: "bank.example", Selector: "ed2026", KeyFile: f.edFile}}); err != nil {
		return nil, err
	}

	dir := keys.DataDir(filepath.Join(tmp, "data"))
	if err := dir.Init([]string{"statements@bank.example", "otp@bank.example"}); err != nil {
		return nil, err
	}
	ca, err := dir.Identity("ca")
	if err != nil {
		return nil, err
	}
	alice, err := ca.NewDevCustomer("alice@example.com")
	if err != nil {
		return nil, err
	}
	f.alice = smime.Recipient{Certificate: alice.Certificate()}
	if f.carol, err = keys.NewDevPGPKey("Carol", []string{"carol@example.org"}); err != nil {
		return nil, err
	}
	signer, err := dir.Identity("signer")
	if err != nil {
		return nil, err
	}
	tsaID, err := dir.Identity("tsa")
	if err != nil {
		return nil, err
	}
	authority, err := tsa.NewAuthority(tsaID.Signer, tsaID.Chain)
	if err != nil {
		return nil, err
	}
	if f.smime, err = smime.NewProtector(signer, smime.WithTimestamper(authority)); err != nil {
		return nil, err
	}
	bank, err := dir.PGPKey()
	if err != nil {
		return nil, err
	}
	if f.pgp, err = pgp.NewProtector(bank, pgp.WithTimestamper(authority)); err != nil {
		return nil, err
	}
	return f, nil
}

func writePKCS8(dir, name string, k crypto.Signer) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", err
	}
	return writePEM(dir, name, "PRIVATE KEY", der)
}

func writePEM(dir, name, typ string, der []byte) (string, error) {
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// statement returns a bank statement from statements@bank.example to `to`, as the bank's
// application submits it, with a body of about size bytes.
func statement(to string, size int) []byte {
	var b strings.Builder
	b.WriteString("From: \"Bank Statements\" <statements@bank.example>\r\n")
	b.WriteString("To: " + to + "\r\n")
	b.WriteString("Subject: Your statement for March\r\n")
	b.WriteString("Date: Tue, 31 Mar 2026 18:00:00 +0200\r\n")
	b.WriteString("Message-ID: <stmt-2026-03-4711@bank.example>\r\n")
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString("Dear customer,\r\n\r\nyour statement for March 2026:\r\n\r\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "2026-03-%02d  Card payment  Café %05d          -%4d,%02d EUR\r\n", i%31+1, i, i%997, i%100)
	}
	b.WriteString("\r\nKind regards,\r\nyour bank\r\n")
	return []byte(b.String())
}

// smimeOutput is what sealpost queues for an S/MIME customer: signed, timestamped, encrypted.
func (f *fixture) smimeOutput(t testing.TB, size int) []byte {
	t.Helper()
	out, err := f.smime.ProtectMessage(context.Background(), statement("alice@example.com", size),
		[]smime.Recipient{f.alice}, smime.Options{HeaderProtection: true})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pgpOutput is what sealpost queues for an OpenPGP customer: PGP/MIME signed and encrypted.
func (f *fixture) pgpOutput(t testing.TB, size int) []byte {
	t.Helper()
	out, err := f.pgp.ProtectMessage(context.Background(), statement("carol@example.org", size),
		[]*openpgp.Entity{f.carol}, pgp.Options{HeaderProtection: true})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
