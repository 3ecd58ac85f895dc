package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
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
	fs := newFlags("demo", stdout)
	data := fs.String("data", "", "keep the demo's data directory here (new) instead of a temporary one")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: demo takes no arguments", errUsage)
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
	cfg, r, err := demoDataDir(dirPath)
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
	if err := demoSend(inst.Addr().String(), cfg.Delivery.Maildir, *data != "", r, w); err != nil {
		return err
	}
	if *data == "" {
		w("everything was in %s, which is removed now; sealpost demo -data DIR keeps it, with the customers' keys and the commands that open each message", dirPath)
		return nil
	}
	w("the outbox is %s: every file in it is signed, timestamped and, where a key exists, encrypted", cfg.Delivery.Maildir)
	w("the customers' keys are in %s", filepath.Join(dirPath, "customers"))
	return nil
}

// demoDataDir makes the demo's configuration and data directory (the bank's development
// identities and the customers' keys), and the reader that opens what is delivered to them.
func demoDataDir(dirPath string) (Config, *demoReader, error) {
	cfg := defaultConfig()
	cfg.Data, cfg.SMTP.Addr, cfg.Inbound.Listener.Addr, cfg.Ops.Addr = dirPath, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.API.Addr = "127.0.0.1:0"
	cfg.resolvePaths()
	if err := cfg.Validate(); err != nil {
		return Config{}, nil, err
	}
	dir := keys.DataDir(dirPath)
	if err := dir.Init(cfg.Senders, keys.WithSupportAddresses(cfg.Inbound.SupportAddresses...)); err != nil {
		return Config{}, nil, err
	}
	alice, carol, err := demoCustomers(dir)
	if err != nil {
		return Config{}, nil, err
	}
	return cfg, &demoReader{dir: dir, alice: alice, carol: carol}, nil
}

// demoSend sends the demo's messages through the gateway at addr, waits for what was accepted to
// be delivered to maildir, and has r open each delivered message (with the commands that open it
// by hand when keep).
func demoSend(addr, maildir string, keep bool, r *demoReader, w func(string, ...any)) error {
	c, err := dialSMTP(addr)
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
		expected[mime.HeaderValue([]byte(m.msg), "Message-ID")] = m.what
		w("%-9s → %-18s %s", m.what, m.to, res.Reply)
	}
	files, err := waitForMaildirFiles(maildir, len(expected), 15*time.Second)
	if err != nil {
		return err
	}
	if keep { // the commands a reader runs by hand; only when the directory is kept
		if r.commands, err = keepCustomers(r.dir, r.alice, r.carol); err != nil {
			return err
		}
	}
	if err := r.trustBank(); err != nil {
		return err
	}
	for _, file := range files {
		if err := r.open(file, w); err != nil {
			return err
		}
	}
	return nil
}

// demoReader opens delivered mail as each demo customer would, trusting the bank's CA and
// OpenPGP key.
type demoReader struct {
	dir      keys.DataDir
	alice    *keys.Identity
	carol    *openpgp.Entity
	roots    *x509.CertPool
	bank     *openpgp.Entity
	commands opener
}

// trustBank reads the bank's CA certificate and OpenPGP key from the data directory.
func (r *demoReader) trustBank() error {
	ca, err := r.dir.Identity("ca")
	if err != nil {
		return err
	}
	r.roots = x509.NewCertPool()
	r.roots.AddCert(ca.Certificate())
	r.bank, err = r.dir.PGPKey()
	return err
}

// open opens one delivered message as its customer and says what they find.
func (r *demoReader) open(file string, w func(string, ...any)) error {
	msg, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	to := mime.HeaderValue(msg, "To")
	subject := mime.HeaderValue(msg, "Subject")
	open, roots := r.commands, r.roots
	switch {
	case strings.Contains(to, demoAlice):
		o, err := smime.Inspect(msg, smime.InboundOptions{Identities: []*keys.Identity{r.alice}, Roots: roots, TSARoots: roots})
		if err == nil {
			err = o.Err()
		}
		if err != nil {
			return fmt.Errorf("alice cannot open her statement: %w", err)
		}
		w("delivered → alice: S/MIME, AES-256-CBC; she decrypts it, signature by %q valid, timestamped %s",
			o.Signer.Subject.CommonName, o.Timestamp.Time.UTC().Format(time.RFC3339))
		open.print(w, open.alice, file)
	case strings.Contains(to, demoCarol):
		o, err := pgp.Inspect(msg, pgp.InboundOptions{Decrypt: openpgp.EntityList{r.carol}, Signers: openpgp.EntityList{r.bank}, TSARoots: roots})
		if err == nil {
			err = o.Err()
		}
		if err != nil {
			return fmt.Errorf("carol cannot open her OTP: %w", err)
		}
		w("delivered → carol: PGP/MIME, SEIPD+MDC; signature by %X valid, timestamped %s", o.Signer.PrimaryKey.Fingerprint[12:], o.Timestamp.Time.UTC().Format(time.RFC3339))
		w("           outer Subject %q; the code is only inside: %q", subject, mime.HeaderValue(o.Content, "Subject"))
		open.print(w, open.carol, file)
	case strings.Contains(to, demoBob):
		o, err := smime.Inspect(msg, smime.InboundOptions{Roots: roots, TSARoots: roots})
		if err == nil {
			err = o.Err()
		}
		if err != nil {
			return fmt.Errorf("bob's support reply does not verify: %w", err)
		}
		w("delivered → bob:   signed only (support mail may go unencrypted to a customer without a key); signature valid, encrypted=%v", o.Encrypted)
		open.print(w, open.bob, file)
	}
	return nil
}

// opener holds, per customer, the shell commands that open a delivered message (FILE stands for it).
type opener struct{ alice, carol, bob string }

func (o opener) print(w func(string, ...any), command, file string) {
	if command != "" {
		w("           open it: %s", strings.ReplaceAll(command, "FILE", file))
	}
}

// keepCustomers writes the demo customers' keys under DATA/customers, as their mail clients would
// hold them, and returns the commands that open each customer's mail with openssl and gpg.
func keepCustomers(dir keys.DataDir, alice *keys.Identity, carol *openpgp.Entity) (opener, error) {
	cust := filepath.Join(string(dir), "customers")
	if err := os.MkdirAll(cust, 0o700); err != nil {
		return opener{}, err
	}
	aliceKey, err := x509.MarshalPKCS8PrivateKey(alice.Signer)
	if err != nil {
		return opener{}, err
	}
	var carolKey bytes.Buffer
	aw, err := armor.Encode(&carolKey, openpgp.PrivateKeyType, nil)
	if err != nil {
		return opener{}, err
	}
	if err := carol.SerializePrivateWithoutSigning(aw, keys.PGPConfig()); err != nil {
		return opener{}, err
	}
	if err := aw.Close(); err != nil {
		return opener{}, err
	}
	bank, err := dir.Export("pgp")
	if err != nil {
		return opener{}, err
	}
	for name, b := range map[string][]byte{
		"alice.pem":     keys.EncodeCertificates(alice.Certificate()),
		"alice.key":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: aliceKey}),
		"carol.key.asc": append(carolKey.Bytes(), '\n'),
		"bank-pgp.asc":  bank,
	} {
		if err := os.WriteFile(filepath.Join(cust, name), b, 0o600); err != nil {
			return opener{}, err
		}
	}
	ca := filepath.Join(string(dir), "ca.pem")
	gnupg := filepath.Join(cust, "carol-gnupg")
	return opener{
		alice: fmt.Sprintf("openssl cms -decrypt -in FILE -recip %s -inkey %s | openssl cms -verify -purpose smimesign -CAfile %s",
			filepath.Join(cust, "alice.pem"), filepath.Join(cust, "alice.key"), ca),
		carol: fmt.Sprintf("mkdir -p -m 700 %[1]s && gpg --homedir %[1]s --batch --quiet --import %[2]s %[3]s && sed -n '/BEGIN PGP MESSAGE/,/END PGP MESSAGE/p' FILE | gpg --homedir %[1]s --decrypt",
			gnupg, filepath.Join(cust, "carol.key.asc"), filepath.Join(cust, "bank-pgp.asc")),
		bob: fmt.Sprintf("openssl cms -verify -in FILE -purpose smimesign -CAfile %s", ca),
	}, nil
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
	files, err := waitForMaildirFiles(maildir, n, limit)
	if err != nil {
		return nil, err
	}
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

// waitForMaildirFiles waits until n messages are in the Maildir's new/ and returns their names.
func waitForMaildirFiles(maildir string, n int, limit time.Duration) ([]string, error) {
	deadline := time.Now().Add(limit)
	for {
		files, _ := filepath.Glob(filepath.Join(maildir, "new", "*"))
		if len(files) >= n {
			return files, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d messages delivered to %s after %v", len(files), n, maildir, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
