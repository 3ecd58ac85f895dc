package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/api"
	"github.com/sealpost/sealpost/console"
	"github.com/sealpost/sealpost/discovery"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

const defaultSenders = "statements@bank.example,otp@bank.example,support@bank.example"

// dataDirFlag declares -data for a command that works on an existing data directory.
func dataDirFlag(fs *flag.FlagSet) *string {
	return fs.String("data", "", "data directory (required)")
}

// configFlags declares -config and -data for a command that works from a configuration (the
// embedded defaults without one) whose data directory -data overrides.
func configFlags(fs *flag.FlagSet) (configFile, data *string) {
	return fs.String("config", "", "configuration file (JSON); without one, the embedded defaults"),
		fs.String("data", "", "data directory (overrides the configuration's data)")
}

// keysStoreFlags declares -config and -data for a keys command that reads or writes customers'
// registrations: in the store the configuration names (PostgreSQL shared by several nodes, else the
// data directory's SQLite), so a registration made on one node is in effect on every node.
func keysStoreFlags(fs *flag.FlagSet) (configFile, data *string) {
	return fs.String("config", "", "configuration file (JSON): its data directory and store; without one, the data directory's SQLite"),
		fs.String("data", "", "data directory (required without -config; overrides the configuration's data)")
}

// keysTarget is the data directory and store that keys import, list and remove work on.
func keysTarget(configFile, data string) (keys.DataDir, StoreConfig, error) {
	if configFile == "" && data == "" {
		return "", StoreConfig{}, fmt.Errorf("%w: -data DIR is required", errUsage)
	}
	if configFile == "" {
		dir, err := existingDataDir(data)
		return dir, StoreConfig{}, err
	}
	cfg, err := loadConfig(configFile, data)
	if err != nil {
		return "", StoreConfig{}, err
	}
	dir, err := existingDataDir(cfg.Data)
	return dir, cfg.Store, err
}

// importRevocations is the checker keys import asks customers' CAs with, by the configuration's
// discovery.revocation (the embedded default, on, without -config); nil when that is off.
func importRevocations(configFile, data string) (*discovery.Checker, error) {
	rc := discovery.DefaultRevocationConfig()
	if configFile != "" {
		cfg, err := loadConfig(configFile, data)
		if err != nil {
			return nil, err
		}
		rc = cfg.Discovery.Revocation
	}
	if !rc.Enabled {
		return nil, nil
	}
	return discovery.NewChecker(rc, discovery.WithCheckerLogger(slog.New(slog.DiscardHandler)))
}

// existingDataDir checks -data: given, and a directory that exists. Commands other than keys init
// and serve never create one, so a mistyped path is named as such instead of a missing key.
func existingDataDir(path string) (keys.DataDir, error) {
	if path == "" {
		return "", fmt.Errorf("%w: -data DIR is required", errUsage)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("data directory %s does not exist (create one with sealpost keys init -data %s, or run sealpost serve once)", path, path)
	case err != nil:
		return "", fmt.Errorf("data directory: %w", err)
	case !fi.IsDir():
		return "", fmt.Errorf("data directory %s is not a directory", path)
	}
	return keys.DataDir(path), nil
}

func keysInit(args []string, _ io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("keys init", stdout)
	data := fs.String("data", "", "data directory to create or complete (required)")
	senders := fs.String("senders", defaultSenders, "comma-separated sender addresses the bank's signing certificate names")
	support := fs.String("support", keys.DefaultSupportAddress, "comma-separated support addresses the certificate customers encrypt replies to names")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *data == "" {
		return fmt.Errorf("%w: -data DIR is required", errUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: keys init takes no arguments", errUsage)
	}
	if err := keys.DataDir(*data).Init(splitList(*senders), keys.WithSupportAddresses(splitList(*support)...)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "initialised %s with development identities (sealpost's own CA, not for production): signer (%s), support (%s), embedded TSA, OpenPGP key\n",
		*data, strings.Join(splitList(*senders), ", "), strings.Join(splitList(*support), ", "))
	return nil
}

func keysImport(args []string, _ io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("keys import", stdout)
	configFile, data := keysStoreFlags(fs)
	root := fs.Bool("root", false, "import as trusted root(s) instead of customers' certificates")
	force := fs.Bool("force", false, "import certificates that cannot be used (no email address, expired, RSA < 2048, a CA without -root)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: name at least one certificate or key file", errUsage)
	}
	dir, sc, err := keysTarget(*configFile, *data)
	if err != nil {
		return err
	}
	var rev api.Revocations // nil (an interface holding no checker) when off or for roots
	if !*root {
		c, err := importRevocations(*configFile, *data)
		if err != nil {
			return err
		}
		if c != nil {
			defer c.Close()
			rev = c
		}
	}
	return importFiles(dir, sc, fs.Args(), keys.ImportOptions{Root: *root, Force: *force}, rev, stdout)
}

// exportable are the names keys export takes.
var exportable = []string{"ca", "signer", "support", "tsa", "customer-ca", "pgp"}

func keysExport(args []string, _ io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("keys export", stdout)
	data := dataDirFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || !slices.Contains(exportable, fs.Arg(0)) {
		return fmt.Errorf("%w: keys export %s", errUsage, strings.Join(exportable, "|"))
	}
	dir, err := existingDataDir(*data)
	if err != nil {
		return err
	}
	pem, err := dir.Export(fs.Arg(0))
	if err != nil {
		return err
	}
	_, err = stdout.Write(pem)
	return err
}

func keysList(args []string, _ io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("keys list", stdout)
	configFile, data := keysStoreFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: keys list takes no arguments", errUsage)
	}
	dir, sc, err := keysTarget(*configFile, *data)
	if err != nil {
		return err
	}
	return listKeys(dir, sc, stdout)
}

// register records each imported certificate and OpenPGP key as the registered key of the
// addresses it names (api.RegisterImported, which the API's registration uses too): the inbound
// pipeline then requires those customers to sign with it.
func register(st registry, imp keys.Imported, stdout io.Writer) error {
	regs, err := api.RegisterImported(context.Background(), st, imp, time.Now(), "")
	for _, r := range regs {
		if r.Method == store.MethodPGP {
			fmt.Fprintf(stdout, "registered OpenPGP key %s for %s\n", r.Fingerprint, r.Address)
		} else {
			fmt.Fprintf(stdout, "registered certificate %s for %s\n", r.Fingerprint[:16], r.Address)
		}
	}
	return err
}

// importShared stores a customer's certificates and OpenPGP keys in the shared recipient directory
// (an OpenPGP key merged with the copy stored there), where every node finds them.
func importShared(ctx context.Context, st sharedDirectory, data []byte, opts keys.ImportOptions) (keys.Imported, error) {
	imp, err := keys.ParseImport(data, opts)
	if err != nil {
		return keys.Imported{}, err
	}
	return api.StoreImported(ctx, st, imp)
}

// importFiles imports files as trusted roots (opts.Root) or customers' keys. A customer's
// certificate its CA says is revoked (rev asks, when not nil) is refused like an expired one.
func importFiles(dir keys.DataDir, sc StoreConfig, files []string, opts keys.ImportOptions, rev api.Revocations, stdout io.Writer) error {
	root := opts.Root
	var st backend
	var current *keys.Directory // the recipient directory before the import: the issuers' chains
	ctx := context.Background()
	if !root {
		var err error
		if st, err = openStore(string(dir), sc); err != nil {
			return err
		}
		defer st.Close()
		if current, err = recipientDirectory(ctx, dir, st); err != nil {
			return err
		}
	}
	// Read and check every file first, so a bad one leaves nothing half-imported and every file's
	// problem is named at once.
	contents := make([][]byte, len(files))
	var problems []error
	for i, f := range files {
		b, err := os.ReadFile(f)
		var imp keys.Imported
		if err == nil {
			imp, err = keys.ParseImport(b, opts)
		}
		if err == nil && !root && rev != nil {
			var unknown []error
			unknown, err = api.CheckRevocation(ctx, rev, current, imp)
			for _, u := range unknown {
				fmt.Fprintf(stdout, "%s: revocation status unknown (%v); imported, and checked again at every RCPT\n", f, u)
			}
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", f, err))
		}
		contents[i] = b
	}
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	for i, f := range files {
		var imp keys.Imported
		var err error
		if root {
			imp, err = dir.Import(contents[i], opts)
		} else {
			imp, err = importShared(ctx, st, contents[i], opts)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if st != nil {
			if err := register(st, imp, stdout); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
		var d *keys.Directory
		if root {
			d, err = dir.Directory()
		} else {
			d, err = recipientDirectory(ctx, dir, st)
		}
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

// fingerprintShown is how many hex digits of a fingerprint keys list shows; keys remove takes that
// many or more.
const fingerprintShown = 16

// existingStore opens the store sc configures, or nil when that is the data directory's SQLite and
// it does not exist yet: nothing is registered or stored, and reading creates nothing.
func existingStore(dir keys.DataDir, sc StoreConfig) (backend, error) {
	if _, err := os.Stat(filepath.Join(string(dir), storeFile)); sc.Postgres == nil && errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return openStore(string(dir), sc)
}

// registeredFingerprints returns, per normalised address, the fingerprints registered for it in st
// (nil without a store).
func registeredFingerprints(st registry, entries []keys.Entry) (map[string]map[string]bool, error) {
	if st == nil {
		return nil, nil
	}
	out := map[string]map[string]bool{}
	for _, e := range entries {
		for _, a := range e.Addresses {
			if _, done := out[a]; done {
				continue
			}
			regs, err := st.Registrations(context.Background(), a)
			if err != nil {
				return nil, err
			}
			out[a] = map[string]bool{}
			for _, r := range regs {
				out[a][r.Fingerprint] = true
			}
		}
	}
	return out, nil
}

func listKeys(dir keys.DataDir, sc StoreConfig, stdout io.Writer) error {
	st, err := existingStore(dir, sc)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
	}
	rows, err := keyRows(context.Background(), dir, st)
	if err != nil {
		return err
	}
	roots, err := dir.Roots()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tKIND\tSOURCE\tFINGERPRINT\tSTATE\tEXPIRES\tSUBJECT")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", strings.Join(r.addresses, ","), r.Kind, r.Source, r.Fingerprint[:fingerprintShown],
			r.State, r.Expires, printableLine(r.Subject))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range roots {
		fmt.Fprintf(stdout, "trusted root: %s (expires %s)\n", printableLine(r.Subject.String()), r.NotAfter.UTC().Format(time.DateOnly))
	}
	return nil
}

// keyRow is one key of the recipient directory (and of the keys WKD found) as keys list and the
// console show it: its addresses, kind, source, fingerprint, state (registered, usable or why not),
// expiry and subject.
type keyRow struct {
	console.KeyRow
	addresses []string
}

// keyRows are the recipient directory's keys, the learned and the discovered ones, judged now; st
// may be nil (a data directory without a store).
func keyRows(ctx context.Context, dir keys.DataDir, st backend) ([]keyRow, error) {
	var shared sharedDirectory
	var reg registry
	if st != nil {
		shared, reg = st, st
	}
	d, err := recipientDirectory(ctx, dir, shared)
	if err != nil {
		return nil, err
	}
	entries := append(d.Entries(), d.Learned()...)
	registered, err := registeredFingerprints(reg, entries)
	if err != nil {
		return nil, err
	}
	discovered, err := discoveredEntries(st)
	if err != nil {
		return nil, err
	}
	entries = append(entries, discovered...)
	rows := make([]keyRow, 0, len(entries))
	for _, e := range entries {
		fp := api.EntryFingerprint(e)
		var state []string
		reg := slices.ContainsFunc(e.Addresses, func(a string) bool { return registered[a][fp] })
		if reg {
			state = append(state, "registered")
		}
		if e.Problem != nil {
			s := "unusable: " + e.Problem.Reason.Error()
			if e.Problem.Detail != "" {
				s += " (" + oneLine(e.Problem.Detail) + ")"
			}
			state = append(state, s)
		} else {
			state = append(state, "usable")
		}
		expires := "never"
		if t := e.Expires(); !t.IsZero() {
			expires = t.UTC().Format(time.DateOnly)
		}
		rows = append(rows, keyRow{console.KeyRow{Kind: e.Kind().String(), Source: string(e.Source), Fingerprint: fp, State: strings.Join(state, ", "),
			Expires: expires, Subject: e.Subject(), Registered: reg}, e.Addresses})
	}
	return rows, nil
}

// discoveredEntries are the keys WKD lookups found, from the shared store (none without one), as
// entries of SourceDiscovered judged now.
func discoveredEntries(st backend) ([]keys.Entry, error) {
	if st == nil {
		return nil, nil
	}
	found, err := st.DiscoveredKeys(context.Background())
	if err != nil {
		return nil, err
	}
	var out []keys.Entry
	for _, k := range found {
		if k.Data == nil {
			continue
		}
		ents, err := keys.ParsePGPKeys(k.Data)
		if err != nil {
			return nil, fmt.Errorf("discovered key for %s: %w", k.Address, err)
		}
		for _, e := range keys.NewDirectory(nil, nil, keys.WithPGPKeys(ents...)).Entries() {
			e.Source = keys.SourceDiscovered
			out = append(out, e)
		}
	}
	return out, nil
}

// keysRemove unregisters a customer's keys (all of the address's, or the one named) and removes
// them from the recipient directory, so neither outbound mail nor the inbound binding uses them.
func keysRemove(args []string, _ io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("keys remove", stdout)
	configFile, data := keysStoreFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return fmt.Errorf("%w: keys remove -data DIR ADDRESS [FINGERPRINT]", errUsage)
	}
	dir, sc, err := keysTarget(*configFile, *data)
	if err != nil {
		return err
	}
	addr, err := address.Normalize(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("%w: %s is not an email address", errUsage, quoteInput(fs.Arg(0)))
	}
	want := strings.ToUpper(fs.Arg(1))
	if want != "" && (len(want) < fingerprintShown || strings.Trim(want, "0123456789ABCDEF") != "") {
		return fmt.Errorf("%w: fingerprint %s: give at least %d hex digits, as keys list shows", errUsage, quoteInput(fs.Arg(1)), fingerprintShown)
	}
	st, err := openStore(string(dir), sc)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	d, err := recipientDirectory(ctx, dir, st)
	if err != nil {
		return err
	}
	regs, err := st.Registrations(ctx, addr)
	if err != nil {
		return err
	}
	found, order := api.AddressKeys(d.Entries(), regs, addr, want)
	switch {
	case len(order) == 0 && want != "":
		return fmt.Errorf("%s has no key with fingerprint %s (see sealpost keys list)", addr, want)
	case len(order) == 0:
		return fmt.Errorf("%s has no registered key and none in the recipient directory", addr)
	case len(order) > 1 && want != "":
		return fmt.Errorf("fingerprint %s names %d keys of %s: give more digits", want, len(order), addr)
	}
	for _, fp := range order {
		if err := removeKey(ctx, st, dir, addr, fp, found[fp], stdout); err != nil {
			return err
		}
	}
	return nil
}

// removeKey unregisters the key fp (directory entry e, nil when not in the directory) for addr,
// and removes it from the recipient directory unless another address it names keeps it registered
// (api.RemoveKey, which the API's DELETE uses too).
func removeKey(ctx context.Context, st api.KeyStore, dir keys.DataDir, addr, fp string, e *keys.Entry, stdout io.Writer) error {
	rm, err := api.RemoveKey(ctx, st, dir, addr, fp, e)
	if err != nil {
		return err
	}
	switch {
	case !rm.InDirectory:
		fmt.Fprintf(stdout, "unregistered %s for %s (it was not in the recipient directory)\n", fp[:fingerprintShown], addr)
	case len(rm.KeptFor) > 0:
		fmt.Fprintf(stdout, "unregistered %s %s for %s; kept in the recipient directory for %s\n", rm.Kind, fp[:fingerprintShown], addr, strings.Join(rm.KeptFor, ", "))
	default:
		fmt.Fprintf(stdout, "removed %s %s of %s\n", rm.Kind, fp[:fingerprintShown], addr)
	}
	return nil
}

// keysImportIdentity installs one of the bank's own identities in the data directory after
// keys.CheckIdentity accepts it for its role.
func keysImportIdentity(args []string, _ io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("keys import-identity", stdout)
	data := dataDirFlag(fs)
	passFile := fs.String("pass-file", "", "file holding the PKCS#12 password")
	passEnv := fs.String("pass-env", "", "environment variable holding the PKCS#12 password")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return fmt.Errorf("%w: keys import-identity -data DIR signer|support|tsa FILE…", errUsage)
	}
	role, err := keys.ParseRole(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *data == "" {
		return fmt.Errorf("%w: -data DIR is required", errUsage)
	}
	id, err := readIdentity(fs.Args()[1:], keys.Secret{File: *passFile, Env: *passEnv})
	if err != nil {
		return err
	}
	// Installing the bank's identities is how a production data directory begins.
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return err
	}
	dir := keys.DataDir(*data)
	id, err = dir.ImportIdentity(role, id)
	if err != nil {
		return err
	}
	c := id.Certificate()
	fmt.Fprintf(stdout, "installed the %s identity: %s, issued by %s, %s, expires %s\n", role, printableLine(c.Subject.String()),
		printableLine(c.Issuer.String()), strings.Join(c.EmailAddresses, ", "), c.NotAfter.UTC().Format(time.DateOnly))
	if role == keys.RoleSupport {
		fmt.Fprintln(stdout, "give customers its certificate: sealpost keys export -data DIR support")
	}
	return nil
}

// readIdentity reads an identity from one PKCS#12 file, or from PEM files concatenated.
func readIdentity(files []string, pass keys.Secret) (*keys.Identity, error) {
	var pemData []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if !bytes.Contains(b, []byte("-----BEGIN ")) {
			if len(files) != 1 {
				return nil, fmt.Errorf("%s is not PEM: a PKCS#12 file must be given alone", f)
			}
			pw, err := pass.Read()
			if err != nil {
				return nil, fmt.Errorf("%s: PKCS#12 password (-pass-file or -pass-env): %w", f, err)
			}
			id, err := keys.ParsePKCS12(b, pw)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			return id, nil
		}
		pemData = append(append(pemData, b...), '\n')
	}
	id, err := keys.ParseIdentityPEM(pemData)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(files, ", "), err)
	}
	return id, nil
}

// keysCSR makes the key of one of the bank's identities (in the data directory, or in the HSM the
// configuration names for the role) and prints a certificate request for the bank's CA.
func keysCSR(args []string, _ io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("keys csr", stdout)
	configFile := fs.String("config", "", "configuration file: with hsm.ROLE set, the key is made in that HSM")
	data := fs.String("data", "", "data directory (overrides the configuration's data)")
	subject := fs.String("subject", "", "the certificate's subject, e.g. /CN=Example Bank statements/O=Example Bank AG/C=DE (required)")
	emails := fs.String("email", "", "comma-separated addresses the certificate names (signer: the senders; support: the support addresses)")
	keyType := fs.String("key-type", string(keys.KeyRSA2048), "rsa2048, rsa3072, p256 or p384 (support: RSA only)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: keys csr -data DIR signer|support|tsa -subject …", errUsage)
	}
	role, err := keys.ParseRole(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *subject == "" {
		return fmt.Errorf("%w: -subject is required", errUsage)
	}
	kt, err := keys.ParseKeyType(*keyType)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *configFile == "" && *data == "" {
		return fmt.Errorf("%w: -data DIR (or -config FILE) is required", errUsage)
	}
	cfg, err := loadConfig(*configFile, *data)
	if err != nil {
		return err
	}
	var csr []byte
	if h := cfg.HSM.hsmFor(role); h != nil {
		csr, err = keys.NewPKCS11CSR(*h, role, *subject, splitList(*emails), kt)
	} else {
		if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
			return err
		}
		csr, err = keys.DataDir(cfg.Data).NewCSR(role, *subject, splitList(*emails), kt)
	}
	if err != nil {
		return err
	}
	_, err = stdout.Write(csr)
	return err
}
