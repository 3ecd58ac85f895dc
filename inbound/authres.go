package inbound

import (
	"errors"
	"mime"
	"strings"
)

// This file decides which incoming header fields claim to be sealpost's: Authentication-Results
// (RFC 8601) naming our authserv-id, in any spelling, and Sealpost-*/X-Sealpost-* fields. The
// desk's message never carries one of them that sealpost did not write (DESIGN.md invariant 6).
//
// The authserv-id is read with the RFC 8601 grammar (CFWS, comments, quoted strings, version).
// github.com/emersion/go-msgauth/authres (v0.7.0) is not used for this: its Parse cuts the value
// at ";" and spaces without CFWS, so "(x) id;" is an "unsupported version" error, and a quoted
// or commented id comes back with its quotes or comment attached. It serves as a second, lenient
// reader in FuzzAuthResultsClaim instead.

// errAuthRes: an Authentication-Results value whose authserv-id cannot be read.
var errAuthRes = errors.New("Authentication-Results: malformed authserv-id")

// maxCommentDepth bounds nested comments; real fields have none.
const maxCommentDepth = 32

// authServID returns the authserv-id of an Authentication-Results value (unfolded) and its
// version ("" when absent), by RFC 8601 section 2.2:
//
//	authres-payload = [CFWS] authserv-id [ CFWS authres-version ] ( no-result / 1*resinfo ) [CFWS] CRLF
//	authserv-id     = value            ; RFC 2045: token / quoted-string
//	authres-version = 1*DIGIT [CFWS]
//
// What follows the id (and version) must be ";" or the end of the value.
func authServID(v string) (id, version string, err error) {
	p := &cfwsLexer{s: v}
	if err := p.skipCFWS(); err != nil {
		return "", "", err
	}
	if id, err = p.value(); err != nil {
		return "", "", err
	}
	if err := p.skipCFWS(); err != nil {
		return "", "", err
	}
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	version = p.s[start:p.i]
	if err := p.skipCFWS(); err != nil {
		return "", "", err
	}
	if p.i < len(p.s) && p.s[p.i] != ';' {
		return "", "", errAuthRes
	}
	return id, version, nil
}

// cfwsLexer reads the RFC 5322 lexical tokens an authserv-id is made of.
type cfwsLexer struct {
	s string
	i int
}

// skipCFWS skips white space and (nested) comments with their quoted-pairs.
func (p *cfwsLexer) skipCFWS() error {
	depth := 0
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case depth == 0 && (c == ' ' || c == '\t' || c == '\r' || c == '\n'):
			p.i++
		case c == '(':
			if depth++; depth > maxCommentDepth {
				return errAuthRes
			}
			p.i++
		case depth > 0 && c == ')':
			depth--
			p.i++
		case depth > 0 && c == '\\':
			p.i += 2
		case depth > 0:
			p.i++
		default:
			return nil
		}
	}
	if depth > 0 {
		return errAuthRes // unterminated comment
	}
	p.i = len(p.s)
	return nil
}

// value reads an RFC 2045 value: a quoted-string (unquoted, quoted-pairs resolved) or a token.
func (p *cfwsLexer) value() (string, error) {
	if p.i < len(p.s) && p.s[p.i] == '"' {
		var b strings.Builder
		for p.i++; p.i < len(p.s); p.i++ {
			switch c := p.s[p.i]; c {
			case '"':
				p.i++
				if b.Len() == 0 {
					return "", errAuthRes
				}
				return b.String(), nil
			case '\\':
				if p.i+1 < len(p.s) {
					p.i++
					b.WriteByte(p.s[p.i])
				}
			default:
				b.WriteByte(c)
			}
		}
		return "", errAuthRes // unterminated quoted-string
	}
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	if p.i == start {
		return "", errAuthRes
	}
	return p.s[start:p.i], nil
}

// isTokenChar: RFC 2045 token characters (any CHAR except SPACE, CTLs and tspecials), and 8-bit
// bytes (RFC 6532), which then simply never equal an ASCII authserv-id.
func isTokenChar(c byte) bool {
	return c > ' ' && c != 0x7f && !strings.ContainsRune(`()<>@,;:\"/[]?=`, rune(c))
}

// normAuthServID is the form in which authserv-ids are compared: case-insensitive, without
// surrounding space or trailing dots (a domain name's root label).
func normAuthServID(id string) string {
	return strings.TrimRight(strings.ToLower(strings.TrimSpace(id)), ".")
}

// claimsAuthServID reports whether an incoming Authentication-Results value must be treated as
// ours, and so dropped: its authserv-id, read by RFC 8601, is ours in any spelling; or it cannot be
// read at all (nobody can tell whose it is); or ours appears as a whole word in what comes before
// its first ";" after RFC 2047 decoding and without quoting, which is where a lenient reader (one
// that cuts at ";", or decodes encoded-words, or ignores comments differently) would find the id.
func claimsAuthServID(value, ours string) bool {
	ours = normAuthServID(ours)
	id, _, err := authServID(value)
	if err != nil || normAuthServID(id) == ours {
		return true
	}
	head, _, _ := strings.Cut(value, ";")
	if d, err := new(mime.WordDecoder).DecodeHeader(head); err == nil {
		head = d
	}
	head = strings.ToLower(strings.NewReplacer(`\`, "", `"`, " ").Replace(head))
	return containsWord(head, ours)
}

// containsWord reports whether word occurs in s with no domain-name character (letter, digit,
// '-', '.') before it and no letter, digit or '-' after it (a trailing dot may follow).
func containsWord(s, word string) bool {
	if word == "" {
		return false
	}
	for i := 0; ; {
		j := strings.Index(s[i:], word)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(word)
		if (j == 0 || !isLabelChar(s[j-1]) && s[j-1] != '.') && (end == len(s) || !isLabelChar(s[end])) {
			return true
		}
		i = j + 1
	}
}

func isLabelChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c >= 0x80
}

// isSealpostField reports whether a field name is one only sealpost may write: Sealpost-* and
// X-Sealpost-*, in any case.
func isSealpostField(name string) bool {
	n := strings.ToLower(name)
	return strings.HasPrefix(n, "sealpost-") || strings.HasPrefix(n, "x-sealpost-")
}

// isAuthResultsField reports whether a field name is an Authentication-Results field or a variant
// of it (ARC-Authentication-Results, X-Original-Authentication-Results, …).
func isAuthResultsField(name string) bool {
	return strings.HasSuffix(strings.ToLower(name), "authentication-results")
}
