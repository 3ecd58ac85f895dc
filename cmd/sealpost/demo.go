package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/tsa"
)

const demoStatement = "From: Example Bank <statements@bank.example>\r\n" +
	"To: Alice Customer <alice@example.com>\r\n" +
	"Subject: Your November statement\r\n" +
	"Message-ID: <demo-statement@bank.example>\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: 8bit\r\n\r\n" +
	"Dear Alice,\r\nyour balance on 22 November is 1 234,56 €.\r\n"

const demoOTP = "From: Example Bank <otp@bank.example>\r\n" +
	"To: alice@example.com\r\n" +
	"Subject: Your code is 493817\r\n" +
	"Message-ID: <demo-otp@bank.example>\r\n\r\n" +
	"Your one-time code is 493817. It expires in 5 minutes.\r\n"

// cmdDemo runs the S/MIME protection path end to end on throw-away development keys and says what
// happened in a few lines.
func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	data := fs.String("data", "", "keep the demo's keys and messages in this (new) directory instead of a temporary one")
	if err := parse(fs, args); err != nil {
		return err
	}
	dirPath := *data
	if dirPath == "" {
		tmp, err := os.MkdirTemp("", "sealpost-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dirPath = tmp
	}
	dir := keys.DataDir(dirPath)
	if err := dir.Init([]string{"statements@bank.example", "otp@bank.example"}); err != nil {
		return err
	}
	ca, err := dir.Identity("ca")
	if err != nil {
		return err
	}
	signer, err := dir.Identity("signer")
	if err != nil {
		return err
	}
	tsaID, err := dir.Identity("tsa")
	if err != nil {
		return err
	}
	alice, err := ca.NewDevCustomer("alice@example.com")
	if err != nil {
		return err
	}
	if _, err := dir.Import(keys.EncodeCertificates(alice.Certificate()), false); err != nil {
		return err
	}
	carol, err := keys.NewDevPGPKey("Carol Customer", []string{"carol@example.org"})
	if err != nil {
		return err
	}
	carolPub, err := keys.EncodePGPPublicKeys(carol)
	if err != nil {
		return err
	}
	if _, err := dir.Import(carolPub, false); err != nil {
		return err
	}
	bankPGP, err := dir.PGPKey()
	if err != nil {
		return err
	}
	directory, err := dir.Directory()
	if err != nil {
		return err
	}
	authority, err := tsa.NewAuthority(tsaID.Signer, tsaID.Chain)
	if err != nil {
		return err
	}
	p, err := smime.NewProtector(signer, smime.WithTimestamper(authority))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	w := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }

	w("sealpost demo: development keys in %s", dirPath)
	w("  bank signer   %s, RSA-2048, for %v", signer.Certificate().Subject.CommonName, signer.Certificate().EmailAddresses)
	w("  embedded TSA  %s, ECDSA P-256", tsaID.Certificate().Subject.CommonName)
	w("  bank PGP key  %X, v4 RSA-2048", bankPGP.PrimaryKey.Fingerprint)
	w("  customers     alice@example.com has an S/MIME certificate, carol@example.org an OpenPGP key, bob@example.net none")

	for _, m := range []struct {
		name, msg string
		hp        bool
	}{{"statement", demoStatement, false}, {"otp", demoOTP, true}} {
		cert, err := directory.Lookup("alice@example.com")
		if err != nil {
			return err
		}
		start := time.Now()
		out, err := p.Protect(context.Background(), []byte(m.msg), []smime.Recipient{{Certificate: cert}}, smime.Options{HeaderProtection: m.hp})
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		took := time.Since(start)
		o, err := smime.Open(out, smime.OpenOptions{Roots: roots, TSARoots: roots, Identity: alice})
		if err != nil {
			return fmt.Errorf("%s: our own output does not open: %w", m.name, err)
		}
		file := filepath.Join(dirPath, m.name+".eml")
		if err := os.WriteFile(file, out, 0o600); err != nil {
			return err
		}
		w("%-10s → alice: signed SHA-256/RSA, timestamped %s, encrypted AES-256-CBC, %d bytes in %v",
			m.name, o.Timestamp.Time.UTC().Format(time.RFC3339), len(out), took.Round(time.Microsecond))
		w("             alice opens it: signature by %q valid, timestamp valid", o.Signer.Subject.CommonName)
		if m.hp {
			w("             the Subject %q is inside the encryption; outside it reads \"[...]\"", o.Header("Subject"))
		}
	}
	pgpProtector, err := pgp.NewProtector(bankPGP, pgp.WithTimestamper(authority))
	if err != nil {
		return err
	}
	choice, err := directory.Choose("carol@example.org", keys.MethodSMIME)
	if err != nil {
		return err
	}
	start := time.Now()
	out, err := pgpProtector.Protect(context.Background(), []byte(strings.Replace(demoStatement, "Alice Customer <alice@example.com>", "carol@example.org", 1)),
		[]*openpgp.Entity{choice.PGPKey}, pgp.Options{})
	if err != nil {
		return fmt.Errorf("statement to carol: %w", err)
	}
	took := time.Since(start)
	po, err := pgp.Open(out, pgp.OpenOptions{Keyring: openpgp.EntityList{bankPGP, carol}, TSARoots: roots})
	if err != nil {
		return fmt.Errorf("statement to carol: our own output does not open: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dirPath, "statement-pgp.eml"), out, 0o600); err != nil {
		return err
	}
	w("%-10s → carol: %s (PGP/MIME), signed SHA-256/RSA, timestamped %s, SEIPD v1 + MDC AES-256, %d bytes in %v",
		"statement", choice.Method, po.Timestamp.Time.UTC().Format(time.RFC3339), len(out), took.Round(time.Microsecond))
	w("             carol opens it: signature by %X valid, timestamp valid", po.Signer.PrimaryKey.Fingerprint[12:])
	if _, err := directory.Choose("bob@example.net", keys.MethodSMIME); err != nil {
		w("statement  → bob: refused, nothing sent: %v", err)
	}
	if *data != "" {
		w("check with OpenSSL:")
		w("  openssl cms -decrypt -in %[1]s/statement.eml -recip %[1]s/alice.pem -inkey %[1]s/alice.key | openssl cms -verify -purpose smimesign -CAfile %[1]s/ca.pem", dirPath)
		if err := writeDemoCustomer(dirPath, alice); err != nil {
			return err
		}
	}
	return nil
}

func writeDemoCustomer(dir string, alice *keys.Identity) error {
	der, err := x509.MarshalPKCS8PrivateKey(alice.Signer)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "alice.pem"), keys.EncodeCertificates(alice.Certificate()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "alice.key"), pemBlock("PRIVATE KEY", der), 0o600)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
