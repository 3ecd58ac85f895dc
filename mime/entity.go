package mime

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Bounds of one Parse: hostile mail must not cost unbounded recursion or allocations.
const (
	// MaxEntityDepth bounds multipart nesting inside one parsed entity; deeper parts are not split.
	MaxEntityDepth = 32
	// MaxEntities bounds the entities one Parse builds; the multipart that would exceed it is not
	// split.
	MaxEntities = 10000
)

// ErrTooMany: a message has more MIME parts than MaxEntities.
var ErrTooMany = errors.New("too many MIME parts")

// Entity is one MIME entity of a parsed message. It keeps the bytes it was parsed from: Raw is the
// whole entity, each Field of Header its own raw bytes, Body a sub-slice of Raw, so that what is not
// touched is re-emitted (signed, sent, verified) byte for byte.
type Entity struct {
	Raw       []byte            // the entity exactly as parsed: header, blank line, body
	Header    Header            // nil when Err is set
	Body      []byte            // after the blank line that ends the header (nil when there is none)
	MediaType string            // lower case; "text/plain" when there is no Content-Type
	Params    map[string]string // the Content-Type parameters, names lower case
	// Err says why this entity cannot be read: a header that does not split into fields, or a
	// Content-Type that does not parse. Parse returns the root's header error instead; a part or a
	// root with a bad Content-Type carries it here, and whoever reaches it decides.
	Err error
	// Parts are a multipart's parts in order (nil for a leaf). A part that does not parse is kept,
	// with its Err set.
	Parts []*Entity
	// PartsErr says why a multipart's body does not split into Parts (no boundary, no closing
	// delimiter, nesting beyond MaxEntityDepth, more than MaxEntities parts).
	PartsErr error
}

// IsMultipart reports whether the entity is a multipart/*.
func (e *Entity) IsMultipart() bool { return strings.HasPrefix(e.MediaType, "multipart/") }

// Encode writes the entity as parsed: each header field's raw bytes, the blank line, the body. For
// an entity whose header ends with a blank line this is Raw again, byte for byte.
func (e *Entity) Encode(b *bytes.Buffer) {
	e.Header.WriteTo(b)
	b.WriteString("\r\n")
	b.Write(e.Body)
}

// Parse reads canonical (CRLF, see ToCRLF) bytes into an entity tree: the header, and for a
// multipart each part, down to MaxEntityDepth and at most MaxEntities entities. It returns an error
// only when the root's header does not split into fields; every other problem is recorded in the
// tree (Err, PartsErr) for the walker or the caller to judge. It never panics and copies nothing:
// the tree points into b.
func Parse(b []byte) (*Entity, error) {
	p := &parser{}
	e := p.entity(b, 0)
	if e.Header == nil && e.Err != nil {
		return nil, e.Err
	}
	return e, nil
}

type parser struct{ count int }

func (p *parser) entity(b []byte, depth int) *Entity {
	p.count++
	e := &Entity{Raw: b}
	h, body, err := SplitEntity(b)
	if err != nil {
		e.Err = err
		return e
	}
	e.Header, e.Body = h, body
	if h == nil {
		e.Header = Header{} // an empty header is a header: only Err makes it nil
	}
	e.MediaType, e.Params, e.Err = MediaType(h)
	if e.Err != nil || !e.IsMultipart() {
		return e
	}
	switch {
	case depth >= MaxEntityDepth:
		e.PartsErr = fmt.Errorf("%w: more than %d nested multiparts", ErrTooDeep, MaxEntityDepth)
		return e
	case p.count >= MaxEntities:
		e.PartsErr = fmt.Errorf("%w: more than %d", ErrTooMany, MaxEntities)
		return e
	}
	_, parts, err := MultipartParts(body, e.Params["boundary"])
	if err != nil {
		e.PartsErr = err
		return e
	}
	if p.count+len(parts) > MaxEntities {
		e.PartsErr = fmt.Errorf("%w: more than %d", ErrTooMany, MaxEntities)
		return e
	}
	e.Parts = make([]*Entity, len(parts))
	for i, part := range parts {
		e.Parts[i] = p.entity(part, depth+1)
	}
	return e
}

// SignedParts returns the two parts of a multipart/signed entity (RFC 1847 2.1): the signed
// content and the signature. Parts that did not parse give their own error; another number of
// parts wraps ErrMalformed.
func (e *Entity) SignedParts() (content, signature *Entity, err error) {
	if e.PartsErr != nil {
		return nil, nil, e.PartsErr
	}
	if len(e.Parts) != 2 {
		return nil, nil, fmt.Errorf("%w: multipart/signed with %d parts", ErrMalformed, len(e.Parts))
	}
	if e.Parts[1].Err != nil {
		return nil, nil, e.Parts[1].Err
	}
	return e.Parts[0], e.Parts[1], nil
}
