//go:build cgo

//lint:file-ignore SA1019 customers' clients send PKCS#1 v1.5 key transport; rsaDecrypter gives it implicit rejection

package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// openPKCS11 is LoadPKCS11 once the configuration, certificate and PIN are read.
func openPKCS11(cfg PKCS11Config, module, pin string, chain []*x509.Certificate) (*Identity, io.Closer, error) {
	ctx, err := crypto11.Configure(&crypto11.Config{Path: module, TokenLabel: cfg.TokenLabel, Pin: pin})
	if err != nil {
		return nil, nil, configureError(err, module, cfg.TokenLabel)
	}
	closer := &pkcs11Closer{ctx: ctx}
	id, err := findIdentity(ctx, cfg, chain)
	if err != nil {
		closer.Close()
		return nil, nil, err
	}
	return id, closer, nil
}

// crypto11TokenNotFound is the text of crypto11's unexported error for a token label no slot has
// (v1.5.0, returned unwrapped by Configure). TestLoadPKCS11Errors pins it.
const crypto11TokenNotFound = "could not find PKCS#11 token"

// configureError maps crypto11.Configure's failures to the sentinels. It never mentions the PIN.
func configureError(err error, module, token string) error {
	var p11 pkcs11.Error
	switch {
	case err.Error() == crypto11TokenNotFound:
		return fmt.Errorf("%w: no token labelled %q in %s", ErrTokenNotFound, token, module)
	case strings.HasPrefix(err.Error(), "failed to create module context"):
		// dlopen or C_Initialize failed: not a PKCS#11 library, or (SoftHSM2) no readable
		// configuration at $SOFTHSM2_CONF.
		return fmt.Errorf("%w: %s: %w", ErrPKCS11Module, module, err)
	case errors.As(err, &p11) && (p11 == pkcs11.CKR_PIN_INCORRECT || p11 == pkcs11.CKR_PIN_LEN_RANGE):
		return fmt.Errorf("%w for token %q", ErrPINIncorrect, token)
	case errors.As(err, &p11) && p11 == pkcs11.CKR_PIN_LOCKED:
		return fmt.Errorf("%w for token %q (the security officer must reset it)", ErrPINLocked, token)
	}
	return fmt.Errorf("open PKCS#11 token %q in %s: %w", token, module, err)
}

// findIdentity finds the one key pair cfg names and pairs it with chain.
func findIdentity(ctx *crypto11.Context, cfg PKCS11Config, chain []*x509.Certificate) (*Identity, error) {
	var id, label []byte
	if cfg.KeyID != "" {
		id, _ = hex.DecodeString(cfg.KeyID) // checked by Validate
	}
	if cfg.KeyLabel != "" {
		label = []byte(cfg.KeyLabel)
	}
	what := "key"
	if cfg.KeyLabel != "" {
		what += fmt.Sprintf(" label %q", cfg.KeyLabel)
	}
	if cfg.KeyID != "" {
		what += " id " + strings.ToLower(cfg.KeyID)
	}
	what += fmt.Sprintf(" on token %q", cfg.TokenLabel)
	found, err := ctx.FindKeyPairs(id, label)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", what, err)
	}
	switch len(found) {
	case 0:
		// crypto11 skips a private key without a public key object of the same CKA_ID.
		return nil, fmt.Errorf("%w: %s (a private key counts only with its public key object, same id)", ErrKeyNotFound, what)
	case 1:
	default:
		return nil, fmt.Errorf("%w: %d match %s (select by label and id)", ErrKeyAmbiguous, len(found), what)
	}
	key := found[0]
	var signer crypto.Signer
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%w: %d-bit RSA key %s", ErrUnsupportedKey, pub.N.BitLen(), what)
		}
		dec, ok := key.(crypto11.SignerDecrypter)
		if !ok || !canDecrypt(ctx, key) {
			signer = pkcs11Signer{key}
		} else {
			signer = &rsaDecrypter{key: dec, pub: pub}
		}
	case *ecdsa.PublicKey:
		signer = pkcs11Signer{key}
	default:
		return nil, fmt.Errorf("%w: %T key %s", ErrUnsupportedKey, pub, what)
	}
	ident, err := NewIdentity(signer, chain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return ident, nil
}

// canDecrypt reports whether the token lets the key decrypt (CKA_DECRYPT). A key that may only sign
// gets no Decrypter: otherwise every PKCS#1 v1.5 message would silently get a random key (see
// rsaDecrypter) and fail as corrupt instead of as "this key cannot decrypt".
func canDecrypt(ctx *crypto11.Context, key crypto11.Signer) bool {
	a, err := ctx.GetAttribute(key, crypto11.CkaDecrypt)
	if err != nil || a == nil {
		return false
	}
	for _, b := range a.Value {
		if b != 0 {
			return true
		}
	}
	return false
}

// pkcs11Closer closes a crypto11 context once: a second crypto11 Close would drop a module
// reference it does not hold.
type pkcs11Closer struct {
	once sync.Once
	ctx  *crypto11.Context
	err  error
}

func (c *pkcs11Closer) Close() error {
	c.once.Do(func() { c.err = c.ctx.Close() })
	return c.err
}

// pkcs11Signer is an HSM key that signs only. It hides crypto11's Delete, which would destroy the
// key on the token.
type pkcs11Signer struct{ s crypto.Signer }

func (k pkcs11Signer) Public() crypto.PublicKey { return k.s.Public() }

func (k pkcs11Signer) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.s.Sign(rand, digest, opts)
}

// rsaDecrypter is an RSA key on the token that signs and decrypts.
//
// crypto11 v1.5.0 refuses rsa.PKCS1v15DecryptOptions with SessionKeyLen set (it returns an
// "unsupported options" error for every ciphertext), and a bare CKM_RSA_PKCS decryption reports bad
// padding as an error. smime.Decrypt relies on the crypto/rsa contract instead: with SessionKeyLen
// set, a ciphertext that does not hold a well-padded key of exactly that length yields random bytes
// of that length and no error, so an attacker sending crafted ciphertexts learns nothing from our
// answers (Bleichenbacher). Decrypt emulates that around the token's CKM_RSA_PKCS: the random key
// is drawn before the token is asked, every token error and every wrong length selects it, and the
// selection is a constant-time copy. What the token itself does in time is beyond our reach; a
// token with its own implicit rejection (OpenSSL 3.2+ under SoftHSM2) returns a synthetic message,
// which is treated like any other.
//
// crypto11 uses the OAEP hash for MGF1 too, so OAEPOptions with a different MGFHash are refused
// rather than silently decrypted with the wrong mask.
type rsaDecrypter struct {
	key crypto11.SignerDecrypter
	pub *rsa.PublicKey
}

func (k *rsaDecrypter) Public() crypto.PublicKey { return k.pub }

func (k *rsaDecrypter) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.key.Sign(rand, digest, opts)
}

// Decrypt implements crypto.Decrypter with crypto/rsa's semantics for nil, *rsa.PKCS1v15DecryptOptions
// (including SessionKeyLen) and *rsa.OAEPOptions whose MGFHash is zero or the same as Hash.
func (k *rsaDecrypter) Decrypt(random io.Reader, ciphertext []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	switch o := opts.(type) {
	case nil:
		return k.key.Decrypt(random, ciphertext, &rsa.PKCS1v15DecryptOptions{})
	case *rsa.PKCS1v15DecryptOptions:
		if o.SessionKeyLen > 0 {
			return k.decryptSessionKey(random, ciphertext, o.SessionKeyLen)
		}
		return k.key.Decrypt(random, ciphertext, &rsa.PKCS1v15DecryptOptions{})
	case *rsa.OAEPOptions:
		if o.MGFHash != 0 && o.MGFHash != o.Hash {
			return nil, fmt.Errorf("keys: PKCS#11 OAEP decryption with MGF1-%v under %v is not supported", o.MGFHash, o.Hash)
		}
		return k.key.Decrypt(random, ciphertext, &rsa.OAEPOptions{Hash: o.Hash, Label: o.Label})
	}
	return nil, fmt.Errorf("keys: unsupported decrypter options %T", opts)
}

// decryptSessionKey is rsa.PrivateKey.Decrypt with SessionKeyLen l: errors only for what anyone can
// check from public values (key and ciphertext sizes), random bytes for every other failure.
func (k *rsaDecrypter) decryptSessionKey(random io.Reader, ciphertext []byte, l int) ([]byte, error) {
	size := k.pub.Size()
	if size-(l+11) < 0 || len(ciphertext) > size {
		return nil, rsa.ErrDecryption
	}
	if len(ciphertext) < size {
		// crypto/rsa reads the ciphertext as an integer; a token wants exactly the modulus length.
		ciphertext = append(make([]byte, size-len(ciphertext), size), ciphertext...)
	}
	if random == nil {
		random = rand.Reader
	}
	key := make([]byte, l)
	if _, err := io.ReadFull(random, key); err != nil {
		return nil, err
	}
	pt, err := k.key.Decrypt(nil, ciphertext, &rsa.PKCS1v15DecryptOptions{})
	if err != nil {
		var p11 pkcs11.Error
		if !errors.As(err, &p11) {
			// Not the token's answer (closed context, no session): it cannot depend on the
			// ciphertext, so it is safe to report, and it is an outage, not a bad message.
			return nil, fmt.Errorf("keys: PKCS#11 decrypt: %w", err)
		}
		pt = nil
	}
	em := make([]byte, size)
	if len(pt) <= size {
		copy(em[size-len(pt):], pt)
	}
	valid := subtle.ConstantTimeEq(int32(len(pt)), int32(l))
	subtle.ConstantTimeCopy(valid, key, em[size-l:])
	return key, nil
}
