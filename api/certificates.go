package api

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/ca"
	"github.com/sealpost/sealpost/keys"
)

// Issuer is the bank's customer CA (ca.CA implements it).
type Issuer interface {
	// IssueFromCSR issues a certificate for address from the customer's PKCS#10 request.
	IssueFromCSR(ctx context.Context, address string, csr []byte) (ca.Issued, error)
	// IssueWithKey makes a key and issues a certificate for address, returned in a PKCS#12.
	IssueWithKey(ctx context.Context, address string) (ca.Issued, error)
	// Revoke revokes the certificate with serial issued to address.
	Revoke(ctx context.Context, address, serial string, reason int) error
	// CRL returns a fresh DER CRL of every revoked certificate.
	CRL(ctx context.Context) ([]byte, error)
}

// WithCA serves the customer CA's calls: issuing (from a request, or with a PKCS#12), revoking
// and the CRL. Without it they answer 501 (problem no-ca).
func WithCA(i Issuer) Option { return func(s *Server) { s.ca = i } }

// CertificateRequest is the JSON body of POST /v1/customers/{address}/certificates: the PKCS#10
// request made on the customer's device (PEM), or none for a key made here and returned in a PKCS#12.
type CertificateRequest struct {
	CSR string `json:"csr"`
}

// IssuedCertificate is the answer of an issue: the certificate and its chain (PEM), and for the
// PKCS#12 path the PKCS#12 (base64 in JSON) with its password, shown this once and kept nowhere.
type IssuedCertificate struct {
	Address     string    `json:"address"`
	Serial      string    `json:"serial"`
	Fingerprint string    `json:"fingerprint"`
	NotAfter    time.Time `json:"not_after"`
	Certificate string    `json:"certificate"`
	Chain       string    `json:"chain"`
	PKCS12      []byte    `json:"pkcs12,omitempty"`
	Password    string    `json:"password,omitempty"`
}

// typePKCS10 is a PKCS#10 request as the body (DER or PEM).
const typePKCS10 = "application/pkcs10"

// revocationReasons are the RFC 5280 reasons a DELETE may give (?reason=), by name.
var revocationReasons = map[string]int{
	"unspecified": 0, "keyCompromise": 1, "affiliationChanged": 3, "superseded": 4, "cessationOfOperation": 5,
}

// postCertificate issues the customer a certificate from the bank's customer CA and registers it at
// once, as a key registered through PUT …/keys is.
func (s *Server) postCertificate(c *call) (response, error) {
	addr, err := pathAddress(c)
	if err != nil {
		return response{}, err
	}
	if s.ca == nil {
		return response{}, refuse(ProblemNoCA, "this gateway has no customer CA")
	}
	csr, err := csrBody(c.r.Header.Get("Content-Type"), c.body)
	if err != nil {
		return response{}, err
	}
	ctx := c.r.Context()
	var issued ca.Issued
	if csr == nil {
		issued, err = s.ca.IssueWithKey(ctx, addr)
	} else {
		issued, err = s.ca.IssueFromCSR(ctx, addr, csr)
	}
	if err != nil {
		return response{}, caProblem(err)
	}
	// The chain goes into the shared directory with the certificate: every node can then build
	// the path to the bank's root the customers' certificates are checked against.
	imp := keys.Imported{Certificates: append([]*x509.Certificate{issued.Certificate}, issued.Chain...)}
	merged, err := StoreImported(ctx, s.st, imp)
	if err != nil {
		return response{}, fmt.Errorf("store certificate: %w", err)
	}
	if _, err := RegisterImported(ctx, s.st, merged, s.now(), addr); err != nil {
		return response{}, fmt.Errorf("register certificate: %w", err)
	}
	s.directoryChanged(ctx)
	out := IssuedCertificate{
		Address: addr, Serial: strings.ToUpper(issued.Certificate.SerialNumber.Text(16)),
		Fingerprint: keys.CertFingerprint(issued.Certificate), NotAfter: issued.Certificate.NotAfter.UTC(),
		Certificate: string(keys.EncodeCertificates(issued.Certificate)), Chain: string(keys.EncodeCertificates(issued.Chain...)),
		PKCS12: issued.PKCS12, Password: issued.Password,
	}
	c.detail = "issued " + out.Serial
	resp := jsonResponse(http.StatusCreated, out)
	resp.secret = issued.PKCS12 != nil
	return resp, nil
}

// csrBody is the request in the body: nil for none (the PKCS#12 path).
func csrBody(contentType string, body []byte) ([]byte, error) {
	if len(body) == 0 {
		return nil, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, refuse(ProblemUnsupportedMediaType, "send "+typeJSON+" or "+typePKCS10)
	}
	switch mt {
	case typePKCS10:
		return body, nil
	case typeJSON:
		var req CertificateRequest
		if err := decodeJSON(body, &req); err != nil {
			return nil, err
		}
		if req.CSR == "" {
			return nil, nil
		}
		return []byte(req.CSR), nil
	}
	return nil, refuse(ProblemUnsupportedMediaType, quote(mt)+" is not taken: send "+typeJSON+" or "+typePKCS10)
}

// caProblem maps the CA's refusals to their problems; anything else is internal.
func caProblem(err error) error {
	switch {
	case errors.Is(err, ca.ErrBadCSR):
		return refuse(ProblemBadCSR, safeDetail(err.Error()))
	case errors.Is(err, ca.ErrWrongAddress):
		return refuse(ProblemWrongAddress, safeDetail(err.Error()))
	case errors.Is(err, ca.ErrWeakKey):
		return refuse(ProblemWeakKey, safeDetail(err.Error()))
	case errors.Is(err, ca.ErrNotFound):
		return refuse(ProblemNotFound, "the customer has no certificate with this serial")
	case errors.Is(err, ca.ErrRevoked):
		return refuse(ProblemRevoked, "the certificate is revoked already")
	case errors.Is(err, address.ErrInvalid):
		return refuse(ProblemBadAddress, "")
	}
	return err
}

// deleteCertificate revokes a certificate the customer CA issued to the customer (?reason= one of
// revocationReasons), removes it from the recipient directory so no node encrypts to it again,
// and publishes the revocation in the CRL.
func (s *Server) deleteCertificate(c *call) (response, error) {
	addr, err := pathAddress(c)
	if err != nil {
		return response{}, err
	}
	if s.ca == nil {
		return response{}, refuse(ProblemNoCA, "this gateway has no customer CA")
	}
	serial := strings.ToUpper(c.r.PathValue("serial"))
	if serial == "" || len(serial) > 40 || strings.Trim(serial, "0123456789ABCDEF") != "" {
		return response{}, refuse(ProblemBadSerial, quote(c.r.PathValue("serial"))+" is not 1 to 40 hex digits")
	}
	reason := 0
	if r := c.r.URL.Query().Get("reason"); r != "" {
		n, ok := revocationReasons[r]
		if !ok {
			return response{}, refuse(ProblemBadReason, quote(r)+" is not a revocation reason this call takes")
		}
		reason = n
	}
	ctx := c.r.Context()
	if err := s.ca.Revoke(ctx, addr, serial, reason); err != nil {
		return response{}, caProblem(err)
	}
	cert, err := s.st.IssuedCert(ctx, serial)
	if err != nil {
		return response{}, fmt.Errorf("revoked certificate: %w", err)
	}
	entries, regs, _, err := s.addressEntries(ctx, addr)
	if err != nil {
		return response{}, err
	}
	found, order := AddressKeys(entries, regs, addr, cert.Fingerprint)
	if len(order) == 1 {
		if _, err := RemoveKey(ctx, s.st, s.dir, addr, order[0], found[order[0]]); err != nil {
			return response{}, fmt.Errorf("remove revoked certificate: %w", err)
		}
		s.directoryChanged(ctx)
	}
	s.crl.invalidate()
	c.detail = "revoked " + serial
	return response{status: http.StatusNoContent}, nil
}

// getCRL answers the customer CA's CRL, for the distribution point in every certificate it
// issues: no token, since customers' clients fetch it.
func (s *Server) getCRL(c *call) (response, error) {
	if s.ca == nil {
		return response{}, refuse(ProblemNoCA, "this gateway has no customer CA")
	}
	crl, err := s.crl.get(c.r.Context(), s.ca, s.now())
	if err != nil {
		return response{}, fmt.Errorf("crl: %w", err)
	}
	return response{status: http.StatusOK, contentType: "application/pkix-crl", body: crl}, nil
}

// crlMaxAge is how long a CRL is served before a fresh one is signed, when no revocation made it
// stale sooner; it is well inside the CRL's own nextUpdate (a day).
const crlMaxAge = 10 * time.Minute

// crlCache keeps the last CRL, so that an unauthenticated GET does not sign a new one (and take a
// CRL number) each time: it is signed again after a revocation (here, or on another node, which
// reaches this one as a directory change) or after crlMaxAge.
type crlCache struct {
	mu  sync.Mutex
	der []byte
	at  time.Time
}

func (c *crlCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.der = nil
}

func (c *crlCache) get(ctx context.Context, i Issuer, now time.Time) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.der != nil && now.Sub(c.at) < crlMaxAge {
		return c.der, nil
	}
	der, err := i.CRL(ctx)
	if err != nil {
		return nil, err
	}
	c.der, c.at = der, now
	return der, nil
}
