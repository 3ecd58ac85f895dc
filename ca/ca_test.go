package ca_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/ca"
	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
	"software.sslmate.com/src/go-pkcs12"
)

// TestIssuedCertificate: what a certificate from a request holds, whatever else the request asked
// for, on both stores; it is stored before IssueFromCSR returns.
func TestIssuedCertificate(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			st := s.open(t)
			now := time.Now().Truncate(time.Second)
			c := newCA(t, st, fixedClock(now))
			// The request asks to be a CA with a DNS-free, odd subject: none of it is copied.
			csr := request(t, p256Key(), &x509.CertificateRequest{
				Subject: pkix.Name{CommonName: "Alice", Organization: []string{"Evil Corp"}}, EmailAddresses: []string{"Alice@Customer.Example"},
				ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: []byte{0x30, 0x03, 0x01, 0x01, 0xff}}},
			})
			got, err := c.IssueFromCSR(context.Background(), alice, csr)
			if err != nil {
				t.Fatal(err)
			}
			cert := got.Certificate
			if cert.Subject.String() != "CN="+alice || !slices.Equal(cert.EmailAddresses, []string{alice}) || cert.IsCA ||
				!slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}) ||
				cert.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment|x509.KeyUsageKeyAgreement ||
				!slices.Equal(cert.CRLDistributionPoints, []string{ca.DefaultCRLURL}) {
				t.Fatalf("certificate: subject %s, emails %v, CA %v, EKU %v, KU %v, CRL DP %v", cert.Subject, cert.EmailAddresses, cert.IsCA, cert.ExtKeyUsage, cert.KeyUsage, cert.CRLDistributionPoints)
			}
			if !cert.NotBefore.Equal(now.Add(-5*time.Minute)) || !cert.NotAfter.Equal(now.Add(365*24*time.Hour)) {
				t.Fatalf("validity %s .. %s, want from 5 minutes before %s for 365 days", cert.NotBefore, cert.NotAfter, now)
			}
			if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 128 || len(cert.SubjectKeyId) == 0 ||
				!bytes.Equal(cert.AuthorityKeyId, c.Certificate().SubjectKeyId) {
				t.Fatalf("serial %x, SKI %x, AKI %x", cert.SerialNumber, cert.SubjectKeyId, cert.AuthorityKeyId)
			}
			if err := cert.CheckSignatureFrom(c.Certificate()); err != nil {
				t.Fatal(err)
			}
			if len(got.Chain) != 2 || !got.Chain[0].Equal(c.Certificate()) || got.PKCS12 != nil || got.Password != "" {
				t.Fatalf("chain of %d, PKCS#12 %d bytes, password %q", len(got.Chain), len(got.PKCS12), got.Password)
			}
			ic, err := st.IssuedCert(context.Background(), strings.ToUpper(cert.SerialNumber.Text(16)))
			if err != nil {
				t.Fatal(err)
			}
			if ic.Address != alice || !bytes.Equal(ic.DER, cert.Raw) || ic.Fingerprint != keys.CertFingerprint(cert) || !ic.Revoked.IsZero() {
				t.Fatalf("stored %+v", ic)
			}
			if list, _ := st.IssuedCerts(context.Background(), "ALICE@customer.example"); len(list) != 1 {
				t.Fatalf("IssuedCerts(alice): %d", len(list))
			}
		})
	}
}

// TestIssueFromRSARequest: an RSA key gets keyEncipherment, what S/MIME encryption to it needs.
func TestIssueFromRSARequest(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	got, err := newCA(t, sqlite(t)).IssueFromCSR(context.Background(), alice, request(t, key, &x509.CertificateRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if got.Certificate.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Fatalf("key usage %v", got.Certificate.KeyUsage)
	}
}

// TestValidityEndsWithTheCA: a certificate does not outlive the CA that issued it.
func TestValidityEndsWithTheCA(t *testing.T) {
	end := testBank(t).customerCA.Certificate().NotAfter
	c := newCA(t, sqlite(t), fixedClock(end.Add(-time.Hour)))
	got, err := c.IssueFromCSR(context.Background(), alice, aliceCSR(t))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Certificate.NotAfter.Equal(end) {
		t.Fatalf("NotAfter %s, want the CA's %s", got.Certificate.NotAfter, end)
	}
}

// TestIssueWithKey: a PKCS#12 with key, certificate and chain, AES-256 under the returned password;
// the certificate is stored, the key nowhere.
func TestIssueWithKey(t *testing.T) {
	st := sqlite(t)
	got, err := newCA(t, st).IssueWithKey(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Password) < 20 {
		t.Fatalf("password %q is short", got.Password)
	}
	key, cert, chain, err := pkcs12.DecodeChain(got.PKCS12, got.Password)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.Equal(got.Certificate) || len(chain) != 2 || cert.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Fatalf("PKCS#12: certificate %v, chain of %d", cert.Subject, len(chain))
	}
	if k, ok := key.(*rsa.PrivateKey); !ok || k.N.BitLen() != 2048 || !k.PublicKey.Equal(cert.PublicKey) {
		t.Fatalf("PKCS#12 key %T", key)
	}
	if _, _, _, err := pkcs12.DecodeChain(got.PKCS12, got.Password+"x"); err == nil {
		t.Fatal("PKCS#12 opens with a wrong password")
	}
	all, _ := st.IssuedCerts(context.Background(), alice)
	if len(all) != 1 || !bytes.Equal(all[0].DER, cert.Raw) {
		t.Fatalf("stored %d certificates", len(all))
	}
	other, err := newCA(t, st).IssueWithKey(context.Background(), alice)
	if err != nil || other.Password == got.Password {
		t.Fatalf("second PKCS#12: %v, same password %v", err, other.Password == got.Password)
	}
}

// TestIssuedCertificatePassesTheDirectory: a certificate of the development customer CA that keys
// init made passes the recipient directory's checks for outbound mail, chained to the data
// directory's roots through the customer CA sent beside it.
func TestIssuedCertificatePassesTheDirectory(t *testing.T) {
	dir := keys.DataDir(t.TempDir())
	if err := dir.Init([]string{"statements@bank.example"}); err != nil {
		t.Fatal(err)
	}
	id, err := dir.Identity(string(keys.RoleCustomerCA))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.New(ca.DefaultConfig(), id, sqlite(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.IssueWithKey(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dir.Import(certsPEM(append([]*x509.Certificate{got.Certificate}, got.Chain...)...), keys.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	d, err := dir.Directory()
	if err != nil {
		t.Fatal(err)
	}
	if p := d.Check(got.Certificate); p != nil {
		t.Fatalf("the directory refuses the issued certificate: %v", p)
	}
}

// TestNewRefusesWhatIsNotACA: a customer's certificate, or the CA's certificate with another key,
// cannot issue; nor can a CA that an invalid configuration names.
func TestNewRefusesWhatIsNotACA(t *testing.T) {
	st := sqlite(t)
	got, err := newCA(t, st).IssueWithKey(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, _ := pkcs12.DecodeChain(got.PKCS12, got.Password)
	leaf := &keys.Identity{Signer: key.(*rsa.PrivateKey), Chain: append([]*x509.Certificate{got.Certificate}, got.Chain...)}
	if _, err := ca.New(ca.DefaultConfig(), leaf, st); !errors.Is(err, keys.ErrNotCA) {
		t.Fatalf("a customer's certificate: got %v, want ErrNotCA", err)
	}
	b := testBank(t)
	wrongKey := &keys.Identity{Signer: key.(*rsa.PrivateKey), Chain: b.customerCA.Chain}
	if _, err := ca.New(ca.DefaultConfig(), wrongKey, st); !errors.Is(err, keys.ErrKeyMismatch) {
		t.Fatalf("another key: got %v, want ErrKeyMismatch", err)
	}
	cfg := ca.DefaultConfig()
	cfg.Validity = 0
	if _, err := ca.New(cfg, b.customerCA, st); err == nil {
		t.Fatal("New accepted a validity of 0")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := ca.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		edit func(*ca.Config)
		path string
	}{
		"ValidityZero":     {func(c *ca.Config) { c.Validity = 0 }, "validity"},
		"ValidityHours":    {func(c *ca.Config) { c.Validity = config.Duration(time.Hour) }, "validity"},
		"ValidityTooLong":  {func(c *ca.Config) { c.Validity = config.Duration(826 * 24 * time.Hour) }, "validity"},
		"CRLURLEmpty":      {func(c *ca.Config) { c.CRLURL = "" }, "crl_url"},
		"CRLURLLDAP":       {func(c *ca.Config) { c.CRLURL = "ldap://dir.bank.example/cn=crl" }, "crl_url"},
		"CRLURLNoHost":     {func(c *ca.Config) { c.CRLURL = "http:///v1/crl" }, "crl_url"},
		"CRLURLWithUser":   {func(c *ca.Config) { c.CRLURL = "http://u:p@bank.example/crl" }, "crl_url"},
		"CRLURLIsRelative": {func(c *ca.Config) { c.CRLURL = "/v1/crl" }, "crl_url"},
	} {
		t.Run(name, func(t *testing.T) {
			c := ca.DefaultConfig()
			tc.edit(&c)
			fes := config.FieldErrors(c.Validate())
			if len(fes) != 1 || fes[0].Path != tc.path {
				t.Fatalf("got %v, want one problem at %s", c.Validate(), tc.path)
			}
		})
	}
	c := ca.DefaultConfig()
	c.Validity = config.Duration(ca.MaxValidity)
	if err := c.Validate(); err != nil {
		t.Fatalf("825 days: %v", err)
	}
}

// hostile are requests IssueFromCSR must refuse for alice, each with the error it must give.
func hostile(t testing.TB) map[string]struct {
	csr  []byte
	want error
} {
	good := aliceCSR(t)
	block, _ := pem.Decode(good)
	badSig := bytes.Clone(block.Bytes)
	badSig[len(badSig)-3] ^= 0x40 // inside the signature value
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherName := pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17},
		// GeneralNames { otherName [0] { 1.3.6.1.4.1.311.20.2.3 (UPN), [0] UTF8String "alice" } }
		Value: []byte{0x30, 0x17, 0xa0, 0x15, 0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x14, 0x02, 0x03, 0xa0, 0x07, 0x0c, 0x05, 'a', 'l', 'i', 'c', 'e'}}
	k := p256Key()
	return map[string]struct {
		csr  []byte
		want error
	}{
		"BadSignature":        {badSig, ca.ErrBadCSR},
		"AnotherAddress":      {request(t, k, &x509.CertificateRequest{EmailAddresses: []string{"bob@customer.example"}}), ca.ErrWrongAddress},
		"AnExtraAddress":      {request(t, k, &x509.CertificateRequest{EmailAddresses: []string{alice, "bob@customer.example"}}), ca.ErrWrongAddress},
		"AnotherSubjectEmail": {request(t, k, &x509.CertificateRequest{Subject: pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "bob@customer.example"}}}, EmailAddresses: []string{alice}}), ca.ErrWrongAddress},
		"ADNSName":            {request(t, k, &x509.CertificateRequest{EmailAddresses: []string{alice}, DNSNames: []string{"customer.example"}}), ca.ErrWrongAddress},
		"AnIPAddress":         {request(t, k, &x509.CertificateRequest{EmailAddresses: []string{alice}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}), ca.ErrWrongAddress},
		"AnOtherName":         {request(t, k, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{otherName}}), ca.ErrWrongAddress},
		"RSA1024":             {request(t, rsa1024, &x509.CertificateRequest{EmailAddresses: []string{alice}}), ca.ErrWeakKey},
		"P224":                {request(t, p224, &x509.CertificateRequest{EmailAddresses: []string{alice}}), ca.ErrWeakKey},
		"Ed25519":             {request(t, ed, &x509.CertificateRequest{EmailAddresses: []string{alice}}), ca.ErrWeakKey},
		"GarbageBytes":        {[]byte("\x30\x82\x01\x00garbage that is not DER at all"), ca.ErrBadCSR},
		"Empty":               {nil, ca.ErrBadCSR},
		"ACertificatePEM":     {certsPEM(testBank(t).customerCA.Certificate()), ca.ErrBadCSR},
		"APrivateKeyPEM":      {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0}}), ca.ErrBadCSR},
		"TwoRequests":         {append(bytes.Clone(good), good...), ca.ErrBadCSR},
		"TruncatedPEM":        {good[:len(good)/2], ca.ErrBadCSR},
	}
}

// TestHostileRequests: each is refused with its error, and nothing is stored.
func TestHostileRequests(t *testing.T) {
	st := sqlite(t)
	c := newCA(t, st)
	for name, tc := range hostile(t) {
		t.Run(name, func(t *testing.T) {
			_, err := c.IssueFromCSR(context.Background(), alice, tc.csr)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if n := issuedCount(t, st); n != 0 {
				t.Fatalf("%d certificates stored for a refused request", n)
			}
		})
	}
}

// TestBadAddress: the address itself must be one an rfc822Name can hold.
func TestBadAddress(t *testing.T) {
	st := sqlite(t)
	c := newCA(t, st)
	for _, a := range []string{"", "alice", "alice@customer.example\r\nBcc: x@y", "älice@customer.example", "a b@customer.example"} {
		if _, err := c.IssueFromCSR(context.Background(), a, aliceCSR(t)); !errors.Is(err, address.ErrInvalid) {
			t.Errorf("%q: got %v, want address.ErrInvalid", a, err)
		}
		if _, err := c.IssueWithKey(context.Background(), a); !errors.Is(err, address.ErrInvalid) {
			t.Errorf("IssueWithKey %q: got %v, want address.ErrInvalid", a, err)
		}
	}
	if n := issuedCount(t, st); n != 0 {
		t.Fatalf("%d stored", n)
	}
}

// TestDERRequest: a DER request is read as well as PEM, and its address compared by key.
func TestDERRequest(t *testing.T) {
	block, _ := pem.Decode(aliceCSR(t))
	got, err := newCA(t, sqlite(t)).IssueFromCSR(context.Background(), "ALICE@customer.EXAMPLE", block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if got.Certificate.EmailAddresses[0] != "ALICE@customer.example" {
		t.Fatalf("address %v", got.Certificate.EmailAddresses)
	}
}

// TestRevoke: on both stores, a customer revokes their own certificate once; another customer's
// serial is ErrNotFound; the CRL lists it with its reason and its number increases.
func TestRevoke(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			ctx := context.Background()
			c := newCA(t, s.open(t))
			got, err := c.IssueFromCSR(ctx, alice, aliceCSR(t))
			if err != nil {
				t.Fatal(err)
			}
			serial := got.Certificate.SerialNumber.Text(16) // lower case: any case is taken
			if err := c.Revoke(ctx, "bob@customer.example", serial, 1); !errors.Is(err, ca.ErrNotFound) {
				t.Fatalf("another customer's serial: got %v, want ErrNotFound", err)
			}
			for _, bad := range []string{"", "xyz", "00" + strings.Repeat("F", 41), "FFFF"} {
				if err := c.Revoke(ctx, alice, bad, 1); !errors.Is(err, ca.ErrNotFound) {
					t.Fatalf("serial %q: got %v, want ErrNotFound", bad, err)
				}
			}
			if err := c.Revoke(ctx, alice, serial, 7); !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("reason 7: got %v, want store.ErrInvalid", err)
			}
			if err := c.Revoke(ctx, "Alice@Customer.example", "000"+serial, 1); err != nil {
				t.Fatal(err)
			}
			if err := c.Revoke(ctx, alice, serial, 1); !errors.Is(err, ca.ErrRevoked) {
				t.Fatalf("again: got %v, want ErrRevoked", err)
			}
			var last *big.Int
			for range 2 {
				der, err := c.CRL(ctx)
				if err != nil {
					t.Fatal(err)
				}
				crl, err := x509.ParseRevocationList(der)
				if err != nil {
					t.Fatal(err)
				}
				if err := crl.CheckSignatureFrom(c.Certificate()); err != nil {
					t.Fatal(err)
				}
				if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(got.Certificate.SerialNumber) != 0 ||
					crl.RevokedCertificateEntries[0].ReasonCode != 1 {
					t.Fatalf("CRL entries %+v", crl.RevokedCertificateEntries)
				}
				if last != nil && crl.Number.Cmp(last) <= 0 {
					t.Fatalf("CRL number %v after %v", crl.Number, last)
				}
				if d := crl.NextUpdate.Sub(crl.ThisUpdate); d != 24*time.Hour {
					t.Fatalf("CRL current for %s", d)
				}
				last = crl.Number
			}
		})
	}
}
