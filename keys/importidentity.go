package keys

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ParseIdentityPEM reads one of the bank's identities from PEM input: its certificate, the CA
// certificates that go with it, and at most one unencrypted private key, in any order, as
// concatenated from one file or several. The leaf is the certificate of the private key or, without
// one, the only certificate that is not a CA; the others follow it in chain order, and any that do
// not link are left at the end for CheckIdentity to refuse. When every certificate is a CA (the
// customer CA's), the leaf is the one that issued none of the others and is not a root. Without a private key, Signer is nil:
// ImportIdentity then pairs the certificate with the key NewCSR left pending.
func ParseIdentityPEM(data []byte) (*Identity, error) {
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, err
	}
	signer, err := identityKey(data)
	if err != nil {
		return nil, err
	}
	var leaf *x509.Certificate
	if signer != nil {
		pub, _ := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
		i := slices.IndexFunc(certs, func(c *x509.Certificate) bool { return pub != nil && pub.Equal(c.PublicKey) })
		if i < 0 {
			return nil, fmt.Errorf("%w: the private key given is not the key of any certificate given", ErrKeyMismatch)
		}
		leaf = certs[i]
	} else {
		var leaves []*x509.Certificate
		for _, c := range certs {
			if !c.IsCA {
				leaves = append(leaves, c)
			}
		}
		if len(leaves) == 0 {
			// The customer CA's identity is itself a CA: its certificate is the one no other given
			// certificate was issued by, unless it is a root.
			leaves = lowestCAs(certs)
		}
		switch len(leaves) {
		case 0:
			return nil, fmt.Errorf("%w: every certificate given is a CA certificate, none is the bank's own", ErrNoCertificateInFile)
		case 1:
			leaf = leaves[0]
		default:
			return nil, fmt.Errorf("%d certificates that are not CA certificates and no private key to tell which is the bank's: give one identity at a time", len(leaves))
		}
	}
	return &Identity{Signer: signer, Chain: orderChain(leaf, certs)}, nil
}

// lowestCAs returns the certificates of certs that are not self-signed and that issued none of the
// others: the bottom of the chain given, when every certificate is a CA.
func lowestCAs(certs []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range certs {
		issued := slices.ContainsFunc(certs, func(o *x509.Certificate) bool {
			return o != c && bytes.Equal(o.RawIssuer, c.RawSubject) && o.CheckSignatureFrom(c) == nil
		})
		if !issued && !isSelfSigned(c) && !slices.ContainsFunc(out, c.Equal) {
			out = append(out, c)
		}
	}
	return out
}

// identityKey returns the one private key in PEM data, nil if there is none.
func identityKey(data []byte) (crypto.Signer, error) {
	n := 0
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			n++
		}
	}
	switch n {
	case 0:
		return nil, nil
	case 1:
		return ParsePrivateKeyPEM(data)
	}
	return nil, fmt.Errorf("%d private keys given: give one identity at a time", n)
}

// orderChain returns leaf followed by the certificates of others that issued it, its issuer's
// issuer and so on, then whatever of others is left, in the order given. Copies of one certificate
// count once.
func orderChain(leaf *x509.Certificate, others []*x509.Certificate) []*x509.Certificate {
	chain := []*x509.Certificate{leaf}
	var rest []*x509.Certificate
	for _, c := range others {
		if !slices.ContainsFunc(chain, c.Equal) && !slices.ContainsFunc(rest, c.Equal) {
			rest = append(rest, c)
		}
	}
	for cur := leaf; !isSelfSigned(cur); {
		i := slices.IndexFunc(rest, func(c *x509.Certificate) bool {
			return bytes.Equal(cur.RawIssuer, c.RawSubject) && cur.CheckSignatureFrom(c) == nil
		})
		if i < 0 {
			break
		}
		cur = rest[i]
		chain = append(chain, cur)
		rest = slices.Delete(rest, i, i+1)
	}
	return append(chain, rest...)
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// ImportIdentity makes id the bank's role identity: after CheckIdentity accepts it, it writes
// <role>.key (PKCS#8, 0600) and <role>.pem (leaf first, then the chain), each atomically, replacing
// what was there. An identity without a private key (id.Signer nil) is paired with the key NewCSR
// left pending for the role; once both files are written the pending key is removed. An identity
// that brings its own key leaves any pending key alone. It returns the identity stored.
//
// The two files are replaced one after the other, key first: a crash between them leaves a key that
// does not match the certificate, which loading refuses (ErrKeyMismatch) and importing again
// repairs. The pending key is removed last, so an import interrupted at any point can be repeated.
func (d DataDir) ImportIdentity(role Role, id *Identity) (*Identity, error) {
	if err := role.check(); err != nil {
		return nil, err
	}
	if id == nil || len(id.Chain) == 0 {
		return nil, fmt.Errorf("%s identity: %w", role, ErrNoCertificateInFile)
	}
	fromPending := id.Signer == nil
	if fromPending {
		key, err := d.pendingKey(role, id.Certificate())
		if err != nil {
			return nil, err
		}
		id = &Identity{Signer: key, Chain: id.Chain}
	}
	if err := CheckIdentity(role, id, time.Now()); err != nil {
		return nil, err // each problem names the role and the certificate
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return nil, err
	}
	if err := d.writeIdentity(string(role), id); err != nil {
		return nil, err
	}
	if fromPending {
		if err := removeSynced(d.path(pendingKeyFile(role))); err != nil {
			return nil, err
		}
	}
	return id, nil
}

// pendingKey returns the key NewCSR left for role, which must be cert's.
func (d DataDir) pendingKey(role Role, cert *x509.Certificate) (crypto.Signer, error) {
	file := d.path(pendingKeyFile(role))
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in the input and no pending key from `sealpost keys csr %s` (%s)", ErrNoPrivateKey, role, file)
	}
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s identity: %w: the certificate %s is not for the pending key from `sealpost keys csr %s` (%s)",
			role, ErrKeyMismatch, subjectOf(cert), role, file)
	}
	return key, nil
}

// removeSynced removes a file and fsyncs its directory, so the removal survives a crash.
func removeSynced(name string) error {
	if err := os.Remove(name); err != nil {
		return err
	}
	return syncDir(filepath.Dir(name))
}
