package otp

import "strings"

// MaskAddress returns address as a customer may be shown it: of the local
// part and of each domain label but the last, the first and last
// characters with a '*' for each between ("alice@example.com" is
// "a***e@e*****e.com"); two characters keep the first ("ab" is "a*"), one
// is "*". Without an '@' all of it is masked as a local part.
func MaskAddress(address string) string {
	at := strings.LastIndexByte(address, '@')
	if at < 0 {
		return maskPart(address)
	}
	labels := strings.Split(address[at+1:], ".")
	for i := range labels {
		if i < len(labels)-1 || len(labels) == 1 {
			labels[i] = maskPart(labels[i])
		}
	}
	return maskPart(address[:at]) + "@" + strings.Join(labels, ".")
}

func maskPart(s string) string {
	r := []rune(s)
	switch n := len(r); n {
	case 0:
		return ""
	case 1:
		return "*"
	case 2:
		return string(r[0]) + "*"
	default:
		return string(r[0]) + strings.Repeat("*", n-2) + string(r[n-1])
	}
}
