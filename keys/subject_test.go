package keys

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseSubject(t *testing.T) {
	bank := pkix.Name{CommonName: "Example Bank", Organization: []string{"Example Bank AG"}, Country: []string{"DE"}}
	for _, tt := range []struct {
		name, in string
		want     pkix.Name
	}{
		{"OpenSSL", "/CN=Example Bank/O=Example Bank AG/C=DE", bank},
		{"OpenSSLTrailingSlash", "/CN=Example Bank/O=Example Bank AG/C=DE/", bank},
		{"RFC4514", "CN=Example Bank,O=Example Bank AG,C=DE", bank},
		{"RFC4514Spaces", " CN = Example Bank , O = Example Bank AG , C = de ", bank},
		{"CaseInsensitiveNames", "/cn=Example Bank/o=Example Bank AG/c=DE", bank},
		{"EscapedComma", `CN=Example Bank,O=Example Bank\, AG`, pkix.Name{CommonName: "Example Bank", Organization: []string{"Example Bank, AG"}}},
		{"CommaInOpenSSLForm", "/CN=Example Bank/O=Müller, Söhne & Co.", pkix.Name{CommonName: "Example Bank", Organization: []string{"Müller, Söhne & Co."}}},
		{"SlashInRFC4514Form", "CN=Support/Desk", pkix.Name{CommonName: "Support/Desk"}},
		{"RepeatedOU", "/CN=x/OU=a/OU=b", pkix.Name{CommonName: "x", OrganizationalUnit: []string{"a", "b"}}},
		{"EverythingKnown", "/C=DE/ST=Hessen/L=Frankfurt/street=Hauptstr. 1/postalCode=60311/O=Bank/OU=IT/CN=x/serialNumber=42/organizationIdentifier=LEIXG-5299",
			pkix.Name{Country: []string{"DE"}, Province: []string{"Hessen"}, Locality: []string{"Frankfurt"}, StreetAddress: []string{"Hauptstr. 1"},
				PostalCode: []string{"60311"}, Organization: []string{"Bank"}, OrganizationalUnit: []string{"IT"}, CommonName: "x", SerialNumber: "42",
				ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidOrganizationIdentifier, Value: "LEIXG-5299"}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSubject(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
	// Both forms give the same encoded subject, whatever order the attributes came in.
	a, _ := ParseSubject("/CN=Example Bank/O=Example Bank AG/C=DE")
	b, _ := ParseSubject("C=DE,O=Example Bank AG,CN=Example Bank")
	da, _ := asn1.Marshal(a.ToRDNSequence())
	db, _ := asn1.Marshal(b.ToRDNSequence())
	if string(da) != string(db) {
		t.Fatal("the two forms of one name encode differently")
	}
}

func TestParseSubjectRefuses(t *testing.T) {
	for _, tt := range []struct{ name, in string }{
		{"Empty", ""},
		{"Blank", "   "},
		{"NoCN", "/O=Example Bank AG/C=DE"},
		{"NoEquals", "/CN=Example Bank/Example Bank AG"},
		{"EmptyValue", "/CN=/O=x"},
		{"EmptyAttribute", "/CN=x//O=y"},
		{"LeadingComma", ",CN=x"},
		{"UnknownAttribute", "/CN=x/emailAddress=a@b.example"},
		{"CountryTooLong", "/CN=x/C=DEU"},
		{"CountryNotLetters", "/CN=x/C=4 "},
		{"CNTwice", "/CN=x/CN=y"},
		{"CNTooLong", "/CN=" + strings.Repeat("x", 65)},
		{"ControlCharacter", "/CN=x\x07y"},
		{"LoneBackslash", `/CN=x\`},
		{"NotUTF8", "/CN=\xff"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if n, err := ParseSubject(tt.in); !errors.Is(err, ErrBadSubject) {
				t.Fatalf("got %#v, %v; want ErrBadSubject", n, err)
			} else {
				t.Log(err)
			}
		})
	}
}

// FuzzParseSubject: the subject comes from the operator's command line; it must never panic, and
// whatever it accepts must encode.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{"/CN=Example Bank/O=Example Bank AG/C=DE", "CN=a\\,b,O=c", "/CN=x/", `\`, "=", "/=/", "CN==x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSubject(s)
		if err != nil {
			return
		}
		if n.CommonName == "" {
			t.Fatal("accepted a subject without CN")
		}
		if _, err := asn1.Marshal(n.ToRDNSequence()); err != nil {
			t.Fatalf("accepted %q but it does not encode: %v", s, err)
		}
	})
}
