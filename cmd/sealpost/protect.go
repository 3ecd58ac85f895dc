package main

import (
	"context"
	"fmt"
	"github.com/sealpost/sealpost/tsa"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/smime"
)

// maxMessage bounds what protect reads from stdin; the relay has its own configured limit.
const maxMessage = 64 << 20

func cmdProtect(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("protect", stdout)
	data := fs.String("data", "", "data directory (required)")
	from := fs.String("from", "", "sender address; must be the message's From address (required)")
	to := fs.String("to", "", "comma-separated recipient addresses (required unless -sign-only)")
	prefer := fs.String("prefer", "smime", "method for a customer with both an S/MIME certificate and an OpenPGP key, and for -sign-only: smime or pgp")
	outdir := fs.String("outdir", "", "write smime.eml and pgp.eml here (needed when the recipients need both methods)")
	signOnly := fs.Bool("sign-only", false, "sign and timestamp without encrypting")
	hp := fs.Bool("header-protection", false, "protect header fields (RFC 9788): encrypted mail shows outside only From, To, Cc (bare addresses), Date, Message-ID and Subject [...]")
	gcm := fs.Bool("gcm", false, "S/MIME: AES-256-GCM AuthEnvelopedData, only if every recipient's client reads it")
	oaep := fs.Bool("oaep", false, "S/MIME: wrap the content key with RSAES-OAEP (SHA-256) instead of PKCS#1 v1.5")
	p12 := fs.String("signer-p12", "", "S/MIME: sign with this PKCS#12 identity instead of the data directory's signer")
	passFile := fs.String("signer-pass-file", "", "file holding the PKCS#12 password")
	passEnv := fs.String("signer-pass-env", "", "environment variable holding the PKCS#12 password")
	pgpKey := fs.String("pgp-key", "", "OpenPGP: sign with this armored secret key instead of the data directory's")
	pgpPassFile := fs.String("pgp-pass-file", "", "file holding the OpenPGP key's passphrase")
	pgpPassEnv := fs.String("pgp-pass-env", "", "environment variable holding the OpenPGP key's passphrase")
	tsaURLs := fs.String("tsa", "", "comma-separated RFC 3161 TSA URLs tried in order (default: the embedded TSA)")
	tsaRoots := fs.String("tsa-roots", "", "PEM file of roots the TSAs chain to (default: the data directory's roots)")
	timeout := fs.Duration("tsa-timeout", 10*time.Second, "time allowed to each TSA")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: protect reads the message from stdin and takes no arguments", errUsage)
	}
	if *from == "" {
		return fmt.Errorf("%w: -from is required", errUsage)
	}
	method, err := keys.ParseMethod(*prefer)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	rcpts := splitList(*to)
	if len(rcpts) == 0 && !*signOnly {
		return fmt.Errorf("%w: -to is required (or -sign-only)", errUsage)
	}
	dir, err := existingDataDir(*data)
	if err != nil {
		return err
	}

	// Every recipient must have a usable key before anything is signed.
	var smimeTo []smime.Recipient
	var pgpTo []*openpgp.Entity
	if !*signOnly {
		d, err := dir.Directory()
		if err != nil {
			return err
		}
		var refused []string
		for _, r := range rcpts {
			c, err := d.Choose(r, method)
			switch {
			case err != nil:
				refused = append(refused, err.Error())
			case c.Method == keys.MethodPGP:
				pgpTo = append(pgpTo, c.PGPKey)
			default:
				smimeTo = append(smimeTo, smime.Recipient{Certificate: c.Certificate, GCM: *gcm, OAEP: *oaep})
			}
		}
		if len(refused) > 0 {
			return fmt.Errorf("not protected, refused %d of %d recipients: %s", len(refused), len(rcpts), strings.Join(refused, "; "))
		}
		if len(smimeTo) > 0 && len(pgpTo) > 0 && *outdir == "" {
			return fmt.Errorf("%w: these recipients need both S/MIME and OpenPGP, so there are two messages: give -outdir DIR", errUsage)
		}
	}

	msg, err := readMessage("-", stdin)
	if err != nil {
		return err
	}
	if err := checkFrom(msg, *from); err != nil {
		return err
	}
	tc := tsa.DefaultConfig()
	tc.URLs, tc.Roots, tc.Timeout = splitList(*tsaURLs), *tsaRoots, config.Duration(*timeout)
	ts, err := newTimestamper(dir, tc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	type output struct {
		name string
		data []byte
	}
	var outs []output
	// The message is prepared once, when the first protector needs it, and shared by both.
	var prep *mime.Prepared
	prepared := func() (*mime.Prepared, error) {
		if prep != nil {
			return prep, nil
		}
		var err error
		prep, err = mime.Prepare(msg, mime.Options{HeaderProtection: *hp, Encrypted: !*signOnly})
		return prep, err
	}
	if (*signOnly && method == keys.MethodSMIME) || len(smimeTo) > 0 {
		signer, err := loadSigner(dir, *p12, keys.Secret{File: *passFile, Env: *passEnv})
		if err != nil {
			return err
		}
		p, err := smime.NewProtector(signer, smime.WithTimestamper(ts))
		if err != nil {
			return err
		}
		pp, err := prepared()
		if err != nil {
			return err
		}
		var out []byte
		if *signOnly {
			out, err = p.Sign(ctx, pp)
		} else {
			out, err = p.Protect(ctx, pp, smimeTo)
		}
		if err != nil {
			return err
		}
		outs = append(outs, output{"smime.eml", out})
	}
	if (*signOnly && method == keys.MethodPGP) || len(pgpTo) > 0 {
		key, err := loadPGPKey(dir, *pgpKey, keys.Secret{File: *pgpPassFile, Env: *pgpPassEnv})
		if err != nil {
			return err
		}
		p, err := pgp.NewProtector(key, pgp.WithTimestamper(ts))
		if err != nil {
			return err
		}
		pp, err := prepared()
		if err != nil {
			return err
		}
		var out []byte
		if *signOnly {
			out, err = p.Sign(ctx, pp)
		} else {
			out, err = p.Protect(ctx, pp, pgpTo)
		}
		if err != nil {
			return err
		}
		outs = append(outs, output{"pgp.eml", out})
	}
	if *outdir == "" {
		_, err = stdout.Write(outs[0].data)
		return err
	}
	for _, o := range outs {
		if err := os.WriteFile(filepath.Join(*outdir, o.name), o.data, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", filepath.Join(*outdir, o.name))
	}
	return nil
}

func loadSigner(dir keys.DataDir, p12 string, pass keys.Secret) (*keys.Identity, error) {
	if p12 == "" {
		return dir.Identity("signer")
	}
	pw, err := pass.Read()
	if err != nil {
		return nil, fmt.Errorf("PKCS#12 password: %w", err)
	}
	return keys.LoadPKCS12(p12, pw)
}

func loadPGPKey(dir keys.DataDir, file string, pass keys.Secret) (*openpgp.Entity, error) {
	if file == "" {
		return dir.PGPKey()
	}
	return keys.LoadPGPKey(file, pass)
}

// checkFrom requires the message's single From address to be the sender named on the command line.
// Errors quote at most a short excerpt of the message (package mime's parser makes sure of that).
func checkFrom(msg []byte, from string) error {
	h, _, err := mime.SplitEntity(msg)
	if err != nil {
		return err
	}
	got, err := mime.SingleFrom(h)
	if err != nil {
		return err
	}
	want, err := keys.NormalizeAddress(from)
	if err != nil {
		return fmt.Errorf("%w: -from %s is not an email address", errUsage, quoteInput(from))
	}
	if !keys.SameAddress(want, got) {
		return fmt.Errorf("-from %s differs from the message's From address %s", want, quoteInput(got))
	}
	return nil
}
