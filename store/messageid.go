package store

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// tokenLen is the length of a thread token: 15 random bytes (120 bits) in
// lower-case base32.
const tokenLen = 24

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

var tokenEncoding = base32.NewEncoding(tokenAlphabet).WithPadding(base32.NoPadding)

// randomString returns n random bytes from crypto/rand in token base32.
func randomString(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error (it crashes the program instead).
	_, _ = rand.Read(b)
	return tokenEncoding.EncodeToString(b)
}

func newToken() string { return randomString(15) }

// MessageIDForThread returns a fresh Message-ID "<token.random@host>" for
// outbound mail of the thread with token; the random part keeps each
// message's ID unique.
func MessageIDForThread(token, host string) string {
	return "<" + token + "." + randomString(10) + "@" + host + ">"
}

// validToken reports whether s has the shape of a thread token.
func validToken(s string) bool {
	if len(s) != tokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(tokenAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// messageIDKey is the form in which Message-IDs are compared: surrounding
// white space and angle brackets removed.
func messageIDKey(id string) string {
	id = strings.TrimSpace(id)
	if len(id) >= 2 && id[0] == '<' && id[len(id)-1] == '>' {
		id = id[1 : len(id)-1]
	}
	return id
}

// TokenFromMessageID extracts the thread token from a Message-ID of the form
// "<token.anything@host>" (or "<token@host>"; the brackets are optional). It
// only checks the shape; whether the thread exists is the store's business.
func TokenFromMessageID(id string) (string, bool) {
	id = messageIDKey(id)
	left, host, ok := strings.Cut(id, "@")
	if !ok || host == "" || strings.ContainsAny(host, "@<> \t\r\n") {
		return "", false
	}
	tok, rest, dotted := strings.Cut(left, ".")
	if dotted && (rest == "" || strings.ContainsAny(rest, "<> \t\r\n")) {
		return "", false
	}
	if !validToken(tok) {
		return "", false
	}
	return tok, true
}
