package api

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

// This file is the one registration path: `sealpost keys import` and `keys remove` call it as the
// API's key routes do, so a key registered either way passes the same checks and lands in the
// same place.

// ErrRevokedCertificate: the certificate is one the bank's customer CA issued and revoked; it is
// never registered again, however it arrives.
var ErrRevokedCertificate = errors.New("the bank's customer CA revoked this certificate")

// issuedCerts is the customer CA's record of what it issued (the store implements it).
type issuedCerts interface {
	IssuedCert(ctx context.Context, serial string) (store.IssuedCert, error)
}

// refuseRevoked returns ErrRevokedCertificate when a customer's certificate in imp is one the
// customer CA issued and revoked.
func refuseRevoked(ctx context.Context, st issuedCerts, imp keys.Imported) error {
	for _, c := range imp.Certificates {
		if c.IsCA {
			continue
		}
		ic, err := st.IssuedCert(ctx, strings.ToUpper(c.SerialNumber.Text(16)))
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
			continue
		}
		if err != nil {
			return err
		}
		if ic.Fingerprint == keys.CertFingerprint(c) && !ic.Revoked.IsZero() {
			return fmt.Errorf("%w (serial %s)", ErrRevokedCertificate, ic.Serial)
		}
	}
	return nil
}

// Revocations answers whether a certificate's CA revoked it, by its CRL or OCSP responder
// (discovery.Checker): nil when good, a *keys.RevocationError when revoked, else an error that Is
// keys.ErrRevocationUnknown.
type Revocations interface {
	CheckCertificate(ctx context.Context, cert, issuer *x509.Certificate) error
}

// CheckRevocation asks the CA of each customer certificate in imp whether it revoked it, before it
// is registered: a revoked one is refused (the *keys.RevocationError). A status that cannot be had
// (the CA's server down, no issuer known) refuses nothing: it is returned in unknown for the caller
// to report, and every RCPT checks again under the class's revocation policy. The issuer is taken
// from imp's own intermediates, else from d's trusted chain. r nil checks nothing.
func CheckRevocation(ctx context.Context, r Revocations, d *keys.Directory, imp keys.Imported) (unknown []error, err error) {
	if r == nil {
		return nil, nil
	}
	for _, c := range imp.Certificates {
		if c.IsCA {
			continue
		}
		issuer := issuerIn(c, imp.Certificates)
		if issuer == nil && d != nil {
			issuer = d.IssuerOf(c, keys.SourceRegistered)
		}
		err := r.CheckCertificate(ctx, c, issuer)
		switch {
		case err == nil:
		case errors.Is(err, keys.ErrRevocationUnknown):
			unknown = append(unknown, err)
		default:
			return unknown, err
		}
	}
	return unknown, nil
}

// issuerIn is the CA certificate among certs that signed c, or nil.
func issuerIn(c *x509.Certificate, certs []*x509.Certificate) *x509.Certificate {
	for _, ca := range certs {
		if ca.IsCA && bytes.Equal(ca.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(ca) == nil {
			return ca
		}
	}
	return nil
}

// StoreImported stores imp's certificates (recipients' and intermediates) and OpenPGP keys in the
// shared recipient directory, where every node finds them; an OpenPGP key is merged with the copy
// stored there. It returns imp with the merged keys. A certificate the customer CA revoked is
// refused (ErrRevokedCertificate) when st keeps the CA's records, as both stores do.
func StoreImported(ctx context.Context, st SharedDirectory, imp keys.Imported) (keys.Imported, error) {
	if ic, ok := st.(issuedCerts); ok {
		if err := refuseRevoked(ctx, ic, imp); err != nil {
			return keys.Imported{}, err
		}
	}
	stored, merged, err := keys.StoredForm(imp, func(fp string) ([]byte, error) {
		k, err := st.RecipientKey(ctx, store.MethodPGP, fp)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return k.Data, err
	})
	if err != nil {
		return keys.Imported{}, err
	}
	for _, k := range stored {
		if err := st.PutRecipientKey(ctx, store.RecipientKey{Method: storeMethod(k.Method), Fingerprint: k.Fingerprint, Data: k.Data}); err != nil {
			return keys.Imported{}, err
		}
	}
	return merged, nil
}

// RegisterImported records each customer's certificate and OpenPGP key in imp as the registered
// key of the addresses it names (only, when not empty: of that address alone), so that the inbound
// pipeline requires those customers to sign with it. It returns the registrations made.
func RegisterImported(ctx context.Context, st Registry, imp keys.Imported, now time.Time, only string) ([]store.Registration, error) {
	var out []store.Registration
	add := func(r store.Registration) error {
		if only != "" && !address.Same(r.Address, only) {
			return nil
		}
		if err := st.Register(ctx, r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	}
	for _, c := range imp.Certificates {
		if c.IsCA {
			continue
		}
		for _, a := range c.EmailAddresses {
			if err := add(store.Registration{Address: a, Method: store.MethodSMIME, Fingerprint: keys.CertFingerprint(c)}); err != nil {
				return out, err
			}
		}
	}
	for _, k := range imp.PGPKeys {
		for _, a := range keys.PGPAddresses(k, now) {
			if err := add(store.Registration{Address: a, Method: store.MethodPGP, Fingerprint: keys.PGPFingerprint(k)}); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// Removal says what RemoveKey did.
type Removal struct {
	Kind        keys.Method
	Fingerprint string
	// InDirectory is false when the key was only registered: the recipient directory did not hold it.
	InDirectory bool
	// KeptFor are the other addresses the key names that keep it registered: it stays in the
	// recipient directory for them.
	KeptFor []string
	// Removed is true when the key left the recipient directory.
	Removed bool
}

// RemoveKey unregisters the key fp for addr and removes it from the shared recipient directory and
// from dir's recipients/ (e is its directory entry, nil when the directory does not hold it),
// unless another address it names keeps it registered.
func RemoveKey(ctx context.Context, st KeyStore, dir keys.DataDir, addr, fp string, e *keys.Entry) (Removal, error) {
	out := Removal{Fingerprint: fp}
	if err := st.Unregister(ctx, addr, fp); err != nil && !errors.Is(err, store.ErrNotFound) {
		return out, err
	}
	if e == nil {
		return out, nil
	}
	out.Kind, out.InDirectory = e.Kind(), true
	for _, a := range e.Addresses {
		if address.Same(a, addr) {
			continue
		}
		regs, err := st.Registrations(ctx, a)
		if err != nil {
			return out, err
		}
		if slices.ContainsFunc(regs, func(r store.Registration) bool { return r.Fingerprint == fp }) {
			out.KeptFor = append(out.KeptFor, a)
		}
	}
	if len(out.KeptFor) > 0 {
		return out, nil
	}
	if err := removeRecipient(ctx, st, dir, e.Kind(), fp); err != nil {
		return out, err
	}
	out.Removed = true
	return out, nil
}

// removeRecipient removes the key fp from the shared recipient directory and from recipients/,
// wherever it is; it is an error only when it is in neither.
func removeRecipient(ctx context.Context, st SharedDirectory, dir keys.DataDir, m keys.Method, fp string) error {
	shared := st.RemoveRecipientKey(ctx, storeMethod(m), fp)
	if shared != nil && !errors.Is(shared, store.ErrNotFound) {
		return shared
	}
	file := dir.RemoveRecipient(fp)
	if file != nil && !errors.Is(file, fs.ErrNotExist) {
		return file
	}
	if shared != nil && file != nil {
		return file
	}
	return nil
}

// EntryFingerprint is the fingerprint an entry is registered under.
func EntryFingerprint(e keys.Entry) string {
	if e.PGPKey != nil {
		return keys.PGPFingerprint(e.PGPKey)
	}
	return keys.CertFingerprint(e.Certificate)
}

// AddressKeys returns the keys of addr whose fingerprint starts with want (every key when want is
// empty): those in the directory naming it, with their entry, and those registered for it (a nil
// entry when the directory does not hold it), in that order.
func AddressKeys(entries []keys.Entry, regs []store.Registration, addr, want string) (map[string]*keys.Entry, []string) {
	found := map[string]*keys.Entry{}
	var order []string
	add := func(fp string, e *keys.Entry) {
		if want != "" && !strings.HasPrefix(fp, want) {
			return
		}
		if _, ok := found[fp]; !ok {
			order = append(order, fp)
		}
		if e != nil || found[fp] == nil {
			found[fp] = e
		}
	}
	for _, e := range entries {
		if slices.ContainsFunc(e.Addresses, func(a string) bool { return address.Same(a, addr) }) {
			add(EntryFingerprint(e), &e)
		}
	}
	for _, r := range regs {
		add(r.Fingerprint, nil)
	}
	return found, order
}

// storeMethod is the store's name of m.
func storeMethod(m keys.Method) string {
	if m == keys.MethodPGP {
		return store.MethodPGP
	}
	return store.MethodSMIME
}
