package discovery

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/address"
)

// WKDServer publishes the bank's own OpenPGP public keys by WKD, in both layouts, so that
// customers' clients (Thunderbird, GnuPG with --auto-key-locate wkd, Proton) find the key to
// encrypt their replies to: /.well-known/openpgpkey/DOMAIN/hu/HASH (advanced, on
// openpgpkey.DOMAIN) and /.well-known/openpgpkey/hu/HASH (direct, on DOMAIN), each with its
// policy file. A key is served binary, as the draft requires, carrying only the user IDs of the
// address asked for.
type WKDServer struct {
	byDomain map[string]map[string][]byte // domain → WKD hash → binary key
}

// NewWKDServer indexes ents' public keys by the addresses of their user IDs. Two different keys
// for one address are refused: a client takes one key per address, and which one it got would
// depend on the order of the bank's files.
func NewWKDServer(ents []*openpgp.Entity) (*WKDServer, error) {
	s := &WKDServer{byDomain: map[string]map[string][]byte{}}
	owner := map[string]string{} // address → fingerprint of the key published for it
	for _, e := range ents {
		fp := fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
		for name, id := range e.Identities {
			addr, err := address.Normalize(id.UserId.Email)
			if id.UserId.Email == "" || err != nil {
				continue
			}
			local, domain, _ := address.Split(addr)
			domain = strings.ToLower(domain)
			hash := WKDHash(local)
			id := hash + "@" + domain
			if prev, dup := owner[id]; dup && prev != fp {
				return nil, fmt.Errorf("WKD: two OpenPGP keys for %s (%s and %s): publish one", addr, prev, fp)
			}
			owner[id] = fp
			key, err := onlyIdentity(e, name)
			if err != nil {
				return nil, fmt.Errorf("WKD key for %s: %w", addr, err)
			}
			if s.byDomain[domain] == nil {
				s.byDomain[domain] = map[string][]byte{}
			}
			s.byDomain[domain][hash] = key
		}
	}
	if len(s.byDomain) == 0 {
		return nil, errors.New("no OpenPGP key with an address to publish by WKD")
	}
	return s, nil
}

// onlyIdentity is e's public key with the one user ID name: a customer's client asked for one
// address and need not learn the bank's others.
func onlyIdentity(e *openpgp.Entity, name string) ([]byte, error) {
	one := *e
	one.PrivateKey = nil
	one.Identities = map[string]*openpgp.Identity{name: e.Identities[name]}
	var b bytes.Buffer
	if err := one.Serialize(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ServeHTTP answers GET and HEAD for the two layouts; anything else is 404 or 405.
func (s *WKDServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	rest, ok := strings.CutPrefix(r.URL.Path, "/.well-known/openpgpkey/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	domain := host // the direct layout: the domain is the host asked
	if d, after, found := strings.Cut(rest, "/"); found && d != "hu" && d != "policy" {
		domain, rest = d, after // the advanced layout names it in the path, on openpgpkey.DOMAIN only
		if host != "openpgpkey."+domain {
			http.NotFound(w, r)
			return
		}
	}
	keys, known := s.byDomain[domain]
	if !known {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if rest == "policy" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		return // an empty policy file: the server exists and follows the protocol
	}
	hash, ok := strings.CutPrefix(rest, "hu/")
	key := keys[hash]
	if !ok || key == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", fmt.Sprint(len(key)))
	if r.Method == http.MethodGet {
		w.Write(key)
	}
}
