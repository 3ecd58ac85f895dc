package console

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	stdmime "mime"
	"mime/quotedprintable"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/sealpost/sealpost/mime"
)

// A held reply is shown as the desk would get it (decrypted, with its verdict), and only as text:
// header fields decoded and made printable, text parts as text, HTML parts as their source (never
// rendered: no script, style or remote image of theirs reaches the browser), other parts by name,
// type and size.

// maxShown bounds the text shown of one part; the rest is cut with a note.
const maxShown = 256 << 10

// shownMessage is a message made safe to show.
type shownMessage struct {
	Fields []shownField
	Parts  []shownPart
}

type shownField struct{ Name, Value string }

type shownPart struct {
	Type    string
	Name    string
	Size    int
	Text    string // text/plain, or the source of text/html
	Source  bool   // Text is HTML source
	Cut     bool   // Text was cut at maxShown
	Skipped string // why the part is not shown (not text)
}

// showFields are the header fields shown, in this order.
var showFields = []string{"Sealpost-Verdict", "Sealpost-Released", "From", "Sealpost-Original-From", "To", "Subject", "Date", "Message-ID", "In-Reply-To"}

// showMessage parses msg and makes it safe to show.
func showMessage(msg []byte) (shownMessage, error) {
	e, err := mime.Parse(mime.ToCRLF(msg))
	if err != nil {
		return shownMessage{}, fmt.Errorf("the message does not parse: %w", err)
	}
	var out shownMessage
	for _, name := range showFields {
		if v := e.Header.Get(name); v != "" {
			out.Fields = append(out.Fields, shownField{name, decodeField(v)})
		}
	}
	walkParts(e, 0, &out)
	return out, nil
}

func walkParts(e *mime.Entity, depth int, out *shownMessage) {
	if len(out.Parts) >= 100 {
		return
	}
	if e.IsMultipart() && e.Parts != nil && depth < 16 {
		for _, p := range e.Parts {
			walkParts(p, depth+1, out)
		}
		return
	}
	p := shownPart{Type: cleanLine(e.MediaType, 100), Size: len(e.Body)}
	if _, params, err := stdmime.ParseMediaType(e.Header.Get("Content-Disposition")); err == nil {
		p.Name = cleanLine(params["filename"], 200)
	}
	if p.Name == "" {
		p.Name = cleanLine(e.Params["name"], 200)
	}
	switch {
	case e.Err != nil || e.PartsErr != nil:
		p.Skipped = "this part does not parse"
	case e.MediaType == "text/plain" || e.MediaType == "text/html":
		body, err := decodeBody(e)
		if err != nil {
			p.Skipped = "its transfer encoding does not decode"
			break
		}
		text := toUTF8(body, e.Params["charset"])
		if len(text) > maxShown {
			text, p.Cut = text[:maxShown], true
			for !utf8.ValidString(text) {
				text = text[:len(text)-1]
			}
		}
		p.Text, p.Source = cleanText(text), e.MediaType == "text/html"
	default:
		p.Skipped = "not text: not shown in the console"
	}
	out.Parts = append(out.Parts, p)
}

// decodeBody undoes the part's Content-Transfer-Encoding.
func decodeBody(e *mime.Entity) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(e.Header.Get("Content-Transfer-Encoding"))) {
	case "base64":
		return base64.StdEncoding.DecodeString(strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, string(e.Body)))
	case "quoted-printable":
		return io.ReadAll(quotedprintable.NewReader(bytes.NewReader(e.Body)))
	}
	return e.Body, nil
}

// toUTF8 reads body in charset (UTF-8 and US-ASCII as they are; ISO-8859-1 and Windows-1252 by
// their tables; anything else as UTF-8, invalid bytes replaced).
func toUTF8(body []byte, charset string) string {
	switch strings.ToLower(charset) {
	case "iso-8859-1", "latin1":
		if b, err := charmap.ISO8859_1.NewDecoder().Bytes(body); err == nil {
			return string(b)
		}
	case "windows-1252", "cp1252":
		if b, err := charmap.Windows1252.NewDecoder().Bytes(body); err == nil {
			return string(b)
		}
	}
	return strings.ToValidUTF8(string(body), "\uFFFD")
}

// decodeField decodes RFC 2047 words and makes the value one printable line.
func decodeField(v string) string {
	if d, err := new(stdmime.WordDecoder).DecodeHeader(v); err == nil {
		v = d
	}
	return cleanLine(v, 1000)
}

// cleanLine makes s one line of at most max runes: no control, format (bidi overrides,
// zero-width) or line-separator characters.
func cleanLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return strings.TrimSpace(s)
}

// cleanText keeps line breaks and tabs and drops other control and format characters, so that
// bidi overrides cannot disguise what a reply says.
func cleanText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf) {
			return -1
		}
		return r
	}, s)
}
