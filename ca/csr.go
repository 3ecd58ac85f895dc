package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"

	"github.com/sealpost/sealpost/address"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// maxCSR bounds a request: a PKCS#10 request with an RSA-8192 key and a few names is well under
// 4 KiB in DER.
const maxCSR = 64 << 10

// maxRSABits bounds an RSA key: larger ones cost the CA nothing to sign for, but the customer's
// client and every sender verifying their signatures would pay for them.
const maxRSABits = 8192

var (
	oidEmailAddress   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// parseCSR reads a PKCS#10 request, PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST", with
// nothing but whitespace around it) or DER, and checks its signature.
func parseCSR(data []byte) (*x509.CertificateRequest, error) {
	if len(data) > maxCSR {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrBadCSR, len(data), maxCSR)
	}
	der := data
	if block, rest := pem.Decode(data); block != nil {
		if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("%w: a PEM %q block, not a CERTIFICATE REQUEST", ErrBadCSR, printable(block.Type))
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			return nil, fmt.Errorf("%w: more than one PEM block", ErrBadCSR)
		}
		der = block.Bytes
	} else if bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("%w: unreadable PEM", ErrBadCSR)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: its signature does not verify: %v", ErrBadCSR, err)
	}
	return csr, nil
}

// checkNames refuses a request that names anything but addr: every rfc822Name of its
// subjectAltName and every emailAddress of its subject must be addr; no other kind of name.
func checkNames(csr *x509.CertificateRequest, addr string) error {
	for _, atv := range csr.Subject.Names {
		if !atv.Type.Equal(oidEmailAddress) {
			continue
		}
		s, ok := atv.Value.(string)
		if !ok || !address.Same(s, addr) {
			return fmt.Errorf("%w: its subject's emailAddress is %q, not %s", ErrWrongAddress, printable(fmt.Sprint(atv.Value)), addr)
		}
	}
	for _, ext := range csr.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		if err := checkSAN(ext.Value, addr); err != nil {
			return err
		}
	}
	return nil
}

// checkSAN reads a subjectAltName extension's GeneralNames itself: crypto/x509 skips the kinds it
// does not know (otherName, directoryName), and a request must not carry any of those either.
func checkSAN(value []byte, addr string) error {
	in := cryptobyte.String(value)
	var names cryptobyte.String
	if !in.ReadASN1(&names, cbasn1.SEQUENCE) || !in.Empty() {
		return fmt.Errorf("%w: malformed subjectAltName", ErrBadCSR)
	}
	for !names.Empty() {
		var name cryptobyte.String
		var tag cbasn1.Tag
		if !names.ReadAnyASN1(&name, &tag) {
			return fmt.Errorf("%w: malformed subjectAltName", ErrBadCSR)
		}
		if tag != cbasn1.Tag(1).ContextSpecific() {
			return fmt.Errorf("%w: it asks for a %s name; only the address %s may be named", ErrWrongAddress, generalNameKind(tag), addr)
		}
		if !address.Same(string(name), addr) {
			return fmt.Errorf("%w: it names %q, not %s", ErrWrongAddress, printable(string(name)), addr)
		}
	}
	return nil
}

// generalNameKind names a GeneralName's tag (RFC 5280 4.2.1.6) for an error.
func generalNameKind(tag cbasn1.Tag) string {
	kinds := []string{"otherName", "rfc822Name", "DNS", "x400Address", "directoryName", "ediPartyName", "URI", "IP address", "registeredID"}
	n := int(tag &^ (cbasn1.Tag(0).ContextSpecific() | cbasn1.Tag(0).Constructed()))
	if tag&cbasn1.Tag(0).ContextSpecific() != 0 && n < len(kinds) {
		return kinds[n]
	}
	return fmt.Sprintf("tag %d", int(tag))
}

// checkKey accepts RSA of 2048 to 8192 bits and ECDSA P-256 or P-384: what S/MIME clients
// (Outlook, Apple Mail, Thunderbird, gpgsm) use and what is strong enough.
func checkKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > maxRSABits {
			return fmt.Errorf("%w: a %d-bit RSA key (want 2048 to %d bits)", ErrWeakKey, n, maxRSABits)
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("%w: ECDSA on %s (want P-256 or P-384)", ErrWeakKey, k.Curve.Params().Name)
		}
		return nil
	}
	return fmt.Errorf("%w: a %T key (want RSA of 2048 bits or more, or ECDSA P-256 or P-384)", ErrWeakKey, pub)
}

// printable bounds s for an error message and drops control characters.
func printable(s string) string {
	var b []rune
	for _, r := range s {
		if len(b) == 64 {
			return string(b) + "…"
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = '?'
		}
		b = append(b, r)
	}
	return string(b)
}
