package mime

import (
	"bytes"
	"fmt"
	stdmime "mime"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// verbatimFields hold syntax with no place for an encoded-word (message identifiers, dates, tokens,
// trace data): 8-bit data in them cannot be made 7-bit without changing what they say.
var verbatimFields = map[string]bool{
	"message-id": true, "in-reply-to": true, "references": true, "resent-message-id": true,
	"date": true, "resent-date": true, "received": true, "return-path": true,
	"mime-version": true, "content-transfer-encoding": true, "content-id": true, "content-md5": true,
}

// addressFields hold address lists (RFC 5322 3.4): only their display names may be encoded.
var addressFields = map[string]bool{
	"from": true, "sender": true, "reply-to": true, "to": true, "cc": true, "bcc": true,
	"resent-from": true, "resent-sender": true, "resent-to": true, "resent-cc": true, "resent-bcc": true,
	"disposition-notification-to": true, "mail-followup-to": true, "mail-reply-to": true,
	"errors-to": true, "return-receipt-to": true,
}

// sevenBitField returns f unchanged when it is ASCII, else re-encoded so that it is 7-bit and says
// the same: MIME parameters per RFC 2231, the display names of address fields and the phrases of
// Keywords as RFC 2047 phrases (the addresses themselves are never changed: a non-ASCII address
// needs SMTPUTF8, which is refused), and every other field as RFC 2047 unstructured text. A field
// whose syntax has no encoded form (see verbatimFields), a NUL, or 8-bit data that is not UTF-8 is
// refused with ErrMalformed.
func sevenBitField(f Field) (Field, error) {
	if IsASCII(f.Raw) {
		return f, nil
	}
	name := strings.ToLower(f.Name)
	v := f.Value()
	switch {
	case bytes.IndexByte(f.Raw, 0) >= 0:
		return Field{}, fmt.Errorf("%w: NUL in header field %s", ErrMalformed, f.Name)
	case !utf8.ValidString(v):
		return Field{}, fmt.Errorf("%w: 8-bit header field %s is not UTF-8", ErrMalformed, f.Name)
	case verbatimFields[name]:
		return Field{}, fmt.Errorf("%w: 8-bit data in header field %s, which has no encoded form", ErrMalformed, f.Name)
	case name == "content-type" || name == "content-disposition":
		mt, params, err := stdmime.ParseMediaType(v)
		if err != nil || !IsASCII([]byte(mt)) {
			return Field{}, fmt.Errorf("%w: header %s: %v", ErrMalformed, f.Name, err)
		}
		formatted := stdmime.FormatMediaType(mt, params)
		if formatted == "" {
			return Field{}, fmt.Errorf("%w: header %s cannot be re-encoded", ErrMalformed, f.Name)
		}
		return NewField(f.Name, formatted), nil
	case addressFields[name]:
		return encodeAddressField(f.Name, v)
	case name == "keywords":
		items := splitOutsideQuotes(v, ',')
		for i, k := range items {
			items[i] = encodePhrase(unquote(strings.TrimSpace(k)))
		}
		return listField(f.Name, items), nil
	}
	return NewField(f.Name, encodeWords(v, false)), nil
}

// encodeAddressField re-formats an 8-bit address list with each display name as an RFC 2047 phrase
// (comments that name an address become its display name; a group's members are listed without it).
func encodeAddressField(name, v string) (Field, error) {
	list, err := mail.ParseAddressList(v)
	if err != nil {
		return Field{}, fmt.Errorf("%w: header %s: %v", ErrMalformed, name, err)
	}
	if len(list) == 0 {
		// An empty group ("Empfänger:;"): only its name can be 8-bit.
		group, _, ok := strings.Cut(v, ":")
		if !ok {
			return Field{}, fmt.Errorf("%w: header %s names no address", ErrMalformed, name)
		}
		return NewField(name, encodePhrase(strings.TrimSpace(group))+":;"), nil
	}
	items := make([]string, len(list))
	for i, a := range list {
		if !IsASCII([]byte(a.Address)) {
			return Field{}, fmt.Errorf("%w: non-ASCII address in %s (SMTPUTF8 is not supported)", ErrMalformed, name)
		}
		switch {
		case a.Name == "":
			items[i] = bareAddress(a.Address)
		case IsASCII([]byte(a.Name)):
			items[i] = a.String() // quotes the name where it must
		default:
			items[i] = encodePhrase(a.Name) + " " + angleAddress(a.Address)
		}
	}
	return listField(name, items), nil
}

// angleAddress returns addr as "<addr-spec>", its local part quoted where RFC 5322 requires it.
func angleAddress(addr string) string { return (&mail.Address{Address: addr}).String() }

// bareAddress returns addr as an addr-spec, its local part quoted where RFC 5322 requires it.
func bareAddress(addr string) string {
	s := angleAddress(addr)
	return s[1 : len(s)-1]
}

// listField writes a comma-separated list, one item a line when it would not fit on one.
func listField(name string, items []string) Field {
	sep := ", "
	if n := len(name) + 2 + len(strings.Join(items, sep)); n > 78 {
		sep = ",\r\n "
	}
	return NewField(name, strings.Join(items, sep))
}

// encodePhrase returns s as an RFC 5322 phrase: unchanged when it is ASCII, else as encoded-words
// that are valid in a phrase (RFC 2047 5(3)).
func encodePhrase(s string) string {
	if IsASCII([]byte(s)) {
		return s
	}
	return encodeWords(s, true)
}

// encodeWords encodes s as RFC 2047 UTF-8 encoded-words, Q or B whichever is shorter (B when Q would
// leave a character a phrase may not hold), folded between words so no line grows past 78 octets
// for want of a break.
func encodeWords(s string, phrase bool) string {
	q := stdmime.QEncoding.Encode("utf-8", s)
	if b := stdmime.BEncoding.Encode("utf-8", s); len(b) < len(q) || (phrase && strings.ContainsAny(q, `()<>[]:;@\,."`)) {
		q = b
	}
	// '?' is always encoded inside a word, so "?= =?" only ever separates two of them.
	return strings.ReplaceAll(q, "?= =?", "?=\r\n =?")
}

// unquote returns the content of an RFC 5322 quoted string that holds 8-bit text, which becomes
// an encoded phrase; anything else is returned as it is.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' || IsASCII([]byte(s)) {
		return s
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// splitOutsideQuotes splits s at each sep that is not inside a quoted string.
func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	quoted, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case c == '\\' && quoted:
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
