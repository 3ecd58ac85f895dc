package mime

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	stdmime "mime"
	"net/mail"
	"strings"
)

// Errors a caller can branch on with errors.Is.
var (
	// ErrMalformed: the message cannot be parsed or made canonical; the sender must fix it.
	ErrMalformed = errors.New("malformed message")
	// ErrNoFrom: the message has no single From address.
	ErrNoFrom = errors.New("message needs exactly one From address")
)

// Options are per-message choices.
type Options struct {
	// HeaderProtection copies the header fields into the payload (RFC 9788).
	HeaderProtection bool
	// Encrypted says the payload will be encrypted: header protection then reduces the outer
	// header to what transport needs (hp="cipher") and adds a legacy display; otherwise hp="clear"
	// and the outer header stays whole.
	Encrypted bool
	// Boundary makes the boundaries of multiparts Prepare writes (the legacy display's wrapper);
	// nil means NewBoundary. Tests set it for byte-stable output.
	Boundary func() (string, error)
}

func (o Options) boundary() (string, error) {
	if o.Boundary != nil {
		return o.Boundary()
	}
	return NewBoundary()
}

// Prepared is a message split for protection.
type Prepared struct {
	Outer Header // fields that stay outside the protection (no MIME-Version, no Content-*)
	Inner Header // the payload's header fields
	Body  []byte // the payload's canonical body
	From  string // the single From address, as written
	// Encrypted says the payload was prepared for encryption (Options.Encrypted): with header
	// protection its Outer then hides what only the ciphertext may carry.
	Encrypted bool
}

// WriteContent appends the payload entity (Inner, a blank line, Body) to b: the bytes to sign.
func (p *Prepared) WriteContent(b *bytes.Buffer) {
	p.Inner.WriteTo(b)
	b.WriteString("\r\n")
	b.Write(p.Body)
}

// Mentions reports whether s occurs in the payload entity's header fields or body: a boundary that
// does cannot frame it.
func (p *Prepared) Mentions(s string) bool {
	for _, f := range p.Inner {
		if bytes.Contains(f.Raw, []byte(s)) {
			return true
		}
	}
	return bytes.Contains(p.Body, []byte(s))
}

// Content returns the payload entity.
func (p *Prepared) Content() []byte {
	var b bytes.Buffer
	b.Grow(len(p.Body) + 1024)
	p.WriteContent(&b)
	return b.Bytes()
}

// Prepare splits msg, an RFC 5322 message, and makes its payload canonical. Every header field,
// outside and inside, comes out 7-bit: 8-bit fields (a raw UTF-8 Subject or display name submitted
// without SMTPUTF8) are RFC 2047/2231 encoded, or refused when their syntax has no encoded form.
// With opts.HeaderProtection the header is protected as RFC 9788 says (see hp.go).
func Prepare(msg []byte, opts Options) (*Prepared, error) {
	h, body, err := SplitEntity(ToCRLF(msg))
	if err != nil {
		return nil, err
	}
	return PrepareEntity(h, body, opts)
}

// PrepareEntity is Prepare for a message already split (SplitEntity of its CRLF form) into h and
// body, which it does not change: a caller that has parsed the message prepares it without a second
// parse, once per variant (encrypted, signed in clear).
func PrepareEntity(h Header, body []byte, opts Options) (*Prepared, error) {
	from, err := SingleFrom(h)
	if err != nil {
		return nil, err
	}
	outer, err := cleanHeader(h.Without(func(n string) bool { return IsContentField(n) || strings.EqualFold(n, "MIME-Version") }))
	if err != nil {
		return nil, err
	}
	inner := h.Without(func(n string) bool { return !IsContentField(n) })
	if inner.Get("Content-Type") == "" {
		charset := "us-ascii"
		if !IsASCII(body) {
			charset = "utf-8"
		}
		inner = append(inner, NewField("Content-Type", "text/plain; charset="+charset))
	}
	var plan protection
	if opts.HeaderProtection {
		plan = planProtection(outer, opts.Encrypted)
		outer = plan.outer
		if len(plan.display) > 0 {
			if inner, body, err = addLegacyDisplay(inner, body, plan.display, opts.boundary); err != nil {
				return nil, err
			}
		}
	}
	inner, body, err = canonicalBody(inner, body, 0)
	if err != nil {
		return nil, err
	}
	if opts.HeaderProtection {
		if inner, err = plan.apply(inner); err != nil {
			return nil, err
		}
	}
	return &Prepared{Outer: outer, Inner: inner, Body: body, From: from, Encrypted: opts.Encrypted}, nil
}

// Canonical makes an entity with header h and body signature-safe (see the package invariant).
func Canonical(h Header, body []byte) (Header, []byte, error) { return canonicalBody(h, body, 0) }

// SingleFrom returns the one address in h's From field. The error wraps ErrNoFrom and says what is
// wrong: no or several From fields, a field that does not parse, or several addresses.
func SingleFrom(h Header) (string, error) {
	if n := h.Count("From"); n != 1 {
		return "", fmt.Errorf("%w: %d From fields", ErrNoFrom, n)
	}
	list, err := mail.ParseAddressList(h.Get("From"))
	if err != nil {
		return "", fmt.Errorf("%w: the From field cannot be parsed: %v", ErrNoFrom, err)
	}
	if len(list) != 1 {
		return "", fmt.Errorf("%w: the From field names %d addresses", ErrNoFrom, len(list))
	}
	return list[0].Address, nil
}

// NewBoundary returns a fresh MIME boundary with 120 random bits.
func NewBoundary() (string, error) {
	var r [15]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	return "sealpost-" + hex.EncodeToString(r[:]), nil
}

// HeaderValue returns the decoded (RFC 2047) value of a header field of an entity, or "".
func HeaderValue(entity []byte, name string) string {
	h, _, err := SplitEntity(ToCRLF(entity))
	if err != nil {
		return ""
	}
	v := h.Get(name)
	if d, err := new(stdmime.WordDecoder).DecodeHeader(v); err == nil {
		return d
	}
	return v
}
