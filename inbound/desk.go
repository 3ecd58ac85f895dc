package inbound

import (
	"bytes"
	stdmime "mime"
	"net/mail"
	"strings"
	"unicode"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/mime"
)

// The desk's message is built fresh from the verified (or decrypted) content. What an agent sees
// in any mail client must not claim more than the verdict does:
//
//   - only sealpost's Authentication-Results and Sealpost-* fields, at every level: incoming ones
//     naming sealpost in any spelling are dropped from the header and from every nested part and
//     embedded message (authres.go);
//   - the From is chosen by sealpost: for a verified reply the signer's address with the
//     registered name (or none); otherwise each From address with a display name that says it is
//     not verified. The original From travels in Sealpost-Original-From; Sender is dropped. The
//     same holds for the header of every embedded message (message/rfc822);
//   - the Subject starts with a tag and the content with a banner (banner.go) saying the verdict.

// deskInput is what Evaluate found, for the desk's message.
type deskInput struct {
	outer     mime.Header // the received header
	visible   mime.Header // outer, or the signed header (RFC 9788) when the content has one
	inner     mime.Header // the content's header: its Content-* fields describe body
	body      []byte
	protected bool   // visible is the signed header
	name      string // the registered name of a verified signer
}

// maxDeskDepth bounds the nesting the desk's message is cleaned to; anything deeper is handed on
// as an opaque attachment. Inspection stops at 8 layers; MIME nesting in real mail stays far below.
const maxDeskDepth = 32

// deskMessage builds the fresh message the desk receives.
func (ib *Pipeline) deskMessage(in deskInput, v *Verdict) []byte {
	var b bytes.Buffer
	b.Grow(len(in.body) + 4096) // the header fields and the banner: grown once, not at every write
	mime.Header{
		mime.NewField("Authentication-Results", v.AuthenticationResults(ib.cfg.AuthServID)),
		mime.NewField("Sealpost-Verdict", v.Header()),
	}.WriteTo(&b)
	// Authentication-Results from other ADMDs (the bank's MX: SPF, DKIM) are kept; any that
	// claims to be ours, or cannot be read, is not.
	for _, fl := range in.outer {
		if strings.EqualFold(fl.Name, "Authentication-Results") && !claimsAuthServID(fl.Value(), ib.cfg.AuthServID) {
			b.Write(fl.Raw)
		}
	}
	ib.deskHeader(&b, in, v)
	b.Write(mime.NewField("MIME-Version", "1.0").Raw)
	var h mime.Header
	for _, fl := range in.inner {
		if mime.IsContentField(fl.Name) {
			h = append(h, fl)
		}
	}
	if h.Get("Content-Type") == "" {
		h = append(h.Without(func(n string) bool { return strings.EqualFold(n, "Content-Type") }),
			mime.NewField("Content-Type", "text/plain; charset=us-ascii"))
	}
	c := deskCleaner{ib: ib, v: v, name: in.name}
	h, body := c.entity(h, in.body, 0)
	h, body = ib.withBanner(h, body, v)
	(&mime.Entity{Header: h, Body: body}).Encode(&b)
	return b.Bytes()
}

// deskHeader writes the message fields of the desk's header.
func (ib *Pipeline) deskHeader(b *bytes.Buffer, in deskInput, v *Verdict) {
	var froms mime.Header
	for _, fl := range in.visible {
		if strings.EqualFold(fl.Name, "From") {
			froms = append(froms, fl)
		}
	}
	originalFroms(froms).WriteTo(b)
	if from, ok := ib.deskFrom(froms, v, in.name, v.Trusted()); ok {
		from.WriteTo(b)
	}
	// Copied as they are; Sender is not passed on.
	for _, name := range []string{"To", "Cc"} {
		copyFields(b, in.visible, name)
	}
	ib.deskSubject(in.visible, v).WriteTo(b)
	for _, name := range []string{"Date", "Message-ID", "In-Reply-To", "References"} {
		copyFields(b, in.visible, name)
	}
	// Reply-To could send the agent's answer elsewhere: only a signed, verified one is kept.
	if in.protected && v.Trusted() {
		copyFields(b, in.visible, "Reply-To")
	}
}

func copyFields(b *bytes.Buffer, h mime.Header, name string) {
	for _, fl := range h {
		if strings.EqualFold(fl.Name, name) {
			b.Write(fl.Raw)
		}
	}
}

// deskFrom is the From sealpost writes for the From fields froms. When trusted (the verdict is
// verified and froms name the signer), it is the signer's address with the registered name (or
// none); otherwise every address froms name, each with a display name that says it is not
// verified and names the real address; the sender's display names, comments and encoded-words
// are dropped. ok is false when froms name no address at all.
func (ib *Pipeline) deskFrom(froms mime.Header, v *Verdict, name string, trusted bool) (mime.Header, bool) {
	if trusted && v.Signer != "" {
		a := mail.Address{Name: displayName(name), Address: v.Signer}
		return mime.Header{foldedField("From", a.String())}, true
	}
	var list []string
	for _, fl := range froms {
		addrs, err := mail.ParseAddressList(fl.Value())
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if len(list) == maxDeskFrom {
				break
			}
			m := mail.Address{Name: ib.unverifiedMark() + " " + displayName(a.Address), Address: a.Address}
			list = append(list, m.String())
		}
	}
	if len(list) == 0 {
		return nil, false
	}
	return mime.Header{foldedField("From", strings.Join(list, ", "))}, true
}

// maxDeskFrom bounds the addresses of an unverified From shown to the desk (the original is in
// Sealpost-Original-From).
const maxDeskFrom = 20

// foldedField formats a field sealpost writes, folded at spaces so that lines stay near 78
// characters (RFC 5322 2.2.3). value must be free of CR and LF.
func foldedField(name, value string) mime.Field {
	var b strings.Builder
	b.WriteString(name + ":")
	line := len(name) + 1
	for i, w := range strings.Split(value, " ") {
		if i > 0 && line+1+len(w) > 78 {
			b.WriteString("\r\n")
			line = 0
		}
		b.WriteString(" " + w)
		line += 1 + len(w)
	}
	b.WriteString("\r\n")
	return mime.Field{Name: name, Raw: []byte(b.String())}
}

// unverifiedMark prefixes the display name of every sender sealpost does not vouch for.
func (ib *Pipeline) unverifiedMark() string {
	if ib.cfg.SubjectTagUnverified != "" {
		return ib.cfg.SubjectTagUnverified
	}
	return DefaultSubjectTagUnverified
}

// displayName makes a name safe to show (see cleanText), at most 100 characters.
func displayName(s string) string { return cleanText(s, 100) }

// cleanText makes text safe to show: no control, format (bidi overrides, zero-width) or
// line-separator characters, white space collapsed, at most limit characters.
func cleanText(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > limit {
		s = string(r[:limit])
	}
	return s
}

// deskSubject is the Subject with the verdict's tag first. The configured tags are removed from
// the sender's Subject (in any case, after RFC 2047 decoding), so that no message can show the
// other verdict's tag; without tags configured the Subject is copied as it was.
func (ib *Pipeline) deskSubject(visible mime.Header, v *Verdict) mime.Header {
	tag := ib.cfg.SubjectTagUnverified
	if v.Trusted() {
		tag = ib.cfg.SubjectTagVerified
	}
	var raw *mime.Field
	for i := range visible {
		if strings.EqualFold(visible[i].Name, "Subject") {
			raw = &visible[i]
			break
		}
	}
	if ib.cfg.SubjectTagVerified == "" && ib.cfg.SubjectTagUnverified == "" {
		if raw == nil {
			return nil
		}
		return mime.Header{*raw}
	}
	subject := ""
	if raw != nil {
		subject = raw.Value()
		if d, err := new(stdmime.WordDecoder).DecodeHeader(subject); err == nil {
			subject = d
		}
	}
	subject = ib.tags.ReplaceAllString(subject, " ")
	subject = strings.TrimSpace(tag + " " + cleanText(subject, 2000))
	return mime.Header{foldedField("Subject", stdmime.QEncoding.Encode("utf-8", subject))}
}

// deskCleaner removes what only sealpost may write from every part of the desk's content and
// rewrites the senders of embedded messages.
type deskCleaner struct {
	ib   *Pipeline
	v    *Verdict
	name string
}

// entity cleans one MIME entity. Content it cannot parse is handed on as an opaque attachment
// (application/octet-stream), never interpreted, so a client cannot find in it what we did not see.
func (c *deskCleaner) entity(h mime.Header, body []byte, depth int) (mime.Header, []byte) {
	h = c.header(h)
	// Two Content-Type (or transfer encoding) fields: readers disagree on which counts.
	if depth > maxDeskDepth || h.Count("Content-Type") > 1 || h.Count("Content-Transfer-Encoding") > 1 {
		return opaque(h), body
	}
	mt, params, err := mime.MediaType(h)
	if err != nil {
		return opaque(h), body
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		out, err := c.multipart(body, params["boundary"], mt == "multipart/digest", depth)
		if err != nil {
			return opaque(h), body
		}
		return h, out
	case mt == "message/rfc822" || mt == "message/global":
		return c.message(h, body, depth)
	}
	return h, body
}

// header drops Sealpost-* fields and Authentication-Results (or variants) that claim to be ours.
func (c *deskCleaner) header(h mime.Header) mime.Header {
	out := make(mime.Header, 0, len(h))
	for _, fl := range h {
		if isSealpostField(fl.Name) || isAuthResultsField(fl.Name) && claimsAuthServID(fl.Value(), c.ib.cfg.AuthServID) {
			continue
		}
		out = append(out, fl)
	}
	return out
}

// multipart cleans each part; in a multipart/digest a part without Content-Type is a
// message/rfc822 (RFC 2046 5.1.5), and is labelled so.
func (c *deskCleaner) multipart(body []byte, boundary string, digest bool, depth int) ([]byte, error) {
	preamble, parts, err := mime.MultipartParts(body, boundary)
	if err != nil {
		return nil, err
	}
	cleaned := make([][]byte, len(parts))
	for i, p := range parts {
		ph, pb, err := mime.SplitEntity(p)
		switch {
		case err != nil:
			// A part whose header cannot be read: its bytes become an opaque attachment.
			ph, pb = mime.Header{mime.NewField("Content-Type", "application/octet-stream")}, p
		default:
			if digest && ph.Count("Content-Type") == 0 {
				ph = append(ph, mime.NewField("Content-Type", "message/rfc822"))
			}
			ph, pb = c.entity(ph, pb, depth+1)
		}
		cleaned[i] = entityBytes(ph, pb)
	}
	return joinMultipart(preamble, cleaned, boundary)
}

// message cleans an embedded message: its header like any other, and its senders as the desk's
// own From (sealpost vouches for an embedded From only when it is the verified signer).
func (c *deskCleaner) message(h mime.Header, body []byte, depth int) (mime.Header, []byte) {
	cte := strings.ToLower(h.Get("Content-Transfer-Encoding"))
	raw, err := decodeTransfer(cte, body)
	if err != nil {
		return opaque(h), body
	}
	eh, eb, err := mime.SplitEntity(mime.ToCRLF(raw))
	if err != nil || len(eh) == 0 {
		return opaque(h), body
	}
	var froms, rest mime.Header
	for _, fl := range eh {
		switch {
		case strings.EqualFold(fl.Name, "From"):
			froms = append(froms, fl)
		case strings.EqualFold(fl.Name, "Sender"):
		default:
			rest = append(rest, fl)
		}
	}
	nh := originalFroms(froms)
	trusted := false
	if c.v.Trusted() && len(froms) == 1 {
		if a, err := mime.SingleFrom(froms); err == nil && address.Same(a, c.v.Signer) {
			trusted = true
		}
	}
	if from, ok := c.ib.deskFrom(froms, c.v, c.name, trusted); ok {
		nh = append(nh, from...)
	}
	eh, eb = c.entity(rest, eb, depth+1)
	// entity dropped any forged Sealpost-* field; ours are added after it.
	eh = append(nh, eh...)
	out, err := encodeTransfer(cte, entityBytes(eh, eb))
	if err != nil {
		return opaque(h), body
	}
	return h, out
}

// originalFroms renames each From field Sealpost-Original-From, its value as received.
func originalFroms(froms mime.Header) mime.Header {
	var h mime.Header
	for _, fl := range froms {
		h = append(h, mime.Field{Name: "Sealpost-Original-From", Raw: append([]byte("Sealpost-Original-From:"), fl.Raw[len(fl.Name)+1:]...)})
	}
	return h
}

// opaque relabels an entity as application/octet-stream.
func opaque(h mime.Header) mime.Header {
	return append(h.Without(func(n string) bool { return strings.EqualFold(n, "Content-Type") }),
		mime.NewField("Content-Type", "application/octet-stream"))
}

// entityBytes is an entity's header, the blank line and its body.
func entityBytes(h mime.Header, body []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(body) + 512)
	(&mime.Entity{Header: h, Body: body}).Encode(&b)
	return b.Bytes()
}

// joinMultipart assembles a multipart body from its preamble and parts (each without the CRLF
// that belongs to the delimiter after it), as mime.MultipartParts splits one, with mime's builder
// and the boundary the body had.
func joinMultipart(preamble []byte, parts [][]byte, boundary string) ([]byte, error) {
	var b bytes.Buffer
	m, err := mime.NewMultipart(&b, func() (string, error) { return boundary, nil }, nil)
	if err != nil {
		return nil, err
	}
	if len(preamble) > 0 {
		m.Preamble(string(preamble))
	}
	for _, p := range parts {
		m.Entity()
		b.Write(p)
	}
	m.Close()
	if len(preamble) == 0 && len(parts) == 0 {
		// Nothing precedes the close delimiter, so no line break belongs to it: the body starts
		// with it, as the one received did.
		return b.Bytes()[2:], nil
	}
	return b.Bytes(), nil
}
