package mime

import (
	"errors"
	"fmt"
)

// ErrTooDeep: a message nests protection layers or multiparts beyond the walker's bound.
var ErrTooDeep = errors.New("too deeply nested")

// Layer is one protection protocol (S/MIME, PGP/MIME) as the walker sees it: it recognises the
// protocol's protected entities and removes one layer from them, keeping its own facts.
type Layer interface {
	// Recognise reports whether e is a signed or encrypted entity of the protocol.
	Recognise(e *Entity) bool
	// Unwrap removes one layer from e, an entity Recognise accepted: it decrypts or verifies and
	// returns what lies inside. root says no plain multipart was walked through above e. An error
	// means the message cannot be processed at all; verification outcomes are facts the Layer keeps.
	Unwrap(e *Entity, root bool) (Step, error)
}

// Step is what a Layer removed from one protected entity.
type Step struct {
	Inner  *Entity  // the entity inside the removed layer
	Layers []string // what was removed, outermost first, e.g. "enveloped-data aes256-CBC"
	Signed bool     // a signature was among them
	By     Layer    // set by Walk: the Layer that took the step
}

// Walked is the outcome of Walk.
type Walked struct {
	// Content is the innermost entity once every recognised layer is removed.
	Content *Entity
	// Root: no plain multipart was walked through, so Content is the whole message inside only
	// protection layers.
	Root  bool
	Steps []Step // outermost first
}

// Layers returns every removed layer's name, outermost first, whatever its protocol.
func (w *Walked) Layers() []string {
	var out []string
	for _, s := range w.Steps {
		out = append(out, s.Layers...)
	}
	return out
}

// Walk walks a message once from its root, removing the protection layers of any of layers in any
// nesting (S/MIME inside PGP/MIME and the other way round). A plain multipart (any multipart but
// multipart/signed, whose unrecognised protocol makes it content) is walked into its first part
// that is, or holds, a recognised entity; parts that do not parse are skipped there. More than
// maxDepth steps (layers and multiparts walked into) is ErrTooDeep. An entity the walk must read
// that does not parse is its Err.
func Walk(root *Entity, maxDepth int, layers ...Layer) (*Walked, error) {
	w := &Walked{Root: true}
	e := root
	for depth := 0; ; depth++ {
		if depth >= maxDepth {
			return nil, fmt.Errorf("%w: more than %d nested layers", ErrTooDeep, maxDepth)
		}
		if e.Err != nil {
			return nil, e.Err
		}
		if l := recogniser(e, layers); l != nil {
			s, err := l.Unwrap(e, w.Root)
			if err != nil {
				return nil, err
			}
			s.By = l
			w.Steps = append(w.Steps, s)
			e = s.Inner
			continue
		}
		if plainMultipart(e) {
			if e.PartsErr != nil {
				return nil, e.PartsErr
			}
			p, err := firstProtected(e.Parts, depth+1, maxDepth, layers)
			if err != nil {
				return nil, err
			}
			if p != nil {
				w.Root = false
				e = p
				continue
			}
		}
		w.Content = e
		return w, nil
	}
}

// WalkMessage parses a received message (made CRLF first) and walks it with layers: the whole of
// one protocol's inspection that is not the protocol's own.
func WalkMessage(msg []byte, maxDepth int, layers ...Layer) (*Walked, error) {
	root, err := Parse(ToCRLF(msg))
	if err != nil {
		return nil, err
	}
	return Walk(root, maxDepth, layers...)
}

func recogniser(e *Entity, layers []Layer) Layer {
	for _, l := range layers {
		if l.Recognise(e) {
			return l
		}
	}
	return nil
}

// plainMultipart: a multipart that is not a protection of its own. A multipart/signed no Layer
// recognised is content, not a container to look into (its parts are signed together).
func plainMultipart(e *Entity) bool {
	return e.IsMultipart() && e.MediaType != "multipart/signed"
}

// firstProtected returns the first of parts (of a multipart at nesting depth-1) that is
// recognised, or that is a plain multipart holding a recognised entity somewhere below it.
func firstProtected(parts []*Entity, depth, maxDepth int, layers []Layer) (*Entity, error) {
	for _, p := range parts {
		if found, err := containsProtected(p, depth, maxDepth, layers); err != nil {
			return nil, err
		} else if found {
			return p, nil
		}
	}
	return nil, nil
}

func containsProtected(e *Entity, depth, maxDepth int, layers []Layer) (bool, error) {
	if depth >= maxDepth {
		return false, fmt.Errorf("%w: more than %d nested layers", ErrTooDeep, maxDepth)
	}
	switch {
	case e.Err != nil:
		return false, nil
	case recogniser(e, layers) != nil:
		return true, nil
	case plainMultipart(e) && e.PartsErr == nil:
		p, err := firstProtected(e.Parts, depth+1, maxDepth, layers)
		return p != nil, err
	}
	return false, nil
}

// Inspector is a Layer that reports what it found in the one message it served (smime.Layer,
// pgp.Layer).
type Inspector[R any] interface {
	Layer
	Result(*Walked) R
}

// InspectWith parses msg and walks it with l alone: the body of each protocol's own Inspect.
// Nesting beyond maxDepth is returned wrapped in unsupported as well as in ErrTooDeep.
func InspectWith[R any](msg []byte, maxDepth int, l Inspector[R], unsupported error) (R, error) {
	walked, err := WalkMessage(msg, maxDepth, l)
	if errors.Is(err, ErrTooDeep) {
		err = fmt.Errorf("%w: %w", unsupported, err)
	}
	if err != nil {
		var none R
		return none, err
	}
	return l.Result(walked), nil
}

// MaxLayers bounds the protection layers (and the plain multiparts walked through) of one message,
// whatever the protocols: the one depth bound of smime.Inspect, pgp.Inspect and the inbound walk.
const MaxLayers = 8

// Findings joins what a protocol's Layer found in one message into the one error its Inbound.Err
// reports: nil only when the message is signed, the signed part is the root (inside envelopes and
// signatures only), a signer was established and errs are all nil; otherwise an error wrapping
// sentinel and every finding, so errors.Is reaches each of them.
func Findings(sentinel error, signed, coversRoot, hasSigner bool, noSigner string, errs ...error) error {
	if !signed {
		return fmt.Errorf("%w: not signed", sentinel)
	}
	if !coversRoot {
		errs = append(errs, errors.New("the signed part sits inside an unsigned multipart"))
	}
	if !hasSigner {
		errs = append(errs, errors.New(noSigner))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", sentinel, err)
	}
	return nil
}
