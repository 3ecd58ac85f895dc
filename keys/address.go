package keys

import (
	"errors"
	"net/mail"
	"strings"
)

// ErrBadAddress is returned for a string that is not a plain addr-spec.
var ErrBadAddress = errors.New("not a valid email address")

// NormalizeAddress returns the form under which an address is indexed: the local part exactly as
// given (RFC 5321 leaves it case-sensitive) and the domain in lower case. Angle brackets and display
// names are not accepted here: callers pass envelope addresses.
func NormalizeAddress(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 || strings.ContainsAny(addr, " <>\t\r\n") {
		return "", ErrBadAddress
	}
	if _, err := mail.ParseAddress(addr); err != nil {
		return "", ErrBadAddress
	}
	return addr[:at] + "@" + strings.ToLower(addr[at+1:]), nil
}
