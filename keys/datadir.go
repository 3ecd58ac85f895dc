package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"
)

// DataDir is sealpost's data directory:
//
//	ca.pem, ca.key           development CA (only after `keys init`)
//	signer.pem, signer.key   the bank's S/MIME signing chain (leaf first) and key
//	tsa.pem, tsa.key         the embedded TSA's chain and key
//	support.pem, support.key the certificate customers encrypt their replies to (chain, leaf first)
//	                         and its key, with which the inbound side decrypts
//	customer-ca.pem, .key    the bank's customer CA (package ca): its chain (its CA certificate
//	                         first) and key; it issues customers' S/MIME certificates and the CRL
//	<role>.pending.key       the key of a certificate request from NewCSR (signer, tsa, support or customer-ca),
//	                         until ImportIdentity pairs the issued certificate with it
//	pgp.key, pgp.pass        the bank's OpenPGP secret key (armored, passphrase-protected) and its
//	                         passphrase; `keys export pgp` gives only the public key
//	roots/*.pem              trusted roots for recipients' certificates
//	recipients/*.pem         recipients' certificates (and any intermediates), one file each
//	recipients/*.asc         recipients' OpenPGP public keys (armored), one file per key
//
// The bank's identities are development ones made by Init, or real ones stored by ImportIdentity;
// DevelopmentIdentities tells them apart. Certificates are named by their SHA-256 fingerprint and
// OpenPGP keys by their fingerprint, so importing one twice is harmless; a key imported again is
// merged with the stored copy, so a revocation once stored stays. Secret keys are written 0600; no
// customer's secret is ever stored.
type DataDir string

// ErrInitialised is returned by Init when the directory already holds every identity.
var ErrInitialised = errors.New("data directory already initialised")

// ErrNotInitialised is returned when an identity file is missing.
var ErrNotInitialised = errors.New("data directory not initialised (run: sealpost keys init -data DIR)")

// DefaultSupportAddress is the address the development support certificate names unless
// WithSupportAddresses says otherwise.
const DefaultSupportAddress = "support@bank.example"

// InitOption configures Init.
type InitOption func(*initOptions)

type initOptions struct{ support []string }

// WithSupportAddresses sets the addresses the development support certificate names, where
// customers reply to (default DefaultSupportAddress). At least one is needed.
func WithSupportAddresses(addresses ...string) InitOption {
	return func(o *initOptions) { o.support = addresses }
}

// Init creates the development identities the directory lacks: a CA (also made a trusted root), the
// bank's S/MIME signer for the given sender addresses, the embedded TSA, the support identity (see
// NewDevSupport and WithSupportAddresses), the customer CA under the CA (NewDevCustomerCA), and the bank's OpenPGP key for the senders (see
// NewDevPGPKey), protected by a random passphrase kept in pgp.pass. It never replaces an identity
// that is there, so a directory initialised before sealpost knew OpenPGP or the support identity
// gets just those added, issued by its own CA; a directory that lacks nothing gives ErrInitialised.
// So does one that has no development CA but holds one of the bank's own identities: Init does not
// add a development CA, a new trusted root, beside them.
func (d DataDir) Init(senders []string, opts ...InitOption) error {
	o := initOptions{support: []string{DefaultSupportAddress}}
	for _, opt := range opts {
		opt(&o)
	}
	if len(o.support) == 0 {
		return fmt.Errorf("%s: %w: the support certificate needs an address customers reply to", d, ErrNoEmailAddress)
	}
	var missing []Role
	for _, r := range Roles() {
		if !d.exists(string(r) + ".pem") {
			missing = append(missing, r)
		}
	}
	needPGP := !d.exists("pgp.key")
	if len(missing) == 0 && !needPGP {
		return fmt.Errorf("%s: %w", d, ErrInitialised)
	}
	if len(missing) > 0 {
		if err := d.refuseNewDevCA(missing); err != nil {
			return err
		}
	}
	for _, sub := range []string{"", "roots", "recipients"} {
		if err := os.MkdirAll(d.path(sub), 0o700); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		ca, err := d.devCA()
		if err != nil {
			return err
		}
		for _, r := range missing {
			id, err := ca.newDevIdentity(r, senders, o.support)
			if err != nil {
				return err
			}
			if err := d.writeIdentity(string(r), id); err != nil {
				return err
			}
		}
	}
	if needPGP {
		return d.initPGP(senders)
	}
	return nil
}

// devCA loads the development CA, or makes one when the directory has none: it is made a trusted
// root before its files are written, so a CA on disk is always trusted (an operator who removes it
// from roots/ later is not overruled).
func (d DataDir) devCA() (*Identity, error) {
	if d.exists("ca.pem") {
		return d.Identity("ca")
	}
	ca, err := NewDevCA("sealpost development CA")
	if err != nil {
		return nil, err
	}
	if _, err := d.Import(EncodeCertificates(ca.Certificate()), ImportOptions{Root: true}); err != nil {
		return nil, err
	}
	return ca, d.writeIdentity("ca", ca)
}

// refuseNewDevCA refuses to make a development CA, a new trusted root, in a directory that holds
// the bank's own identities: the missing ones belong beside them, imported.
func (d DataDir) refuseNewDevCA(missing []Role) error {
	if d.exists("ca.pem") {
		return nil
	}
	for _, r := range Roles() {
		if slices.Contains(missing, r) {
			continue
		}
		dev, err := d.IsDevelopment(r)
		if err != nil {
			return err
		}
		if !dev {
			names := make([]string, len(missing))
			for i, m := range missing {
				names[i] = string(m)
			}
			return fmt.Errorf("%s: %w with the bank's own %s identity and no development CA: import %s with `sealpost keys import-identity` instead",
				d, ErrInitialised, r, strings.Join(names, " and "))
		}
	}
	return nil
}

func (d DataDir) exists(name string) bool {
	_, err := os.Stat(d.path(name))
	return err == nil
}

// pgpPassphraseBytes is the entropy of the generated OpenPGP passphrase; pgpS2KCount the bytes
// its S2K hashes.
const (
	pgpPassphraseBytes = 32
	pgpS2KCount        = 65536
)

// initPGP writes a new OpenPGP key for senders, encrypted under a random passphrase: pgp.pass first,
// so a pgp.key on disk always has its passphrase beside it.
func (d DataDir) initPGP(senders []string) error {
	key, err := NewDevPGPKey("sealpost bank signer", senders)
	if err != nil {
		return err
	}
	raw := make([]byte, pgpPassphraseBytes)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	pass := base64.RawURLEncoding.EncodeToString(raw)
	// The passphrase is 256 random bits, not a person's: stretching it (go-crypto's default S2K
	// count of 16,777,216 bytes, ~30 ms at each load) adds nothing an attacker would notice, and
	// every sealpost protect for an OpenPGP customer paid it. The lowest count RFC 4880 encourages
	// keeps the key readable by GnuPG and every other OpenPGP implementation.
	enc := PGPConfig()
	enc.S2KConfig = &s2k.Config{S2KMode: s2k.IteratedSaltedS2K, Hash: crypto.SHA256, S2KCount: pgpS2KCount}
	if err := key.EncryptPrivateKeys([]byte(pass), enc); err != nil {
		return fmt.Errorf("protect OpenPGP key: %w", err)
	}
	var b strings.Builder
	w, err := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	if err != nil {
		return err
	}
	// SerializePrivate would re-sign the user IDs and subkeys, which needs the key we just encrypted:
	// the self-signatures NewDevPGPKey made are written as they are.
	if err := key.SerializePrivateWithoutSigning(w, PGPConfig()); err != nil {
		return fmt.Errorf("write OpenPGP key: %w", err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	b.WriteString("\n")
	if err := writeFileAtomic(d.path("pgp.pass"), []byte(pass+"\n"), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(d.path("pgp.key"), []byte(b.String()), 0o600)
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

// Identity loads one of "ca", "signer", "tsa", "support" or "customer-ca".
func (d DataDir) Identity(name string) (*Identity, error) {
	if _, err := os.Stat(d.path(name + ".pem")); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", d, ErrNotInitialised)
	}
	return LoadPEM(d.path(name+".pem"), d.path(name+".key"))
}

// PGPKey loads the bank's OpenPGP key (pgp.key) with the passphrase in pgp.pass; see LoadPGPKey.
func (d DataDir) PGPKey() (*openpgp.Entity, error) {
	if _, err := os.Stat(d.path("pgp.key")); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no OpenPGP key: %w", d, ErrNotInitialised)
	}
	return LoadPGPKey(d.path("pgp.key"), Secret{File: d.path("pgp.pass")})
}

// ChainPEM returns the PEM chain of "ca", "signer", "tsa", "support" or "customer-ca" (no private
// key).
func (d DataDir) ChainPEM(name string) ([]byte, error) {
	switch name {
	case "ca", "signer", "tsa", "support", string(RoleCustomerCA):
	default:
		return nil, fmt.Errorf("no certificate chain named %q (ca, signer, tsa, support or customer-ca)", excerpt(name))
	}
	b, err := os.ReadFile(d.path(name + ".pem"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", d, ErrNotInitialised)
	}
	return b, err
}

// Export returns what may be published of one of the bank's identities: the PEM chain of "ca",
// "signer", "tsa", "support" (the certificate customers encrypt their replies to) or
// "customer-ca" (what customers' clients need to trust the certificates it issues), or the armored
// OpenPGP public key for "pgp". It never returns secret material.
func (d DataDir) Export(name string) ([]byte, error) {
	if name != "pgp" {
		return d.ChainPEM(name)
	}
	data, err := os.ReadFile(d.path("pgp.key"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no OpenPGP key: %w", d, ErrNotInitialised)
	}
	if err != nil {
		return nil, err
	}
	ents, err := ParsePGPKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.path("pgp.key"), err)
	}
	// The public part needs no passphrase: only the secret key material is encrypted.
	return EncodePGPPublicKeys(ents...)
}

// Directory loads the recipient directory from the data directory's files alone (DirectoryFrom
// without a shared directory).
func (d DataDir) Directory(opts ...DirectoryOption) (*Directory, error) {
	return d.DirectoryFrom(context.Background(), nil, opts...)
}

// Roots returns the trusted roots.
func (d DataDir) Roots() ([]*x509.Certificate, error) { return readCertDir(d.path("roots")) }

// Imported is what Import stored (or ParseImport would store): certificates, or OpenPGP public keys.
type Imported struct {
	Certificates []*x509.Certificate // trusted roots, or recipients' certificates and intermediates
	PGPKeys      []*openpgp.Entity   // recipients' OpenPGP keys: public part only, merged with any stored copy
}

// ImportOptions says how Import and ParseImport take their input.
type ImportOptions struct {
	// Root takes X.509 input as trusted roots; each certificate must be a CA.
	Root bool
	// Force takes recipients' certificates that would be refused (see ParseImport) anyway. The
	// directory still never encrypts to one it cannot use, and `keys list` says why.
	Force bool
}

// ParseImport parses and checks what Import would store, without writing anything, so that a caller
// importing several files can refuse them all before storing any.
//
// X.509 input (PEM, or one DER certificate) is taken as trusted roots when opts.Root is set (each
// must be a CA), else as recipients' certificates. Unless opts.Force is set, a recipient's
// certificate is refused when it names no email address, is expired or not yet valid, or has a key
// sealpost cannot encrypt to (anything but RSA of at least 2048 bits); a CA certificate is taken as
// an intermediate only beside a recipient's certificate, else refused with ErrCACertificate. Every
// refusal is a *KeyError (errors.Join of them when several), with ErrNoEmailAddress, ErrExpired,
// ErrNotYetValid, ErrUnsupportedKey or ErrCACertificate as its reason.
//
// OpenPGP input (armored key blocks, or binary packets) is taken as recipients' keys: only each key's
// public part is kept, even from a secret key block, and each must have a user ID with an email
// address. OpenPGP keys cannot be roots. Revoked and expired keys are accepted (the directory refuses
// them and `keys list` says why), so a revocation can be imported over a stored key.
//
// Input that is neither gives ErrNoKeyMaterial. Errors never quote more of the input than a short
// printable excerpt.
func ParseImport(data []byte, opts ImportOptions) (Imported, error) {
	if err := checkKeyMaterial(data); err != nil {
		return Imported{}, err
	}
	if isOpenPGP(data) {
		if opts.Root {
			return Imported{}, errors.New("OpenPGP keys cannot be trusted roots (roots are X.509 CA certificates)")
		}
		if bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")) {
			return Imported{}, errors.New("input mixes OpenPGP keys and certificates: import them separately")
		}
		imp, err := parseImportPGP(data)
		if err != nil && len(armorStarts(data)) == 0 {
			// Binary input is taken for OpenPGP packets by its first byte alone: say what else it is not.
			return Imported{}, fmt.Errorf("%w: binary data that is neither a DER certificate nor OpenPGP key packets (read as OpenPGP: %v)", ErrNoKeyMaterial, err)
		}
		return imp, err
	}
	certs, err := ParseCertificates(data)
	if errors.Is(err, ErrNoCertificateInFile) {
		return Imported{}, fmt.Errorf("%w: %s", ErrNoKeyMaterial, describePEM(data))
	}
	if err != nil {
		return Imported{}, err
	}
	if opts.Root {
		for _, c := range certs {
			if !c.IsCA {
				return Imported{}, fmt.Errorf("%s is not a CA certificate and cannot be a trusted root", subjectOf(c))
			}
		}
	} else if !opts.Force {
		if err := checkRecipientCertificates(certs, time.Now()); err != nil {
			return Imported{}, err
		}
	}
	return Imported{Certificates: certs}, nil
}

func parseImportPGP(data []byte) (Imported, error) {
	ents, err := ParsePGPKeys(data)
	if err != nil {
		return Imported{}, err
	}
	var out []*openpgp.Entity
	at := map[string]int{}
	for _, e := range ents {
		pub, err := publicPGP(e)
		if err != nil {
			return Imported{}, err
		}
		if !pgpNamesAddress(pub) {
			return Imported{}, fmt.Errorf("OpenPGP key %s (%s) has no user ID with an email address", pgpFingerprint(pub), primaryName(pub))
		}
		fp := pgpFingerprint(pub)
		if i, ok := at[fp]; ok {
			if out[i], err = mergePGP(out[i], pub); err != nil {
				return Imported{}, err
			}
			continue
		}
		at[fp] = len(out)
		out = append(out, pub)
	}
	return Imported{PGPKeys: out}, nil
}

// checkKeyMaterial refuses input that cannot hold a certificate or an OpenPGP key: empty input,
// and text without a PEM or OpenPGP armor line. Binary input is left to the DER and OpenPGP parsers.
func checkKeyMaterial(data []byte) error {
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return fmt.Errorf("%w: the input is empty", ErrNoKeyMaterial)
	case bytes.Contains(data, []byte("-----BEGIN")):
		return nil
	case looksLikeText(data):
		return fmt.Errorf("%w: the input is text beginning %q", ErrNoKeyMaterial, excerpt(string(bytes.TrimSpace(data))))
	}
	return nil
}

// looksLikeText reports whether data is UTF-8 without control characters other than whitespace: a
// DER certificate (0x30 0x82 …) or an OpenPGP packet (tag byte ≥ 0x80) never is.
func looksLikeText(data []byte) bool {
	if !utf8.Valid(data) {
		return false
	}
	return !bytes.ContainsFunc(data, func(r rune) bool { return isControl(r) && !strings.ContainsRune("\t\n\r\f", r) })
}

// describePEM says what PEM input without a certificate holds, by block type.
func describePEM(data []byte) string {
	var types []string
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			break
		}
		if t := excerpt(block.Type); !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	switch {
	case len(types) == 0:
		return "no readable PEM block"
	case slices.ContainsFunc(types, func(t string) bool { return strings.HasSuffix(t, "PRIVATE KEY") }):
		return "the input holds a private key and no certificate (a customer's private key is never imported; the bank's own identities go through `sealpost keys import-identity`)"
	}
	return "the input holds only " + strings.Join(types, ", ") + " blocks"
}

// checkRecipientCertificates refuses, with a *KeyError each, what the directory could never
// encrypt to: see ParseImport.
func checkRecipientCertificates(certs []*x509.Certificate, now time.Time) error {
	hasLeaf := slices.ContainsFunc(certs, func(c *x509.Certificate) bool { return !c.IsCA })
	var errs []error
	for _, c := range certs {
		fail := func(reason error, detail string) {
			errs = append(errs, &KeyError{Subject: subjectOf(c), Serial: c.SerialNumber.Text(16), Reason: reason,
				Detail: detail, NotAfter: c.NotAfter.UTC().Format(time.RFC3339)})
		}
		if c.IsCA {
			if !hasLeaf {
				fail(ErrCACertificate, "")
			}
			continue
		}
		if len(c.EmailAddresses) == 0 {
			fail(ErrNoEmailAddress, "")
		}
		switch {
		case now.Before(c.NotBefore):
			fail(ErrNotYetValid, "valid from "+c.NotBefore.UTC().Format(time.RFC3339))
		case now.After(c.NotAfter):
			fail(ErrExpired, "expired "+c.NotAfter.UTC().Format(time.RFC3339))
		}
		if k, ok := c.PublicKey.(*rsa.PublicKey); !ok {
			fail(ErrUnsupportedKey, keyAlgorithm(c.PublicKey)+" key: sealpost encrypts only to RSA keys")
		} else if n := k.N.BitLen(); n < 2048 {
			fail(ErrUnsupportedKey, fmt.Sprintf("%d-bit RSA key", n))
		}
	}
	return errors.Join(errs...)
}

// pgpNamesAddress says whether a user ID of e with a self-signature carries an email address.
func pgpNamesAddress(e *openpgp.Entity) bool {
	for _, id := range e.Identities {
		if _, ok := pgpAddress(id); ok && id.SelfSignature != nil {
			return true
		}
	}
	return false
}

// Import stores what ParseImport accepts: certificates as roots/<hash>.pem or recipients/<hash>.pem,
// OpenPGP keys as recipients/<fingerprint>.asc (public part only, merged with any copy already
// stored). It returns what it stored. Nothing is stored if anything in data is refused.
func (d DataDir) Import(data []byte, opts ImportOptions) (Imported, error) {
	imp, err := ParseImport(data, opts)
	if err != nil {
		return Imported{}, err
	}
	sub := "recipients"
	if opts.Root {
		sub = "roots"
	}
	if err := os.MkdirAll(d.path(sub), 0o700); err != nil {
		return Imported{}, err
	}
	// Prepare every file before writing any, so a stored key that cannot be read refuses the lot.
	type file struct {
		name string
		data []byte
	}
	var files []file
	for _, c := range imp.Certificates {
		sum := sha256.Sum256(c.Raw)
		files = append(files, file{filepath.Join(d.path(sub), hex.EncodeToString(sum[:16])+".pem"), EncodeCertificates(c)})
	}
	for i, k := range imp.PGPKeys {
		name := filepath.Join(d.path(sub), strings.ToLower(pgpFingerprint(k))+".asc")
		stored, err := os.ReadFile(name)
		switch {
		case err == nil:
			old, err := ParsePGPKeys(stored)
			if err != nil {
				return Imported{}, fmt.Errorf("%s: %w", name, err)
			}
			for _, o := range old {
				if k, err = mergePGP(o, k); err != nil {
					return Imported{}, fmt.Errorf("%s: %w", name, err)
				}
			}
			imp.PGPKeys[i] = k
		case !errors.Is(err, fs.ErrNotExist):
			return Imported{}, err
		}
		armored, err := EncodePGPPublicKeys(k)
		if err != nil {
			return Imported{}, err
		}
		files = append(files, file{name, armored})
	}
	for _, f := range files {
		if err := writeFileAtomic(f.name, f.data, 0o644); err != nil {
			return Imported{}, err
		}
	}
	return imp, nil
}

// readPGPDir reads every recipients/*.asc file, in name order.
func readPGPDir(dir string) ([]*openpgp.Entity, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".asc") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var out []*openpgp.Entity
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		keys, err := ParsePGPKeys(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, n), err)
		}
		out = append(out, keys...)
	}
	return out, nil
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
	return syncDir(filepath.Dir(name))
}
