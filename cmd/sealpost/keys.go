package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

const defaultSenders = "statements@bank.example,otp@bank.example,support@bank.example"

func cmdKeys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: sealpost keys init|import|export|list -data DIR …", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := newFlags("keys "+sub, stderr)
	data := fs.String("data", "", "data directory (required)")
	switch sub {
	case "init":
		senders := fs.String("senders", defaultSenders, "comma-separated sender addresses the bank's signing certificate names")
		if err := parseData(fs, args, data); err != nil {
			return err
		}
		if err := keys.DataDir(*data).Init(splitList(*senders)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "initialised %s: development CA, bank signer (%s), embedded TSA\n", *data, *senders)
		return nil
	case "import":
		root := fs.Bool("root", false, "import as trusted root(s) instead of recipients' certificates")
		if err := parseData(fs, args, data); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return fmt.Errorf("%w: name at least one certificate file", errUsage)
		}
		return importFiles(keys.DataDir(*data), fs.Args(), *root, stdout)
	case "export":
		if err := parseData(fs, args, data); err != nil {
			return err
		}
		if fs.NArg() != 1 || !strings.Contains(" ca signer tsa pgp ", " "+fs.Arg(0)+" ") {
			return fmt.Errorf("%w: export ca|signer|tsa|pgp", errUsage)
		}
		pem, err := keys.DataDir(*data).Export(fs.Arg(0))
		if err != nil {
			return err
		}
		_, err = stdout.Write(pem)
		return err
	case "list":
		if err := parseData(fs, args, data); err != nil {
			return err
		}
		return listKeys(keys.DataDir(*data), stdout)
	}
	return fmt.Errorf("%w: unknown keys command %q (init, import, export, list)", errUsage, sub)
}

// register records each imported certificate and OpenPGP key as the registered key of the
// addresses it names: the inbound pipeline then requires those customers to sign with it.
func register(st store.Store, imp keys.Imported, stdout io.Writer) error {
	ctx := context.Background()
	for _, c := range imp.Certificates {
		if c.IsCA {
			continue
		}
		for _, a := range c.EmailAddresses {
			if err := st.Register(ctx, store.Registration{Address: a, Method: store.MethodSMIME, Fingerprint: keys.CertFingerprint(c)}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "registered certificate %s for %s\n", keys.CertFingerprint(c)[:16], a)
		}
	}
	for _, k := range imp.PGPKeys {
		for _, a := range keys.PGPAddresses(k, time.Now()) {
			if err := st.Register(ctx, store.Registration{Address: a, Method: store.MethodPGP, Fingerprint: keys.PGPFingerprint(k)}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "registered OpenPGP key %s for %s\n", keys.PGPFingerprint(k), a)
		}
	}
	return nil
}

func parseData(fs *flag.FlagSet, args []string, data *string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if *data == "" {
		return fmt.Errorf("%w: -data DIR is required", errUsage)
	}
	return nil
}

func importFiles(dir keys.DataDir, files []string, root bool, stdout io.Writer) error {
	// Read every file first, so a bad one leaves nothing half-imported.
	contents := make([][]byte, len(files))
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if _, err := keys.ParseImport(b, keys.ImportOptions{Root: root}); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		contents[i] = b
	}
	var st store.Store
	if !root {
		var err error
		if st, err = openStore(string(dir)); err != nil {
			return err
		}
		defer st.Close()
	}
	for i, f := range files {
		imp, err := dir.Import(contents[i], keys.ImportOptions{Root: root})
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if st != nil {
			if err := register(st, imp, stdout); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
		d, err := dir.Directory()
		if err != nil {
			return err
		}
		for _, k := range imp.PGPKeys {
			status := "usable"
			if p := d.CheckPGP(k); p != nil {
				status = "unusable: " + p.Error()
			}
			fmt.Fprintf(stdout, "OpenPGP key %X: %s\n", k.PrimaryKey.Fingerprint, status)
		}
		for _, c := range imp.Certificates {
			switch {
			case root:
				fmt.Fprintf(stdout, "trusted root: %s\n", c.Subject)
			case c.IsCA:
				fmt.Fprintf(stdout, "intermediate: %s\n", c.Subject)
			default:
				status := "usable"
				if p := d.Check(c); p != nil {
					status = "unusable: " + p.Error()
				}
				fmt.Fprintf(stdout, "recipient %s: %s\n", strings.Join(c.EmailAddresses, ", "), status)
			}
		}
	}
	return nil
}

func listKeys(dir keys.DataDir, stdout io.Writer) error {
	d, err := dir.Directory()
	if err != nil {
		return err
	}
	roots, err := dir.Roots()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tKIND\tEXPIRES\tSUBJECT\tSTATUS")
	for _, e := range d.Entries() {
		status := "usable"
		if e.Problem != nil {
			status = "unusable: " + e.Problem.Reason.Error()
			if e.Problem.Detail != "" {
				status += " (" + oneLine(e.Problem.Detail) + ")"
			}
		}
		expires := "never"
		if t := e.Expires(); !t.IsZero() {
			expires = t.UTC().Format(time.DateOnly)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", strings.Join(e.Addresses, ","), e.Kind(), expires, e.Subject(), status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range roots {
		fmt.Fprintf(stdout, "trusted root: %s (expires %s)\n", r.Subject, r.NotAfter.UTC().Format(time.DateOnly))
	}
	return nil
}
