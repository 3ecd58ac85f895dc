package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sealpost/sealpost/config"
)

// MinRSABits is the shortest RSA key New accepts (RFC 8301 requires verifiers to accept 1024-4096
// bits and signers to use at least 1024; 2048 is what large receivers expect today).
const MinRSABits = 2048

// KeyConfig is one DKIM signing key for a domain.
type KeyConfig struct {
	Domain   string `json:"domain"`   // d=, e.g. bank.example; must equal the From address's domain
	Selector string `json:"selector"` // s=; the public key is published at Selector._domainkey.Domain
	KeyFile  string `json:"key_file"` // PEM private key: RSA (>= 2048 bits, PKCS#1 or PKCS#8) or Ed25519 (PKCS#8)
}

// Validate checks the key's settings without reading its file. It reports every problem, each a
// *config.FieldError named by its key (domain, selector, key_file) that wraps ErrConfig.
func (c KeyConfig) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &config.FieldError{Path: path, Problem: fmt.Sprintf(format, args...), Err: ErrConfig})
	}
	if c.Domain == "" {
		bad("domain", "required: the domain of the From addresses this key signs")
	} else if err := checkDNSName(c.Domain); err != nil {
		bad("domain", "%q is not a domain name: %v", c.Domain, err)
	}
	if c.Selector == "" {
		bad("selector", "required: the selector the public key is published under (e.g. s1)")
	} else if err := checkDNSName(c.Selector); err != nil {
		bad("selector", "%q is not a selector (a DNS name such as s1): %v", c.Selector, err)
	}
	if c.KeyFile == "" {
		bad("key_file", "required: the PEM file of the private key")
	}
	return errors.Join(errs...)
}

// ValidateKeys checks the keys of the dkim section without reading their files: each key's
// settings (keys[0].domain, …) and that no domain has two keys (compared case-insensitively).
// Its problems are *config.FieldError that wrap ErrConfig (ErrDuplicateDomain for a second key).
// No keys is no problem here: the section is optional; New needs at least one.
func ValidateKeys(keys []KeyConfig) error {
	var errs []error
	first := map[string]int{}
	for i, c := range keys {
		path := fmt.Sprintf("keys[%d]", i)
		errs = append(errs, config.Prefix(path, c.Validate()))
		d := strings.ToLower(c.Domain)
		if j, dup := first[d]; dup && d != "" {
			errs = append(errs, &config.FieldError{Path: path + ".domain", Err: ErrDuplicateDomain,
				Problem: fmt.Sprintf("%q already has a key (keys[%d]): one key per domain", c.Domain, j)})
			continue
		}
		first[d] = i
	}
	return errors.Join(errs...)
}

// key is a loaded KeyConfig.
type key struct {
	domain   string // lower case
	selector string
	signer   crypto.Signer
	algo     string // "rsa" or "ed25519", the k= of the DNS record
	public   []byte // the p= of the DNS record, decoded
}

// loadKey reads and checks the key of c.
func loadKey(c KeyConfig) (*key, error) {
	fail := func(err error) error { return &KeyError{Domain: c.Domain, File: c.KeyFile, Err: err} }
	if err := c.Validate(); err != nil {
		return nil, fail(err)
	}
	data, err := os.ReadFile(c.KeyFile)
	if err != nil {
		return nil, fail(err)
	}
	signer, err := parsePrivateKey(data)
	if err != nil {
		return nil, fail(err)
	}
	k := &key{domain: strings.ToLower(c.Domain), selector: c.Selector, signer: signer}
	switch pub := signer.Public().(type) {
	case *rsa.PublicKey:
		if bits := pub.N.BitLen(); bits < MinRSABits {
			return nil, fail(fmt.Errorf("%w: RSA key of %d bits, at least %d needed", ErrWeakKey, bits, MinRSABits))
		}
		k.algo = "rsa"
		if k.public, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return nil, fail(err)
		}
	case ed25519.PublicKey:
		k.algo, k.public = "ed25519", pub
	default:
		return nil, fail(fmt.Errorf("%w: %T (DKIM defines only RSA and Ed25519)", ErrUnsupportedKey, pub))
	}
	return k, nil
}

// parsePrivateKey returns the one private key in a PEM file. Blocks of other types (an "EC
// PARAMETERS" block, a certificate) are skipped; a file with two private keys is refused, since
// which one the operator meant cannot be known.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	var found *pem.Block
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch {
		case b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] != "":
			return nil, fmt.Errorf("%w: the key is encrypted; store it unencrypted (mode 0600)", ErrKeyFormat)
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			if found != nil {
				return nil, fmt.Errorf("%w: more than one private key in the file", ErrKeyFormat)
			}
			found = b
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: no PEM \"PRIVATE KEY\" or \"RSA PRIVATE KEY\" block", ErrKeyFormat)
	}
	var priv any
	var err error
	switch found.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(found.Bytes)
	case "RSA PRIVATE KEY":
		priv, err = x509.ParsePKCS1PrivateKey(found.Bytes)
	case "EC PRIVATE KEY":
		return nil, fmt.Errorf("%w: ECDSA (DKIM defines only RSA and Ed25519)", ErrUnsupportedKey)
	default:
		return nil, fmt.Errorf("%w: PEM block %q (want PKCS#8 \"PRIVATE KEY\" or PKCS#1 \"RSA PRIVATE KEY\")", ErrUnsupportedKey, blockType(found.Type))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFormat, err)
	}
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		return p, nil
	case ed25519.PrivateKey:
		return p, nil
	default:
		return nil, fmt.Errorf("%w: %T (DKIM defines only RSA and Ed25519)", ErrUnsupportedKey, priv)
	}
}

// maxBlockType bounds how much of a PEM block's type an error quotes: the file may be anything.
const maxBlockType = 40

// blockType is a PEM block's type as an error may quote it.
func blockType(t string) string {
	if r := []rune(t); len(r) > maxBlockType {
		return string(r[:maxBlockType]) + "…"
	}
	return t
}

// checkDNSName accepts what the d= and s= tags may hold (RFC 6376 3.5: sub-domain syntax): dot
// separated labels of ASCII letters, digits and inner hyphens. Internationalised names must be
// given as A-labels ("xn--…").
func checkDNSName(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	if len(name) > 253 {
		return errors.New("longer than 253 characters")
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("label %q: must be 1 to 63 characters", label)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q: must not begin or end with a hyphen", label)
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("label %q: only letters, digits and hyphens (A-labels for international names)", label)
			}
		}
	}
	return nil
}

// dnsRecord returns the TXT record name and value (RFC 6376 3.6.1; RFC 8463 for Ed25519).
func (k *key) dnsRecord() (name, value string) {
	return k.selector + "._domainkey." + k.domain,
		"v=DKIM1; k=" + k.algo + "; p=" + base64.StdEncoding.EncodeToString(k.public)
}
