// Command gen (re)creates sealpost's inbound corpus: the customer replies in
// testdata/inbound/good and testdata/inbound/hostile, each opening with a
// Corpus-Expect header that says what the gateway must decide.
//
// Run it from the repository root:
//
//	go run ./testdata/inbound/gen         # new messages from the committed keys
//	go run ./testdata/inbound/gen -keys   # new keys too (changes every expectation's inputs; normally never)
//	go run ./testdata/inbound/gen -only 'good/smime-keyid.eml,hostile/smime-*'   # only these files
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
	"path"
	"path/filepath"
	"strings"
)

func main() {
	dir := flag.String("dir", filepath.Join("testdata", "inbound"), "corpus directory (holds keys/, good/, hostile/)")
	newKeys := flag.Bool("keys", false, "also regenerate the keys in keys/ (normally never)")
	only := flag.String("only", "", "comma-separated patterns (path.Match, e.g. hostile/smime-*.eml): write only the files they match and leave the others as they are")
	flag.Parse()
	var patterns []string
	if *only != "" {
		patterns = strings.Split(*only, ",")
	}
	if err := run(*dir, *newKeys, patterns); err != nil {
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

func run(dir string, newKeys bool, only []string) (err error) {
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
	if len(only) > 0 {
		return g.writeOnly(only)
	}
	for _, sub := range []string{"good", "hostile"} {
		old, _ := filepath.Glob(filepath.Join(dir, sub, "*.eml"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	for _, m := range g.corpus() {
		g.write(m)
	}
	return nil
}

// writeOnly (re)writes the messages whose path matches one of patterns, so that adding a file
// does not rewrite every other one (the output is not deterministic). A pattern matching nothing
// is an error.
func (g *generator) writeOnly(patterns []string) error {
	used := make([]bool, len(patterns))
	for _, m := range g.corpus() {
		match := false
		for i, p := range patterns {
			if ok, err := path.Match(strings.TrimSpace(p), m.path); err != nil {
				return fmt.Errorf("-only %q: %w", p, err)
			} else if ok {
				match, used[i] = true, true
			}
		}
		if match {
			g.write(m)
		}
	}
	for i, u := range used {
		if !u {
			return fmt.Errorf("-only %q matches no corpus file", patterns[i])
		}
	}
	return nil
}
