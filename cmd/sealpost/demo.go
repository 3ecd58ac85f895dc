package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/internal/payload"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/smime"
)

// The demo's three customers: alice reads S/MIME, carol OpenPGP, bob has no key.
const (
	demoAlice = "alice@example.com"
	demoCarol = "carol@example.org"
	demoBob   = "bob@example.net"
)

var demoMessages = []struct {
	what, from, to, msg string
}{
	{"statement", "statements@bank.example", demoAlice, "From: Example Bank <statements@bank.example>\r\nTo: Alice <alice@example.com>\r\n" +
		"Subject: Your November statement\r\nMessage-ID: <demo-statement@bank.example>\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\nDear Alice,\r\nyour balance on 22 November is 1 234,56 €.\r\n"},
	{"otp", "otp@bank.example", demoCarol, "From: Example Bank <otp@bank.example>\r\nTo: carol@example.org\r\n" +
		"Subject: Your code is 493817\r\nMessage-ID: <demo-otp@bank.example>\r\n\r\nYour one-time code is 493817. It expires in 5 minutes.\r\n"},
	{"support", "support@bank.example", demoBob, "From: Example Bank Support <support@bank.example>\r\nTo: bob@example.net\r\n" +
		"Subject: Re: your question\r\nMessage-ID: <demo-support@bank.example>\r\n\r\nDear Bob,\r\nyour card is on its way.\r\n"},
	{"statement", "statements@bank.example", demoBob, "From: Example Bank <statements@bank.example>\r\nTo: bob@example.net\r\n" +
		"Subject: Your November statement\r\nMessage-ID: <demo-statement-bob@bank.example>\r\n\r\nDear Bob, ...\r\n"},
}

// cmdDemo runs the gateway on a temporary directory, sends a statement, an OTP and a support reply
// through SMTP to three customers (S/MIME, OpenPGP, no key), then opens what was delivered and says
// what happened to each, in a few lines.
func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	data := fs.String("data", "", "keep the demo's data directory here (new) instead of a temporary one")
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
	w := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }

	cfg := defaultConfig()
	cfg.Data, cfg.SMTP.Addr, cfg.Inbound.Listener.Addr, cfg.Ops.Addr = dirPath, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Gateway.Rules = []gateway.Rule{{Sender: "otp@bank.example", Class: gateway.ClassOTP}, {Sender: "support@bank.example", Class: gateway.ClassSupport}}
	if err := cfg.Validate(); err != nil {
		return err
	}
	dir := keys.DataDir(dirPath)
	if err := dir.Init(cfg.Senders); err != nil {
		return err
	}
	alice, carol, err := demoCustomers(dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inst, err := startInstance(ctx, cfg, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer inst.Close()
	w("sealpost demo: gateway on %s, data in %s", inst.Addr(), dirPath)
	w("  customers: %s has an S/MIME certificate, %s an OpenPGP key, %s none", demoAlice, demoCarol, demoBob)

	c, err := dialSMTP(inst.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	expected := map[string]string{} // Message-ID -> what
	for _, m := range demoMessages {
		res := send(c, m.from, []string{m.to}, []byte(m.msg))
		if reason, refused := res.Refused[m.to]; refused {
			w("%-9s → %-18s refused at RCPT, nothing queued: %s", m.what, m.to, refusalText(reason))
			continue
		}
		if res.Err != nil {
			return fmt.Errorf("%s to %s: %w", m.what, m.to, res.Err)
		}
		expected[payload.HeaderValue([]byte(m.msg), "Message-ID")] = m.what
		w("%-9s → %-18s %s", m.what, m.to, res.Reply)
	}

	delivered, err := waitForMaildir(cfg.Delivery.Maildir, len(expected), 15*time.Second)
	if err != nil {
		return err
	}
	ca, err := dir.Identity("ca")
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	bank, err := dir.PGPKey()
	if err != nil {
		return err
	}
	for _, msg := range delivered {
		to := payload.HeaderValue(msg, "To")
		subject := payload.HeaderValue(msg, "Subject")
		switch {
		case strings.Contains(to, demoAlice):
			o, err := smime.Open(msg, smime.OpenOptions{Roots: roots, TSARoots: roots, Identity: alice})
			if err != nil {
				return fmt.Errorf("alice cannot open her statement: %w", err)
			}
			w("delivered → alice: S/MIME, AES-256-CBC; she decrypts it, signature by %q valid, timestamped %s",
				o.Signer.Subject.CommonName, o.Timestamp.Time.UTC().Format(time.RFC3339))
		case strings.Contains(to, demoCarol):
			o, err := pgp.Open(msg, pgp.OpenOptions{Keyring: openpgp.EntityList{bank, carol}, TSARoots: roots})
			if err != nil {
				return fmt.Errorf("carol cannot open her OTP: %w", err)
			}
			w("delivered → carol: PGP/MIME, SEIPD+MDC; signature by %X valid, timestamped %s", o.Signer.PrimaryKey.Fingerprint[12:], o.Timestamp.Time.UTC().Format(time.RFC3339))
			w("           outer Subject %q; the code is only inside: %q", subject, payload.HeaderValue(o.Content, "Subject"))
		case strings.Contains(to, demoBob):
			o, err := smime.Open(msg, smime.OpenOptions{Roots: roots, TSARoots: roots})
			if err != nil {
				return fmt.Errorf("bob's support reply does not verify: %w", err)
			}
			w("delivered → bob:   signed only (support mail may go unencrypted to a customer without a key); signature valid, encrypted=%v", o.Encrypted)
		}
	}
	w("the outbox is %s: every file in it is signed, timestamped and, where a key exists, encrypted", cfg.Delivery.Maildir)
	return nil
}

// demoCustomers makes alice's S/MIME identity and carol's OpenPGP key and registers their public
// halves; bob gets nothing.
func demoCustomers(dir keys.DataDir) (*keys.Identity, *openpgp.Entity, error) {
	ca, err := dir.Identity("ca")
	if err != nil {
		return nil, nil, err
	}
	alice, err := ca.NewDevCustomer(demoAlice)
	if err != nil {
		return nil, nil, err
	}
	if _, err := dir.Import(keys.EncodeCertificates(alice.Certificate()), keys.ImportOptions{}); err != nil {
		return nil, nil, err
	}
	carol, err := keys.NewDevPGPKey("Carol Customer", []string{demoCarol})
	if err != nil {
		return nil, nil, err
	}
	pub, err := keys.EncodePGPPublicKeys(carol)
	if err != nil {
		return nil, nil, err
	}
	if _, err := dir.Import(pub, keys.ImportOptions{}); err != nil {
		return nil, nil, err
	}
	return alice, carol, nil
}

// waitForMaildir waits until n messages are in the Maildir's new/ and returns them.
func waitForMaildir(maildir string, n int, limit time.Duration) ([][]byte, error) {
	deadline := time.Now().Add(limit)
	for {
		files, _ := filepath.Glob(filepath.Join(maildir, "new", "*"))
		if len(files) >= n {
			var out [][]byte
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					return nil, err
				}
				out = append(out, b)
			}
			return out, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d messages delivered to %s after %v", len(files), n, maildir, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
