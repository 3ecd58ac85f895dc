package gateway

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sealpost/sealpost/address"
)

// Envelope addresses are judged at the command that carries them (RFC 5321 4.1.1.2, 4.1.1.3), and
// a refusal there is permanent: an address that can never be served must not get 250 at RCPT and
// then 451 at DATA, which has the client retry for days.

// Limits of RFC 5321 4.5.3.1: a path is at most 256 octets with its angle brackets.
const (
	maxLocalPart = 64
	maxAddress   = 254
	maxLabel     = 63
)

// CheckSender checks a MAIL FROM reverse-path as the SMTP listener parsed it: without its angle
// brackets and source route, "" for the null reverse-path (which is valid). utf8 says whether the
// client gave the SMTPUTF8 parameter. It returns nil or an *Error: 501 5.1.7 for a malformed
// address, 553 5.6.7 for a non-ASCII one without SMTPUTF8 (RFC 6531 3.5), 553 5.1.8 for an
// address literal. The reply says what is wrong and never repeats the address.
func CheckSender(addr string, utf8 bool) error {
	if addr == "" {
		return nil
	}
	return checkEnvelope(addr, utf8, [3]int{5, 1, 7}, [3]int{5, 1, 8}, "sender")
}

// CheckRecipient checks a RCPT TO forward-path as CheckSender does a reverse-path: 501 5.1.3 for
// a malformed address (the empty one included), 553 5.6.7 for a non-ASCII one without SMTPUTF8,
// 553 5.1.2 for an address literal.
func CheckRecipient(addr string, utf8 bool) error {
	return checkEnvelope(addr, utf8, [3]int{5, 1, 3}, [3]int{5, 1, 2}, "recipient")
}

// checkEnvelope applies the rule both commands share; syntax and literal are the enhanced codes
// of the command's two kinds of refusal, role names the address in the reply.
func checkEnvelope(addr string, smtputf8 bool, syntax, literal [3]int, role string) error {
	p := envelopeProblem(addr, smtputf8)
	switch {
	case p == nil:
		return nil
	case errors.Is(p, errNonASCII):
		return Refuse(553, [3]int{5, 6, 7}, "non-ASCII "+role+" address without SMTPUTF8", p)
	case errors.Is(p, errAddressLiteral):
		return Refuse(553, literal, "address literals are not accepted as "+role, p)
	}
	return Refuse(501, syntax, fmt.Sprintf("malformed %s address: %s", role, p.problem), p)
}

var (
	errNonASCII       = errors.New("non-ASCII address")
	errAddressLiteral = errors.New("address literal")
)

// addressProblem is what is wrong with an envelope address, in words a reply can carry.
type addressProblem struct {
	problem string
	kind    error // errNonASCII, errAddressLiteral, or nil: malformed
}

func (p *addressProblem) Error() string { return ErrBadEnvelopeAddress.Error() + ": " + p.problem }

// Is makes every problem an ErrBadEnvelopeAddress, and the special kinds their own sentinel as well.
func (p *addressProblem) Is(target error) bool {
	return target == ErrBadEnvelopeAddress || (p.kind != nil && target == p.kind)
}

func malformed(problem string) *addressProblem { return &addressProblem{problem: problem} }

// envelopeProblem returns nil for an address sealpost can take in MAIL FROM or RCPT TO.
//
// The SMTP parser (go-smtp) has removed the angle brackets and any source route (RFC 5321
// appendix C: accepted and ignored), and has already refused what it cannot parse: unbalanced
// quotes or brackets, an empty local part, specials in a dot-string (all 501 5.5.2). It takes the
// domain as every byte up to a space or '>', CR and NUL included, and hands over a quoted local
// part without its quotes. What is left is checked here, in this order:
//
//   - more than 254 octets (the path limit less its brackets) or a local part over 64: malformed;
//   - any C0 control or DEL, anywhere: malformed. A CR here was the cause of "250 at RCPT, 451 at
//     DATA": address.Normalize trimmed it off before its check while the session kept it;
//   - 8-bit without SMTPUTF8: 553 5.6.7 (RFC 6531 3.5); with SMTPUTF8, invalid UTF-8 or a C1
//     control is malformed;
//   - a local part that is not a dot-string (RFC 5321 Dot-string: atext runs joined by single
//     dots). A quoted local part arrives unquoted, so one that needed its quotes (a space, "..",
//     an '@') cannot be told from a malformed one and cannot be relayed faithfully: malformed;
//   - an address literal ("[192.0.2.1]", "[IPv6:…]"): valid syntax, but no customer's mailbox is
//     on one and no key names one: 553 5.1.8 / 5.1.2;
//   - a domain that is not a dot-separated list of LDH labels of 1 to 63 octets: malformed. A
//     trailing dot ("example.com.") is DNS syntax, not RFC 5321's; an all-numeric top-level label
//     ("192.0.2.1" without brackets) is an IP address posing as a domain (RFC 3696 2).
//
// Last, the address must be one address.Normalize accepts unchanged but for the domain's case,
// the rule the rest of the pipeline (directory, signer, store) applies.
func envelopeProblem(addr string, smtputf8 bool) *addressProblem {
	if len(addr) > maxAddress {
		return malformed(fmt.Sprintf("longer than %d octets", maxAddress))
	}
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; c < 0x20 || c == 0x7f {
			return malformed("control character")
		}
	}
	for i := 0; i < len(addr); i++ {
		if addr[i] >= utf8.RuneSelf {
			if !smtputf8 {
				return &addressProblem{problem: "8-bit address without SMTPUTF8", kind: errNonASCII}
			}
			if !utf8.ValidString(addr) {
				return malformed("not UTF-8")
			}
			if strings.ContainsFunc(addr, unicode.IsControl) {
				return malformed("control character")
			}
			break
		}
	}
	local, domain, ok := address.Split(addr)
	if !ok {
		return malformed("no @domain")
	}
	if p := localPartProblem(local); p != nil {
		return p
	}
	if p := domainProblem(domain); p != nil {
		return p
	}
	n, err := address.Normalize(addr)
	if err != nil {
		return malformed("not an addr-spec")
	}
	if n != local+"@"+strings.ToLower(domain) {
		// Normalize dropped something (Unicode white space such as U+2029 around the address):
		// the string the session keeps must be the one the directory judged.
		return malformed("white space")
	}
	return nil
}

func localPartProblem(local string) *addressProblem {
	switch {
	case local == "":
		return malformed("empty local part")
	case len(local) > maxLocalPart:
		return malformed(fmt.Sprintf("local part longer than %d octets", maxLocalPart))
	}
	for _, atom := range strings.Split(local, ".") {
		if atom == "" {
			return malformed("local part with an empty dot-atom (leading, trailing or double dot)")
		}
		for i := 0; i < len(atom); i++ {
			if !isAtext(atom[i]) {
				return malformed("local part is not a dot-string")
			}
		}
	}
	return nil
}

func domainProblem(domain string) *addressProblem {
	switch {
	case domain == "":
		return malformed("empty domain")
	case domain[0] == '[':
		return &addressProblem{problem: "address literal", kind: errAddressLiteral}
	case strings.HasSuffix(domain, "."):
		return malformed("domain ends with a dot")
	}
	labels := strings.Split(domain, ".")
	for _, l := range labels {
		if p := labelProblem(l); p != nil {
			return p
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return malformed("all-numeric top-level domain")
	}
	return nil
}

// labelProblem checks an RFC 5321 sub-domain: letters, digits and hyphens, not starting or ending
// with a hyphen. Octets of 0x80 and above only get here under SMTPUTF8, as U-labels (RFC 6531).
func labelProblem(l string) *addressProblem {
	if l == "" {
		return malformed("empty domain label")
	}
	if len(l) > maxLabel {
		return malformed(fmt.Sprintf("domain label longer than %d octets", maxLabel))
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return malformed("domain label starts or ends with a hyphen")
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c >= utf8.RuneSelf) {
			return malformed("domain is not letters, digits, hyphens and dots")
		}
	}
	return nil
}

// isAtext reports whether c is RFC 5322 atext, or (under SMTPUTF8, RFC 6531) an octet of a
// non-ASCII character.
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= utf8.RuneSelf:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}
