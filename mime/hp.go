package mime

import (
	"bytes"
	"fmt"
	"html"
	stdmime "mime"
	"net/mail"
	"strings"
)

// Header protection (RFC 9788), sending side. The Cryptographic Payload's root part carries a copy of
// every header field of the message and says so twice: hp="cipher" (encrypted) or hp="clear"
// (signed only) for RFC 9788 readers, and protected-headers="v1" for the older convention
// (draft-autocrypt-lamps-protected-headers) that Thunderbird, K-9 and NeoMutt read.
//
// When the message is encrypted, the outer header is an allow-list: From, To and Cc as bare
// addresses, Date, Message-ID, Subject "[...]" and Auto-Submitted's keyword (plus the hop's trace fields and the protector's
// MIME fields). Everything else, including any field this code does not know, travels only inside;
// each field left outside is recorded in an HP-Outer field. The user-facing fields that were hidden
// or changed are also written at the top of the main body parts (RFC 9788 Legacy Display Element),
// for clients that read neither marker.

// hopField says whether a header field belongs to the hop rather than to the message (trace and
// transport authentication): it stays outside as it is and is not copied into the protected part.
func hopField(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "received", "return-path", "delivered-to", "x-original-to", "dkim-signature":
		return true
	}
	return strings.HasPrefix(n, "arc-")
}

// exposedField returns what the outer header of an encrypted message with header protection shows
// of f, and false when f stays inside only. It is an allow-list: what transport and a mail store
// need, nothing a code or a name could hide in.
func exposedField(f Field) (Field, bool) {
	switch strings.ToLower(f.Name) {
	case "from", "to", "cc":
		list, err := mail.ParseAddressList(f.Value())
		if err != nil || len(list) == 0 {
			return Field{}, false // delivery follows the envelope: a field we cannot strip stays inside
		}
		items := make([]string, len(list))
		for i, a := range list {
			items[i] = bareAddress(a.Address)
		}
		return listField(f.Name, items), true
	case "date", "message-id":
		return f, true
	case "subject":
		return NewField(f.Name, "[...]"), true
	case "auto-submitted":
		// Vacation responders and MTAs read it outside (RFC 3834): an OTP must not be auto-replied to.
		// Only its keyword leaves; parameters, where text could hide, stay inside.
		kw := strings.ToLower(strings.TrimSpace(strings.SplitN(f.Value(), ";", 2)[0]))
		switch kw {
		case "no", "auto-generated", "auto-replied", "auto-notified":
			return NewField(f.Name, kw), true
		}
	}
	return Field{}, false
}

// userFacing lists the fields a reader sees (RFC 9788 1.1): when one is hidden or changed outside,
// the legacy display shows it.
var userFacing = map[string]bool{"subject": true, "from": true, "sender": true, "reply-to": true, "to": true, "cc": true, "date": true}

// protection is header protection planned from the message's outer header.
type protection struct {
	outer   Header   // what stays outside
	copies  Header   // the protected copies of the header fields, then the HP-Outer fields
	display []string // the legacy display's lines, "Name: value"; empty when nothing was hidden
	hp      string   // "cipher" or "clear"
}

// planProtection splits the (7-bit) outer header of a message into what stays outside and what is
// copied inside.
func planProtection(outer Header, encrypted bool) protection {
	p := protection{hp: "clear"}
	if encrypted {
		p.hp = "cipher"
	}
	var hpOuter Header
	for _, f := range outer {
		if hopField(f.Name) {
			p.outer = append(p.outer, f)
			continue
		}
		p.copies = append(p.copies, f)
		if !encrypted {
			p.outer = append(p.outer, f)
			continue
		}
		o, shown := exposedField(f)
		if shown {
			p.outer = append(p.outer, o)
			hpOuter = append(hpOuter, Field{Name: "HP-Outer", Raw: append([]byte("HP-Outer: "), o.Raw...)})
		}
		if name := strings.ToLower(f.Name); userFacing[name] && (!shown || changed(f, o)) {
			p.display = append(p.display, f.Name+": "+displayValue(f))
		}
	}
	p.copies = append(p.copies, hpOuter...)
	return p
}

// changed says whether the outer form o of f reads differently from f.
func changed(f, o Field) bool {
	if !addressFields[strings.ToLower(f.Name)] {
		return o.Value() != f.Value()
	}
	list, err := mail.ParseAddressList(f.Value())
	if err != nil {
		return true
	}
	for _, a := range list {
		if a.Name != "" {
			return true
		}
	}
	return false
}

// displayValue is f's value as a reader should see it: encoded-words decoded, addresses with their
// names.
func displayValue(f Field) string {
	v := f.Value()
	if addressFields[strings.ToLower(f.Name)] {
		if list, err := mail.ParseAddressList(v); err == nil && len(list) > 0 {
			items := make([]string, len(list))
			for i, a := range list {
				items[i] = bareAddress(a.Address)
				if a.Name != "" {
					items[i] = a.Name + " <" + items[i] + ">"
				}
			}
			return strings.Join(items, ", ")
		}
	}
	if d, err := new(stdmime.WordDecoder).DecodeHeader(v); err == nil {
		return d
	}
	return v
}

// apply marks the payload's root header inner (after canonicalisation) as protected and puts the
// protected copies in front of it.
func (p protection) apply(inner Header) (Header, error) {
	mt, params, err := MediaType(inner)
	if err != nil {
		return nil, err
	}
	params["hp"] = p.hp
	delete(params, "protected-headers")
	ct := NewField("Content-Type", stdmime.FormatMediaType(mt, params)+";\r\n protected-headers=\"v1\"")
	out := make(Header, 0, len(p.copies)+len(inner)+1)
	out = append(out, p.copies...)
	out = append(out, inner.Without(func(n string) bool { return strings.EqualFold(n, "Content-Type") })...)
	return cleanHeader(append(out, ct))
}

// legacyDisplayClass is the class of the HTML element that holds a legacy display (RFC 9788).
const legacyDisplayClass = "header-protection-legacy-display"

// addLegacyDisplay writes lines at the top of each main body part of the entity (h, body) and marks
// the part hp-legacy-display="1" (RFC 9788): in text/plain as header lines and a blank line, in
// text/html as a <div class="header-protection-legacy-display"> at the start of the body. When no
// main body part can take it (no text, an attachment first, a charset that cannot hold the text),
// the entity is wrapped in a multipart/mixed whose first part is the legacy display.
func addLegacyDisplay(h Header, body []byte, lines []string, newBoundary func() (string, error)) (Header, []byte, error) {
	if dh, db, ok := decorate(h, body, lines, 0); ok {
		return dh, db, nil
	}
	var b bytes.Buffer
	b.Grow(len(body) + 1024)
	m, err := NewMultipart(&b, newBoundary, Bytes(body))
	if err != nil {
		return nil, nil, err
	}
	m.Part(Header{NewField("Content-Type", "text/plain; charset=utf-8; hp-legacy-display=1"), NewField("Content-Disposition", "inline")})
	b.WriteString(strings.Join(lines, "\r\n") + "\r\n")
	m.Entity()
	h.WriteTo(&b)
	b.WriteString("\r\n")
	b.Write(body)
	m.Close()
	return Header{NewField("Content-Type", `multipart/mixed; boundary="`+m.Boundary()+`"`)}, b.Bytes(), nil
}

// decorate adds the legacy display to the main body parts of an entity: a text/plain or text/html
// leaf, each alternative of a multipart/alternative, the first part of any other multipart. It
// reports false, changing nothing, when there is none it can change.
func decorate(h Header, body []byte, lines []string, depth int) (Header, []byte, bool) {
	if depth > maxDepth {
		return nil, nil, false
	}
	mt, params, err := MediaType(h)
	if err != nil {
		return nil, nil, false
	}
	if disp, _, err := stdmime.ParseMediaType(h.Get("Content-Disposition")); err == nil && disp == "attachment" {
		return nil, nil, false
	}
	switch {
	case mt == "text/plain" || mt == "text/html":
		return decorateLeaf(h, body, mt, params, lines)
	case mt == "multipart/signed" || mt == "multipart/encrypted" || !strings.HasPrefix(mt, "multipart/"):
		return nil, nil, false
	}
	preamble, parts, err := MultipartParts(body, params["boundary"])
	if err != nil {
		return nil, nil, false
	}
	changedAny := false
	for i, part := range parts {
		if i > 0 && mt != "multipart/alternative" {
			break
		}
		ph, pb, err := SplitEntity(part)
		if err != nil {
			continue
		}
		if ph, pb, ok := decorate(ph, pb, lines, depth+1); ok {
			var b bytes.Buffer
			ph.WriteTo(&b)
			b.WriteString("\r\n")
			b.Write(pb)
			parts[i], changedAny = b.Bytes(), true
		}
	}
	if !changedAny {
		return nil, nil, false
	}
	var b bytes.Buffer
	b.Grow(len(body) + 1024)
	if len(preamble) > 0 {
		b.Write(preamble)
		b.WriteString("\r\n")
	}
	for _, part := range parts {
		b.WriteString("--" + params["boundary"] + "\r\n")
		b.Write(part)
		b.WriteString("\r\n")
	}
	b.WriteString("--" + params["boundary"] + "--\r\n")
	return h, b.Bytes(), true
}

// decorateLeaf puts the legacy display at the top of a text part's decoded content. The part loses
// its transfer encoding: canonicalisation chooses a new one.
func decorateLeaf(h Header, body []byte, mt string, params map[string]string, lines []string) (Header, []byte, bool) {
	text, ok := decodedBody(h, body)
	charset := strings.ToLower(params["charset"])
	if !ok || !asciiCompatible(charset) {
		return nil, nil, false
	}
	var out []byte
	if mt == "text/plain" {
		display := strings.Join(lines, "\r\n") + "\r\n\r\n"
		if !IsASCII([]byte(display)) {
			if charset != "" && charset != "us-ascii" && charset != "utf-8" && charset != "utf8" {
				return nil, nil, false
			}
			params["charset"] = "utf-8"
		}
		out = append([]byte(display), text...)
	} else {
		out = insertIntoHTMLBody(text, htmlDisplay(lines))
	}
	params["hp-legacy-display"] = "1"
	ct := stdmime.FormatMediaType(mt, params)
	if ct == "" {
		return nil, nil, false
	}
	nh := make(Header, 0, len(h))
	for _, f := range h {
		switch {
		case strings.EqualFold(f.Name, "Content-Type"):
			nh = append(nh, NewField(f.Name, ct))
		case !strings.EqualFold(f.Name, "Content-Transfer-Encoding"):
			nh = append(nh, f)
		}
	}
	return nh, out, true
}

// decodedBody returns a text part's content without its transfer encoding, with CRLF line ends.
func decodedBody(h Header, body []byte) ([]byte, bool) {
	var text []byte
	switch cte := strings.ToLower(h.Get("Content-Transfer-Encoding")); cte {
	case "", "7bit", "8bit", "binary":
		text = body
	case "quoted-printable":
		d, err := decodeQP(body)
		if err != nil {
			return nil, false
		}
		text = d
	case "base64":
		d, err := DecodeBase64(body)
		if err != nil {
			return nil, false
		}
		text = d
	default:
		return nil, false
	}
	return ToCRLF(text), true
}

// asciiCompatible says whether ASCII text means the same in charset (absent means us-ascii).
func asciiCompatible(charset string) bool {
	for _, p := range []string{"utf-16", "utf-32", "ucs-2", "ucs-4", "utf-7", "iso-10646", "unicode"} {
		if strings.HasPrefix(charset, p) {
			return false
		}
	}
	return true
}

// htmlDisplay is the legacy display as HTML; all of it ASCII (character references), so that it
// reads the same in any ASCII-compatible charset.
func htmlDisplay(lines []string) []byte {
	var b strings.Builder
	b.WriteString(`<div class="` + legacyDisplayClass + `">` + "\r\n<pre>")
	for i, l := range lines {
		if i > 0 {
			b.WriteString("\r\n")
		}
		for _, r := range html.EscapeString(l) {
			if r < 0x80 {
				b.WriteRune(r)
			} else {
				fmt.Fprintf(&b, "&#x%X;", r)
			}
		}
	}
	b.WriteString("</pre>\r\n</div>\r\n")
	return []byte(b.String())
}

// insertIntoHTMLBody inserts display right after the <body> start tag, or at the start when there
// is none.
func insertIntoHTMLBody(doc, display []byte) []byte {
	at := 0
	lower := asciiLower(doc) // byte for byte: bytes.ToLower turns an invalid byte into three
	for i := 0; ; {
		j := bytes.Index(lower[i:], []byte("<body"))
		if j < 0 {
			break
		}
		i += j + len("<body")
		if i < len(lower) && (lower[i] == '>' || lower[i] == ' ' || lower[i] == '\t' || lower[i] == '\r' || lower[i] == '\n' || lower[i] == '/') {
			if k := bytes.IndexByte(lower[i:], '>'); k >= 0 {
				at = i + k + 1
				if at < len(doc) && doc[at] == '\r' && at+1 < len(doc) && doc[at+1] == '\n' {
					at += 2
				}
			}
			break
		}
	}
	out := make([]byte, 0, len(doc)+len(display)+2)
	out = append(out, doc[:at]...)
	if at > 0 && doc[at-1] != '\n' {
		out = append(out, '\r', '\n')
	}
	out = append(out, display...)
	return append(out, doc[at:]...)
}

// asciiLower lower-cases the ASCII letters of b and keeps every other byte, so that an index into
// the result is an index into b (bytes.ToLower replaces invalid UTF-8 with U+FFFD, three bytes).
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}
