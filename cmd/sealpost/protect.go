package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/outbound"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/tsa"
)

// maxMessage bounds what protect reads from stdin; the relay has its own configured limit.
const maxMessage = 64 << 20

// protectOptions are sealpost protect's flags, parsed.
type protectOptions struct {
	data, from, to, prefer, outdir string
	signOnly, hp, gcm, oaep        bool
	p12, pgpKey                    string
	signerPass, pgpPass            keys.Secret
	tsaURLs, tsaRoots              string
	timeout                        time.Duration
	method                         keys.Method // -prefer
	rcpts                          []string    // -to
}

// protected is one output message and the file it goes to under -outdir.
type protected struct {
	name string
	data []byte // nil when it was written as it was made (streamed to stdout)
}

func cmdProtect(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseProtect(args, stdout)
	if err != nil {
		return err
	}
	dir, err := existingDataDir(o.data)
	if err != nil {
		return err
	}
	plan, err := o.plan(dir)
	if err != nil {
		return err
	}
	msg, err := readMessage("-", stdin)
	if err != nil {
		return err
	}
	if err := checkFrom(msg, o.from); err != nil {
		return err
	}
	var stream io.Writer // the one message goes to stdout: it is written as it is made
	if o.outdir == "" {
		stream = stdout
	}
	outs, err := o.protect(context.Background(), dir, msg, plan, stream)
	if err != nil {
		return err
	}
	return writeProtected(stdout, o.outdir, outs)
}

func parseProtect(args []string, stdout io.Writer) (*protectOptions, error) {
	o := &protectOptions{}
	fs := newFlags("protect", stdout)
	fs.StringVar(&o.data, "data", "", "data directory (required)")
	fs.StringVar(&o.from, "from", "", "sender address; must be the message's From address (required)")
	fs.StringVar(&o.to, "to", "", "comma-separated recipient addresses (required unless -sign-only)")
	fs.StringVar(&o.prefer, "prefer", "smime", "method for a customer with both an S/MIME certificate and an OpenPGP key, and for -sign-only: smime or pgp")
	fs.StringVar(&o.outdir, "outdir", "", "write smime.eml and pgp.eml here (needed when the recipients need both methods)")
	fs.BoolVar(&o.signOnly, "sign-only", false, "sign and timestamp without encrypting")
	fs.BoolVar(&o.hp, "header-protection", false, "protect header fields (RFC 9788): encrypted mail shows outside only From, To, Cc (bare addresses), Date, Message-ID and Subject [...]")
	fs.BoolVar(&o.gcm, "gcm", false, "S/MIME: AES-256-GCM AuthEnvelopedData, only if every recipient's client reads it")
	fs.BoolVar(&o.oaep, "oaep", false, "S/MIME: wrap the content key with RSAES-OAEP (SHA-256) instead of PKCS#1 v1.5")
	fs.StringVar(&o.p12, "signer-p12", "", "S/MIME: sign with this PKCS#12 identity instead of the data directory's signer")
	fs.StringVar(&o.signerPass.File, "signer-pass-file", "", "file holding the PKCS#12 password")
	fs.StringVar(&o.signerPass.Env, "signer-pass-env", "", "environment variable holding the PKCS#12 password")
	fs.StringVar(&o.pgpKey, "pgp-key", "", "OpenPGP: sign with this armored secret key instead of the data directory's")
	fs.StringVar(&o.pgpPass.File, "pgp-pass-file", "", "file holding the OpenPGP key's passphrase")
	fs.StringVar(&o.pgpPass.Env, "pgp-pass-env", "", "environment variable holding the OpenPGP key's passphrase")
	fs.StringVar(&o.tsaURLs, "tsa", "", "comma-separated RFC 3161 TSA URLs tried in order (default: the embedded TSA)")
	fs.StringVar(&o.tsaRoots, "tsa-roots", "", "PEM file of roots the TSAs chain to (default: the data directory's roots)")
	fs.DurationVar(&o.timeout, "tsa-timeout", 10*time.Second, "time allowed to each TSA")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: protect reads the message from stdin and takes no arguments", errUsage)
	}
	if o.from == "" {
		return nil, fmt.Errorf("%w: -from is required", errUsage)
	}
	var err error
	if o.method, err = keys.ParseMethod(o.prefer); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if o.rcpts = splitList(o.to); len(o.rcpts) == 0 && !o.signOnly {
		return nil, fmt.Errorf("%w: -to is required (or -sign-only)", errUsage)
	}
	return o, nil
}

// plan splits the recipients by method as the relay does (outbound.Choose), before anything is
// signed: every recipient must have a usable key. With -sign-only the plan is empty.
func (o *protectOptions) plan(dir keys.DataDir) (outbound.Plan, error) {
	if o.signOnly {
		return outbound.Plan{}, nil
	}
	d, err := directoryWithStore(dir)
	if err != nil {
		return outbound.Plan{}, err
	}
	plan, refused := outbound.Choose(d, o.rcpts, o.method)
	if len(refused) > 0 {
		why := make([]string, len(refused))
		for i, err := range refused {
			why[i] = err.Error()
		}
		return outbound.Plan{}, fmt.Errorf("not protected, refused %d of %d recipients: %s", len(refused), len(o.rcpts), strings.Join(why, "; "))
	}
	for i := range plan.SMIME {
		plan.SMIME[i].GCM, plan.SMIME[i].OAEP = o.gcm, o.oaep
	}
	if len(plan.SMIME) > 0 && len(plan.PGP) > 0 && o.outdir == "" {
		return outbound.Plan{}, fmt.Errorf("%w: these recipients need both S/MIME and OpenPGP, so there are two messages: give -outdir DIR", errUsage)
	}
	return plan, nil
}

// protect makes the S/MIME and the OpenPGP message plan asks for (with -sign-only, the -prefer
// method's signed message). The message is prepared once, when the first protector is ready, and
// shared by both.
func (o *protectOptions) protect(ctx context.Context, dir keys.DataDir, msg []byte, plan outbound.Plan, stream io.Writer) ([]protected, error) {
	tc := tsa.DefaultConfig()
	tc.URLs, tc.Roots, tc.Timeout = splitList(o.tsaURLs), o.tsaRoots, config.Duration(o.timeout)
	ts, err := newTimestamper(dir, tc)
	if err != nil {
		return nil, err
	}
	var prep *mime.Prepared
	prepared := func() (*mime.Prepared, error) {
		if prep != nil {
			return prep, nil
		}
		var err error
		prep, err = mime.Prepare(msg, mime.Options{HeaderProtection: o.hp, Encrypted: !o.signOnly})
		return prep, err
	}
	var outs []protected
	if (o.signOnly && o.method == keys.MethodSMIME) || len(plan.SMIME) > 0 {
		out, err := o.protectSMIME(ctx, dir, ts, prepared, plan.SMIME, stream)
		if err != nil {
			return nil, err
		}
		outs = append(outs, protected{"smime.eml", out})
	}
	if (o.signOnly && o.method == keys.MethodPGP) || len(plan.PGP) > 0 {
		out, err := o.protectPGP(ctx, dir, ts, prepared, plan.PGP, stream)
		if err != nil {
			return nil, err
		}
		outs = append(outs, protected{"pgp.eml", out})
	}
	return outs, nil
}

// protectSMIME returns the S/MIME message, or with stream set writes an encrypted one to it as it
// is made (and returns nil).
func (o *protectOptions) protectSMIME(ctx context.Context, dir keys.DataDir, ts tsa.Timestamper, prepared func() (*mime.Prepared, error), to []smime.Recipient, stream io.Writer) ([]byte, error) {
	signer, err := loadSigner(dir, o.p12, o.signerPass)
	if err != nil {
		return nil, err
	}
	p, err := smime.NewProtector(signer, smime.WithTimestamper(ts))
	if err != nil {
		return nil, err
	}
	pp, err := prepared()
	if err != nil {
		return nil, err
	}
	if o.signOnly {
		return p.Sign(ctx, pp)
	}
	if stream != nil {
		return nil, p.ProtectTo(ctx, stream, pp, to)
	}
	return p.Protect(ctx, pp, to)
}

// protectPGP is protectSMIME for an OpenPGP message.
func (o *protectOptions) protectPGP(ctx context.Context, dir keys.DataDir, ts tsa.Timestamper, prepared func() (*mime.Prepared, error), to []*openpgp.Entity, stream io.Writer) ([]byte, error) {
	key, err := loadPGPKey(dir, o.pgpKey, o.pgpPass)
	if err != nil {
		return nil, err
	}
	p, err := pgp.NewProtector(key, pgp.WithTimestamper(ts))
	if err != nil {
		return nil, err
	}
	pp, err := prepared()
	if err != nil {
		return nil, err
	}
	if o.signOnly {
		return p.Sign(ctx, pp)
	}
	if stream != nil {
		return nil, p.ProtectTo(ctx, stream, pp, to)
	}
	return p.Protect(ctx, pp, to)
}

// writeProtected writes the one message to stdout, or each to its file under outdir (naming the
// files on stdout).
func writeProtected(stdout io.Writer, outdir string, outs []protected) error {
	if outdir == "" {
		if outs[0].data == nil {
			return nil // written as it was made
		}
		_, err := stdout.Write(outs[0].data)
		return err
	}
	for _, o := range outs {
		if err := os.WriteFile(filepath.Join(outdir, o.name), o.data, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", filepath.Join(outdir, o.name))
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
	want, err := address.Normalize(from)
	if err != nil {
		return fmt.Errorf("%w: -from %s is not an email address", errUsage, quoteInput(from))
	}
	if !address.Same(want, got) {
		return fmt.Errorf("-from %s differs from the message's From address %s", want, quoteInput(got))
	}
	return nil
}

// directoryWithStore loads the recipient directory of dir: its files, and the keys imported into its
// store when it has one.
func directoryWithStore(dir keys.DataDir) (*keys.Directory, error) {
	st, err := existingStore(dir, StoreConfig{})
	if err != nil {
		return nil, err
	}
	if st == nil {
		return dir.Directory()
	}
	defer st.Close()
	return recipientDirectory(context.Background(), dir, st)
}
