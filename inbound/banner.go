package inbound

import (
	"bytes"
	"fmt"
	"html/template"
	stdmime "mime"
	"mime/quotedprintable"
	"strings"
	"unicode"

	"github.com/sealpost/sealpost/mime"
)

// The banner states the verdict at the top of the desk's copy, for agents whose client hides
// header fields. It goes into the part a client shows first: the text/plain root, or the
// text/plain and text/html alternatives of a multipart/alternative (the first part of any other
// multipart). Where it cannot go in (an attachment first, a charset in which ASCII is not ASCII,
// content that does not parse), the content is wrapped in a multipart/mixed whose first part is
// the banner. The HTML banner is made by html/template from the same lines: nothing reaches HTML
// unescaped.

// failureText says what each failure code means, for the banner.
var failureText = map[string]string{
	FailSignature:     "the signature does not match the content (changed after signing)",
	FailNotRoot:       "the signature covers only part of the message; the unsigned parts were removed",
	FailChain:         "the certificate or key is not trusted (unknown issuer, expired or revoked)",
	FailWeakAlgorithm: "a weak algorithm (SHA-1, MD5 or a short RSA key)",
	FailFromNotSingle: "the From field does not name exactly one address",
	FailFromMismatch:  "the signer's address is not the From address",
	FailWrongKey:      "the customer registered another key or certificate",
	FailUnknownKey:    "an OpenPGP key the bank does not know",
	FailTimestamp:     "the timestamp on the signature does not verify",
}

// banner is the verdict in a few lines: a title, then details.
type banner struct {
	Verified bool
	Title    string
	Lines    []string
}

func newBanner(v *Verdict) banner {
	signer := bannerValue(v.Signer)
	method := map[string]string{"smime": "S/MIME certificate", "pgp": "OpenPGP key"}[v.Method]
	if method == "" {
		method = "key"
	}
	b := banner{Verified: v.Trusted()}
	switch v.Status {
	case StatusVerified:
		b.Title = "sealpost: VERIFIED"
		b.Lines = []string{fmt.Sprintf("Signed by %s with the %s registered for that address.", signer, method)}
	case StatusUnregistered:
		b.Title = "sealpost: NOT VERIFIED (unregistered)"
		b.Lines = []string{fmt.Sprintf("Validly signed by %s, but no key is registered for that address:", signer),
			"nobody vouches that the signer is the customer."}
	case StatusFailed:
		b.Title = "sealpost: NOT VERIFIED (failed)"
		if signer != "" {
			b.Lines = append(b.Lines, "Signer: "+signer)
		}
		b.Lines = append(b.Lines, "Failed checks:")
		for _, code := range v.Failures {
			text := failureText[code]
			if text == "" {
				text = "check failed"
			}
			b.Lines = append(b.Lines, "- "+bannerValue(code)+": "+text)
		}
	default:
		b.Title = "sealpost: NOT VERIFIED (unsigned)"
		b.Lines = []string{"The message is not signed: anyone can have written it, and its From can be forged."}
	}
	switch v.ThreadMismatch {
	case "customer":
		b.Lines = append(b.Lines, "It answers a support thread of another customer.")
	case "key":
		b.Lines = append(b.Lines, "It answers a support thread whose customer used another key.")
	}
	if !b.Verified {
		b.Lines = append(b.Lines, "Confirm any request in it with the customer by other means.")
	}
	return b
}

// bannerValue keeps an address from a certificate or key on one printable ASCII line.
func bannerValue(s string) string {
	return keepASCII(s, func(r rune) bool { return r >= ' ' && r < 0x7f })
}

// text is the plain-text banner: CRLF lines, a rule and a blank line.
func (b banner) text() []byte {
	var out bytes.Buffer
	out.WriteString(b.Title + "\r\n")
	for _, l := range b.Lines {
		out.WriteString(l + "\r\n")
	}
	out.WriteString(strings.Repeat("-", 64) + "\r\n\r\n")
	return out.Bytes()
}

// bannerTemplate: inline styles marked !important, which the message's own style sheets cannot
// override (they can still draw over it: the Subject tag and the From mark are the signals that
// hold in any client).
var bannerTemplate = template.Must(template.New("banner").Parse(`<div data-sealpost-banner="" style="display:block !important;visibility:visible !important;opacity:1 !important;position:static !important;margin:0 0 12px 0 !important;padding:8px 12px !important;border:2px solid {{if .Verified}}#1b5e20{{else}}#b00020{{end}} !important;background:{{if .Verified}}#e8f5e9{{else}}#fdecea{{end}} !important;color:#000000 !important;font:14px/1.4 sans-serif !important"><strong style="display:block !important">{{.Title}}</strong>{{range .Lines}}<span style="display:block !important">{{.}}</span>{{end}}</div>
`))

// html is the HTML banner.
func (b banner) html() []byte {
	var out bytes.Buffer
	if err := bannerTemplate.Execute(&out, b); err != nil {
		panic(err) // the template and its data are ours
	}
	return bytes.ReplaceAll(out.Bytes(), []byte("\n"), []byte("\r\n"))
}

// withBanner returns the content (header h, body) with the verdict's banner at its top.
func (ib *Pipeline) withBanner(h mime.Header, body []byte, v *Verdict) (mime.Header, []byte) {
	b := newBanner(v)
	if nh, nb, ok := injectBanner(h, body, b, 0); ok {
		return nh, nb
	}
	return wrapBanner(h, body, b)
}

// injectBanner puts the banner into the entity a client shows first; ok is false when it cannot.
func injectBanner(h mime.Header, body []byte, b banner, depth int) (mime.Header, []byte, bool) {
	if depth > 8 {
		return nil, nil, false
	}
	mt, params, err := mime.MediaType(h)
	if err != nil {
		return nil, nil, false
	}
	if d, _, err := stdmime.ParseMediaType(h.Get("Content-Disposition")); err == nil && d == "attachment" {
		return nil, nil, false
	}
	switch {
	case mt == "text/plain":
		return injectLeaf(h, body, params, func(t []byte) []byte { return append(b.text(), t...) })
	case mt == "text/html":
		return injectLeaf(h, body, params, func(t []byte) []byte { return insertHTML(t, b.html()) })
	case mt == "multipart/alternative":
		// Every alternative a client may show takes the banner (any text/* but an invitation,
		// and multiparts); one that cannot (text/enriched, AMP, …) means the content is wrapped.
		return injectParts(h, body, params["boundary"], func(i int, ph mime.Header) bool {
			pt, _, err := mime.MediaType(ph)
			return err != nil || strings.HasPrefix(pt, "text/") && pt != "text/calendar" || strings.HasPrefix(pt, "multipart/")
		}, b, depth)
	case strings.HasPrefix(mt, "multipart/") && mt != "multipart/encrypted" && params["start"] == "":
		return injectParts(h, body, params["boundary"], func(i int, _ mime.Header) bool { return i == 0 }, b, depth)
	}
	return nil, nil, false
}

// injectParts puts the banner into every part of a multipart for which which is true; all of
// them must take it.
func injectParts(h mime.Header, body []byte, boundary string, which func(int, mime.Header) bool, b banner, depth int) (mime.Header, []byte, bool) {
	preamble, parts, err := mime.MultipartParts(body, boundary)
	if err != nil {
		return nil, nil, false
	}
	out := make([][]byte, len(parts))
	copy(out, parts)
	done := 0
	for i, p := range parts {
		ph, pb, err := mime.SplitEntity(p)
		if err != nil {
			return nil, nil, false
		}
		if !which(i, ph) {
			continue
		}
		nh, nb, ok := injectBanner(ph, pb, b, depth+1)
		if !ok {
			return nil, nil, false
		}
		out[i] = entityBytes(nh, nb)
		done++
	}
	if done == 0 {
		return nil, nil, false
	}
	joined, err := joinMultipart(preamble, out, boundary)
	return h, joined, err == nil
}

// injectLeaf decodes a text body, changes it with edit and encodes it as it was.
func injectLeaf(h mime.Header, body []byte, params map[string]string, edit func([]byte) []byte) (mime.Header, []byte, bool) {
	if !asciiCompatible(params["charset"]) {
		return nil, nil, false
	}
	cte := strings.ToLower(h.Get("Content-Transfer-Encoding"))
	raw, err := decodeTransfer(cte, body)
	if err != nil || bytes.HasPrefix(raw, []byte("\xff\xfe")) || bytes.HasPrefix(raw, []byte("\xfe\xff")) {
		return nil, nil, false // UTF-16 or UTF-32 by its byte-order mark, whatever the label says
	}
	out, err := encodeTransfer(cte, edit(raw))
	if err != nil {
		return nil, nil, false
	}
	return h, out, true
}

// insertHTML puts banner before the document's content: after a leading byte-order mark and
// DOCTYPE, before anything else. Inserting before the document rather than after its <body> tag
// means no comment, script or markup of the sender's can swallow it.
func insertHTML(doc, banner []byte) []byte {
	i := 0
	if bytes.HasPrefix(doc, []byte("\xef\xbb\xbf")) {
		i = 3
	}
	rest := bytes.TrimLeftFunc(doc[i:], unicode.IsSpace)
	if len(rest) >= 9 && bytes.EqualFold(rest[:9], []byte("<!doctype")) {
		if j := bytes.IndexByte(rest, '>'); j >= 0 {
			i = len(doc) - len(rest) + j + 1
		}
	}
	out := make([]byte, 0, len(doc)+len(banner)+2)
	out = append(out, doc[:i]...)
	if i > 0 && doc[i-1] == '>' {
		out = append(out, '\r', '\n')
	}
	out = append(out, banner...)
	return append(out, doc[i:]...)
}

// wrapBanner makes the content the second part of a multipart/mixed whose first is the banner.
func wrapBanner(h mime.Header, body []byte, b banner) (mime.Header, []byte) {
	boundary, err := mime.NewBoundary()
	for err == nil && bytes.Contains(body, []byte(boundary)) {
		boundary, err = mime.NewBoundary()
	}
	if err != nil {
		return h, body // no randomness: the Subject tag and the header still say the verdict
	}
	first := entityBytes(mime.Header{
		mime.NewField("Content-Type", "text/plain; charset=us-ascii"),
		mime.NewField("Content-Disposition", "inline"),
	}, b.text())
	nh := mime.Header{mime.NewField("Content-Type", stdmime.FormatMediaType("multipart/mixed", map[string]string{"boundary": boundary}))}
	joined, err := joinMultipart(nil, [][]byte{first, entityBytes(h, body)}, boundary)
	if err != nil {
		return h, body
	}
	return nh, joined
}

// asciiCompatible reports whether ASCII bytes are themselves in a charset, so that an ASCII
// banner can be put in front of text in it.
func asciiCompatible(charset string) bool {
	cs := strings.ToLower(strings.TrimSpace(charset))
	switch cs {
	case "", "us-ascii", "ascii", "utf-8", "utf8", "latin1", "koi8-r", "koi8-u", "gb2312", "gbk", "gb18030",
		"big5", "euc-jp", "euc-kr", "shift_jis", "iso-2022-jp", "iso-2022-kr", "tis-620":
		return true
	}
	for _, p := range []string{"iso-8859-", "windows-125", "cp125"} {
		if strings.HasPrefix(cs, p) {
			return true
		}
	}
	return false
}

// decodeTransfer undoes a Content-Transfer-Encoding.
func decodeTransfer(cte string, body []byte) ([]byte, error) {
	switch cte {
	case "", "7bit", "8bit", "binary":
		return body, nil
	case "base64":
		return mime.DecodeBase64(body)
	case "quoted-printable":
		var out bytes.Buffer
		out.Grow(len(body) + bytes.MinRead) // decoded is never longer: ReadFrom then never grows it
		if _, err := out.ReadFrom(quotedprintable.NewReader(bytes.NewReader(body))); err != nil {
			return nil, err
		}
		return out.Bytes(), nil
	}
	return nil, fmt.Errorf("unknown transfer encoding %q", cte)
}

// encodeTransfer applies a Content-Transfer-Encoding.
func encodeTransfer(cte string, raw []byte) ([]byte, error) {
	switch cte {
	case "", "7bit", "8bit", "binary":
		return raw, nil
	case "base64":
		return mime.EncodeBase64(raw), nil
	case "quoted-printable":
		var out bytes.Buffer
		out.Grow(len(raw) + len(raw)/16 + 64) // text with soft line breaks; 8-bit text grows it further
		w := quotedprintable.NewWriter(&out)
		if _, err := w.Write(raw); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return out.Bytes(), nil
	}
	return nil, fmt.Errorf("unknown transfer encoding %q", cte)
}
