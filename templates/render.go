package templates

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"strings"
	"unicode/utf8"
)

// Message is the data of one message: OTPMessage, CallVerificationMessage, Notice or StatementMessage.
type Message interface {
	// template names the message and the locale asked for.
	template() (Name, string)
	// values returns every string that reaches a template.
	values() []string
	// check refuses data the message cannot be written with (beyond what every value must be).
	check() error
	// rules returns what the rendered message must and must not say.
	rules() rules
}

// rules are what a rendered message is checked against, after every render.
type rules struct {
	secrets  []string // never in the Subject
	shown    []string // in the text and in the HTML
	lastLine string   // the text's last line, when not ""
}

// maxValue bounds a data value, so that a Subject stays within a header line once encoded.
const maxValue = 200

// Rendered is a message in words.
type Rendered struct {
	Subject, Text, HTML string
}

// Render writes m in its locale with the templates of s.
func (s *Set) Render(m Message) (Rendered, error) {
	name, loc := m.template()
	if loc == "" {
		loc = Locales()[0]
	}
	k := key{name, loc}
	text, html := s.text[k], s.html[k]
	if text == nil || html == nil {
		return Rendered{}, fmt.Errorf("%w: %q", ErrLocale, loc)
	}
	if err := checkValues(m.values()); err != nil {
		return Rendered{}, err
	}
	if err := m.check(); err != nil {
		return Rendered{}, err
	}
	var r Rendered
	var b bytes.Buffer
	for _, part := range []struct {
		name string
		out  *string
		exec func(*bytes.Buffer, string) error
		file string
	}{
		{"subject", &r.Subject, func(b *bytes.Buffer, d string) error { return text.ExecuteTemplate(b, d, m) }, s.file[k][0]},
		{"text", &r.Text, func(b *bytes.Buffer, d string) error { return text.ExecuteTemplate(b, d, m) }, s.file[k][0]},
		{"html", &r.HTML, func(b *bytes.Buffer, d string) error { return html.ExecuteTemplate(b, d, m) }, s.file[k][1]},
	} {
		b.Reset()
		if err := part.exec(&b, part.name); err != nil {
			return Rendered{}, &FileError{File: part.file, Err: err}
		}
		*part.out = b.String()
	}
	rl := m.rules()
	if err := rl.checkText(r.Subject, r.Text); err != nil {
		return Rendered{}, &FileError{File: s.file[k][0], Err: err}
	}
	if err := rl.checkHTML(r.HTML); err != nil {
		return Rendered{}, &FileError{File: s.file[k][1], Err: err}
	}
	return r, nil
}

// checkValues refuses what could end a header line or a MIME part, or overflow a header line.
func checkValues(vs []string) error {
	for _, v := range vs {
		if !utf8.ValidString(v) || len(v) > maxValue || strings.ContainsFunc(v, isControl) {
			return fmt.Errorf("%w: %q: values are single lines of UTF-8 without control characters, at most %d bytes", ErrData, v, maxValue)
		}
	}
	return nil
}

func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029'
}

func (rl rules) checkText(subject, text string) error {
	if subject == "" || strings.ContainsFunc(subject, isControl) {
		return fmt.Errorf("%w: the subject is empty or not one line", ErrTemplate)
	}
	for _, s := range rl.secrets {
		if s != "" && strings.Contains(subject, s) {
			return fmt.Errorf("%w: the subject holds a code or an amount", ErrTemplate)
		}
	}
	for _, s := range rl.shown {
		if !strings.Contains(text, s) {
			return fmt.Errorf("%w: the text does not show %q", ErrTemplate, s)
		}
	}
	if rl.lastLine != "" {
		body := strings.TrimRight(text, " \t\r\n")
		if i := strings.LastIndexByte(body, '\n'); body[i+1:] != rl.lastLine {
			return fmt.Errorf("%w: the text's last line is not the origin-bound code line %q", ErrTemplate, rl.lastLine)
		}
	}
	return nil
}

func (rl rules) checkHTML(html string) error {
	lower := strings.ToLower(html)
	if strings.Contains(lower, "<a ") || strings.Contains(lower, "href") {
		return fmt.Errorf("%w: the HTML carries a link", ErrTemplate)
	}
	for _, s := range rl.shown {
		// html/template escapes '+' too, where HTMLEscapeString does not.
		if !strings.Contains(html, strings.ReplaceAll(htmltemplate.HTMLEscapeString(s), "+", "&#43;")) {
			return fmt.Errorf("%w: the HTML does not show %q", ErrTemplate, s)
		}
	}
	return nil
}
