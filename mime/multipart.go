package mime

import (
	"bytes"
	"fmt"
)

// Multipart writes a multipart entity (RFC 2046 5.1) into a buffer: its Content-Type field, a
// preamble, the parts and the close delimiter. It is the one place sealpost frames multiparts.
//
// Every delimiter starts with the CRLF that RFC 2046 makes part of it, so a part's body is written
// without its last line break (or with it, when the line break belongs to the content, as the
// signed bytes of multipart/signed do).
type Multipart struct {
	b        *bytes.Buffer
	boundary string
	started  bool // a preamble or a part was written: the next delimiter needs its CRLF
}

// Content is what a boundary must not occur in.
type Content interface {
	// Mentions reports whether s occurs in the content.
	Mentions(s string) bool
}

// Bytes is content held in one slice.
type Bytes []byte

// Mentions implements Content.
func (b Bytes) Mentions(s string) bool { return bytes.Contains(b, []byte(s)) }

// NewMultipart returns a Multipart writing to b, with a boundary from next (NewBoundary when nil)
// that content (when not nil) does not mention: a boundary that occurs in the content is never
// used, next is asked again.
func NewMultipart(b *bytes.Buffer, next func() (string, error), content Content) (Multipart, error) {
	if next == nil {
		next = NewBoundary
	}
	for tries := 0; ; tries++ {
		boundary, err := next()
		if err != nil {
			return Multipart{}, err
		}
		if boundary == "" || tries > 100 {
			return Multipart{}, fmt.Errorf("mime: no usable boundary (last %q)", boundary)
		}
		if content == nil || !content.Mentions(boundary) {
			return Multipart{b: b, boundary: boundary}, nil
		}
	}
}

// Boundary returns the boundary.
func (m *Multipart) Boundary() string { return m.boundary }

// ContentType writes the entity's Content-Type field: mediaType (type, subtype and any parameters
// but the boundary), then the boundary parameter on a continuation line.
func (m *Multipart) ContentType(mediaType string) {
	m.b.WriteString("Content-Type: ")
	m.b.WriteString(mediaType)
	m.b.WriteString(";\r\n boundary=\"")
	m.b.WriteString(m.boundary)
	m.b.WriteString("\"\r\n")
}

// Preamble writes the text before the first part (for readers without MIME), after the blank line
// that ends the entity's header, which the caller writes.
func (m *Multipart) Preamble(text string) {
	m.b.WriteString(text)
	m.started = true
}

// Part starts a part: the delimiter, then the part's header h and the blank line. The caller
// writes the body.
func (m *Multipart) Part(h Header) {
	m.Entity()
	h.WriteTo(m.b)
	m.b.WriteString("\r\n")
}

// Entity starts a part whose header and body the caller writes whole (a prepared entity).
func (m *Multipart) Entity() {
	if m.started {
		m.b.WriteString("\r\n")
	}
	m.b.WriteString("--")
	m.b.WriteString(m.boundary)
	m.b.WriteString("\r\n")
	m.started = true
}

// Close writes the close delimiter.
func (m *Multipart) Close() {
	m.b.WriteString("\r\n--")
	m.b.WriteString(m.boundary)
	m.b.WriteString("--\r\n")
}
