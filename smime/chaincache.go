package smime

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"time"
)

// maxCachedChains bounds a ChainCache: a bank's repliers are many more, but those who write within
// a directory's lifetime (it is replaced on every change) are far fewer.
const maxCachedChains = 4096

// ChainCache keeps the chains that signers' certificates were verified with, so that a customer's
// next reply does not build and check the same chain again (chain building was a tenth of a 2 KB
// reply's CPU beside the one RSA private-key operation). It is made for one pair of root and
// intermediate pools and is only used with them; a directory reload makes a new one.
//
// A chain is reused for a message only when the signer and every certificate the message carries
// are the same as when it was verified (the key is a hash of all of them) and the time the message
// is checked at lies within the validity of every certificate in the chains: inside that window,
// x509 verification of the same certificates against the same pools gives the same chains. Failed
// verifications are not kept (a bad chain is checked, and reported, each time). Revocation is not
// part of it: the caller checks that for every message.
type ChainCache struct {
	roots, known *x509.CertPool
	mu           sync.Mutex
	m            map[[sha256.Size]byte]verifiedChains
	hits         int // chains reused (for tests)
}

type verifiedChains struct {
	chains      [][]*x509.Certificate
	from, until time.Time // when every certificate in chains is valid
}

// NewChainCache returns an empty cache for chains to roots through intermediates (either may be nil,
// as in InboundOptions).
func NewChainCache(roots, intermediates *x509.CertPool) *ChainCache {
	return &ChainCache{roots: roots, known: intermediates, m: map[[sha256.Size]byte]verifiedChains{}}
}

// chainKey names the inputs of one verification: the signer and the certificates carried with it.
func chainKey(signer *x509.Certificate, carried []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, c := range append([]*x509.Certificate{signer}, carried...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

func (c *ChainCache) get(k [sha256.Size]byte, at time.Time) ([][]*x509.Certificate, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	if !ok || at.Before(v.from) || at.After(v.until) {
		return nil, false
	}
	c.hits++
	return v.chains, true
}

func (c *ChainCache) put(k [sha256.Size]byte, chains [][]*x509.Certificate) {
	v := verifiedChains{chains: chains}
	for _, chain := range chains {
		for _, cert := range chain {
			if v.from.IsZero() || cert.NotBefore.After(v.from) {
				v.from = cert.NotBefore
			}
			if v.until.IsZero() || cert.NotAfter.Before(v.until) {
				v.until = cert.NotAfter
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedChains {
		for old := range c.m { // any one: the map's order is random
			delete(c.m, old)
			break
		}
	}
	c.m[k] = v
}

// Len is how many verified chains the cache holds.
func (c *ChainCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
