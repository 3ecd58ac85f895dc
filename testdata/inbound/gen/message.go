package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// message is one corpus file.
type message struct {
	path    string // relative to the corpus directory: good/x.eml or hostile/x.eml
	expect  string // Corpus-Expect value
	note    string // Corpus-Note value: what the file is and how it was made
	from    string // From header value; alice unless set
	subject string
	headers []string // further top-level header lines (Sender, forged results...)
	entity  []byte   // the root MIME entity: MIME-Version, Content-Type... and body, CRLF
	checks  []check  // claims about the file, checked with real tools after writing it
}

const aliceFrom = "Alice Customer <alice@customer.example>"

// write writes m with its corpus headers and the RFC 5322 headers of a reply
// to the bank, then runs its checks.
func (g *generator) write(m message) {
	if strings.ContainsAny(m.note, "\r\n") || strings.ContainsAny(m.expect, "\r\n") {
		failf("%s: corpus headers must be one line", m.path)
	}
	from := m.from
	if from == "" {
		from = aliceFrom
	}
	var b bytes.Buffer
	hdr := func(line string) { b.WriteString(line + "\r\n") }
	hdr("Corpus-Expect: " + m.expect)
	hdr("Corpus-Note: " + m.note)
	if from != "-" {
		hdr("From: " + from)
	}
	hdr("To: support@bank.example")
	hdr("Subject: " + m.subject)
	hdr("Date: " + time.Now().UTC().Format(time.RFC1123Z))
	hdr("Message-ID: <" + randomHex(12) + "@customer.example>")
	ref := "<" + bankToken() + ".k2@bank.example>"
	hdr("In-Reply-To: " + ref)
	hdr("References: " + ref)
	for _, h := range m.headers {
		hdr(h)
	}
	if !bytes.HasPrefix(m.entity, []byte("MIME-Version: 1.0\r\n")) {
		failf("%s: entity does not start with MIME-Version", m.path)
	}
	if bytes.Contains(bytes.ReplaceAll(m.entity, []byte("\r\n"), nil), []byte("\n")) {
		failf("%s: bare LF in entity", m.path)
	}
	b.Write(m.entity)
	name := filepath.Join(g.dir, m.path)
	if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
		failf("%v", err)
	}
	fmt.Printf("%-45s %s\n", m.path, m.expect)
	for _, c := range m.checks {
		if err := c.outcome(c.run(g, b.Bytes())); err != nil {
			failf("%s: %s: %v", m.path, c.what, err)
		}
		outcome := "ok"
		if !c.ok {
			outcome = "fails: " + c.reason
		}
		fmt.Printf("    %s: %s\n", c.what, outcome)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// bankToken is a Message-ID local part in the form the bank's outbound
// messages use: 24 lowercase letters.
func bankToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = 'a' + b[i]%26
	}
	return string(b)
}

// textPart is a text/plain MIME part in canonical form.
func textPart(body string) []byte {
	return []byte("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" +
		strings.ReplaceAll(body, "\n", "\r\n"))
}

// rootText is textPart as a root entity.
func rootText(body string) []byte {
	return append([]byte("MIME-Version: 1.0\r\n"), textPart(body)...)
}

func boundary() string { return "------------" + randomHex(12) }

// multipart returns a root entity of the given content type with the parts,
// each placed byte for byte (the CRLF before a delimiter belongs to the
// delimiter, so a part ending in CRLF keeps it).
func multipart(contentType, preamble string, parts ...[]byte) []byte {
	bd := boundary()
	var b bytes.Buffer
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: %s; boundary=\"%s\"\r\n\r\n%s\r\n", contentType, bd, preamble)
	for _, p := range parts {
		b.WriteString("--" + bd + "\r\n")
		b.Write(p)
		b.WriteString("\r\n")
	}
	b.WriteString("--" + bd + "--\r\n")
	return b.Bytes()
}

// base64Body is data in base64, 64 characters a line, CRLF.
func base64Body(data []byte) string {
	s := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\r\n")
		s = s[64:]
	}
	b.WriteString(s + "\r\n")
	return b.String()
}

// withoutMIMEVersion strips the leading MIME-Version line, for entities that
// become nested parts.
func withoutMIMEVersion(entity []byte) []byte {
	return bytes.TrimPrefix(entity, []byte("MIME-Version: 1.0\r\n"))
}

// splitEntity returns an entity's header and body.
func splitEntity(entity []byte) (textproto.MIMEHeader, []byte) {
	i := bytes.Index(entity, []byte("\r\n\r\n"))
	if i < 0 {
		failf("entity without header/body separator")
	}
	var h textproto.MIMEHeader = map[string][]string{}
	lines := strings.Split(string(entity[:i]), "\r\n")
	for j := 0; j < len(lines); j++ {
		line := lines[j]
		for j+1 < len(lines) && (strings.HasPrefix(lines[j+1], " ") || strings.HasPrefix(lines[j+1], "\t")) {
			j++
			line += lines[j]
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			failf("bad header line %q", line)
		}
		h.Add(k, strings.TrimSpace(v))
	}
	return h, entity[i+4:]
}

// parts returns the raw parts of a multipart entity, byte for byte as signed.
func parts(entity []byte) [][]byte {
	h, body := splitEntity(entity)
	_, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		failf("not multipart: %q", h.Get("Content-Type"))
	}
	delim := []byte("\r\n--" + params["boundary"])
	body = append([]byte("\r\n"), body...)
	var out [][]byte
	for {
		i := bytes.Index(body, delim)
		if i < 0 {
			return out
		}
		rest := body[i+len(delim):]
		if bytes.HasPrefix(rest, []byte("--")) {
			return out
		}
		rest = rest[bytes.Index(rest, []byte("\r\n"))+2:]
		j := bytes.Index(rest, delim)
		if j < 0 {
			failf("unterminated part")
		}
		out = append(out, rest[:j])
		body = rest[j:]
	}
}

// rootEntity returns a corpus file without its RFC 5322 headers, i.e. the
// root MIME entity as openssl would read it.
func rootEntity(msg []byte) []byte {
	if bytes.HasPrefix(msg, []byte("MIME-Version: 1.0\r\n")) {
		return msg
	}
	i := bytes.Index(msg, []byte("\r\nMIME-Version: 1.0\r\n"))
	if i < 0 {
		failf("no MIME-Version header")
	}
	return msg[i+2:]
}
