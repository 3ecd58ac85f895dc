package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The bank's customer CA keeps here every certificate it issued (for the
// CRL and for the API's lists) and the number of its last CRL, which must
// increase across nodes (RFC 5280, 5.2.3).

// Limits of an issued certificate.
const (
	maxSerial    = 40       // hex digits: RFC 5280's 20 octets
	maxIssuedDER = 64 << 10 // bytes
	sha256Hex    = 64
	// crlReasonUnused is RFC 5280's CRLReason value 7, which is not used.
	crlReasonUnused = 7
	maxCRLReason    = 10
)

// IssuedCert is a certificate the bank's customer CA issued.
type IssuedCert struct {
	// Serial is upper-case hex without leading zeros ("0" for zero), 1 to
	// 40 digits; the store accepts lower case and leading zeros and keeps
	// this form.
	Serial string
	// Address is the customer's address, stored normalised.
	Address string
	// Fingerprint is the upper-case hex SHA-256 of DER (as
	// keys.CertFingerprint).
	Fingerprint string
	// DER is the certificate, 1 byte to 64 KiB.
	DER []byte
	// NotBefore and NotAfter are the certificate's validity (both set,
	// NotAfter not before NotBefore).
	NotBefore, NotAfter time.Time
	// Issued defaults to the current time when zero.
	Issued time.Time
	// Revoked is zero for a certificate that is not revoked.
	Revoked time.Time
	// Reason is the RFC 5280 CRLReason when revoked (0 to 10 except 7), 0
	// otherwise.
	Reason int
}

// normalizeSerial upper-cases a hex serial and drops its leading zeros.
func normalizeSerial(serial string) (string, error) {
	s := strings.TrimLeft(strings.ToUpper(serial), "0")
	if s == "" && serial != "" {
		s = "0"
	}
	if len(s) == 0 || len(s) > maxSerial {
		return "", fmt.Errorf("%w: serial of %d hex digits (want 1 to %d)", ErrInvalid, len(s), maxSerial)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'A' || c > 'F') {
			return "", fmt.Errorf("%w: serial %q is not hex", ErrInvalid, serial)
		}
	}
	return s, nil
}

func checkCRLReason(reason int) error {
	if reason < 0 || reason > maxCRLReason || reason == crlReasonUnused {
		return fmt.Errorf("%w: CRL reason %d (want 0 to %d except %d)", ErrInvalid, reason, maxCRLReason, crlReasonUnused)
	}
	return nil
}

// checkIssuedCert returns c with its serial, address and fingerprint
// normalised, or ErrInvalid.
func checkIssuedCert(c IssuedCert) (IssuedCert, error) {
	var err error
	if c.Serial, err = normalizeSerial(c.Serial); err != nil {
		return IssuedCert{}, err
	}
	if c.Address, err = NormalizeAddress(c.Address); err != nil {
		return IssuedCert{}, err
	}
	if c.Fingerprint, err = normalizeFingerprint(c.Fingerprint); err != nil || len(c.Fingerprint) != sha256Hex {
		return IssuedCert{}, fmt.Errorf("%w: fingerprint is not %d hex digits", ErrInvalid, sha256Hex)
	}
	switch {
	case len(c.DER) == 0 || len(c.DER) > maxIssuedDER:
		return IssuedCert{}, fmt.Errorf("%w: certificate of %d bytes (want 1 to %d)", ErrInvalid, len(c.DER), maxIssuedDER)
	case c.NotBefore.IsZero() || c.NotAfter.IsZero() || c.NotAfter.Before(c.NotBefore):
		return IssuedCert{}, fmt.Errorf("%w: validity %v to %v", ErrInvalid, c.NotBefore, c.NotAfter)
	case c.Revoked.IsZero() && c.Reason != 0:
		return IssuedCert{}, fmt.Errorf("%w: a reason without revocation", ErrInvalid)
	}
	if err := checkCRLReason(c.Reason); err != nil {
		return IssuedCert{}, err
	}
	return c, nil
}

const issuedColumns = `serial, address, fingerprint, der, not_before, not_after, issued, revoked, reason`

func scanIssuedCert(r scanner) (IssuedCert, error) {
	var c IssuedCert
	var addr []byte
	var nb, na, issued, revoked int64
	if err := r.Scan(&c.Serial, &addr, &c.Fingerprint, &c.DER, &nb, &na, &issued, &revoked, &c.Reason); err != nil {
		return IssuedCert{}, err
	}
	c.Address = string(addr)
	c.NotBefore, c.NotAfter, c.Issued, c.Revoked = unstamp(nb), unstamp(na), unstamp(issued), optUnstamp(revoked)
	return c, nil
}

// insertIssuedCert stores c, which is checked, unless its serial is taken;
// it reports whether it did.
func insertIssuedCert(ctx context.Context, c conn, ic IssuedCert) (bool, error) {
	n, err := c.exec(ctx, `INSERT INTO issued_certs (`+issuedColumns+`, address_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT DO NOTHING`, ic.Serial, b(ic.Address), ic.Fingerprint, ic.DER, ic.NotBefore.UnixNano(), ic.NotAfter.UnixNano(),
		stamp(ic.Issued), optStamp(ic.Revoked), ic.Reason, b(foldAddress(ic.Address)))
	return n > 0, err
}

func putIssuedCert(ctx context.Context, db database, c IssuedCert) error {
	c, err := checkIssuedCert(c)
	if err != nil {
		return err
	}
	added, err := insertIssuedCert(ctx, db, c)
	if err != nil {
		return fmt.Errorf("put issued certificate: %w", err)
	}
	if !added {
		return fmt.Errorf("put issued certificate %s: serial taken: %w", c.Serial, ErrConflict)
	}
	return nil
}

func issuedCert(ctx context.Context, db database, serial string) (IssuedCert, error) {
	s, err := normalizeSerial(serial)
	if err != nil {
		return IssuedCert{}, err
	}
	c, err := scanIssuedCert(db.queryRow(ctx, `SELECT `+issuedColumns+` FROM issued_certs WHERE serial = $1`, s))
	if errors.Is(err, errNoRows) {
		return IssuedCert{}, fmt.Errorf("issued certificate %s: %w", s, ErrNotFound)
	}
	if err != nil {
		return IssuedCert{}, fmt.Errorf("issued certificate: %w", err)
	}
	return c, nil
}

func issuedCertRows(ctx context.Context, c conn, q string, args ...any) ([]IssuedCert, error) {
	out := []IssuedCert{}
	err := c.query(ctx, q, args, func(r scanner) error {
		ic, err := scanIssuedCert(r)
		out = append(out, ic)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("issued certificates: %w", err)
	}
	return out, nil
}

func issuedCerts(ctx context.Context, db database, address string) ([]IssuedCert, error) {
	if address == "" {
		return issuedCertRows(ctx, db, `SELECT `+issuedColumns+` FROM issued_certs ORDER BY issued, serial`)
	}
	key, err := AddressKey(address)
	if err != nil {
		return nil, err
	}
	return issuedCertRows(ctx, db, `SELECT `+issuedColumns+` FROM issued_certs WHERE address_key = $1 ORDER BY issued, serial`, b(key))
}

func revokeIssuedCert(ctx context.Context, db database, serial string, at time.Time, reason int) error {
	s, err := normalizeSerial(serial)
	if err != nil {
		return err
	}
	if err := checkCRLReason(reason); err != nil {
		return err
	}
	n, err := db.exec(ctx, `UPDATE issued_certs SET revoked = $2, reason = $3 WHERE serial = $1 AND revoked = 0`, s, stamp(at), reason)
	if err != nil {
		return fmt.Errorf("revoke issued certificate: %w", err)
	}
	if n > 0 {
		return nil
	}
	return absentOrConflict(ctx, db, `SELECT 1 FROM issued_certs WHERE serial = $1`, []any{s}, "revoke issued certificate "+s, "revoked already")
}

func nextCRLNumber(ctx context.Context, db database) (int64, error) {
	var n int64
	err := db.write(ctx, "", func(c conn) (bool, error) {
		return true, c.queryRow(ctx, `INSERT INTO crl_number (id, number) VALUES (1, 1)
			ON CONFLICT (id) DO UPDATE SET number = crl_number.number + 1 RETURNING number`).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("next CRL number: %w", err)
	}
	return n, nil
}

// crlNumber returns the last CRL number handed out, 0 before the first.
func crlNumber(ctx context.Context, c conn) (int64, error) {
	var n int64
	err := c.queryRow(ctx, `SELECT number FROM crl_number WHERE id = 1`).Scan(&n)
	if errors.Is(err, errNoRows) {
		return 0, nil
	}
	return n, err
}

// PutIssuedCert stores c (serial, address and fingerprint normalised,
// Issued defaulting to now); ErrInvalid for a malformed certificate,
// ErrConflict when its serial is taken.
func (s *SQLite) PutIssuedCert(ctx context.Context, c IssuedCert) error {
	return putIssuedCert(ctx, s.sql(), c)
}

// PutIssuedCert stores c (serial, address and fingerprint normalised,
// Issued defaulting to now); ErrInvalid for a malformed certificate,
// ErrConflict when its serial is taken.
func (p *Postgres) PutIssuedCert(ctx context.Context, c IssuedCert) error {
	return putIssuedCert(ctx, p.sql(), c)
}

// IssuedCert returns the certificate with serial (in any case, with or
// without leading zeros); ErrNotFound when there is none.
func (s *SQLite) IssuedCert(ctx context.Context, serial string) (IssuedCert, error) {
	return issuedCert(ctx, s.sql(), serial)
}

// IssuedCert returns the certificate with serial (in any case, with or
// without leading zeros); ErrNotFound when there is none.
func (p *Postgres) IssuedCert(ctx context.Context, serial string) (IssuedCert, error) {
	return issuedCert(ctx, p.sql(), serial)
}

// IssuedCerts lists the certificates issued to address (compared by
// AddressKey), or all when address is "", by Issued and then Serial.
func (s *SQLite) IssuedCerts(ctx context.Context, address string) ([]IssuedCert, error) {
	return issuedCerts(ctx, s.sql(), address)
}

// IssuedCerts lists the certificates issued to address (compared by
// AddressKey), or all when address is "", by Issued and then Serial.
func (p *Postgres) IssuedCerts(ctx context.Context, address string) ([]IssuedCert, error) {
	return issuedCerts(ctx, p.sql(), address)
}

// RevokeIssuedCert records that the certificate serial was revoked at at
// (now when zero) for reason (an RFC 5280 CRLReason, 0 to 10 except 7);
// ErrNotFound for an unknown serial, ErrConflict when it is revoked
// already (of two revoking at once, one succeeds).
func (s *SQLite) RevokeIssuedCert(ctx context.Context, serial string, at time.Time, reason int) error {
	return revokeIssuedCert(ctx, s.sql(), serial, at, reason)
}

// RevokeIssuedCert records that the certificate serial was revoked at at
// (now when zero) for reason (an RFC 5280 CRLReason, 0 to 10 except 7);
// ErrNotFound for an unknown serial, ErrConflict when it is revoked
// already (of two revoking at once, one succeeds).
func (p *Postgres) RevokeIssuedCert(ctx context.Context, serial string, at time.Time, reason int) error {
	return revokeIssuedCert(ctx, p.sql(), serial, at, reason)
}

// RevokedCerts lists every revoked certificate, by Revoked and then Serial.
func (s *SQLite) RevokedCerts(ctx context.Context) ([]IssuedCert, error) {
	return issuedCertRows(ctx, s.sql(), revokedCertsQuery)
}

// RevokedCerts lists every revoked certificate, by Revoked and then Serial.
func (p *Postgres) RevokedCerts(ctx context.Context) ([]IssuedCert, error) {
	return issuedCertRows(ctx, p.sql(), revokedCertsQuery)
}

const revokedCertsQuery = `SELECT ` + issuedColumns + ` FROM issued_certs WHERE revoked <> 0 ORDER BY revoked, serial`

// NextCRLNumber returns the number of the next CRL: 1, 2, 3…, strictly
// increasing across every handle and node.
func (s *SQLite) NextCRLNumber(ctx context.Context) (int64, error) {
	return nextCRLNumber(ctx, s.sql())
}

// NextCRLNumber returns the number of the next CRL: 1, 2, 3…, strictly
// increasing across every handle and node.
func (p *Postgres) NextCRLNumber(ctx context.Context) (int64, error) {
	return nextCRLNumber(ctx, p.sql())
}
