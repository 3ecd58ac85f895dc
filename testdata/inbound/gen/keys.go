package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// keyFiles are the committed keys every run needs.
var keyFiles = []string{
	"ca.pem", "ca.key", "rogue-ca.pem", "rogue-ca.key",
	"alice.pem", "alice.key", "alice2.pem", "alice2.key", "alice-expired.pem", "alice-expired.key",
	"alice-rogue.pem", "alice-rogue.key", "bob.pem", "bob.key", "mallory.pem", "mallory.key",
	"bank.pem", "bank.key",
	"bank-pgp.asc", "bank-pgp.pub.asc", "alice-pgp.asc", "alice-pgp.pub.asc", "mallory-pgp.asc", "mallory-pgp.pub.asc",
}

// Validity of the CAs and of every certificate that is meant to be valid.
const (
	validFrom  = "20260101000000Z"
	validUntil = "20560101000000Z"
)

// caConfig is the openssl ca configuration; %DIR% is the CA's state directory
// and %SAN% the certificate's rfc822Name.
const caConfig = `[ca]
default_ca = CA_default

[CA_default]
dir            = %DIR%
database       = $dir/index.txt
new_certs_dir  = $dir
rand_serial    = yes
default_md     = sha256
policy         = policy_cn
unique_subject = no
email_in_dn    = no
copy_extensions = none

[policy_cn]
commonName = supplied

[v3_ca]
basicConstraints     = critical,CA:TRUE
keyUsage             = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[email]
basicConstraints       = critical,CA:FALSE
keyUsage               = critical,digitalSignature,keyEncipherment
extendedKeyUsage       = emailProtection
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
subjectAltName         = email:%SAN%
`

// makeKeys creates every key in keys/: the X.509 ones with openssl req and
// openssl ca (which, unlike openssl x509 in OpenSSL 3.0, takes exact dates),
// the OpenPGP ones with gpg --quick-gen-key.
func (g *generator) makeKeys() {
	if err := os.MkdirAll(filepath.Join(g.dir, "keys"), 0o755); err != nil {
		failf("keys: %v", err)
	}
	g.makeCA("ca")
	g.makeCA("rogue-ca") // same subject as ca: the attacker's look-alike
	for _, c := range []struct{ name, ca, cn, email, from, until string }{
		{"alice", "ca", "Alice Customer", "alice@customer.example", validFrom, validUntil},
		{"alice2", "ca", "Alice Customer", "alice@customer.example", validFrom, validUntil},
		{"alice-expired", "ca", "Alice Customer", "alice@customer.example", "20240101000000Z", "20250601000000Z"},
		{"alice-rogue", "rogue-ca", "Alice Customer", "alice@customer.example", validFrom, validUntil},
		{"bob", "ca", "Bob Customer", "bob@customer.example", validFrom, validUntil},
		{"mallory", "ca", "Mallory Customer", "mallory@customer.example", validFrom, validUntil},
		{"bank", "ca", "Example Bank Support", "support@bank.example", validFrom, validUntil},
	} {
		g.makeCert(c.name, c.ca, c.cn, c.email, c.from, c.until)
	}
	g.makePGPKey("bank-pgp", "Example Bank Support <support@bank.example>")
	g.makePGPKey("alice-pgp", "Alice Customer <alice@customer.example>")
	g.makePGPKey("mallory-pgp", "Alice Customer <alice@customer.example>") // mallory's key claiming alice's address
}

// caDir returns the openssl ca state directory of the CA named name.
func (g *generator) caDir(name string) string {
	dir := filepath.Join(g.tmp, "ca-"+name)
	if _, err := os.Stat(dir); err == nil {
		return dir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		failf("ca dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.txt"), nil, 0o600); err != nil {
		failf("ca index: %v", err)
	}
	return dir
}

// caConfigFile writes the openssl ca configuration for one certificate.
func (g *generator) caConfigFile(ca, san string) string {
	dir := g.caDir(ca)
	cfg := strings.NewReplacer("%DIR%", dir, "%SAN%", san).Replace(caConfig)
	g.n++
	name := filepath.Join(dir, "openssl"+strconv.Itoa(g.n)+".cnf")
	if err := os.WriteFile(name, []byte(cfg), 0o600); err != nil {
		failf("ca config: %v", err)
	}
	return name
}

func (g *generator) newKey(name string) {
	must(nil, "openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", g.key(name+".key"))
}

func (g *generator) makeCA(name string) {
	dir := g.caDir(name)
	g.newKey(name)
	csr := filepath.Join(dir, "ca.csr")
	must(nil, "openssl", "req", "-new", "-key", g.key(name+".key"), "-subj", "/CN=Customer Test Root", "-out", csr)
	must(nil, "openssl", "ca", "-batch", "-notext", "-config", g.caConfigFile(name, "unused@invalid"), "-selfsign",
		"-keyfile", g.key(name+".key"), "-in", csr, "-startdate", validFrom, "-enddate", validUntil,
		"-extensions", "v3_ca", "-out", g.key(name+".pem"))
}

func (g *generator) makeCert(name, ca, cn, email, from, until string) {
	dir := g.caDir(ca)
	g.newKey(name)
	csr := filepath.Join(dir, name+".csr")
	must(nil, "openssl", "req", "-new", "-key", g.key(name+".key"), "-subj", "/CN="+cn, "-out", csr)
	must(nil, "openssl", "ca", "-batch", "-notext", "-config", g.caConfigFile(ca, email),
		"-cert", g.key(ca+".pem"), "-keyfile", g.key(ca+".key"), "-in", csr,
		"-startdate", from, "-enddate", until, "-extensions", "email", "-out", g.key(name+".pem"))
}

// makePGPKey makes a v4 RSA-2048 key without passphrase (a signing primary key
// and an encryption subkey, never expiring) and writes name.asc (secret) and
// name.pub.asc.
func (g *generator) makePGPKey(name, uid string) {
	home := g.gpgHome()
	gpg(home, nil, "--quick-gen-key", uid, "rsa2048", "sign", "never")
	var fpr string
	for _, line := range strings.Split(string(gpg(home, nil, "--with-colons", "--list-keys")), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" {
			fpr = f[9]
			break
		}
	}
	if fpr == "" {
		failf("gpg: no fingerprint for %s", name)
	}
	gpg(home, nil, "--quick-add-key", fpr, "rsa2048", "encr", "never")
	pub := gpg(home, nil, "--armor", "--export", fpr)
	sec := gpg(home, nil, "--armor", "--export-secret-keys", fpr)
	if !bytes.Contains(sec, []byte("PRIVATE KEY BLOCK")) {
		failf("gpg: no secret key exported for %s", name)
	}
	if err := os.WriteFile(g.key(name+".pub.asc"), pub, 0o644); err != nil {
		failf("%v", err)
	}
	if err := os.WriteFile(g.key(name+".asc"), sec, 0o600); err != nil {
		failf("%v", err)
	}
}
