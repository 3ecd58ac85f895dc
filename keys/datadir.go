package keys

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DataDir is sealpost's data directory:
//
//	ca.pem, ca.key           development CA (only after `keys init`)
//	signer.pem, signer.key   the bank's S/MIME signing chain (leaf first) and key
//	tsa.pem, tsa.key         the embedded TSA's chain and key
//	roots/*.pem              trusted roots for recipients' certificates
//	recipients/*.pem         recipients' certificates (and any intermediates), one file each
//
// Certificates are named by their SHA-256 fingerprint, so importing one twice is harmless.
type DataDir string

// ErrInitialised is returned by Init when the directory already holds identities.
var ErrInitialised = errors.New("data directory already initialised")

// ErrNotInitialised is returned when an identity file is missing.
var ErrNotInitialised = errors.New("data directory not initialised (run: sealpost keys init -data DIR)")

// Init creates development identities: a CA (also made a trusted root), the bank's signer for the
// given sender addresses, and the embedded TSA.
func (d DataDir) Init(senders []string) error {
	if _, err := os.Stat(d.path("signer.pem")); err == nil {
		return fmt.Errorf("%s: %w", d, ErrInitialised)
	}
	for _, sub := range []string{"", "roots", "recipients"} {
		if err := os.MkdirAll(d.path(sub), 0o700); err != nil {
			return err
		}
	}
	ca, err := NewDevCA("sealpost development CA")
	if err != nil {
		return err
	}
	signer, err := ca.NewDevSigner(senders)
	if err != nil {
		return err
	}
	tsa, err := ca.NewDevTSA()
	if err != nil {
		return err
	}
	for name, id := range map[string]*Identity{"ca": ca, "signer": signer, "tsa": tsa} {
		if err := d.writeIdentity(name, id); err != nil {
			return err
		}
	}
	_, err = d.Import(EncodeCertificates(ca.Certificate()), true)
	return err
}

func (d DataDir) path(name string) string { return filepath.Join(string(d), name) }

func (d DataDir) writeIdentity(name string, id *Identity) error {
	der, err := x509.MarshalPKCS8PrivateKey(id.Signer)
	if err != nil {
		return fmt.Errorf("%s key: %w", name, err)
	}
	if err := writeFileAtomic(d.path(name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(d.path(name+".pem"), EncodeCertificates(id.Chain...), 0o644)
}

// Identity loads one of "ca", "signer" or "tsa".
func (d DataDir) Identity(name string) (*Identity, error) {
	if _, err := os.Stat(d.path(name + ".pem")); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", d, ErrNotInitialised)
	}
	return LoadPEM(d.path(name+".pem"), d.path(name+".key"))
}

// ChainPEM returns the PEM chain of "ca", "signer" or "tsa" (no private key).
func (d DataDir) ChainPEM(name string) ([]byte, error) {
	b, err := os.ReadFile(d.path(name + ".pem"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", d, ErrNotInitialised)
	}
	return b, err
}

// Directory loads the recipient directory with its trusted roots.
func (d DataDir) Directory(opts ...DirectoryOption) (*Directory, error) {
	roots, err := readCertDir(d.path("roots"))
	if err != nil {
		return nil, err
	}
	recips, err := readCertDir(d.path("recipients"))
	if err != nil {
		return nil, err
	}
	return NewDirectory(roots, recips, opts...), nil
}

// Roots returns the trusted roots.
func (d DataDir) Roots() ([]*x509.Certificate, error) { return readCertDir(d.path("roots")) }

// Import stores the certificates in data (PEM, or one DER certificate): as trusted roots when root is
// set (each must be a CA), else as recipients' certificates (each must name an email address, or be an
// intermediate CA). It returns what it stored. Nothing is stored if any certificate is refused.
func (d DataDir) Import(data []byte, root bool) ([]*x509.Certificate, error) {
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, err
	}
	sub := "recipients"
	if root {
		sub = "roots"
	}
	for _, c := range certs {
		switch {
		case root && !c.IsCA:
			return nil, fmt.Errorf("%s is not a CA certificate and cannot be a trusted root", c.Subject)
		case !root && !c.IsCA && len(c.EmailAddresses) == 0:
			return nil, fmt.Errorf("%s names no email address (rfc822Name)", c.Subject)
		}
	}
	if err := os.MkdirAll(d.path(sub), 0o700); err != nil {
		return nil, err
	}
	for _, c := range certs {
		sum := sha256.Sum256(c.Raw)
		if err := writeFileAtomic(filepath.Join(d.path(sub), hex.EncodeToString(sum[:16])+".pem"), EncodeCertificates(c), 0o644); err != nil {
			return nil, err
		}
	}
	return certs, nil
}

func readCertDir(dir string) ([]*x509.Certificate, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".pem") || strings.HasSuffix(e.Name(), ".crt")) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var out []*x509.Certificate
	for _, n := range names {
		cs, err := ReadCertificatesFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

// writeFileAtomic writes data to a temporary file in the same directory, fsyncs it, renames it into
// place and fsyncs the directory, so a crash leaves the old file or the new one, never half of one.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}
