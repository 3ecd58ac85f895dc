package mime

import (
	"bytes"
	"fmt"
	"strings"
)

// Field is one header field exactly as received: Raw holds "Name: value" with any folding and the
// final CRLF, so fields we do not touch are signed and sent byte for byte.
type Field struct {
	Name string // as written
	Raw  []byte
}

// Value returns the unfolded, trimmed value.
func (f Field) Value() string {
	v := f.Raw[len(f.Name)+1:]
	v = bytes.ReplaceAll(v, []byte("\r\n"), nil)
	return strings.TrimSpace(string(v))
}

// Header is a header section in order.
type Header []Field

// Get returns the value of the first field named name (case-insensitive), or "".
func (h Header) Get(name string) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value()
		}
	}
	return ""
}

// Count returns how many fields are named name.
func (h Header) Count(name string) int {
	n := 0
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			n++
		}
	}
	return n
}

// Without returns h minus the fields for which drop is true.
func (h Header) Without(drop func(name string) bool) Header {
	out := make(Header, 0, len(h))
	for _, f := range h {
		if !drop(f.Name) {
			out = append(out, f)
		}
	}
	return out
}

// WriteTo appends the raw fields to b.
func (h Header) WriteTo(b *bytes.Buffer) {
	for _, f := range h {
		b.Write(f.Raw)
	}
}

// NewField formats a field we generate. The value must already be 7-bit and free of CR/LF.
func NewField(name, value string) Field {
	return Field{Name: name, Raw: []byte(name + ": " + value + "\r\n")}
}

// IsContentField reports whether name is a Content-* field, which belongs to the MIME entity.
func IsContentField(name string) bool {
	return len(name) > 8 && strings.EqualFold(name[:8], "content-")
}

// SplitEntity splits canonical (CRLF) bytes into header fields and body.
func SplitEntity(b []byte) (Header, []byte, error) {
	var h Header
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
			return nil, nil, fmt.Errorf("%w: Header line without a Field Name: %q", ErrMalformed, truncate(raw))
		}
		name := string(raw[:colon])
		for _, c := range []byte(name) {
			if c <= ' ' || c >= 0x7f {
				return nil, nil, fmt.Errorf("%w: invalid Header Field name %q", ErrMalformed, truncate(raw[:colon]))
			}
		}
		if !bytes.HasSuffix(raw, []byte("\r\n")) {
			raw = append(raw[:len(raw):len(raw)], '\r', '\n')
		}
		h = append(h, Field{Name: name, Raw: raw})
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
// sevenBitField) or refused, trailing white space is removed from every line (some relays strip it),
// continuation lines left blank are dropped (a blank line would end the header), and a line longer
// than RFC 5322 allows is refused.
func cleanHeader(h Header) (Header, error) {
	out := h
	for i, f := range h {
		if !IsASCII(f.Raw) {
			enc, err := sevenBitField(f)
			if err != nil {
				return nil, err
			}
			if &out[0] == &h[0] {
				out = append(Header(nil), h...)
			}
			out[i], f = enc, enc
		}
		if SignatureSafe(f.Raw[:len(f.Raw)-2]) && !bytes.Contains(f.Raw, []byte("\r\n \r\n")) && !bytes.Contains(f.Raw, []byte("\r\n\t\r\n")) {
			continue
		}
		if &out[0] == &h[0] { // copy on first write: h may be shared with the caller
			out = append(Header(nil), h...)
		}
		lines := bytes.Split(f.Raw[:len(f.Raw)-2], []byte("\r\n"))
		var raw []byte
		for j, l := range lines {
			l = bytes.TrimRight(l, " \t")
			if len(l) > maxLine {
				return nil, fmt.Errorf("%w: Header Field %s has a line over %d octets", ErrMalformed, f.Name, maxLine)
			}
			if j > 0 && len(l) == 0 {
				continue
			}
			if j > 0 {
				raw = append(raw, '\r', '\n')
			}
			raw = append(raw, l...)
		}
		out[i] = Field{Name: f.Name, Raw: append(raw, '\r', '\n')}
	}
	return out, nil
}
