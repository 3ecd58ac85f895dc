package keys

import (
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/address"
)

// Method is how mail to a recipient is protected.
type Method int

const (
	// MethodSMIME is S/MIME (CMS) with the recipient's X.509 certificate. It is the zero value and
	// the default preference: see Directory.Choose.
	MethodSMIME Method = iota
	// MethodPGP is PGP/MIME (RFC 3156) with the recipient's OpenPGP key.
	MethodPGP
)

// String returns "S/MIME" or "OpenPGP".
func (m Method) String() string {
	switch m {
	case MethodSMIME:
		return "S/MIME"
	case MethodPGP:
		return "OpenPGP"
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// ParseMethod parses a method as written in configuration and on the command line: "smime" or "pgp".
func ParseMethod(s string) (Method, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "smime":
		return MethodSMIME, nil
	case "pgp":
		return MethodPGP, nil
	}
	return 0, fmt.Errorf("unknown protection method %q (want smime or pgp)", s)
}

// MarshalText writes the form ParseMethod reads, so a Method can sit in a strictly decoded config.
func (m Method) MarshalText() ([]byte, error) {
	switch m {
	case MethodSMIME:
		return []byte("smime"), nil
	case MethodPGP:
		return []byte("pgp"), nil
	}
	return nil, fmt.Errorf("unknown protection method %d", int(m))
}

// UnmarshalText parses with ParseMethod.
func (m *Method) UnmarshalText(b []byte) error {
	v, err := ParseMethod(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Choice is the key a message to one recipient is protected with: Certificate is set when Method is
// MethodSMIME, PGPKey when it is MethodPGP.
type Choice struct {
	Method      Method
	Certificate *x509.Certificate
	PGPKey      *openpgp.Entity
	Source      Source // the key's tier: Choose gives SourceRegistered
}

// Choose picks how to protect mail to addr when the customer may have registered an S/MIME
// certificate, an OpenPGP key, or both. It returns the preferred method's usable key if there is one,
// else the other method's; otherwise a *RecipientError whose causes are the refusals of both kinds
// (preferred kind first). That error Is ErrNoCertificate only when neither kind is known for addr.
// Case variants of addr count as the Directory says, for both kinds at once: when a key of one
// kind is known under addr's exact spelling, variants of neither kind are considered.
//
// sealpost prefers S/MIME by default (MethodSMIME is the zero value): Outlook, Apple Mail, Thunderbird
// and the iOS and Android mail apps read it natively, while OpenPGP needs a plugin or a dedicated client
// in most of them. A customer who registered only an OpenPGP key gets OpenPGP, and the bank can prefer
// OpenPGP per policy for customers who asked for it.
func (d *Directory) Choose(addr string, prefer Method) (Choice, error) {
	if prefer != MethodSMIME && prefer != MethodPGP {
		return Choice{}, fmt.Errorf("choose key for %q: unknown protection method %d", addr, int(prefer))
	}
	n, err := address.Normalize(addr)
	if err != nil {
		return Choice{}, fmt.Errorf("recipient %q: %w", addr, err)
	}
	order := []Method{MethodSMIME, MethodPGP}
	if prefer == MethodPGP {
		order = []Method{MethodPGP, MethodSMIME}
	}
	all := &RecipientError{Address: n}
	for _, m := range order {
		var c Choice
		var err error
		switch m {
		case MethodSMIME:
			c.Certificate, err = d.Lookup(n)
		case MethodPGP:
			c.PGPKey, err = d.LookupPGP(n)
		}
		if err == nil {
			c.Method, c.Source = m, SourceRegistered
			return c, nil
		}
		rerr, ok := err.(*RecipientError)
		if !ok {
			return Choice{}, err
		}
		all.Causes = append(all.Causes, rerr.Causes...)
	}
	return Choice{}, all
}
