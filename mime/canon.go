package mime

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	stdmime "mime"
	"mime/quotedprintable"
	"strings"
)

// maxDepth bounds MIME nesting; real mail stays far below it, hostile mail does not.
const maxDepth = 32

// maxLine is RFC 5322's limit on a line, CRLF excluded.
const maxLine = 998

// ToCRLF returns b with every bare LF and bare CR turned into CRLF. It returns b itself when it is
// already canonical, which is the common case for mail that came over SMTP.
func ToCRLF(b []byte) []byte {
	if isCRLF(b) {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/32)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\r' && i+1 < len(b) && b[i+1] == '\n':
			out = append(out, '\r', '\n')
			i++
		case c == '\r' || c == '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

// isCRLF reports whether every line break of b is CRLF: each LF follows a CR, and there are no
// more CRs than LFs (so none is bare). IndexByte and Count scan a word at a time.
func isCRLF(b []byte) bool {
	lf := 0
	for i := 0; ; i++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			break
		}
		if i += j; i == 0 || b[i-1] != '\r' {
			return false
		}
		lf++
	}
	return bytes.Count(b, []byte{'\r'}) == lf
}

// SignatureSafe reports whether body can travel unchanged through any MTA: 7-bit, no NUL, lines of at
// most 998 octets, and no line that an agent might rewrite (trailing white space is stripped by some
// gateways, "From " is escaped by mbox). b must already be CRLF-canonical.
func SignatureSafe(b []byte) bool {
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\r\n"))
		line := b
		if i >= 0 {
			line, b = b[:i], b[i+2:]
		} else {
			b = nil
		}
		if len(line) > maxLine || bytes.HasPrefix(line, []byte("From ")) {
			return false
		}
		if n := len(line); n > 0 && (line[n-1] == ' ' || line[n-1] == '\t') {
			return false
		}
		if !sevenBitNoNUL(line) {
			return false
		}
	}
	return true
}

// sevenBitNoNUL reports whether b holds neither a NUL nor a byte with its high bit set, eight
// bytes at a time.
func sevenBitNoNUL(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		v := binary.LittleEndian.Uint64(b)
		// v&highs: an 8-bit byte; (v-ones)&^v&highs: a zero byte (exact once none is 8-bit).
		if v&highs != 0 || (v-ones)&^v&highs != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c == 0 || c >= 0x80 {
			return false
		}
	}
	return true
}

func IsASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 || c == 0 {
			return false
		}
	}
	return true
}

// canonicalBody returns the body of an entity with header h made signature-safe, and the header
// with its Content-Transfer-Encoding changed where the body had to be re-encoded. Multipart bodies
// are rebuilt part by part; leaves that are not safe are re-encoded as quoted-printable (text) or
// base64 (anything else).
func canonicalBody(h Header, body []byte, depth int) (Header, []byte, error) {
	if depth > maxDepth {
		return nil, nil, fmt.Errorf("%w: MIME nesting deeper than %d", ErrMalformed, maxDepth)
	}
	h, err := cleanHeader(h)
	if err != nil {
		return nil, nil, err
	}
	mediaType, params, err := MediaType(h)
	if err != nil {
		return nil, nil, err
	}
	cte := strings.ToLower(h.Get("Content-Transfer-Encoding"))
	switch {
	case strings.HasPrefix(mediaType, "multipart/"):
		if cte != "" && cte != "7bit" && cte != "8bit" && cte != "binary" {
			return nil, nil, fmt.Errorf("%w: multipart with transfer encoding %q", ErrMalformed, cte)
		}
		out, err := canonicalMultipart(body, params["boundary"], depth)
		if err != nil {
			return nil, nil, err
		}
		return withEncoding(h, cte, ""), out, nil
	case mediaType == "message/rfc822" || mediaType == "message/global":
		ih, ib, err := SplitEntity(body)
		if err != nil {
			return nil, nil, err
		}
		ih, ib, err = canonicalBody(ih, ib, depth+1)
		if err != nil {
			return nil, nil, err
		}
		var b bytes.Buffer
		ih.WriteTo(&b)
		b.WriteString("\r\n")
		b.Write(ib)
		return withEncoding(h, cte, ""), b.Bytes(), nil
	}
	switch cte {
	case "", "7bit", "8bit", "binary":
		if SignatureSafe(body) {
			return withEncoding(h, cte, ""), body, nil
		}
		if strings.HasPrefix(mediaType, "text/") {
			return withEncoding(h, cte, "quoted-printable"), encodeQP(body), nil
		}
		return withEncoding(h, cte, "base64"), EncodeBase64(body), nil
	case "quoted-printable":
		if SignatureSafe(body) {
			return h, body, nil
		}
		raw, err := decodeQP(body)
		if err != nil {
			return nil, nil, err
		}
		return h, encodeQP(raw), nil
	case "base64":
		if SignatureSafe(body) {
			return h, body, nil
		}
		raw, err := DecodeBase64(body)
		if err != nil {
			return nil, nil, err
		}
		return h, EncodeBase64(raw), nil
	}
	if !SignatureSafe(body) {
		return nil, nil, fmt.Errorf("%w: 8-bit data in a part with transfer encoding %q", ErrMalformed, cte)
	}
	return h, body, nil
}

// withEncoding sets the Content-Transfer-Encoding to want ("" means 7bit, written by omission), keeping
// the header untouched when nothing changes.
func withEncoding(h Header, have, want string) Header {
	if have == want || (want == "" && have == "7bit") {
		return h
	}
	out := h.Without(func(n string) bool { return strings.EqualFold(n, "Content-Transfer-Encoding") })
	if want != "" {
		out = append(out, NewField("Content-Transfer-Encoding", want))
	}
	return out
}

func MediaType(h Header) (string, map[string]string, error) {
	ct := h.Get("Content-Type")
	if ct == "" {
		return "text/plain", map[string]string{}, nil
	}
	mt, params, err := stdmime.ParseMediaType(ct)
	if err != nil {
		return "", nil, fmt.Errorf("%w: Content-Type %q: %v", ErrMalformed, truncate([]byte(ct)), err)
	}
	return mt, params, nil
}

// MultipartParts splits a CRLF multipart body at its boundary into the preamble and the parts, each
// without the CRLF that belongs to the following delimiter. Anything after the closing delimiter (the
// epilogue) is ignored.
func MultipartParts(body []byte, boundary string) (preamble []byte, parts [][]byte, err error) {
	if boundary == "" || len(boundary) > 70 {
		return nil, nil, fmt.Errorf("%w: multipart without a valid boundary", ErrMalformed)
	}
	delim := []byte("--" + boundary)
	partStart := -1
	for pos := 0; pos < len(body); {
		end := bytes.Index(body[pos:], []byte("\r\n"))
		next := len(body)
		line := body[pos:]
		if end >= 0 {
			line, next = body[pos:pos+end], pos+end+2
		}
		if rest, ok := bytes.CutPrefix(line, delim); ok {
			rest = bytes.TrimRight(rest, " \t")
			isClose := bytes.Equal(rest, []byte("--"))
			if len(rest) == 0 || isClose {
				if partStart < 0 {
					preamble = body[:max(0, pos-2)]
				} else {
					parts = append(parts, body[partStart:max(partStart, pos-2)])
				}
				if isClose {
					return preamble, parts, nil
				}
				partStart = next
			}
		}
		pos = next
	}
	return nil, nil, fmt.Errorf("%w: multipart without its closing boundary", ErrMalformed)
}

// canonicalMultipart rebuilds a multipart body with each part canonical. The preamble is kept only
// when it is safe; the epilogue is dropped (no agent displays it, and it would be unsigned noise).
// When the rebuilt body is the start of body byte for byte (the common case: a statement whose parts
// are already 7-bit, its attachment base64), that slice of body is returned and nothing is copied: a
// 10 MB attachment costs no second 10 MB.
func canonicalMultipart(body []byte, boundary string, depth int) ([]byte, error) {
	preamble, parts, err := MultipartParts(body, boundary)
	if err != nil {
		return nil, err
	}
	out := rebuild{in: body, grow: len(body) + len(body)/16}
	if len(preamble) > 0 && SignatureSafe(preamble) {
		out.write(preamble)
		out.writeString("\r\n")
	}
	for _, p := range parts {
		out.writeString("--" + boundary + "\r\n")
		if err := writePart(&out, p, depth); err != nil {
			return nil, err
		}
		out.writeString("\r\n")
	}
	out.writeString("--" + boundary + "--\r\n")
	return out.bytes(), nil
}

// rebuild writes a rebuilt entity, comparing it with in, the one it rebuilds, for as long as they
// agree: only at the first difference does it copy what agreed so far and write from there on.
type rebuild struct {
	in   []byte
	pos  int // while out is nil: in[:pos] is what was written
	grow int // the size to reserve once it must copy
	out  *bytes.Buffer
}

func (r *rebuild) write(b []byte) {
	if r.out == nil {
		if r.pos+len(b) <= len(r.in) && bytes.Equal(r.in[r.pos:r.pos+len(b)], b) {
			r.pos += len(b)
			return
		}
		r.out = new(bytes.Buffer)
		r.out.Grow(max(r.grow, r.pos+len(b)))
		r.out.Write(r.in[:r.pos])
	}
	r.out.Write(b)
}

func (r *rebuild) writeString(s string) { r.write([]byte(s)) }

// bytes is what was written: a slice of in when it all agreed.
func (r *rebuild) bytes() []byte {
	if r.out == nil {
		return r.in[:r.pos:r.pos]
	}
	return r.out.Bytes()
}

func writePart(out *rebuild, part []byte, depth int) error {
	h, body, err := SplitEntity(part)
	if err != nil {
		return err
	}
	h, body, err = canonicalBody(h, body, depth+1)
	if err != nil {
		return err
	}
	for _, f := range h {
		out.write(f.Raw)
	}
	out.writeString("\r\n")
	out.write(body)
	return nil
}

func encodeQP(b []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/8)
	w := quotedprintable.NewWriter(&out)
	_, _ = w.Write(b)
	_ = w.Close()
	// The writer leaves "From " and a lone "." alone; "From " must not start a line.
	q := out.Bytes()
	if bytes.HasPrefix(q, []byte("From ")) || bytes.Contains(q, []byte("\r\nFrom ")) {
		q = bytes.ReplaceAll(q, []byte("\r\nFrom "), []byte("\r\n=46rom "))
		if bytes.HasPrefix(q, []byte("From ")) {
			q = append([]byte("=46"), q[1:]...)
		}
	}
	return q
}

func decodeQP(b []byte) ([]byte, error) {
	var out bytes.Buffer
	if _, err := out.ReadFrom(quotedprintable.NewReader(bytes.NewReader(b))); err != nil {
		return nil, fmt.Errorf("%w: quoted-printable: %v", ErrMalformed, err)
	}
	return out.Bytes(), nil
}

// EncodeBase64 returns RFC 2045 base64: 76 characters a line, CRLF line ends.
func EncodeBase64(b []byte) []byte { return AppendBase64(make([]byte, 0, Base64Len(len(b))), b) }

// Base64Len is the size of EncodeBase64's output for n bytes.
func Base64Len(n int) int { return (n+56)/57*78 + 2 }

// AppendBase64 appends the RFC 2045 base64 of b to dst.
func AppendBase64(dst, b []byte) []byte {
	for len(b) > 0 {
		chunk := min(len(b), base64Line)
		dst = appendBase64Line(dst, b[:chunk])
		b = b[chunk:]
	}
	return dst
}

// base64Line is how many bytes one line of 76 base64 characters holds.
const base64Line = 57

func appendBase64Line(dst, b []byte) []byte {
	return append(base64.StdEncoding.AppendEncode(dst, b), '\r', '\n')
}

// Base64Appender is AppendBase64 of bytes given in pieces: Dst grows by the lines of what was
// written, and Close writes the last, short line. What it appends is AppendBase64 of the pieces
// joined, without joining them.
//
// With W set, Dst is written to W (and emptied) whenever it holds FlushAt bytes or more, and by
// Flush: the output then streams through a buffer of that size.
type Base64Appender struct {
	Dst  []byte
	W    io.Writer
	part [base64Line]byte
	n    int   // bytes in part, waiting for a whole line
	err  error // W's first error: nothing is written after it
}

// FlushAt is how much a Base64Appender with a writer gathers before it writes.
const FlushAt = 64 << 10

// Write appends the lines b completes.
func (e *Base64Appender) Write(b []byte) {
	if e.n > 0 {
		k := copy(e.part[e.n:], b)
		e.n, b = e.n+k, b[k:]
		if e.n < base64Line {
			return
		}
		e.Dst, e.n = appendBase64Line(e.Dst, e.part[:]), 0
	}
	for len(b) >= base64Line {
		e.Dst, b = appendBase64Line(e.Dst, b[:base64Line]), b[base64Line:]
		e.flushFull()
	}
	e.n = copy(e.part[:], b)
}

// Close appends the last line and returns Dst.
func (e *Base64Appender) Close() []byte {
	if e.n > 0 {
		e.Dst, e.n = appendBase64Line(e.Dst, e.part[:e.n]), 0
	}
	return e.Dst
}

// flushFull writes Dst to W once it holds FlushAt bytes.
func (e *Base64Appender) flushFull() {
	if e.W != nil && len(e.Dst) >= FlushAt {
		e.Flush()
	}
}

// Flush writes Dst to W and empties it, and returns W's first error.
func (e *Base64Appender) Flush() error {
	if e.W != nil && e.err == nil && len(e.Dst) > 0 {
		_, e.err = e.W.Write(e.Dst)
	}
	if e.W != nil {
		e.Dst = e.Dst[:0]
	}
	return e.err
}

// DecodeBase64 decodes a base64 body, ignoring line breaks, spaces and tabs wherever they are.
func DecodeBase64(b []byte) ([]byte, error) {
	clean := b // encoding/base64 skips CR and LF itself: only spaces and tabs need removing
	if bytes.IndexByte(b, ' ') >= 0 || bytes.IndexByte(b, '\t') >= 0 {
		clean = make([]byte, 0, len(b))
		for _, c := range b {
			if c != ' ' && c != '\t' {
				clean = append(clean, c)
			}
		}
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Decode(out, clean)
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %v", ErrMalformed, err)
	}
	return out[:n], nil
}
