// Command gen (re)creates sealpost's inbound corpus: the customer replies in
// testdata/inbound/good and testdata/inbound/hostile, each opening with a
// Corpus-Expect header that says what the gateway must decide.
//
// Run it from the repository root:
//
//	go run ./testdata/inbound/gen         # new messages from the committed keys
//	go run ./testdata/inbound/gen -keys   # new keys too (changes every expectation's inputs; normally never)
//	go run ./testdata/inbound/gen -only 'hostile/display-name-*'   # only these files; the rest stay
//
// Messages are made by the tools a customer's client would use (openssl cms,
// openssl smime, gpg); Go only crafts what those tools refuse to produce
// (EFAIL-style modified CBC ciphertext, an OpenPGP message without MDC). After
// writing a message the generator checks its claim with the same tools (for
// example that untrusted-root.eml fails openssl cms -verify against ca.pem) and
// stops on the first claim that does not hold.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	dir := flag.String("dir", filepath.Join("testdata", "inbound"), "corpus directory (holds keys/, good/, hostile/)")
	newKeys := flag.Bool("keys", false, "also regenerate the keys in keys/ (normally never)")
	only := flag.String("only", "", "write only the messages whose path (e.g. hostile/x.eml) matches this pattern, and remove no other")
	flag.Parse()
	if _, err := filepath.Match(*only, ""); err != nil {
		fmt.Fprintln(os.Stderr, "gen: -only:", err)
		os.Exit(2)
	}
	if *newKeys && *only != "" {
		fmt.Fprintln(os.Stderr, "gen: new keys change every message: -keys and -only do not go together")
		os.Exit(2)
	}
	if err := run(*dir, *newKeys, *only); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// genError carries a failure out of the helpers, which panic with it so that
// the corpus table reads as a list of recipes rather than of error checks.
type genError struct{ err error }

func failf(format string, args ...any) {
	panic(genError{fmt.Errorf(format, args...)})
}

func run(dir string, newKeys bool, only string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			ge, ok := r.(genError)
			if !ok {
				panic(r)
			}
			err = ge.err
		}
	}()
	if _, statErr := os.Stat(dir); statErr != nil {
		return fmt.Errorf("corpus directory %s: %w (run from the repository root)", dir, statErr)
	}
	tmp, err := os.MkdirTemp("", "sealpost-corpus-")
	if err != nil {
		return err
	}
	g := &generator{dir: dir, tmp: tmp}
	defer g.cleanup()
	if newKeys {
		g.makeKeys()
	}
	for _, name := range keyFiles {
		if _, statErr := os.Stat(g.key(name)); statErr != nil {
			return fmt.Errorf("key %s: %w (run with -keys once to create the keys)", name, errors.Unwrap(statErr))
		}
	}
	if only == "" {
		for _, sub := range []string{"good", "hostile"} {
			old, _ := filepath.Glob(filepath.Join(dir, sub, "*.eml"))
			for _, f := range old {
				if err := os.Remove(f); err != nil {
					return err
				}
			}
		}
	}
	n := 0
	for _, m := range g.corpus() {
		if ok, _ := filepath.Match(only, m.path); only == "" || ok || strings.TrimSuffix(m.path, ".eml") == only {
			g.write(m)
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("no message matches %q", only)
	}
	return nil
}
