package keys_test

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/smime"
)

// roleExtensions are openssl extension files for certificates that fit each role, as a bank's CA
// profile would issue them.
var roleExtensions = map[keys.Role]string{
	keys.RoleSigner: "basicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature, nonRepudiation\n" +
		"extendedKeyUsage = emailProtection\nsubjectAltName = email:statements@bank.example\n",
	keys.RoleSupport: "basicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\n" +
		"extendedKeyUsage = emailProtection\nsubjectAltName = email:support@bank.example\n",
	keys.RoleTSA: "basicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = critical, timeStamping\n",
	keys.RoleCustomerCA: "basicConstraints = critical, CA:TRUE, pathlen:0\nkeyUsage = critical, keyCertSign, cRLSign\n" +
		"subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
}

// opensslCA is a CA that openssl made and runs, in its own directory.
type opensslCA struct {
	t    *testing.T
	dir  string
	cert string // PEM file
	key  string
	n    int
}

func newOpenSSLCA(t *testing.T, name string) *opensslCA {
	t.Helper()
	interop.Tool(t, "openssl")
	ca := &opensslCA{t: t, dir: t.TempDir()}
	ca.cert, ca.key = ca.file("ca.pem"), ca.file("ca.key")
	conf := ca.write("ca.cnf", "[req]\ndistinguished_name = dn\nx509_extensions = v3_ca\n[dn]\n[v3_ca]\n"+
		"basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n")
	interop.Run(t, nil, "openssl", "req", "-x509", "-config", conf, "-newkey", "rsa:2048", "-nodes", "-keyout", ca.key,
		"-out", ca.cert, "-days", "30", "-subj", "/CN="+name+"/O=Example Bank AG/C=DE")
	return ca
}

func (ca *opensslCA) file(name string) string { return filepath.Join(ca.dir, name) }

func (ca *opensslCA) write(name, content string) string {
	ca.t.Helper()
	f := ca.file(name)
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return f
}

func (ca *opensslCA) read(f string) []byte {
	ca.t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		ca.t.Fatal(err)
	}
	return b
}

// certPEM returns the CA's certificate.
func (ca *opensslCA) certPEM() []byte { return ca.read(ca.cert) }

// newKey makes a key with openssl genpkey: "rsa:BITS" or "ec:CURVE". It returns the PEM file.
func (ca *opensslCA) newKey(spec string) string {
	ca.t.Helper()
	ca.n++
	f := ca.file(fmt.Sprintf("key%d.pem", ca.n))
	alg, param, _ := strings.Cut(spec, ":")
	args := []string{"genpkey", "-out", f}
	switch alg {
	case "rsa":
		args = append(args, "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:"+param)
	case "ec":
		args = append(args, "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:"+param)
	}
	interop.Run(ca.t, nil, "openssl", args...)
	return f
}

// request makes a certificate request for key with openssl req.
func (ca *opensslCA) request(key string) []byte {
	ca.t.Helper()
	return interop.Run(ca.t, nil, "openssl", "req", "-new", "-key", key, "-subj", "/CN=Example Bank/O=Example Bank AG/C=DE")
}

// sign issues a certificate for a PEM request with openssl x509 -req and the given extensions,
// valid for days (-1 gives a certificate that expired a day ago).
func (ca *opensslCA) sign(csr []byte, extensions string, days int) []byte {
	ca.t.Helper()
	ca.n++
	req := ca.write(fmt.Sprintf("req%d.csr", ca.n), string(csr))
	ext := ca.write(fmt.Sprintf("ext%d.cnf", ca.n), extensions)
	return interop.Run(ca.t, nil, "openssl", "x509", "-req", "-in", req, "-CA", ca.cert, "-CAkey", ca.key,
		"-CAcreateserial", "-days", fmt.Sprint(days), "-extfile", ext)
}

// TestImportIdentityFromOpenSSLCA: for each role, sealpost makes the key and the request, openssl's
// CA issues the certificate with the role's profile, and the certificate alone is imported: it pairs
// with the pending key. A certificate for another key is refused.
func TestImportIdentityFromOpenSSLCA(t *testing.T) {
	ca := newOpenSSLCA(t, "Example Bank Issuing CA")
	dir := keys.DataDir(t.TempDir())
	emails := map[keys.Role][]string{keys.RoleSigner: {"statements@bank.example"}, keys.RoleSupport: {"support@bank.example"}}
	types := map[keys.Role]keys.KeyType{keys.RoleSigner: keys.KeyRSA3072, keys.RoleTSA: keys.KeyP256, keys.RoleSupport: keys.KeyRSA2048}
	for _, role := range keys.Roles() {
		t.Run(string(role), func(t *testing.T) {
			csr, err := dir.NewCSR(role, "/CN=Example Bank "+string(role)+"/O=Example Bank AG/C=DE", emails[role], types[role])
			if err != nil {
				t.Fatal(err)
			}
			// openssl reads the request as it is.
			interop.Run(t, csr, "openssl", "req", "-verify", "-noout")
			cert := ca.sign(csr, roleExtensions[role], 30)
			id, err := keys.ParseIdentityPEM(append(cert, ca.certPEM()...))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dir.ImportIdentity(role, id); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(string(dir), string(role)+".pending.key")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("pending key left behind: %v", err)
			}
			if got, err := dir.Identity(string(role)); err != nil || len(got.Chain) != 2 {
				t.Fatalf("stored identity: %v", err)
			}
			if dev, err := dir.IsDevelopment(role); err != nil || dev {
				t.Fatalf("the bank's %s counts as development (%v)", role, err)
			}
		})
	}
	t.Run("CertificateForAnotherKey", func(t *testing.T) {
		if _, err := dir.NewCSR(keys.RoleSupport, "/CN=Example Bank Support", emails[keys.RoleSupport], ""); err != nil {
			t.Fatal(err)
		}
		other := ca.sign(ca.request(ca.newKey("rsa:2048")), roleExtensions[keys.RoleSupport], 30)
		id, err := keys.ParseIdentityPEM(other)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dir.ImportIdentity(keys.RoleSupport, id); !errors.Is(err, keys.ErrKeyMismatch) {
			t.Fatalf("got %v, want ErrKeyMismatch", err)
		}
	})
}

// TestImportIdentityFromOpenSSLPKCS12: a PKCS#12 file openssl exported, with the CA certificate
// inside, gives the identity with its chain in order.
func TestImportIdentityFromOpenSSLPKCS12(t *testing.T) {
	ca := newOpenSSLCA(t, "Example Bank Issuing CA")
	key := ca.newKey("rsa:2048")
	cert := ca.write("support.pem", string(ca.sign(ca.request(key), roleExtensions[keys.RoleSupport], 30)))
	pass := ca.write("p12.pass", "correct horse\n")
	p12 := ca.file("support.p12")
	interop.Run(t, nil, "openssl", "pkcs12", "-export", "-in", cert, "-inkey", key, "-certfile", ca.cert,
		"-out", p12, "-passout", "file:"+pass)
	id, err := keys.ParsePKCS12(ca.read(p12), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	dir := keys.DataDir(t.TempDir())
	stored, err := dir.ImportIdentity(keys.RoleSupport, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Chain) != 2 || !stored.Chain[1].Equal(firstCert(t, ca.certPEM())) {
		t.Fatalf("chain of %d certificates, want the leaf and the CA", len(stored.Chain))
	}
}

// TestImportIdentityRefusesOpenSSLCertificates: certificates openssl made that do not fit the role
// are refused, each for its reason.
func TestImportIdentityRefusesOpenSSLCertificates(t *testing.T) {
	ca := newOpenSSLCA(t, "Example Bank Issuing CA")
	other := newOpenSSLCA(t, "Another CA")
	rsaKey := ca.newKey("rsa:2048")
	ext := func(role keys.Role, old, new string) string {
		e := roleExtensions[role]
		if !strings.Contains(e, old) {
			t.Fatalf("%s extensions have no %q", role, old)
		}
		return strings.Replace(e, old, new, 1)
	}
	for _, tt := range []struct {
		name       string
		role       keys.Role
		key        string // openssl key spec; rsa:2048 (shared) when empty
		extensions string // the role's profile when empty
		days       int    // 30 when zero
		givenKey   string // the key file given with the certificate; the certified one when empty
		chain      []byte // given after the certificate; the CA's when nil
		want       error  // nil: accepted
	}{
		{name: "SignerAccepted", role: keys.RoleSigner},
		{name: "TSAAccepted", role: keys.RoleTSA, key: "ec:P-256"},
		{name: "SupportAccepted", role: keys.RoleSupport},
		{name: "SignerWithoutDigitalSignature", role: keys.RoleSigner,
			extensions: ext(keys.RoleSigner, "digitalSignature, nonRepudiation", "keyEncipherment"), want: keys.ErrNoDigitalSignature},
		{name: "SignerWithoutEmailProtection", role: keys.RoleSigner,
			extensions: ext(keys.RoleSigner, "extendedKeyUsage = emailProtection", "extendedKeyUsage = clientAuth"), want: keys.ErrNoEmailProtection},
		{name: "SignerWithoutEmailAddress", role: keys.RoleSigner,
			extensions: ext(keys.RoleSigner, "subjectAltName = email:statements@bank.example\n", ""), want: keys.ErrNoEmailAddress},
		{name: "SupportWithoutKeyEncipherment", role: keys.RoleSupport,
			extensions: ext(keys.RoleSupport, "digitalSignature, keyEncipherment", "digitalSignature, nonRepudiation"), want: keys.ErrNoKeyEncipherment},
		{name: "SupportWithoutEmailProtection", role: keys.RoleSupport,
			extensions: ext(keys.RoleSupport, "extendedKeyUsage = emailProtection", "extendedKeyUsage = serverAuth"), want: keys.ErrNoEmailProtection},
		{name: "SupportECDSA", role: keys.RoleSupport, key: "ec:P-256",
			extensions: ext(keys.RoleSupport, "keyEncipherment", "keyAgreement"), want: keys.ErrUnsupportedKey},
		{name: "TSAWithoutTimeStamping", role: keys.RoleTSA, key: "ec:P-256",
			extensions: ext(keys.RoleTSA, "critical, timeStamping", "critical, emailProtection"), want: keys.ErrNoTimeStamping},
		{name: "TSATimeStampingNotCritical", role: keys.RoleTSA, key: "ec:P-256",
			extensions: ext(keys.RoleTSA, "critical, timeStamping", "timeStamping"), want: keys.ErrTimeStampingNotCritical},
		{name: "TSATimeStampingNotOnly", role: keys.RoleTSA, key: "ec:P-256",
			extensions: ext(keys.RoleTSA, "critical, timeStamping", "critical, timeStamping, emailProtection"), want: keys.ErrTimeStampingNotOnly},
		{name: "RSA1024", role: keys.RoleSigner, key: "rsa:1024", want: keys.ErrUnsupportedKey},
		{name: "Expired", role: keys.RoleSupport, days: -1, want: keys.ErrExpired},
		{name: "KeyDoesNotMatch", role: keys.RoleSigner, givenKey: "rsa:2048", want: keys.ErrKeyMismatch},
		{name: "ChainOfAnotherCA", role: keys.RoleSigner, chain: other.certPEM(), want: keys.ErrChainBroken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := rsaKey
			if tt.key != "" {
				key = ca.newKey(tt.key)
			}
			extensions, days := tt.extensions, tt.days
			if extensions == "" {
				extensions = roleExtensions[tt.role]
			}
			if days == 0 {
				days = 30
			}
			given := key
			if tt.givenKey != "" {
				given = ca.newKey(tt.givenKey)
			}
			chain := tt.chain
			if chain == nil {
				chain = ca.certPEM()
			}
			input := bytes.Join([][]byte{ca.sign(ca.request(key), extensions, days), chain, ca.read(given)}, nil)
			dir := keys.DataDir(t.TempDir())
			id, err := keys.ParseIdentityPEM(input)
			if err == nil {
				_, err = dir.ImportIdentity(tt.role, id)
			}
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			t.Log(err)
			if _, err := os.Stat(filepath.Join(string(dir), string(tt.role)+".pem")); err == nil {
				t.Fatal("a refused identity was stored")
			}
		})
	}
}

// recipientSetup is what a customer's mail client gets: the CA to trust, the bank's support
// certificate to encrypt to, and, as a control, the signer's certificate, which peers must refuse.
type recipientSetup struct {
	ca, support, signer []byte // PEM
	supportID           *keys.Identity
}

// developmentSetup is `keys init`'s identities.
func developmentSetup(t *testing.T) recipientSetup {
	t.Helper()
	dir := keys.DataDir(t.TempDir())
	if err := dir.Init([]string{"statements@bank.example"}); err != nil {
		t.Fatal(err)
	}
	return exported(t, dir, mustRead(t, filepath.Join(string(dir), "ca.pem")))
}

// importedSetup is identities an openssl CA issued for requests from NewCSR.
func importedSetup(t *testing.T) recipientSetup {
	t.Helper()
	ca := newOpenSSLCA(t, "Example Bank Issuing CA")
	dir := keys.DataDir(t.TempDir())
	for role, email := range map[keys.Role]string{keys.RoleSupport: "support@bank.example", keys.RoleSigner: "statements@bank.example"} {
		csr, err := dir.NewCSR(role, "/CN=Example Bank "+string(role)+"/O=Example Bank AG/C=DE", []string{email}, "")
		if err != nil {
			t.Fatal(err)
		}
		id, err := keys.ParseIdentityPEM(append(ca.sign(csr, roleExtensions[role], 30), ca.certPEM()...))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dir.ImportIdentity(role, id); err != nil {
			t.Fatal(err)
		}
	}
	return exported(t, dir, ca.certPEM())
}

func exported(t *testing.T, dir keys.DataDir, ca []byte) recipientSetup {
	t.Helper()
	s := recipientSetup{ca: ca}
	var err error
	if s.support, err = dir.Export("support"); err != nil {
		t.Fatal(err)
	}
	if s.signer, err = dir.Export("signer"); err != nil {
		t.Fatal(err)
	}
	if s.supportID, err = dir.Identity("support"); err != nil {
		t.Fatal(err)
	}
	return s
}

func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// firstCert parses the first certificate of a PEM chain.
func firstCert(t *testing.T, pemData []byte) *x509.Certificate {
	t.Helper()
	certs, err := keys.ParseCertificates(pemData)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

// TestSupportCertificateIsAnEncryptionRecipient: customers' clients (GnuPG's gpgsm, NSS as in
// Thunderbird, OpenSSL) encrypt to the exported support certificate, development or imported,
// and sealpost decrypts what they made with the support key. They refuse the signer's
// certificate, which allows no key encipherment: that control makes the test able to fail.
func TestSupportCertificateIsAnEncryptionRecipient(t *testing.T) {
	for name, setup := range map[string]func(*testing.T) recipientSetup{"development": developmentSetup, "imported": importedSetup} {
		t.Run(name, func(t *testing.T) {
			s := setup(t)
			t.Run("gpgsm", func(t *testing.T) { gpgsmEncrypts(t, s) })
			t.Run("NSS", func(t *testing.T) { nssValidatesRecipient(t, s) })
			t.Run("OpenSSL", func(t *testing.T) { opensslEncrypts(t, s) })
		})
	}
}

const replyText = "Dear bank, I did not make that transfer.\r\n"

// decrypts checks that sealpost's inbound side opens a CMS message a peer encrypted to support.
func decrypts(t *testing.T, s recipientSetup, ber []byte) {
	t.Helper()
	der, err := smime.BERToDER(ber)
	if err != nil {
		t.Fatal(err)
	}
	got, err := smime.Decrypt(der, s.supportID)
	if err != nil {
		t.Fatalf("sealpost cannot decrypt: %v", err)
	}
	if string(got.Content) != replyText {
		t.Fatalf("decrypted %q", got.Content)
	}
}

func sha1Hex(c *x509.Certificate) string {
	sum := sha1.Sum(c.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func gpgsmEncrypts(t *testing.T, s recipientSetup) {
	interop.Tool(t, "gpgsm")
	// A short home: gpg-agent's socket path must fit in sun_path.
	home, err := os.MkdirTemp("", "gpgsm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		interop.Try(t, nil, "gpgconf", "--homedir", home, "--kill", "all")
		os.RemoveAll(home)
	})
	ca := firstCert(t, s.ca)
	var colons []string
	for i := 0; i < len(sha1Hex(ca)); i += 2 {
		colons = append(colons, sha1Hex(ca)[i:i+2])
	}
	writeFile(t, home, "trustlist.txt", []byte(strings.Join(colons, ":")+" S relax\n"))
	files := t.TempDir()
	gpgsm := func(stdin []byte, args ...string) ([]byte, []byte, error) {
		return interop.Try(t, stdin, "gpgsm", append([]string{"--batch", "--homedir", home, "--disable-dirmngr",
			"--disable-crl-checks", "--disable-trusted-cert-crl-check"}, args...)...)
	}
	if _, stderr, err := gpgsm(nil, "--import", writeFile(t, files, "ca.pem", s.ca),
		writeFile(t, files, "support.pem", s.support), writeFile(t, files, "signer.pem", s.signer)); err != nil {
		t.Fatalf("gpgsm --import: %v\n%s", err, stderr)
	}
	if _, stderr, err := gpgsm([]byte(replyText), "--encrypt", "-r", sha1Hex(firstCert(t, s.signer))); err == nil {
		t.Fatal("gpgsm encrypted to the signer's certificate; the control is broken")
	} else {
		t.Logf("signer refused, as it must be: %s", bytes.TrimSpace(stderr))
	}
	out, stderr, err := gpgsm([]byte(replyText), "--encrypt", "-r", sha1Hex(firstCert(t, s.support)))
	if err != nil {
		t.Fatalf("gpgsm refuses to encrypt to the support certificate: %v\n%s", err, stderr)
	}
	decrypts(t, s, out)
}

func nssValidatesRecipient(t *testing.T, s recipientSetup) {
	interop.Tool(t, "certutil")
	db := "sql:" + t.TempDir()
	files := t.TempDir()
	interop.Run(t, nil, "certutil", "-N", "--empty-password", "-d", db)
	interop.Run(t, nil, "certutil", "-A", "-d", db, "-n", "bank-ca", "-t", "CT,C,C", "-a", "-i", writeFile(t, files, "ca.pem", s.ca))
	interop.Run(t, nil, "certutil", "-A", "-d", db, "-n", "support", "-t", ",,", "-a", "-i", writeFile(t, files, "support.pem", s.support))
	interop.Run(t, nil, "certutil", "-A", "-d", db, "-n", "signer", "-t", ",,", "-a", "-i", writeFile(t, files, "signer.pem", s.signer))
	if out, _, err := interop.Try(t, nil, "certutil", "-V", "-u", "R", "-n", "signer", "-d", db); err == nil {
		t.Fatalf("NSS takes the signer as an email recipient; the control is broken: %s", out)
	}
	out, stderr, err := interop.Try(t, nil, "certutil", "-V", "-u", "R", "-n", "support", "-d", db)
	if err != nil {
		t.Fatalf("NSS refuses the support certificate as an email recipient: %v\n%s%s", err, out, stderr)
	}
	t.Logf("certutil -V -u R: %s", bytes.TrimSpace(out))
}

func opensslEncrypts(t *testing.T, s recipientSetup) {
	interop.Tool(t, "openssl")
	files := t.TempDir()
	ca := writeFile(t, files, "ca.pem", s.ca)
	support := writeFile(t, files, "support.pem", s.support)
	signer := writeFile(t, files, "signer.pem", s.signer)
	if _, _, err := interop.Try(t, nil, "openssl", "verify", "-purpose", "smimeencrypt", "-CAfile", ca, signer); err == nil {
		t.Fatal("openssl verifies the signer for S/MIME encryption; the control is broken")
	}
	interop.Run(t, nil, "openssl", "verify", "-purpose", "smimeencrypt", "-CAfile", ca, support)
	enc := interop.Run(t, []byte(replyText), "openssl", "cms", "-encrypt", "-binary", "-aes256", "-outform", "DER", support)
	decrypts(t, s, enc)
}
