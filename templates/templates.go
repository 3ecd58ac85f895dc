// Package templates renders the messages sealpost writes itself: the notice a keyless customer gets
// that a message waits in online banking (and, later, one-time passcodes and call verification),
// as text and HTML, per locale.
//
// A notice carries nothing of the message it announces: its data is the bank's name, the online
// banking address and the customer's own address, and nothing else reaches a template. Text goes
// through text/template, HTML through html/template (escaped); the address of online banking is
// shown to be typed, never as a link, so a notice teaches the customer not to follow links in mail.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	stdmime "mime"
	"mime/quotedprintable"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode/utf8"

	"github.com/sealpost/sealpost/mime"
)

//go:embed notice/*.txt notice/*.html
var files embed.FS

// Locales are the locales notices are written in; the first is the default.
func Locales() []string { return []string{"en", "de"} }

// ErrLocale: no notice is written in the locale asked for.
var ErrLocale = errors.New("templates: no notice in this locale")

// Notice is what a notice says: only the bank, where online banking is, and whom it is for.
type Notice struct {
	Bank   string // the bank's name, as customers know it
	URL    string // online banking, for the customer to type
	To     string // the customer's address
	Locale string // one of Locales; empty: the default
}

// Rendered is a notice in words.
type Rendered struct {
	Subject, Text, HTML string
}

// Render writes n in its locale.
func (n Notice) Render() (Rendered, error) {
	loc := n.Locale
	if loc == "" {
		loc = Locales()[0]
	}
	text, err := texttemplate.ParseFS(files, "notice/"+loc+".txt")
	if err != nil {
		return Rendered{}, fmt.Errorf("%w: %q", ErrLocale, loc)
	}
	html, err := htmltemplate.ParseFS(files, "notice/"+loc+".html")
	if err != nil {
		return Rendered{}, fmt.Errorf("%w: %q", ErrLocale, loc)
	}
	for _, v := range []string{n.Bank, n.URL, n.To} {
		if !utf8.ValidString(v) || strings.ContainsAny(v, "\r\n") {
			return Rendered{}, errors.New("templates: a notice's bank, URL and address are single lines of UTF-8")
		}
	}
	var r Rendered
	var b bytes.Buffer
	for _, part := range []struct {
		name string
		out  *string
		exec func(*bytes.Buffer, string) error
	}{
		{"subject", &r.Subject, func(b *bytes.Buffer, name string) error { return text.ExecuteTemplate(b, name, n) }},
		{"text", &r.Text, func(b *bytes.Buffer, name string) error { return text.ExecuteTemplate(b, name, n) }},
		{"html", &r.HTML, func(b *bytes.Buffer, name string) error { return html.ExecuteTemplate(b, name, n) }},
	} {
		b.Reset()
		if err := part.exec(&b, part.name); err != nil {
			return Rendered{}, fmt.Errorf("templates: notice %s (%s): %w", part.name, loc, err)
		}
		*part.out = b.String()
	}
	return r, nil
}

// Message returns the notice as an RFC 5322 message from from to to: multipart/alternative with the
// text and the HTML, each quoted-printable UTF-8 in CRLF lines, ready to be signed.
func (r Rendered) Message(from, to string, date time.Time, messageID string) ([]byte, error) {
	var b bytes.Buffer
	h := mime.Header{
		mime.NewField("From", from),
		mime.NewField("To", to),
		mime.NewField("Subject", stdmime.QEncoding.Encode("utf-8", r.Subject)),
		mime.NewField("Date", date.Format(time.RFC1123Z)),
		mime.NewField("Message-ID", messageID),
		mime.NewField("MIME-Version", "1.0"),
	}
	h.WriteTo(&b)
	m, err := mime.NewMultipart(&b, mime.NewBoundary, mime.Bytes(r.Text+r.HTML))
	if err != nil {
		return nil, err
	}
	m.ContentType("multipart/alternative")
	b.WriteString("\r\n")
	for _, part := range []struct{ mediaType, body string }{{"text/plain", r.Text}, {"text/html", r.HTML}} {
		m.Part(mime.Header{
			mime.NewField("Content-Type", part.mediaType+"; charset=utf-8"),
			mime.NewField("Content-Transfer-Encoding", "quoted-printable"),
		})
		if err := writeQP(&b, part.body); err != nil {
			return nil, err
		}
	}
	m.Close()
	return b.Bytes(), nil
}

// writeQP writes body quoted-printable with CRLF line ends (its last line break is the content's).
func writeQP(b *bytes.Buffer, body string) error {
	w := quotedprintable.NewWriter(b)
	w.Binary = false
	if _, err := w.Write([]byte(strings.ReplaceAll(body, "\r\n", "\n"))); err != nil {
		return err
	}
	return w.Close()
}
