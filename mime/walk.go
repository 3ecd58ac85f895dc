package mime

import (
	"errors"
	"fmt"
)

// PartKind is how a protocol (S/MIME, PGP/MIME) sees one MIME entity while it looks for its
// protected part inside plain multiparts.
type PartKind int

const (
	// PartOther is neither a protected entity nor a multipart worth looking into.
	PartOther PartKind = iota
	// PartProtected is a signed or encrypted entity of the protocol.
	PartProtected
	// PartMultipart is a plain multipart whose parts may hold a protected entity.
	PartMultipart
)

// Classifier tells the kind of an entity from its header and media type.
type Classifier func(h Header, mediaType string, params map[string]string) PartKind

// ErrTooDeep: a multipart is nested beyond the caller's bound.
var ErrTooDeep = errors.New("too deeply nested")

// FirstProtected returns the first of parts (of a multipart at nesting depth-1) that is protected,
// or that is a plain multipart holding a protected entity somewhere below it. Parts that do not
// parse are skipped; nesting at or beyond maxDepth is ErrTooDeep.
func FirstProtected(parts [][]byte, depth, maxDepth int, kind Classifier) ([]byte, bool, error) {
	for _, p := range parts {
		if found, err := containsProtected(p, depth, maxDepth, kind); err != nil {
			return nil, false, err
		} else if found {
			return p, true, nil
		}
	}
	return nil, false, nil
}

func containsProtected(entity []byte, depth, maxDepth int, kind Classifier) (bool, error) {
	if depth >= maxDepth {
		return false, fmt.Errorf("%w: more than %d nested layers", ErrTooDeep, maxDepth)
	}
	h, body, err := SplitEntity(entity)
	if err != nil {
		return false, nil
	}
	mt, params, err := MediaType(h)
	if err != nil {
		return false, nil
	}
	switch kind(h, mt, params) {
	case PartProtected:
		return true, nil
	case PartMultipart:
		_, parts, err := MultipartParts(body, params["boundary"])
		if err != nil {
			return false, nil
		}
		_, found, err := FirstProtected(parts, depth+1, maxDepth, kind)
		return found, err
	}
	return false, nil
}
