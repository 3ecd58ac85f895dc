package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
)

// errUsage marks errors whose remedy is reading the usage text; they exit with status 2.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command; it is main without the process, so tests can call it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		topUsage(stderr)
		return 2
	}
	if isHelp(args[0]) {
		return cmdHelp(args[1:], stdin, stdout, stderr)
	}
	c, rest, ok := lookup(args)
	if !ok {
		fmt.Fprintf(stderr, "sealpost: unknown command %s (see sealpost help)\n", quoteInput(args[0]))
		return 2
	}
	if c.run == nil {
		// A group: "keys -h" is its help; "keys" alone or "keys nonsense" is a usage error.
		if len(rest) > 0 && isHelp(rest[0]) {
			writeHelp(stdout, c, nil)
			return 0
		}
		what := "needs a subcommand"
		if len(rest) > 0 {
			what = "has no subcommand " + quoteInput(rest[0])
		}
		fmt.Fprintf(stderr, "sealpost %s: %s (see sealpost help %s)\n", c.name, what, c.name)
		return 2
	}
	err := c.run(rest, stdin, stdout, stderr)
	var ec *exitCode
	code := 1
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errNotVerified):
		return 1
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ec):
		code = ec.code
	case errors.Is(err, errUsage):
		code = 2
	}
	// Several problems (a configuration's, say) are one line each, so an operator can fix them all.
	for _, p := range problems(err) {
		fmt.Fprintf(stderr, "sealpost %s: %s\n", c.name, oneLine(p.Error()))
	}
	return code
}

// problems flattens errors.Join trees at the top of err into their parts.
func problems(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		if e != nil {
			out = append(out, problems(e)...)
		}
	}
	return out
}

// maxErrorLine bounds an error line: an error that quotes input by mistake must not flood the
// terminal with it.
const maxErrorLine = 400

// oneLine makes an error message one line of printable characters, at most maxErrorLine long; the
// parts of an error joined by errors.Join are separated by "; ".
func oneLine(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
	s = strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || (!unicode.IsPrint(r) && !unicode.IsSpace(r)) {
			return '?'
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxErrorLine {
		s = string(r[:maxErrorLine]) + "…"
	}
	return s
}

// maxQuoted is how much of an input an error message may quote.
const maxQuoted = 40

// quoteInput quotes a short, printable excerpt of untrusted input for an error message.
func quoteInput(s string) string {
	r := []rune(s)
	cut := len(r) > maxQuoted
	if cut {
		r = r[:maxQuoted]
	}
	for i, c := range r {
		if c == unicode.ReplacementChar || !unicode.IsPrint(c) {
			r[i] = '?'
		}
	}
	if cut {
		return fmt.Sprintf("%q…", string(r))
	}
	return fmt.Sprintf("%q", string(r))
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
