package keys

import (
	"context"
	"crypto/x509"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// KeySource is the recipient directory that several nodes share (the store): the customers'
// certificates and OpenPGP keys imported on any node. recipients/ stays an import path beside it.
type KeySource interface {
	// StoredKeys returns every stored key as StoredForm wrote it: PEM certificates, or an armored
	// OpenPGP public key.
	StoredKeys(ctx context.Context) ([]StoredKey, error)
}

// StoredKey is one certificate or OpenPGP public key as a shared directory keeps it.
type StoredKey struct {
	Method      Method
	Fingerprint string // CertFingerprint or PGPFingerprint
	Data        []byte // PEM certificate, or an armored OpenPGP public key
	// Source is the key's tier: SourceRegistered ("" counts as registered) or SourceLearned (a
	// certificate, used only through the learned tier's roots).
	Source Source
}

// StoredForm returns what imp adds to a shared directory: each certificate (a recipient's, or an
// intermediate) as PEM, and each OpenPGP key's public part armored, merged with the copy the
// directory already holds (existing returns it, or nil when there is none). It returns imp with
// the merged keys, as Import does for files.
func StoredForm(imp Imported, existing func(fingerprint string) ([]byte, error)) ([]StoredKey, Imported, error) {
	var out []StoredKey
	for _, c := range imp.Certificates {
		out = append(out, StoredKey{Method: MethodSMIME, Fingerprint: CertFingerprint(c), Data: EncodeCertificates(c)})
	}
	merged := Imported{Certificates: imp.Certificates}
	for _, k := range imp.PGPKeys {
		fp := PGPFingerprint(k)
		stored, err := existing(fp)
		if err != nil {
			return nil, Imported{}, err
		}
		if stored != nil {
			old, err := ParsePGPKeys(stored)
			if err != nil {
				return nil, Imported{}, fmt.Errorf("stored OpenPGP key %s: %w", fp, err)
			}
			for _, o := range old {
				if k, err = mergePGP(o, k); err != nil {
					return nil, Imported{}, fmt.Errorf("stored OpenPGP key %s: %w", fp, err)
				}
			}
		}
		armored, err := EncodePGPPublicKeys(k)
		if err != nil {
			return nil, Imported{}, err
		}
		out = append(out, StoredKey{Method: MethodPGP, Fingerprint: fp, Data: armored})
		merged.PGPKeys = append(merged.PGPKeys, k)
	}
	return out, merged, nil
}

// parseStored reads keys a shared directory holds; one that does not parse refuses the lot, as a
// bad file under recipients/ does.
func parseStored(stored []StoredKey) ([]*x509.Certificate, []*openpgp.Entity, error) {
	var certs []*x509.Certificate
	var pgpKeys []*openpgp.Entity
	for _, s := range stored {
		switch s.Method {
		case MethodPGP:
			ks, err := ParsePGPKeys(s.Data)
			if err != nil {
				return nil, nil, fmt.Errorf("stored OpenPGP key %s: %w", s.Fingerprint, err)
			}
			pgpKeys = append(pgpKeys, ks...)
		default:
			cs, err := ParseCertificates(s.Data)
			if err != nil {
				return nil, nil, fmt.Errorf("stored certificate %s: %w", s.Fingerprint, err)
			}
			certs = append(certs, cs...)
		}
	}
	return certs, pgpKeys, nil
}

// learnRootsDir holds the roots the bank trusts for learning certificates from signed replies
// (public S/MIME CAs). They are apart from roots/: a certificate a customer registered may chain
// to the bank's own CA, while one merely seen in a reply must chain to a CA the bank chose for that.
const learnRootsDir = "learn-roots"

// DirectoryFrom loads the recipient directory from the data directory's files and, when src is not
// nil, the shared directory: its trusted roots (roots/, per node), and the customers' certificates
// and OpenPGP keys of recipients/ and of src together; src's learned certificates form the learned
// tier, trusted through the roots of learn-roots/ (per node) only.
func (d DataDir) DirectoryFrom(ctx context.Context, src KeySource, opts ...DirectoryOption) (*Directory, error) {
	roots, err := readCertDir(d.path("roots"))
	if err != nil {
		return nil, err
	}
	recips, err := readCertDir(d.path("recipients"))
	if err != nil {
		return nil, err
	}
	pgpKeys, err := readPGPDir(d.path("recipients"))
	if err != nil {
		return nil, err
	}
	var learned []*x509.Certificate
	if src != nil {
		stored, err := src.StoredKeys(ctx)
		if err != nil {
			return nil, fmt.Errorf("shared recipient directory: %w", err)
		}
		var registered, taught []StoredKey
		for _, k := range stored {
			if k.Source == SourceLearned {
				taught = append(taught, k)
			} else {
				registered = append(registered, k)
			}
		}
		certs, ks, err := parseStored(registered)
		if err != nil {
			return nil, err
		}
		recips, pgpKeys = append(recips, certs...), append(pgpKeys, ks...)
		if learned, _, err = parseStored(taught); err != nil {
			return nil, err
		}
	}
	learnRoots, err := readCertDir(d.path(learnRootsDir))
	if err != nil {
		return nil, err
	}
	opts = append([]DirectoryOption{WithPGPKeys(pgpKeys...), WithLearned(learnRoots, learned)}, opts...)
	return NewDirectory(roots, recips, opts...), nil
}
