package keys

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrBadSubject is returned by ParseSubject; the message says what is wrong and where.
var ErrBadSubject = errors.New("invalid certificate subject")

// subjectAttributes are the attribute names ParseSubject knows, as openssl spells them, with where
// each goes in a pkix.Name and its upper bound in characters (RFC 5280 appendix A).
var subjectAttributes = []struct {
	name string
	set  func(n *pkix.Name, v string) error
	max  int
}{
	{"C", func(n *pkix.Name, v string) error { return appendCountry(n, v) }, 2},
	{"ST", func(n *pkix.Name, v string) error { n.Province = append(n.Province, v); return nil }, 128},
	{"L", func(n *pkix.Name, v string) error { n.Locality = append(n.Locality, v); return nil }, 128},
	{"street", func(n *pkix.Name, v string) error { n.StreetAddress = append(n.StreetAddress, v); return nil }, 128},
	{"postalCode", func(n *pkix.Name, v string) error { n.PostalCode = append(n.PostalCode, v); return nil }, 40},
	{"O", func(n *pkix.Name, v string) error { n.Organization = append(n.Organization, v); return nil }, 64},
	{"OU", func(n *pkix.Name, v string) error { n.OrganizationalUnit = append(n.OrganizationalUnit, v); return nil }, 64},
	{"CN", func(n *pkix.Name, v string) error { return setOnce(&n.CommonName, "CN", v) }, 64},
	{"serialNumber", func(n *pkix.Name, v string) error { return setOnce(&n.SerialNumber, "serialNumber", v) }, 64},
	{"organizationIdentifier", func(n *pkix.Name, v string) error {
		// ETSI EN 319 412-1: e.g. the bank's LEI or its PSD2 authorisation number.
		n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: oidOrganizationIdentifier, Value: v})
		return nil
	}, 64},
}

var oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

func setOnce(field *string, name, v string) error {
	if *field != "" {
		return fmt.Errorf("%s is given twice", name)
	}
	*field = v
	return nil
}

func appendCountry(n *pkix.Name, v string) error {
	if len(v) != 2 || !isASCIILetter(v[0]) || !isASCIILetter(v[1]) {
		return fmt.Errorf("country %q is not a two-letter code (ISO 3166, e.g. C=DE)", v)
	}
	n.Country = append(n.Country, strings.ToUpper(v))
	return nil
}

func isASCIILetter(b byte) bool { return b|0x20 >= 'a' && b|0x20 <= 'z' }

// ParseSubject parses a certificate subject in either of the forms operators copy around:
//
//	/CN=Example Bank/O=Example Bank AG/C=DE     (openssl -subj)
//	CN=Example Bank, O=Example Bank AG, C=DE    (RFC 4514, as Go and openssl -nameopt RFC2253 print it)
//
// The attributes known are C, ST, L, street, postalCode, O, OU, CN, serialNumber and
// organizationIdentifier (names are case-insensitive). CN is required; CN and serialNumber may be
// given once, the others repeated. A backslash takes the next character literally ("O=Bank\, AG"),
// and "+" has no special meaning: multi-valued RDNs are not supported. Whatever the order given, the
// certificate request names the attributes in the conventional order (C, ST, L, O, OU, CN, …), so
// both forms of one name give the same subject.
func ParseSubject(s string) (pkix.Name, error) {
	var name pkix.Name
	s = strings.TrimSpace(s)
	if s == "" {
		return name, fmt.Errorf("%w: empty (want e.g. /CN=Example Bank/O=Example Bank AG/C=DE)", ErrBadSubject)
	}
	if !utf8.ValidString(s) {
		return name, fmt.Errorf("%w: not UTF-8", ErrBadSubject)
	}
	sep := ','
	if strings.HasPrefix(s, "/") {
		sep, s = '/', s[1:]
	}
	parts, err := splitEscaped(s, sep)
	if err != nil {
		return name, fmt.Errorf("%w: %w", ErrBadSubject, err)
	}
	for i, part := range parts {
		if strings.TrimSpace(part) == "" {
			if i == len(parts)-1 && i > 0 {
				break // a trailing separator, as in "/CN=x/"
			}
			return name, fmt.Errorf("%w: attribute %d is empty", ErrBadSubject, i+1)
		}
		if err := setAttribute(&name, part); err != nil {
			return name, fmt.Errorf("%w: %w", ErrBadSubject, err)
		}
	}
	if name.CommonName == "" {
		return name, fmt.Errorf("%w: no CN (common name)", ErrBadSubject)
	}
	return name, nil
}

// setAttribute parses one "name=value" (still escaped) into n.
func setAttribute(n *pkix.Name, part string) error {
	eq := indexUnescaped(part, '=')
	if eq < 0 {
		return fmt.Errorf("%q has no \"=\" (want NAME=value)", excerpt(strings.TrimSpace(part)))
	}
	key := strings.TrimSpace(part[:eq])
	value := unescape(strings.TrimSpace(part[eq+1:]))
	for _, a := range subjectAttributes {
		if !strings.EqualFold(a.name, key) {
			continue
		}
		switch {
		case value == "":
			return fmt.Errorf("%s has an empty value", a.name)
		case strings.ContainsFunc(value, isControl):
			return fmt.Errorf("%s contains a control character", a.name)
		case utf8.RuneCountInString(value) > a.max:
			return fmt.Errorf("%s is longer than %d characters", a.name, a.max)
		}
		return a.set(n, value)
	}
	names := make([]string, len(subjectAttributes))
	for i, a := range subjectAttributes {
		names[i] = a.name
	}
	return fmt.Errorf("unknown attribute %q (known: %s)", excerpt(key), strings.Join(names, ", "))
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// splitEscaped splits s at each sep not preceded by a backslash.
func splitEscaped(s string, sep rune) ([]string, error) {
	var parts []string
	start, escaped := 0, false
	for i, r := range s {
		switch {
		case escaped:
			escaped = false
		case r == '\\':
			escaped = true
		case r == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if escaped {
		return nil, errors.New("ends in a lone backslash")
	}
	return append(parts, s[start:]), nil
}

// indexUnescaped is the index of the first c in s not preceded by a backslash, or -1.
func indexUnescaped(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case c:
			return i
		}
	}
	return -1
}

// unescape removes the backslash before each escaped character.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	escaped := false
	for _, r := range s {
		if r == '\\' && !escaped {
			escaped = true
			continue
		}
		escaped = false
		b.WriteRune(r)
	}
	return b.String()
}
