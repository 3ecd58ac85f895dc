package smime

import (
	"bytes"
	"fmt"
	"strings"
)

// field is one header field exactly as received: raw holds "Name: value" with any folding and the
// final CRLF, so fields we do not touch are signed and sent byte for byte.
type field struct {
	name string // canonical case as written
	raw  []byte
}

// value returns the unfolded, trimmed value.
func (f field) value() string {
	v := f.raw[len(f.name)+1:]
	v = bytes.ReplaceAll(v, []byte("\r\n"), nil)
	return strings.TrimSpace(string(v))
}

type header []field

func (h header) get(name string) string {
	for _, f := range h {
		if strings.EqualFold(f.name, name) {
			return f.value()
		}
	}
	return ""
}

func (h header) count(name string) int {
	n := 0
	for _, f := range h {
		if strings.EqualFold(f.name, name) {
			n++
		}
	}
	return n
}

// without returns h minus the fields for which drop is true.
func (h header) without(drop func(name string) bool) header {
	out := make(header, 0, len(h))
	for _, f := range h {
		if !drop(f.name) {
			out = append(out, f)
		}
	}
	return out
}

func (h header) writeTo(b *bytes.Buffer) {
	for _, f := range h {
		b.Write(f.raw)
	}
}

// newField formats a field we generate. The value must already be 7-bit and free of CR/LF.
func newField(name, value string) field {
	return field{name: name, raw: []byte(name + ": " + value + "\r\n")}
}

func isContentField(name string) bool {
	return len(name) > 8 && strings.EqualFold(name[:8], "content-")
}

// splitEntity splits canonical (CRLF) bytes into header fields and body.
func splitEntity(b []byte) (header, []byte, error) {
	var h header
	for len(b) > 0 {
		if bytes.HasPrefix(b, []byte("\r\n")) {
			return h, b[2:], nil
		}
		end := 0
		for {
			i := bytes.Index(b[end:], []byte("\r\n"))
			if i < 0 {
				end = len(b)
				break
			}
			end += i + 2
			if end >= len(b) || (b[end] != ' ' && b[end] != '\t') {
				break
			}
		}
		raw := b[:end]
		colon := bytes.IndexByte(raw, ':')
		if colon <= 0 {
			return nil, nil, fmt.Errorf("%w: header line without a field name: %q", ErrMalformed, truncate(raw))
		}
		name := string(raw[:colon])
		for _, c := range []byte(name) {
			if c <= ' ' || c >= 0x7f {
				return nil, nil, fmt.Errorf("%w: invalid header field name %q", ErrMalformed, truncate(raw[:colon]))
			}
		}
		if !bytes.HasSuffix(raw, []byte("\r\n")) {
			raw = append(raw[:len(raw):len(raw)], '\r', '\n')
		}
		h = append(h, field{name: name, raw: raw})
		b = b[end:]
	}
	return h, nil, nil
}

func truncate(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// cleanHeader makes header fields signature-safe like bodies: 8-bit fields are re-encoded (see
// sevenBitField) or refused, trailing white space is removed from
// every line (some relays strip it), continuation lines left blank are dropped (a blank line would end
// the header), and a line longer than RFC 5322 allows is refused.
func cleanHeader(h header) (header, error) {
	out := h
	for i, f := range h {
		if !isASCII(f.raw) {
			enc, err := sevenBitField(f)
			if err != nil {
				return nil, err
			}
			if &out[0] == &h[0] {
				out = append(header(nil), h...)
			}
			out[i], f = enc, enc
		}
		if signatureSafe(f.raw[:len(f.raw)-2]) && !bytes.Contains(f.raw, []byte("\r\n \r\n")) && !bytes.Contains(f.raw, []byte("\r\n\t\r\n")) {
			continue
		}
		if &out[0] == &h[0] { // copy on first write: h may be shared with the caller
			out = append(header(nil), h...)
		}
		lines := bytes.Split(f.raw[:len(f.raw)-2], []byte("\r\n"))
		var raw []byte
		for j, l := range lines {
			l = bytes.TrimRight(l, " \t")
			if len(l) > maxLine {
				return nil, fmt.Errorf("%w: header field %s has a line over %d octets", ErrMalformed, f.name, maxLine)
			}
			if j > 0 && len(l) == 0 {
				continue
			}
			if j > 0 {
				raw = append(raw, '\r', '\n')
			}
			raw = append(raw, l...)
		}
		out[i] = field{name: f.name, raw: append(raw, '\r', '\n')}
	}
	return out, nil
}
