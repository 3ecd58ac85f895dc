package otp

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// newCode returns digits decimal digits from crypto/rand, each uniform:
// bytes of 250 and above are dropped, so that every digit has 25 of the 250
// bytes left.
func newCode(digits int) string {
	out := make([]byte, 0, digits)
	var buf [16]byte
	for len(out) < digits {
		rand.Read(buf[:])
		for _, c := range buf {
			if c < 250 && len(out) < digits {
				out = append(out, '0'+c%10)
			}
		}
	}
	return string(out)
}

// idEncoding writes IDs in lower-case base32 without padding.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// idBytes is the randomness of an ID: 128 bits, 26 characters.
const (
	idBytes = 16
	idChars = 26
)

// Prefixes of the IDs of codes and call verifications.
const (
	otpPrefix  = "otp_"
	callPrefix = "call_"
)

// newID returns prefix and 128 random bits.
func newID(prefix string) string {
	var b [idBytes]byte
	rand.Read(b[:])
	return prefix + idEncoding.EncodeToString(b[:])
}

// validID reports whether id is prefix and 26 characters of the ID alphabet.
func validID(id, prefix string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) != idChars {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// checkCode refuses what is not MinDigits to MaxDigits of 0-9; the length
// the stored code has is checked against it later.
func checkCode(code string) error {
	if len(code) < MinDigits || len(code) > MaxDigits || !decimalDigits(code) {
		return ErrBadCode
	}
	return nil
}
