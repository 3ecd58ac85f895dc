package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
)

// command is one sealpost command or subcommand: what `sealpost help` says of it, and what runs it.
// The table below is both the dispatcher and the help, so no command can lack either.
type command struct {
	name     string // "keys import"
	synopsis string // what follows the name on the usage line
	summary  string // one line for the list of commands
	detail   string // arguments, choices and behaviour; may be empty
	// run executes the command with the arguments after its name; nil for a group of subcommands.
	run func(args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// commandTable lists every command and subcommand, in the order `sealpost help` shows them. It is a
// function, not a variable, because the commands themselves look up their help in it.
func commandTable() []command {
	return []command{
		{name: "serve", synopsis: "[-config FILE] [-data DIR] [-print-config | -check]",
			summary: "run the gateway (SMTP in, protect, queue, deliver; customers' replies to the desk)",
			detail: "Without -config it runs on the embedded defaults, on loopback, with development identities created in\n" +
				"DATA on first start. With -config FILE the bank's identities must be in place (keys import-identity),\n" +
				"unless the file says \"identities\": \"development\". -print-config prints the configuration that would run\n" +
				"(FILE with every default filled in) and exits; -check validates everything without changing anything\n" +
				"and exits 0, or 1 listing every problem.",
			run: func(a []string, _ io.Reader, o, e io.Writer) error { return cmdServe(a, o, e) }},
		{name: "demo", synopsis: "[-data DIR]",
			summary: "run the gateway on throw-away keys, send three customers mail over SMTP, open what arrived",
			detail: "With -data DIR (a new directory) the data directory and the customers' keys are kept there, and the\n" +
				"command that opens each delivered message is printed; without it everything is in a temporary\n" +
				"directory removed at exit.",
			run: func(a []string, _ io.Reader, o, e io.Writer) error { return cmdDemo(a, o, e) }},
		{name: "bench", synopsis: "[-n N] [-c C] [-size BYTES] [-rate R] [-process [-statements MB,…]] [-openssl] [-softhsm] [-evidence]",
			summary: "measure the relay on this machine: messages/s and latency beside RSA-2048 signatures/s",
			run:     func(a []string, _ io.Reader, o, e io.Writer) error { return cmdBench(a, o, e) }},
		{name: "keys", summary: "the bank's identities, customers' certificates and OpenPGP keys, trusted roots"},
		{name: "keys init", synopsis: "-data DIR [-senders A,B…] [-support A,B…]",
			summary: "create development identities: CA, signer, support (encryption), embedded TSA, OpenPGP key",
			detail:  "Development only: the CA is sealpost's own and no customer's client trusts it.",
			run:     keysInit},
		{name: "keys import", synopsis: "[-config FILE] [-data DIR] [-root] [-force] FILE…",
			summary: "add customers' certificates and OpenPGP keys (each registered for its addresses), or trusted roots",
			detail: "FILE: PEM or DER certificates, armored or binary OpenPGP keys. A certificate without an email\n" +
				"address, expired, with an RSA key below 2048 bits, or a CA certificate without -root is refused\n" +
				"unless -force. Nothing is imported if any file is refused.\n" +
				"With -config FILE the registrations are in the store it configures (store.postgres: shared by every\n" +
				"node, in effect on each without a restart) and DIR is its data directory; -data DIR is required without it.",
			run: keysImport},
		{name: "keys import-identity", synopsis: "-data DIR signer|support|tsa FILE… [-pass-file F | -pass-env VAR]",
			summary: "install one of the bank's own identities (PKCS#12, or PEM certificate, chain and key)",
			detail: "signer   signs outbound mail: digitalSignature, extendedKeyUsage emailProtection, the sender addresses\n" +
				"support  what customers encrypt replies to: keyEncipherment, emailProtection, the support addresses (RSA)\n" +
				"tsa      the embedded timestamp authority: extendedKeyUsage timeStamping only, marked critical\n" +
				"FILE: a PKCS#12 file (.p12/.pfx; password from -pass-file or -pass-env), or PEM files holding the\n" +
				"certificate, its CA chain and the private key, in any order. Without a key the certificate must be\n" +
				"the one issued for a request from sealpost keys csr ROLE. Refused, with every reason: a key that is\n" +
				"not the certificate's, RSA below 2048 bits (or not P-256/P-384), expired, a chain that does not\n" +
				"link, a key usage or extended key usage that does not fit the role.",
			run: keysImportIdentity},
		{name: "keys csr", synopsis: "[-config FILE] -data DIR signer|support|tsa -subject /CN=…/O=… [-email A,B…] [-key-type rsa2048|rsa3072|p256|p384]",
			summary: "make a key for one of the bank's identities and print a certificate request for the bank's CA",
			detail: "The key is kept in the data directory as ROLE.pending.key (0600) until sealpost keys import-identity\n" +
				"ROLE CERT installs the certificate the CA issued; with hsm.ROLE in the configuration the key is made\n" +
				"inside the HSM instead and never leaves it. The request (PEM) goes to stdout.",
			run: keysCSR},
		{name: "keys export", synopsis: "-data DIR ca|signer|support|tsa|customer-ca|pgp",
			summary: "print one of the bank's public identities",
			detail: "ca       the development CA certificate (what customers' clients must trust in development)\n" +
				"signer   the chain that signs outbound mail\n" +
				"support  the chain customers encrypt their replies to (keyEncipherment; give it to customers)\n" +
				"tsa      the embedded timestamp authority's chain\n" +
				"pgp      the bank's armored OpenPGP public key (signing, and encryption of replies)",
			run: keysExport},
		{name: "keys list", synopsis: "[-config FILE] [-data DIR]",
			summary: "every customer's certificate and OpenPGP key: kind, fingerprint, state, expiry; then the roots",
			detail: "With -config FILE the registrations are in the store it configures (store.postgres: shared by every\n" +
				"node, in effect on each without a restart) and DIR is its data directory; -data DIR is required without it.",
			run: keysList},
		{name: "keys remove", synopsis: "[-config FILE] [-data DIR] ADDRESS [FINGERPRINT]",
			summary: "unregister a customer's lost or replaced key (all of the address's keys, or the one named)",
			detail: "FINGERPRINT: as keys list shows it (16 or more leading hex digits). The key is also removed from\n" +
				"the recipient directory unless it names another address that keeps it registered.\n" +
				"With -config FILE the registrations are in the store it configures (store.postgres: shared by every\n" +
				"node, in effect on each without a restart) and DIR is its data directory; -data DIR is required without it.",
			run: keysRemove},
		{name: "ca", summary: "the bank's customer CA: S/MIME certificates for customers"},
		{name: "ca issue", synopsis: "[-config FILE] [-data DIR] ADDR -out DIR",
			summary: "issue ADDR a certificate with a new key (development without openssl): ADDR.p12, ADDR.pem, ADDR.key",
			detail: "The customer CA (customer-ca in DATA, or hsm.customer_ca) issues the certificate for ca.validity, with\n" +
				"ca.crl_url as its CRL; the PKCS#12 (AES-256) password is printed once and stored nowhere. The certificate\n" +
				"is registered for ADDR in the store, as keys import does.",
			run: caIssue},
		{name: "protect", synopsis: "-data DIR -from ADDR -to A[,B…] [-sign-only] [flags] < in.eml > out.eml",
			summary: "sign, timestamp and encrypt one message from stdin to stdout",
			run:     cmdProtect},
		{name: "timestamp", summary: "RFC 3161 tokens on signatures"},
		{name: "timestamp extract", synopsis: "[-out DIR] FILE",
			summary: "write a signature's RFC 3161 token (token.der) and the value it covers (sigvalue.bin)",
			detail:  "FILE: a signed S/MIME or PGP/MIME message, a .p7s, or OpenPGP data. Check with\nopenssl ts -verify -data sigvalue.bin -in token.der -token_in -CAfile ca.pem",
			run:     func(a []string, _ io.Reader, o, _ io.Writer) error { return cmdTimestampExtract(a, o) }},
		{name: "verify", synopsis: "[-config FILE] [-data DIR] [-at TIME] [-out FILE] FILE.eml|-",
			summary: "run the inbound pipeline on one message and print the verdict",
			detail:  "Exit status 0 verified, 1 not verified, 2 could not be processed. - reads the message from stdin.",
			run:     cmdVerify},
		{name: "quarantine", summary: "held customers' replies"},
		{name: "quarantine list", synopsis: "[-config FILE] [-data DIR] [-all]",
			summary: "the held messages (-all: released ones too)",
			run:     quarantineSub("list")},
		{name: "quarantine show", synopsis: "[-config FILE] [-data DIR] ID",
			summary: "one held message with its verdict computed again",
			run:     quarantineSub("show")},
		{name: "quarantine release", synopsis: "[-config FILE] [-data DIR] -reason TEXT [-by NAME] ID",
			summary: "hand a held message to the running gateway, which delivers it to the desk",
			detail:  "Who (-by, default cli:$USER) and why (-reason) are kept on the entry and recorded in the evidence log.",
			run:     quarantineSub("release")},
		{name: "quarantine delete", synopsis: "[-config FILE] [-data DIR] -reason TEXT [-by NAME] ID",
			summary: "remove a held message's bytes, keeping who deleted it, why and when",
			detail:  "Who (-by, default cli:$USER) and why (-reason) are kept on the entry and recorded in the evidence log.",
			run:     quarantineSub("delete")},
		{name: "evidence", summary: "the tamper-evident log of what was sent, to whom and when"},
		{name: "evidence verify", synopsis: "[-config FILE] [-data DIR] [-node NAME]",
			summary: "check the whole log: every record's place in the chain, every checkpoint's signature and timestamp",
			detail: "Exit status 1 names the first record that is not as appended (edited, removed, moved, truncated).\n" +
				"Checkpoints are checked against the data directory's roots and the chains of the bank's signer and TSA.",
			run: cmdEvidenceVerify},
		{name: "evidence show", synopsis: "[-config FILE] [-data DIR] [-node NAME] QUEUE-ID|SEQ",
			summary: "the records of one queued message (its copy, then each delivery outcome), or one record",
			run:     cmdEvidenceShow},
		{name: "evidence find", synopsis: "[-config FILE] [-data DIR] [-node NAME] -to ADDR|-subject ID [-since DATE]",
			summary: "the records about one customer (what was sent and what the next hop answered) or one message or held id (who released or deleted it, why)",
			run:     cmdEvidenceFind},
		{name: "evidence prove", synopsis: "[-config FILE] [-data DIR] [-node NAME] [-out DIR] FILE.eml|-",
			summary: "find a message's record from its bytes (as the customer received it) and prove it is in the log",
			detail: "The record is found by the SHA-256 of the bytes sent (trace fields the customer's servers added above\n" +
				"them, and LF line ends, are allowed for). The proof is to the newest checkpoint covering it; with -out\n" +
				"the bundle evidence export writes goes there too.",
			run: cmdEvidenceProve},
		{name: "evidence export", synopsis: "[-config FILE] [-data DIR] [-node NAME] QUEUE-ID|SEQ -out DIR [-message FILE.eml]",
			summary: "write a bundle a third party verifies with openssl and sha256sum alone (sh verify.sh)",
			detail: "The bundle: the record, the inclusion proof, the checkpoint with its signature and RFC 3161 token, the\n" +
				"bank's and the TSA's certificates, the message when -message gives it, verify.sh and a README.",
			run: cmdEvidenceExport},
		{name: "evidence renew", synopsis: "[-config FILE] [-data DIR] [-node NAME] [-by NAME] [-reason TEXT] [-wait DURATION]",
			summary: "have the running gateway timestamp its chain's newest checkpoint again, with the TSA of the day",
			detail: "Run it before a TSA certificate or algorithm ages out (evidence verify counts the checkpoints whose TSA\n" +
				"certificate has expired and that no renewal covers). The renewal's token is over the checkpoint, its\n" +
				"signature and the token before (RFC 4998's idea); the request and the renewal are recorded in the log.\n" +
				"With PostgreSQL, -node names another node's chain; its gateway renews it. Waits -wait (30s) to see it.",
			run: cmdEvidenceRenew},
		{name: "store", summary: "the shared store (the embedded SQLite, or PostgreSQL shared by several nodes)"},
		{name: "store migrate", synopsis: "[-config FILE] [-data DIR]",
			summary: "bring the store's schema up to date and print its version",
			detail: "serve migrates at start too (on PostgreSQL under an advisory lock, so nodes starting together do not\n" +
				"race); this is for doing it ahead of an upgrade. Running it again changes nothing. A database whose\n" +
				"schema is newer than this sealpost is left alone: exit 1.",
			run: cmdStoreMigrate},
		{name: "store export", synopsis: "[-config FILE] [-data DIR] > FILE",
			summary: "write every row of the store (registrations, threads, quarantine index, capabilities) to stdout",
			detail: "The format is JSON lines, versioned ({\"sealpost-store-export\":1} first), strings from mail in base64.\n" +
				"With a node's SQLite (no store.postgres) and then store import on a configuration with store.postgres,\n" +
				"it moves one node's state into the PostgreSQL that several nodes share. Held messages' bytes stay\n" +
				"where the quarantine keeps them.",
			run: cmdStoreExport},
		{name: "store import", synopsis: "[-config FILE] [-data DIR] FILE|-",
			summary: "add the rows of a store export to the store (one transaction; rows already stored are kept)",
			detail: "Running it again adds nothing. A file that is not a whole, valid export (another version, truncated,\n" +
				"malformed rows) is refused with the line at fault, and nothing is imported: exit 1.",
			run: cmdStoreImport},
		{name: "queue", summary: "a running gateway's queues, through its ops listener (with the ops token)"},
		{name: "queue list", synopsis: "[-addr HOST:PORT] [-queue outbound|desk] [-config FILE] [-data DIR | -token-file FILE] [-corrupt]",
			summary: "the entries of a queue (-corrupt: what it set aside because it failed its checks)",
			detail:  queueDetail, run: queueSub("list")},
		{name: "queue show", synopsis: "[-addr HOST:PORT] [-queue outbound|desk] [-config FILE] [-data DIR | -token-file FILE] ID",
			summary: "one entry", detail: queueDetail, run: queueSub("show")},
		{name: "queue retry", synopsis: "[-addr HOST:PORT] [-queue outbound|desk] [-config FILE] [-data DIR | -token-file FILE] ID",
			summary: "make an entry due now", detail: queueDetail, run: queueSub("retry")},
		{name: "queue delete", synopsis: "[-addr HOST:PORT] [-queue outbound|desk] [-config FILE] [-data DIR | -token-file FILE] ID",
			summary: "delete an entry without a bounce", detail: queueDetail, run: queueSub("delete")},
		{name: "queue flush", synopsis: "[-addr HOST:PORT] [-queue outbound|desk] [-config FILE] [-data DIR | -token-file FILE]",
			summary: "make every entry due now", detail: queueDetail, run: queueSub("flush")},
		{name: "api", summary: "the bank's HTTPS JSON API (online banking's key registration): its tokens"},
		{name: "api token", synopsis: "create -name NAME -scopes S1,S2 [-expires 720h] | list | revoke ID  [-config FILE] [-data DIR]",
			summary: "make, list or revoke the API tokens the bank's systems call the API with",
			detail: "create prints the new token's secret (spk_…) on stdout, once: sealpost keeps only its SHA-256. Scopes:\n" +
				"customers (customers' keys), mailbox, otp, admin; each call needs its own (admin does not stand in for\n" +
				"the others). list shows ID, name, scopes, created, expires and revoked, never a secret. revoke ID refuses\n" +
				"the token from the next call on, on every node. create and revoke are written to the audit log.\n" +
				"The tokens are in the store -config names (store.postgres: shared by every node); -data DIR without it.",
			run: apiToken},
		{name: "console", summary: "the web console for the support desk and the operators: its accounts"},
		{name: "console user", synopsis: "add -role agent|operator|admin NAME | reset NAME | disable NAME | list  [-config FILE] [-data DIR]",
			summary: "add, reset, disable or list the console's local accounts",
			detail: "add and reset print a new password and TOTP secret (with its otpauth:// URL) on stdout, once: sealpost\n" +
				"keeps the password's argon2id hash and the secret sealed with DATA/console.key. reset also enables a\n" +
				"disabled or locked account and ends its sessions; disable ends them too. Each is written to the audit log.\n" +
				"Roles: agent (quarantine: read, release, delete with a reason), operator (also operations), admin (also accounts).",
			run: cmdConsoleUser},
		{name: "version", summary: "sealpost's version, VCS revision and Go version",
			run: func(a []string, _ io.Reader, o, e io.Writer) error { return cmdVersion(a, o) }},
		{name: "help", synopsis: "[COMMAND [SUBCOMMAND]]", summary: "this text, or a command's"},
	}
}

// queueDetail is the help every queue subcommand shares: where the ops token comes from.
const queueDetail = "Every request carries the ops token, which sealpost serve makes at its first start as DATA/ops.token " +
	"(0600: run as the service user). The address and DATA come from -config (ops.addr, data), else the defaults; " +
	"-data and -addr override them, and -token-file reads the token from elsewhere."

func quarantineSub(sub string) func([]string, io.Reader, io.Writer, io.Writer) error {
	return func(a []string, _ io.Reader, o, e io.Writer) error {
		return cmdQuarantine(append([]string{sub}, a...), o, e)
	}
}

func queueSub(sub string) func([]string, io.Reader, io.Writer, io.Writer) error {
	return func(a []string, _ io.Reader, o, e io.Writer) error {
		return cmdQueue(append([]string{sub}, a...), o, e)
	}
}

// lookup finds the command that args name (the longest match: "keys import" before "keys") and
// returns it with the arguments after its name.
func lookup(args []string) (*command, []string, bool) {
	if len(args) >= 2 {
		if c := find(args[0] + " " + args[1]); c != nil {
			return c, args[2:], true
		}
	}
	if len(args) >= 1 {
		if c := find(args[0]); c != nil {
			return c, args[1:], true
		}
	}
	return nil, nil, false
}

func find(name string) *command {
	for _, c := range commandTable() {
		if c.name == name {
			return &c
		}
	}
	return nil
}

// subcommands returns the subcommands of a group ("keys" → "keys init", …).
func subcommands(group string) []*command {
	var out []*command
	for _, c := range commandTable() {
		if strings.HasPrefix(c.name, group+" ") {
			out = append(out, &c)
		}
	}
	return out
}

// isHelp says whether a word asks for help.
func isHelp(s string) bool { return s == "-h" || s == "-help" || s == "--help" || s == "help" }

// topUsage writes the list of commands.
func topUsage(w io.Writer) {
	fmt.Fprint(w, "usage: sealpost COMMAND [flags] [arguments]\n\ncommands:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commandTable() {
		if !strings.Contains(c.name, " ") {
			fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
		}
	}
	tw.Flush()
	fmt.Fprint(w, "\nRun \"sealpost help COMMAND\" or \"sealpost COMMAND -h\" for a command's arguments and flags.\n"+
		"Flags may come before or after arguments. Exit status: 0 success, 1 failure (one line on stderr),\n2 usage error.\n")
}

// writeHelp writes a command's help: its usage line, what it does, its subcommands or its flags.
func writeHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	if subs := subcommands(c.name); len(subs) > 0 {
		fmt.Fprintf(w, "usage: sealpost %s SUBCOMMAND [flags] [arguments]\n\n%s\n\nsubcommands:\n", c.name, c.summary)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, s := range subs {
			fmt.Fprintf(tw, "  %s %s\t%s\n", strings.TrimPrefix(s.name, c.name+" "), s.synopsis, s.summary)
		}
		tw.Flush()
		fmt.Fprintf(w, "\nRun \"sealpost help %s SUBCOMMAND\" for its flags.\n", c.name)
		return
	}
	fmt.Fprintf(w, "usage: sealpost %s %s\n\n%s\n", c.name, c.synopsis, c.summary)
	if c.detail != "" {
		fmt.Fprintf(w, "\n%s\n", c.detail)
	}
	if fs != nil && hasFlags(fs) {
		fmt.Fprint(w, "\nflags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// cmdHelp: sealpost help [COMMAND [SUBCOMMAND]]. A command's flags are listed by asking the command
// itself for -h, so the help cannot drift from the flags it parses.
func cmdHelp(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		topUsage(stdout)
		return 0
	}
	c, rest, ok := lookup(args)
	if !ok || len(rest) > 0 {
		fmt.Fprintf(stderr, "sealpost help: no command %q\n", strings.Join(args, " "))
		return 2
	}
	if c.run == nil || c.name == "help" {
		writeHelp(stdout, c, nil)
		return 0
	}
	return run(append(strings.Fields(c.name), "-h"), stdin, stdout, stderr)
}

// newFlags returns the flag set of a command. Errors and help are written by parse and run, never
// by the flag package itself: help goes to stdout, an error is one line on stderr.
func newFlags(name string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sealpost "+name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {}
	return fs
}

// parse parses flags anywhere among args ("show ID -data DIR" as well as "show -data DIR ID"; after
// "--" everything is an argument) and leaves the other arguments in fs.Args(). -h writes the
// command's help to the flag set's output and returns flag.ErrHelp; a flag error is a usage error.
func parse(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	defer fs.SetOutput(out)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				if c := find(strings.TrimPrefix(fs.Name(), "sealpost ")); c != nil {
					writeHelp(out, c, fs)
				}
				return err
			}
			return fmt.Errorf("%w: %v (see sealpost help %s)", errUsage, err, strings.TrimPrefix(fs.Name(), "sealpost "))
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	// Parsing "--" alone sets fs.Args() to the arguments without touching the flags already set.
	return fs.Parse(append([]string{"--"}, pos...))
}

// cmdVersion prints the module version, the VCS revision it was built from, and the Go version.
func cmdVersion(args []string, stdout io.Writer) error {
	fs := newFlags("version", stdout)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: version takes no arguments", errUsage)
	}
	fmt.Fprint(stdout, versionText())
	return nil
}

// versionText describes the running binary from its build information.
func versionText() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "sealpost (no build information)\n"
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	rev, at, modified := "unknown", "", ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	return fmt.Sprintf("sealpost %s\nrevision %s%s%s\n%s %s/%s\n", version, rev, at, modified, bi.GoVersion, runtime.GOOS, runtime.GOARCH)
}
