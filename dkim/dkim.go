package dkim

import (
	"bytes"
	"crypto"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"github.com/sealpost/sealpost/address"
)

// signedFields are the header fields a signature covers (RFC 6376 5.4.1), in the order of h=.
var signedFields = []string{
	"From", "To", "Cc", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "In-Reply-To", "References", "Reply-To",
}

// mayBeAdded are fields an MTA may add to mail that lacks them (Postfix does for local clients), so
// they are not signed when absent.
var mayBeAdded = map[string]bool{"date": true, "message-id": true}

// Signer DKIM-signs messages with one key per domain. It is safe for concurrent use.
type Signer struct {
	keys map[string]*key // by lower-case domain
}

// New loads and checks every key now, so that a bad key stops sealpost at start-up rather than
// failing mail later. Domains must be distinct (case-insensitively).
func New(keys []KeyConfig) (*Signer, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("dkim: %w: no keys", ErrConfig)
	}
	s := &Signer{keys: make(map[string]*key, len(keys))}
	for _, c := range keys {
		k, err := loadKey(c)
		if err != nil {
			return nil, err
		}
		if _, dup := s.keys[k.domain]; dup {
			return nil, &KeyError{Domain: c.Domain, File: c.KeyFile, Err: ErrDuplicateDomain}
		}
		s.keys[k.domain] = k
	}
	return s, nil
}

// Signs reports whether s has a key for domain (compared case-insensitively, subdomains not
// included), that is, whether Sign signs mail whose From address is in domain.
func (s *Signer) Signs(domain string) bool {
	_, ok := s.keys[strings.ToLower(domain)]
	return ok
}

// DNSRecord returns the TXT record to publish for domain's key: its name
// (selector._domainkey.domain) and value ("v=DKIM1; k=rsa; p=…" or k=ed25519). An RSA value is
// longer than 255 bytes: in a zone file, split it into several quoted strings of one record.
func (s *Signer) DNSRecord(domain string) (name, value string, err error) {
	k, ok := s.keys[strings.ToLower(domain)]
	if !ok {
		return "", "", fmt.Errorf("dkim: %w %q", ErrNoKey, domain)
	}
	name, value = k.dnsRecord()
	return name, value, nil
}

// Sign returns msg (an RFC 5322 message with CRLF line endings) with a DKIM-Signature field in
// front, made with the key of the From address's domain. If s has no key for that domain it
// returns msg itself and no error (see Signs). msg is not modified.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	h, err := parseHeader(msg)
	if err != nil {
		return nil, fmt.Errorf("dkim: %w: %v", ErrUnsignable, err)
	}
	domain, err := h.fromDomain()
	if err != nil {
		return nil, fmt.Errorf("dkim: %w: %v", ErrUnsignable, err)
	}
	k, ok := s.keys[domain]
	if !ok {
		return msg, nil
	}
	return k.sign(msg, h.headerKeys())
}

// sign runs go-msgauth over msg. Its hashing runs in a goroutine of its own, where a panic could not
// be recovered: parseHeader has already refused every input that library would read differently
// from a verifier, and FuzzSign exercises the rest.
func (k *key) sign(msg []byte, headerKeys []string) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("dkim: %w: panic: %v", ErrSign, r)
		}
	}()
	ds, err := msgauth.NewSigner(&msgauth.SignOptions{
		Domain:                 k.domain,
		Selector:               k.selector,
		Signer:                 k.signer,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: msgauth.CanonicalizationRelaxed,
		BodyCanonicalization:   msgauth.CanonicalizationRelaxed,
		HeaderKeys:             headerKeys,
	})
	if err != nil {
		return nil, fmt.Errorf("dkim: %w: %v", ErrSign, err)
	}
	if _, err := ds.Write(msg); err != nil {
		ds.Close()
		return nil, fmt.Errorf("dkim: %w: %v", ErrSign, err)
	}
	if err := ds.Close(); err != nil {
		return nil, fmt.Errorf("dkim: %w: %v", ErrSign, err)
	}
	sig := ds.Signature()
	out = make([]byte, 0, len(sig)+len(msg))
	out = append(out, sig...)
	return append(out, msg...), nil
}

// header is a message's header fields as parsed by parseHeader.
type header []field

type field struct {
	name  string // as written
	value []byte // everything after the colon, folding included
}

// parseHeader checks that msg is CRLF throughout and that its header is a sequence of well-formed
// fields ended by an empty line, and returns the fields.
func parseHeader(msg []byte) (header, error) {
	if n := bytes.Count(msg, []byte("\n")); n != bytes.Count(msg, []byte("\r")) || n != bytes.Count(msg, []byte("\r\n")) {
		return nil, fmt.Errorf("bare CR or LF (the message must use CRLF line endings)")
	}
	var h header
	rest := msg
	for {
		line, after, ok := bytes.Cut(rest, []byte("\r\n"))
		if !ok {
			return nil, fmt.Errorf("no empty line ends the header")
		}
		rest = after
		switch {
		case len(line) == 0:
			return h, nil
		case line[0] == ' ' || line[0] == '\t':
			if len(h) == 0 {
				return nil, fmt.Errorf("the header begins with a continuation line")
			}
			f := &h[len(h)-1]
			f.value = append(append(f.value, "\r\n"...), line...)
		default:
			colon := bytes.IndexByte(line, ':')
			if colon <= 0 {
				return nil, fmt.Errorf("header line %d is not a field (name: value)", len(h)+1)
			}
			for _, c := range line[:colon] {
				if c < 33 || c > 126 {
					return nil, fmt.Errorf("header field name %q: only printable ASCII without spaces", line[:colon])
				}
			}
			h = append(h, field{name: string(line[:colon]), value: bytes.Clone(line[colon+1:])})
		}
	}
}

// count returns how many fields are named name (case-insensitively).
func (h header) count(name string) int {
	n := 0
	for _, f := range h {
		if strings.EqualFold(f.name, name) {
			n++
		}
	}
	return n
}

// headerKeys returns the h= list for h (see the package comment).
func (h header) headerKeys() []string {
	var keys []string
	for _, name := range signedFields {
		n := h.count(name) + 1
		if n == 1 && mayBeAdded[strings.ToLower(name)] {
			continue
		}
		for range n {
			keys = append(keys, name)
		}
	}
	return keys
}

// addressParser reads addresses without decoding display names in unknown charsets, which would
// fail the parse: only the address matters here.
var addressParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(_ string, input io.Reader) (io.Reader, error) { return input, nil },
}}

// fromDomain returns the lower-case domain of the one address in the one From field.
func (h header) fromDomain() (string, error) {
	var from []byte
	for _, f := range h {
		if strings.EqualFold(f.name, "From") {
			if from != nil {
				return "", fmt.Errorf("more than one From field")
			}
			from = f.value
		}
	}
	if from == nil {
		return "", fmt.Errorf("no From field")
	}
	unfolded := strings.ReplaceAll(string(from), "\r\n", "")
	addrs, err := addressParser.ParseList(unfolded)
	if err != nil {
		return "", fmt.Errorf("unparsable From field: %v", err)
	}
	if len(addrs) != 1 {
		return "", fmt.Errorf("the From field has %d addresses, want exactly one", len(addrs))
	}
	if _, _, ok := address.Split(addrs[0].Address); !ok {
		return "", fmt.Errorf("the From address %q has no domain", addrs[0].Address)
	}
	return address.Domain(addrs[0].Address), nil
}
