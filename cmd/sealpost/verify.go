package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/inbound"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/quarantine"
	"github.com/sealpost/sealpost/smtpd"
)

// exitCode makes run exit with a status other than 1 (verify: 1 not verified, 2 not processed).
type exitCode struct {
	code int
	err  error
}

func (e *exitCode) Error() string { return e.err.Error() }
func (e *exitCode) Unwrap() error { return e.err }

// errNotVerified is verify's outcome for a message that was processed but is not verified.
var errNotVerified = errors.New("not verified")

// offline is the inbound pipeline over a data directory without listeners, for verify and
// quarantine.
type offline struct {
	cfg      Config
	data     *bankData
	pipeline *inbound.Pipeline
	held     *quarantine.Quarantine
}

func (o *offline) Close() error { return o.data.Close() }

// openOffline loads what serve loads for its inbound side (openBankData), with the quarantine when
// withHeld, and builds the pipeline without a desk.
func openOffline(configFile, data string, withHeld bool) (o *offline, err error) {
	cfg, err := loadConfig(configFile, data)
	if err != nil {
		return nil, err
	}
	d, err := openBankData(cfg, true)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	o = &offline{cfg: cfg, data: d}
	if withHeld {
		if o.held, err = openQuarantine(cfg, d.store); err != nil {
			return nil, err
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.pipeline, err = d.inboundPipeline(cfg, nil, o.held, nil, log); err != nil {
		return nil, err
	}
	return o, nil
}

// cmdVerify runs the inbound pipeline on one message file and prints the verdict. Exit status:
// 0 verified, 1 not verified, 2 could not be processed (or a usage error).
func cmdVerify(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stdout)
	configFile, data := configFlags(fs)
	at := fs.String("at", "", "arrival time (RFC 3339) used when the signature has no timestamp; default now")
	out := fs.String("out", "", "also write the message the desk would receive to this file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: sealpost verify [-data DIR] FILE.eml (or - for stdin)", errUsage)
	}
	arrival := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("%w: -at: %v", errUsage, err)
		}
		arrival = t
	}
	msg, err := readMessage(fs.Arg(0), stdin)
	if err != nil {
		return &exitCode{2, err}
	}
	o, err := openOffline(*configFile, *data, false)
	if err != nil {
		return &exitCode{2, err}
	}
	defer o.Close()
	res, err := o.pipeline.Evaluate(context.Background(), msg, arrival)
	if err != nil {
		fmt.Fprintf(stdout, "verdict:\tnot processed\nreply:\t%s\n", gateway.ReplyFor(err).String())
		return &exitCode{2, fmt.Errorf("%s: cannot be processed: %s", fs.Arg(0), gateway.ReplyFor(err).String())}
	}
	action := res.Action
	if res.Reason != "" {
		action += " (" + res.Reason + ")"
	}
	printVerdict(stdout, res.Verdict, action)
	if *out != "" {
		if err := os.WriteFile(*out, res.Message, 0o600); err != nil {
			return &exitCode{2, err}
		}
	}
	if !res.Verdict.Trusted() {
		return errNotVerified
	}
	return nil
}

// readMessage reads a message from a file, or from stdin for "-", up to maxMessage bytes.
func readMessage(name string, stdin io.Reader) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	if f, ok := r.(*os.File); ok {
		// A file (or stdin redirected from one) is read into a buffer of its size, not one grown by
		// doubling: a 10 MB statement costs 10 MB, not 32.
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			var buf bytes.Buffer
			buf.Grow(int(min(fi.Size(), maxMessage)) + bytes.MinRead)
			if _, err := buf.ReadFrom(io.LimitReader(r, maxMessage+1)); err != nil {
				return nil, err
			}
			if buf.Len() > maxMessage {
				return nil, fmt.Errorf("%s: larger than %d bytes", name, maxMessage)
			}
			return buf.Bytes(), nil
		}
	}
	// A pipe is read in chunks joined once (it may have grown since a size was read, if any).
	msg, err := smtpd.ReadAll(r, maxMessage)
	if errors.Is(err, smtpd.ErrTooLarge) {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxMessage)
	}
	return msg, err
}

// printVerdict writes a verdict for a person: one "name: value" line per fact.
func printVerdict(w io.Writer, v *inbound.Verdict, action string) {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	line := func(k, val string) {
		if val != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, val)
		}
	}
	line("verdict", v.Status)
	for _, d := range v.Details {
		line("failed", d)
	}
	line("method", v.Method)
	line("from", v.From)
	line("signer", v.Signer)
	line("fingerprint", v.Fingerprint)
	if v.Status != inbound.StatusUnsigned {
		line("registered", map[bool]string{true: "yes", false: "no"}[v.Registered])
		if !v.SignedAt.IsZero() {
			src := "arrival"
			if v.Timestamped {
				src = "RFC 3161 timestamp"
			}
			line("signed at", v.SignedAt.UTC().Format(time.RFC3339)+" ("+src+")")
		}
	}
	line("encryption", v.Encryption)
	line("layers", strings.Join(v.Layers, " > "))
	line("thread", v.Thread)
	line("thread mismatch", v.ThreadMismatch)
	line("action", action)
	tw.Flush()
}

func quarantineDir(cfg Config) string { return filepath.Join(cfg.Data, "quarantine") }

// openQuarantine opens the data directory's quarantine, sealing held mail with its key
// (keys.DataDir.HeldKey: made on first use, never in the store). Held files are kept under
// DATA/quarantine with the embedded SQLite, and in the store itself with PostgreSQL.
func openQuarantine(cfg Config, index quarantine.Index, opts ...quarantine.Option) (*quarantine.Quarantine, error) {
	key, err := keys.DataDir(cfg.Data).HeldKey()
	if err != nil {
		return nil, fmt.Errorf("quarantine key: %w", err)
	}
	opts = append(opts, quarantine.WithSealKey(key))
	if cfg.Store.Postgres != nil {
		// Several nodes share the quarantine: the held bytes (sealed, the key staying here) go
		// to the store with their index, and nothing is written under DATA/quarantine.
		b, ok := index.(quarantine.Blobs)
		if !ok {
			return nil, fmt.Errorf("quarantine: %s: the store cannot keep held messages", postgresPath)
		}
		opts = append(opts, quarantine.WithBlobs(b))
	}
	return quarantine.Open(quarantineDir(cfg), index, opts...)
}
