// Command sealpost is the bank's encrypted-mail gateway.
//
//	sealpost serve [-config FILE] [-data DIR]       run the gateway (embedded defaults without a file)
//	sealpost demo                                   the whole relay on throw-away keys, over SMTP
//	sealpost bench [-n N] [-c C] [-rate R]          messages/s and latency beside RSA signatures/s
//	sealpost keys init -data DIR                    create development identities (CA, signer, TSA)
//	sealpost keys import -data DIR [-root] FILE…    add recipients' certificates (or trusted roots)
//	sealpost keys export -data DIR ca|signer|tsa    print a certificate chain as PEM
//	sealpost keys list -data DIR                    list recipients and why any is unusable
//	sealpost protect -data DIR -from ADDR -to ADDR[,ADDR…] [-sign-only] < in.eml > out.eml
//	sealpost timestamp extract [-out DIR] FILE      token.der + sigvalue.bin for openssl ts -verify
//	sealpost verify [-data DIR] FILE.eml            inbound verdict: exit 0 verified, 1 not, 2 not processed
//	sealpost quarantine list|show ID|release ID     held inbound messages (-data DIR)
//	sealpost queue list|show ID|retry ID|delete ID|flush [-addr A] [-queue outbound|desk]
//
// Errors are one line on stderr and a non-zero exit status (1 for a failure, 2 for a usage error);
// nothing is written to stdout unless the whole command succeeded.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// errUsage marks errors whose remedy is reading the usage text; they exit with status 2.
var errUsage = errors.New("usage")

const usage = `usage: sealpost COMMAND [flags]

commands:
  serve      run the gateway (SMTP in, protect, queue, deliver); -config FILE, -data DIR, -print-config
  demo       run the gateway on throw-away keys, send three customers mail over SMTP, open what arrived
  bench      measure the relay on this machine: messages/s, latency, beside RSA-2048 signatures/s
  keys       init | import | export | list: the bank's identities and recipients' certificates
  protect    sign, timestamp and encrypt one message from stdin to stdout
  timestamp  extract FILE: write a signature's RFC 3161 token and signed value for openssl ts -verify
  verify     run the inbound pipeline on FILE.eml and print the verdict (exit 0 verified, 1 not, 2 error)
  quarantine list | show ID | release ID: held inbound messages
  queue      list | show ID | retry ID | delete ID | flush: a running gateway's queues (ops listener)

Run "sealpost COMMAND -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command; it is main without the process, so tests can call it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(args[1:], stdout, stderr)
	case "demo":
		err = cmdDemo(args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(args[1:], stdout, stderr)
	case "keys":
		err = cmdKeys(args[1:], stdout, stderr)
	case "protect":
		err = cmdProtect(args[1:], stdin, stdout, stderr)
	case "timestamp":
		err = cmdTimestamp(args[1:], stdout, stderr)
	case "verify":
		err = cmdVerify(args[1:], stdout, stderr)
	case "quarantine":
		err = cmdQuarantine(args[1:], stdout, stderr)
	case "queue":
		err = cmdQueue(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "sealpost: unknown command %q\n%s", args[0], usage)
		return 2
	}
	var ec *exitCode
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errNotVerified):
		return 1
	case errors.As(err, &ec):
		fmt.Fprintf(stderr, "sealpost %s: %s\n", args[0], oneLine(err.Error()))
		return ec.code
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "sealpost %s: %v\n", args[0], err)
		return 2
	}
	fmt.Fprintf(stderr, "sealpost %s: %s\n", args[0], oneLine(err.Error()))
	return 1
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// newFlags returns a FlagSet that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sealpost "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args and turns flag errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
