package api

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

// Key is one customer's certificate or OpenPGP key as the API shows it.
type Key struct {
	Address     string `json:"address"`
	Fingerprint string `json:"fingerprint"` // SHA-256 of the certificate, or the OpenPGP fingerprint; upper-case hex
	Kind        string `json:"kind"`        // "smime" or "pgp"
	State       string `json:"state"`       // "usable", or "unusable" with Reason
	Reason      string `json:"reason,omitempty"`
	// Source is "registered" for the customer's registered key, "directory" for one the recipient
	// directory holds for the address without a registration (imported as a file, say).
	Source  string     `json:"source"`
	Expires *time.Time `json:"expires"` // null: never
	Subject string     `json:"subject,omitempty"`
}

// KeyList is the answer of GET /v1/customers/{address}/keys.
type KeyList struct {
	Address string `json:"address"`
	Keys    []Key  `json:"keys"`
}

// KeyUpload is the JSON body PUT /v1/customers/{address}/keys takes (Content-Type
// application/json): the certificate (PEM) or the armored OpenPGP public key as text.
type KeyUpload struct {
	Key string `json:"key"`
}

// Media types of a key upload.
const (
	typeDER   = "application/pkix-cert"
	typePEM   = "application/x-pem-file"
	typePGP   = "application/pgp-keys"
	typeBytes = "application/octet-stream"
	typeJSON  = "application/json"
)

// minFingerprint is how many hex digits of a fingerprint a DELETE needs, as keys remove does.
const minFingerprint = 16

// pathAddress is the customer's address in the path, normalised: hostile input until it is.
func pathAddress(c *call) (string, error) {
	a, err := normalizeAddress(c.r.PathValue("address"))
	if err != nil {
		return "", err
	}
	c.target = a
	return a, nil
}

// normalizeAddress normalises a customer's address from the request (hostile input), or refuses
// it with 400 bad-address.
func normalizeAddress(raw string) (string, error) {
	a, err := address.Normalize(raw)
	if err != nil {
		return "", refuse(ProblemBadAddress, quote(raw)+" is not an email address")
	}
	return a, nil
}

// putKey registers the customer's certificate or OpenPGP public key: the checks of `keys import`
// (without -force), and it must name the customer's address and no other.
func (s *Server) putKey(c *call) (response, error) {
	addr, err := pathAddress(c)
	if err != nil {
		return response{}, err
	}
	data, err := keyBody(c.r.Header.Get("Content-Type"), c.body)
	if err != nil {
		return response{}, err
	}
	imp, err := parseCustomerKey(data, addr, s.now())
	if err != nil {
		return response{}, err
	}
	ctx := c.r.Context()
	unknown, err := CheckRevocation(ctx, s.revocations, s.cur.Load(), imp)
	var rev *keys.RevocationError
	if errors.As(err, &rev) {
		return response{}, refuse(ProblemRevoked, "the certificate's CA revoked it: "+rev.Error())
	}
	if err != nil {
		return response{}, fmt.Errorf("revocation check: %w", err)
	}
	for _, u := range unknown {
		s.log.Warn("registering a certificate whose revocation status cannot be had; RCPT checks it again", "address", addr, "err", u.Error())
	}
	merged, err := StoreImported(ctx, s.st, imp)
	if errors.Is(err, ErrRevokedCertificate) {
		return response{}, refuse(ProblemRevoked, "the bank's customer CA revoked this certificate")
	}
	if err != nil {
		return response{}, fmt.Errorf("store key: %w", err)
	}
	regs, err := RegisterImported(ctx, s.st, merged, s.now(), addr)
	if err != nil {
		return response{}, fmt.Errorf("register key: %w", err)
	}
	s.directoryChanged(ctx)
	entries, err := s.judge(addr, merged.Certificates, merged.PGPKeys)
	if err != nil || len(entries) != 1 || len(regs) == 0 {
		return response{}, fmt.Errorf("registered key not found again (%d entries, %d registrations): %v", len(entries), len(regs), err)
	}
	k := describe(addr, entries[0], true)
	c.detail = "registered " + k.Kind + " " + k.Fingerprint[:minFingerprint]
	return jsonResponse(http.StatusCreated, k), nil
}

// keyBody is the key in the body, by its media type.
func keyBody(contentType string, body []byte) ([]byte, error) {
	accepted := "send " + strings.Join([]string{typeDER, typePEM, typePGP, typeBytes, typeJSON}, ", ")
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, refuse(ProblemUnsupportedMediaType, accepted)
	}
	switch mt {
	case typeDER:
		if len(body) == 0 || body[0] != 0x30 {
			return nil, refuse(ProblemBadKey, typeDER+" must be one DER certificate")
		}
	case typePEM:
		if !bytes.Contains(body, []byte("-----BEGIN ")) {
			return nil, refuse(ProblemBadKey, typePEM+" must hold PEM blocks")
		}
	case typePGP, typeBytes:
	case typeJSON:
		var up KeyUpload
		if err := decodeJSON(body, &up); err != nil {
			return nil, err
		}
		return []byte(up.Key), nil
	default:
		return nil, refuse(ProblemUnsupportedMediaType, quote(mt)+" is not taken: "+accepted)
	}
	return body, nil
}

// decodeJSON decodes exactly one JSON object into v; unknown fields are refused.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return refuse(ProblemBadJSON, safeDetail(strings.TrimPrefix(err.Error(), "json: ")))
	}
	if dec.More() {
		return refuse(ProblemBadJSON, "the body holds more than one JSON value")
	}
	return nil
}

// parseCustomerKey parses and checks an upload: no private key, what keys import would accept
// without -force, one customer's key (with intermediates, for a certificate), naming addr and no
// other address, so that no customer can register a key for another's mail.
func parseCustomerKey(data []byte, addr string, now time.Time) (keys.Imported, error) {
	if bytes.Contains(data, []byte("PRIVATE KEY-----")) || bytes.Contains(data, []byte("PRIVATE KEY BLOCK-----")) {
		return keys.Imported{}, refuse(ProblemPrivateKey, "a private key never leaves the customer's device")
	}
	imp, err := keys.ParseImport(data, keys.ImportOptions{})
	if err != nil {
		return keys.Imported{}, refuse(ProblemBadKey, safeDetail(err.Error()))
	}
	if len(imp.PGPKeys) > 0 && holdsSecretKey(data) {
		return keys.Imported{}, refuse(ProblemPrivateKey, "a private key never leaves the customer's device")
	}
	var names []string
	n := len(imp.PGPKeys)
	for _, c := range imp.Certificates {
		if !c.IsCA {
			n++
			names = c.EmailAddresses
		}
	}
	if n != 1 {
		return keys.Imported{}, refuse(ProblemBadKey, fmt.Sprintf("the body holds %d customers' keys: register one at a time", n))
	}
	if len(imp.PGPKeys) == 1 {
		names = keys.PGPAddresses(imp.PGPKeys[0], now)
	}
	named := false
	for _, a := range names {
		if !address.Same(a, addr) {
			return keys.Imported{}, refuse(ProblemWrongAddress, "the key also names "+quote(a)+": a customer's key may name only that customer's address")
		}
		named = true
	}
	if !named {
		return keys.Imported{}, refuse(ProblemWrongAddress, "the key does not name "+addr)
	}
	return imp, nil
}

// holdsSecretKey reports whether OpenPGP input carries secret key material (keys.ParseImport keeps
// only public parts, so it would pass unnoticed).
func holdsSecretKey(data []byte) bool {
	ents, err := keys.ParsePGPKeys(data)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if e.PrivateKey != nil {
			return true
		}
		for _, sk := range e.Subkeys {
			if sk.PrivateKey != nil {
				return true
			}
		}
	}
	return false
}

// getKeys lists the customer's keys: those registered (read from the store, so a registration
// made on any node shows at once) and those the recipient directory holds naming the address.
func (s *Server) getKeys(c *call) (response, error) {
	addr, err := pathAddress(c)
	if err != nil {
		return response{}, err
	}
	entries, regs, missing, err := s.addressEntries(c.r.Context(), addr)
	if err != nil {
		return response{}, err
	}
	registered := map[string]bool{}
	for _, r := range regs {
		registered[r.Fingerprint] = true
	}
	out := KeyList{Address: addr, Keys: []Key{}}
	for _, e := range entries {
		out.Keys = append(out.Keys, describe(addr, e, registered[EntryFingerprint(e)]))
	}
	for _, r := range missing {
		kind := "smime"
		if r.Method == store.MethodPGP {
			kind = "pgp"
		}
		out.Keys = append(out.Keys, Key{Address: addr, Fingerprint: r.Fingerprint, Kind: kind, State: "unusable",
			Reason: "registered, but not in the recipient directory", Source: "registered"})
	}
	return jsonResponse(http.StatusOK, out), nil
}

// deleteKey unregisters the customer's key and removes it from the recipient directory, as keys
// remove does.
func (s *Server) deleteKey(c *call) (response, error) {
	addr, err := pathAddress(c)
	if err != nil {
		return response{}, err
	}
	raw := c.r.PathValue("fingerprint")
	want := strings.ToUpper(raw)
	if len(want) < minFingerprint || len(want) > 64 || strings.Trim(want, "0123456789ABCDEF") != "" {
		return response{}, refuse(ProblemBadFingerprint, quote(raw)+" is not 16 to 64 hex digits")
	}
	ctx := c.r.Context()
	entries, regs, _, err := s.addressEntries(ctx, addr)
	if err != nil {
		return response{}, err
	}
	found, order := AddressKeys(entries, regs, addr, want)
	switch {
	case len(order) == 0:
		return response{}, refuse(ProblemNotFound, addr+" has no key with fingerprint "+want)
	case len(order) > 1:
		return response{}, refuse(ProblemBadFingerprint, fmt.Sprintf("%s names %d keys of %s: give more digits", want, len(order), addr))
	}
	if _, err := RemoveKey(ctx, s.st, s.dir, addr, order[0], found[order[0]]); err != nil {
		return response{}, fmt.Errorf("remove key: %w", err)
	}
	s.directoryChanged(ctx)
	c.detail = "removed " + order[0][:minFingerprint]
	return response{status: http.StatusNoContent}, nil
}

// addressEntries returns the entries naming addr (the current directory's, and those of keys
// registered for it that the store holds but the directory does not have yet), its registrations,
// and the registrations whose key is nowhere.
func (s *Server) addressEntries(ctx context.Context, addr string) (entries []keys.Entry, regs, missing []store.Registration, err error) {
	if regs, err = s.st.Registrations(ctx, addr); err != nil {
		return nil, nil, nil, fmt.Errorf("registrations: %w", err)
	}
	if entries, err = s.directory().EntriesFor(addr); err != nil {
		return nil, nil, nil, err
	}
	have := map[string]bool{}
	for _, e := range entries {
		have[EntryFingerprint(e)] = true
	}
	var certs []*x509.Certificate
	var pgpKeys []*openpgp.Entity
	for _, r := range regs {
		if have[r.Fingerprint] {
			continue
		}
		k, err := s.st.RecipientKey(ctx, r.Method, r.Fingerprint)
		if errors.Is(err, store.ErrNotFound) {
			missing = append(missing, r)
			continue
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("stored key: %w", err)
		}
		if k.Method == store.MethodPGP {
			ks, err := keys.ParsePGPKeys(k.Data)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("stored OpenPGP key %s: %w", r.Fingerprint, err)
			}
			pgpKeys = append(pgpKeys, ks...)
		} else {
			cs, err := keys.ParseCertificates(k.Data)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("stored certificate %s: %w", r.Fingerprint, err)
			}
			certs = append(certs, cs...)
		}
	}
	if len(certs)+len(pgpKeys) > 0 {
		more, err := s.judge(addr, certs, pgpKeys)
		if err != nil {
			return nil, nil, nil, err
		}
		entries = append(entries, more...)
	}
	return entries, regs, missing, nil
}

// directory is the current recipient directory (an empty one before any was set).
func (s *Server) directory() *keys.Directory {
	if d := s.cur.Load(); d != nil {
		return d
	}
	return keys.NewDirectory(nil, nil)
}

// judge returns the entries naming addr of certs and pgpKeys, judged with the trusted roots and
// the intermediates among certs; a certificate whose chain needs an intermediate only the current
// directory holds is judged by it.
func (s *Server) judge(addr string, certs []*x509.Certificate, pgpKeys []*openpgp.Entity) ([]keys.Entry, error) {
	roots, err := s.dir.Roots()
	if err != nil {
		return nil, fmt.Errorf("trusted roots: %w", err)
	}
	entries, err := keys.NewDirectory(roots, certs, keys.WithPGPKeys(pgpKeys...), keys.WithClock(s.now)).EntriesFor(addr)
	if err != nil {
		return nil, err
	}
	cur := s.directory()
	for i, e := range entries {
		if e.Certificate != nil && e.Problem != nil && cur.Check(e.Certificate) == nil {
			entries[i].Problem = nil
		}
	}
	return entries, nil
}

// directoryChanged runs the reload after a call changed the recipient directory; a failure is
// logged (the change is stored, and every node's change feed reloads it too).
func (s *Server) directoryChanged(ctx context.Context) {
	if err := s.reload(context.WithoutCancel(ctx)); err != nil {
		s.log.Warn("api: recipient directory not reloaded", "err", err)
	}
}

// describe is the API's view of an entry.
func describe(addr string, e keys.Entry, registered bool) Key {
	k := Key{Address: addr, Fingerprint: EntryFingerprint(e), Kind: "smime", State: "usable", Source: "directory",
		Subject: safeDetail(e.Subject())}
	if e.Kind() == keys.MethodPGP {
		k.Kind = "pgp"
	}
	if registered {
		k.Source = "registered"
	}
	if p := e.Problem; p != nil {
		k.State, k.Reason = "unusable", p.Reason.Error()
		if p.Detail != "" {
			k.Reason = safeDetail(k.Reason + ": " + p.Detail)
		}
	}
	if t := e.Expires(); !t.IsZero() {
		t = t.UTC()
		k.Expires = &t
	}
	return k
}

// jsonResponse is v as a JSON answer.
func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the API's answers all marshal
	}
	return response{status: status, contentType: "application/json", body: append(b, '\n')}
}
