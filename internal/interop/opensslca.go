package interop

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// OpenSSLCA is a real `openssl ca` directory: its CA, the certificates it issues (S/MIME, with a
// CRL distribution point at CRLURL and, with OCSP, an OCSP responder at OCSPURL), and the CRL
// `openssl ca -gencrl` writes, served (DER) at CRLURL by a loopback HTTP server.
type OpenSSLCA struct {
	Dir, Config string
	CA          *x509.Certificate
	CRLURL      string
	OCSPURL     string
	// Fetches counts the CRL server's requests.
	Fetches atomic.Int32
	crl     atomic.Pointer[[]byte]
}

const opensslCnf = `[ca]
default_ca = CA_default
[CA_default]
dir = .
database = index.txt
new_certs_dir = .
certificate = ca.pem
private_key = ca.key
serial = serial
crlnumber = crlnumber
default_md = sha256
default_days = 30
default_crl_days = 1
policy = policy_any
unique_subject = no
[policy_any]
commonName = supplied
[usr]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = emailProtection
subjectAltName = email:$ENV::SAN
crlDistributionPoints = URI:$ENV::CRLURL
[usrocsp]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = emailProtection
subjectAltName = email:$ENV::SAN
authorityInfoAccess = OCSP;URI:$ENV::OCSPURL
crlDistributionPoints = URI:$ENV::CRLURL
`

// NewOpenSSLCA makes a CA named name (letters, digits and spaces) in a temporary directory.
func NewOpenSSLCA(t testing.TB, name string) *OpenSSLCA {
	t.Helper()
	Tool(t, "openssl")
	o := &OpenSSLCA{Dir: t.TempDir(), OCSPURL: "http://127.0.0.1:1/"}
	o.Config = filepath.Join(o.Dir, "openssl.cnf")
	for file, data := range map[string]string{"openssl.cnf": opensslCnf, "index.txt": "", "serial": "1000\n", "crlnumber": "1000\n"} {
		if err := os.WriteFile(filepath.Join(o.Dir, file), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.Fetches.Add(1)
		if b := o.crl.Load(); b != nil {
			w.Write(*b)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	o.CRLURL = srv.URL + "/ca.crl"
	o.Run(t, "", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN="+name, "-days", "30", "-keyout", "ca.key", "-out", "ca.pem",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	o.CA = o.ReadCert(t, "ca.pem")
	return o
}

// Run runs openssl in the CA's directory, with san (the address a certificate names) and the
// URLs in the environment the configuration reads.
func (o *OpenSSLCA) Run(t testing.TB, san string, args ...string) []byte {
	t.Helper()
	if san == "" {
		san = "nobody@example.com"
	}
	cmd := exec.Command("openssl", args...)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), "SAN="+san, "CRLURL="+o.CRLURL, "OCSPURL="+o.OCSPURL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// ReadCert reads the first certificate of a PEM file in the CA's directory.
func (o *OpenSSLCA) ReadCert(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(o.Dir, name))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", name)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// Issue has the CA issue a certificate to name for addr (extensions "usr", or "usrocsp" to name
// the OCSP responder too); its key is NAME.key, the certificate NAME.pem in Dir.
func (o *OpenSSLCA) Issue(t testing.TB, name, addr, extensions string) *x509.Certificate {
	t.Helper()
	o.Run(t, addr, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN="+name, "-keyout", name+".key", "-out", name+".csr")
	o.Run(t, addr, "ca", "-batch", "-config", o.Config, "-extensions", extensions, "-in", name+".csr", "-out", name+".pem")
	return o.ReadCert(t, name+".pem")
}

// Revoke revokes NAME.pem with an RFC 5280 reason (e.g. keyCompromise).
func (o *OpenSSLCA) Revoke(t testing.TB, name, reason string) {
	t.Helper()
	o.Run(t, "", "ca", "-config", o.Config, "-revoke", name+".pem", "-crl_reason", reason)
}

// GenCRL has `openssl ca -gencrl` write the CRL the server then serves, DER as CAs publish it.
func (o *OpenSSLCA) GenCRL(t testing.TB) {
	t.Helper()
	o.Run(t, "", "ca", "-config", o.Config, "-gencrl", "-out", "crl.pem")
	o.Run(t, "", "crl", "-in", "crl.pem", "-outform", "DER", "-out", "crl.der")
	b, err := os.ReadFile(filepath.Join(o.Dir, "crl.der"))
	if err != nil {
		t.Fatal(err)
	}
	o.crl.Store(&b)
}

// ServeCRL replaces what the CRL server serves (nil: 404).
func (o *OpenSSLCA) ServeCRL(b []byte) {
	if b == nil {
		o.crl.Store(nil)
		return
	}
	o.crl.Store(&b)
}

// CRL is what the CRL server serves now.
func (o *OpenSSLCA) CRL() []byte {
	if b := o.crl.Load(); b != nil {
		return *b
	}
	return nil
}
