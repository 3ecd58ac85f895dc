package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"software.sslmate.com/src/go-pkcs12"
)

// Identity is one of the bank's keys with its certificate chain, leaf first. The key is a
// crypto.Signer so that an HSM can stand in for a file; Decrypter is set when the key can also
// decrypt (RSA), for inbound mail. Signer is nil only in an identity parsed without its key
// (ParseIdentityPEM), which ImportIdentity pairs with the key NewCSR left pending.
type Identity struct {
	Signer crypto.Signer
	Chain  []*x509.Certificate
}

// Certificate returns the leaf certificate.
func (id *Identity) Certificate() *x509.Certificate { return id.Chain[0] }

// Decrypter returns the key as a crypto.Decrypter, or nil if it cannot decrypt.
func (id *Identity) Decrypter() crypto.Decrypter {
	d, _ := id.Signer.(crypto.Decrypter)
	return d
}

// NewIdentity checks that signer's public key is the leaf's and returns the identity.
func NewIdentity(signer crypto.Signer, chain []*x509.Certificate) (*Identity, error) {
	if len(chain) == 0 {
		return nil, ErrNoCertificateInFile
	}
	if signer == nil {
		return nil, ErrNoPrivateKey
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(chain[0].PublicKey) {
		return nil, fmt.Errorf("%w (%s)", ErrKeyMismatch, chain[0].Subject)
	}
	return &Identity{Signer: signer, Chain: chain}, nil
}

// LoadPEM reads a certificate chain (leaf first) and an unencrypted PKCS#8, PKCS#1 or SEC1 private key
// from PEM files.
func LoadPEM(certFile, keyFile string) (*Identity, error) {
	chain, err := ReadCertificatesFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	signer, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	return NewIdentity(signer, chain)
}

// LoadPKCS12 reads a PKCS#12 file (as written by openssl pkcs12 -export, legacy or AES) protected
// by password; see ParsePKCS12.
func LoadPKCS12(file string, password string) (*Identity, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read PKCS#12: %w", err)
	}
	id, err := ParsePKCS12(data, password)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return id, nil
}

// ParsePKCS12 decodes a PKCS#12 archive protected by password: a private key, its certificate and
// the CA certificates stored with it, which are put in chain order after the leaf (see
// CheckIdentity for what the chain must be).
func ParsePKCS12(data []byte, password string) (*Identity, error) {
	key, leaf, cas, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return nil, fmt.Errorf("decode PKCS#12: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, ErrNoPrivateKey
	}
	return NewIdentity(signer, orderChain(leaf, cas))
}

// ParsePrivateKeyPEM parses the first private key in PEM data. Encrypted PEM is refused (use
// PKCS#12 for a key at rest under a password).
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, ErrNoPrivateKey
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		var key any
		var err error
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		default:
			return nil, fmt.Errorf("unsupported PEM block %q (encrypted keys belong in PKCS#12)", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("parse private key: %w", err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
}

// ParseCertificates reads every certificate from PEM data, or a single DER certificate.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("parse DER certificate: %w", err)
		}
		return []*x509.Certificate{c}, nil
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, ErrNoCertificateInFile
	}
	return certs, nil
}

// ReadCertificatesFile reads every certificate in a PEM or DER file.
func ReadCertificatesFile(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read certificates: %w", err)
	}
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return certs, nil
}

// EncodeCertificates returns the certificates as concatenated PEM blocks.
func EncodeCertificates(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// ErrNoSecret is returned by Secret.Read when neither a file nor an environment variable is named,
// or the one named is empty.
var ErrNoSecret = errors.New("no secret configured")

// Secret names where a password or PIN comes from: a file (first line, trailing newline removed) or an
// environment variable. Exactly one must be set; secrets never appear on a command line or in config.
type Secret struct {
	File string `json:"file,omitempty"`
	Env  string `json:"env,omitempty"`
}

// Read returns the secret.
func (s Secret) Read() (string, error) {
	switch {
	case s.File != "" && s.Env != "":
		return "", errors.New("secret: set either file or env, not both")
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("secret: %w", err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty: %w", s.File, ErrNoSecret)
		}
		return v, nil
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s unset or empty: %w", s.Env, ErrNoSecret)
		}
		return v, nil
	}
	return "", ErrNoSecret
}
