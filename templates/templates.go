// Package templates renders the messages sealpost writes itself — a one-time passcode, a call
// verification, the notice a keyless customer gets that a message waits in online banking, and the
// notice that a new statement is there — as text and HTML, per locale, into multipart/alternative.
//
// Invariants, checked on every render and, with sample data, on every template when a Set is loaded:
//   - nothing but the message's own data reaches a template, and no data value holds a control
//     character (so no value can start a header field or a MIME part);
//   - a Subject never holds a code or an amount: a Subject is what lock screens and mailbox lists show;
//   - an OTP's text part ends with the origin-bound line of the WICG one-time-code format
//     ("@bank.example #123456"), and a payment code's message shows the amount and the payee;
//   - HTML goes through html/template (escaped) and carries no link: addresses are shown to be typed,
//     so our mail teaches customers not to follow links in mail.
//
// The embedded templates are the default (Default, or Load("")); a bank overrides any of them with
// files DATA/templates/<name>.<locale>.txt (defining "subject" and "text") or .html (defining
// "html"). Load fails on a file it does not know, on a template that does not parse or does not
// render, and on one that breaks an invariant, naming the file (*FileError).
package templates

import (
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"
)

//go:embed messages/*.txt messages/*.html
var embedded embed.FS

// Name names a message a template writes.
type Name string

// The messages sealpost writes.
const (
	OTP              Name = "otp"               // a one-time passcode
	CallVerification Name = "call-verification" // the two codes of a phone call
	KeylessNotice    Name = "notice"            // a message waits in online banking
	StatementNotice  Name = "statement"         // a new statement is in online banking
)

// Names returns every message a Set holds templates for.
func Names() []Name { return []Name{OTP, CallVerification, KeylessNotice, StatementNotice} }

// Locales are the locales messages are written in; the first is the default and the fallback.
func Locales() []string { return []string{"en", "de"} }

// ErrLocale: no message is written in the locale asked for.
var ErrLocale = errors.New("templates: no template in this locale")

// ErrData: a data value cannot go into a message (a control character, invalid UTF-8, too long, or
// a field the message needs is missing or malformed).
var ErrData = errors.New("templates: data a message cannot carry")

// ErrTemplate: a template renders a message that breaks one of the package's invariants.
var ErrTemplate = errors.New("templates: template breaks a rule")

// FileError is a template file that cannot be used: unknown, unparsable, or failing its sample render.
type FileError struct {
	File string // the file's path (embedded ones under "messages/")
	Err  error
}

func (e *FileError) Error() string { return "templates: " + e.File + ": " + e.Err.Error() }

// Unwrap returns the problem.
func (e *FileError) Unwrap() error { return e.Err }

// Fallback returns the written locale for a customer's preference: itself, its language
// ("de-AT" → "de"), or else the default. Render itself refuses an unknown locale, so that a
// misconfigured one is an error rather than a silent English message.
func Fallback(preferred string) string {
	lang, _, _ := strings.Cut(strings.ToLower(preferred), "-")
	lang, _, _ = strings.Cut(lang, "_")
	if slices.Contains(Locales(), lang) {
		return lang
	}
	return Locales()[0]
}

// Set is a parsed, checked template for every message and locale.
type Set struct {
	text map[key]*texttemplate.Template
	html map[key]*htmltemplate.Template
	file map[key][2]string // the text and HTML file each template came from, for errors
}

type key struct {
	name   Name
	locale string
}

// funcs are what templates may call besides the builtins.
var funcs = map[string]any{
	"minutes": func(d time.Duration) int { return int((d + time.Minute - 1) / time.Minute) },
	"utc":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
}

var defaultSet = sync.OnceValues(func() (*Set, error) { return load(nil) })

// Default returns the embedded templates. They are checked by this package's tests, so an error here
// is a build defect: Default panics on it.
func Default() *Set {
	s, err := defaultSet()
	if err != nil {
		panic(err)
	}
	return s
}

// Load returns the embedded templates with the overrides in dir (none when dir is ""), every one
// parsed and rendered once with sample data in every locale.
func Load(dir string) (*Set, error) {
	if dir == "" {
		return defaultSet()
	}
	overrides, err := readOverrides(dir)
	if err != nil {
		return nil, err
	}
	return load(overrides)
}

// readOverrides reads dir's files, keyed by base name; a file that overrides nothing is an error.
func readOverrides(dir string) (map[string]source, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	out := map[string]source{}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if _, err := fs.Stat(embedded, "messages/"+e.Name()); err != nil || e.IsDir() {
			return nil, &FileError{File: path, Err: fmt.Errorf("not a template sealpost knows: want <name>.<locale>.txt or .html, name one of %s, locale one of %s",
				strings.Join(nameStrings(), ", "), strings.Join(Locales(), ", "))}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		out[e.Name()] = source{path: path, text: string(b)}
	}
	return out, nil
}

func nameStrings() []string {
	var out []string
	for _, n := range Names() {
		out = append(out, string(n))
	}
	return out
}

type source struct{ path, text string }

// load parses every template, the embedded one unless overridden, and renders each with samples.
func load(overrides map[string]source) (*Set, error) {
	s := &Set{text: map[key]*texttemplate.Template{}, html: map[key]*htmltemplate.Template{}, file: map[key][2]string{}}
	for _, name := range Names() {
		for _, loc := range Locales() {
			k := key{name, loc}
			base := string(name) + "." + loc
			txt, err := templateSource(base+".txt", overrides)
			if err != nil {
				return nil, err
			}
			htm, err := templateSource(base+".html", overrides)
			if err != nil {
				return nil, err
			}
			s.file[k] = [2]string{txt.path, htm.path}
			if s.text[k], err = parseText(txt); err != nil {
				return nil, err
			}
			if s.html[k], err = parseHTML(htm); err != nil {
				return nil, err
			}
			for _, m := range samples(name, loc) {
				if _, err := s.Render(m); err != nil {
					return nil, fmt.Errorf("sample render: %w", err)
				}
			}
		}
	}
	return s, nil
}

func templateSource(file string, overrides map[string]source) (source, error) {
	if o, ok := overrides[file]; ok {
		return o, nil
	}
	b, err := embedded.ReadFile("messages/" + file)
	if err != nil {
		return source{}, &FileError{File: "messages/" + file, Err: err}
	}
	return source{path: "messages/" + file, text: string(b)}, nil
}

func parseText(src source) (*texttemplate.Template, error) {
	t, err := texttemplate.New(filepath.Base(src.path)).Funcs(funcs).Option("missingkey=error").Parse(src.text)
	if err != nil {
		return nil, &FileError{File: src.path, Err: err}
	}
	for _, d := range []string{"subject", "text"} {
		if t.Lookup(d) == nil {
			return nil, &FileError{File: src.path, Err: fmt.Errorf("no {{define %q}}", d)}
		}
	}
	return t, nil
}

func parseHTML(src source) (*htmltemplate.Template, error) {
	t, err := htmltemplate.New(filepath.Base(src.path)).Funcs(funcs).Option("missingkey=error").Parse(src.text)
	if err != nil {
		return nil, &FileError{File: src.path, Err: err}
	}
	if t.Lookup("html") == nil {
		return nil, &FileError{File: src.path, Err: errors.New(`no {{define "html"}}`)}
	}
	return t, nil
}
