//go:build cgo

//lint:file-ignore SA1019 the HSM key must decrypt PKCS#1 v1.5 key transport as crypto/rsa does

package keys_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/sealpost/sealpost/internal/softhsm/softhsmtest"
	"github.com/sealpost/sealpost/keys"
)

// hsmIdentities are made once per test binary (RSA generation is the slow part): a dev CA, the
// bank's RSA-2048 signer and the embedded TSA's ECDSA P-256 identity, both issued by it, and a
// customer whose certificate belongs to another key.
var hsmIdentities = sync.OnceValues(func() ([]*keys.Identity, error) {
	ca, err := keys.NewDevCA("pkcs11 test CA")
	if err != nil {
		return nil, err
	}
	signer, err := ca.NewDevSigner([]string{"statements@bank.example"})
	if err != nil {
		return nil, err
	}
	tsaID, err := ca.NewDevTSA()
	if err != nil {
		return nil, err
	}
	other, err := ca.NewDevCustomer("alice@example.com")
	if err != nil {
		return nil, err
	}
	return []*keys.Identity{ca, signer, tsaID, other}, nil
})

func identities(tb testing.TB) (ca, rsaID, ecID, other *keys.Identity) {
	tb.Helper()
	ids, err := hsmIdentities()
	if err != nil {
		tb.Fatal(err)
	}
	return ids[0], ids[1], ids[2], ids[3]
}

var digest = sha256.Sum256([]byte("message to sign"))

// checkSigns has the identity sign and verifies the signature with the certificate's public key.
func checkSigns(t *testing.T, id *keys.Identity) {
	t.Helper()
	sig, err := id.Signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	switch pub := id.Certificate().PublicKey.(type) {
	case *rsa.PublicKey:
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			err = errors.New("ECDSA signature does not verify")
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestLoadPKCS11(t *testing.T) {
	_, rsaID, ecID, _ := identities(t)
	tk := softhsmtest.New(t)
	rsaCfg := tk.ImportIdentity(rsaID, "bank-signer", []byte{0x01})
	ecCfg := tk.ImportIdentity(ecID, "bank-tsa", []byte{0x02, 0xa0})
	for _, tc := range []struct {
		name       string
		cfg        keys.PKCS11Config
		want       *keys.Identity
		canDecrypt bool
	}{
		{"RSA by label", byLabel(rsaCfg), rsaID, true},
		{"RSA by ID", byID(rsaCfg), rsaID, true},
		{"RSA by label and ID", rsaCfg, rsaID, true},
		{"ECDSA by label", byLabel(ecCfg), ecID, false},
		{"ECDSA by ID", byID(ecCfg), ecID, false},
		{"default module", withModule(rsaCfg, ""), rsaID, true},
		{"module via symlink", withModule(rsaCfg, symlink(t, tk.Module)), rsaID, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tk.Load(tc.cfg)
			if !id.Certificate().Equal(tc.want.Certificate()) {
				t.Fatal("wrong certificate")
			}
			if _, isFileKey := id.Signer.(*rsa.PrivateKey); isFileKey {
				t.Fatal("signer is a file key")
			}
			checkSigns(t, id)
			if got := id.Decrypter() != nil; got != tc.canDecrypt {
				t.Fatalf("Decrypter() != nil is %v, want %v", got, tc.canDecrypt)
			}
		})
	}
}

func byLabel(c keys.PKCS11Config) keys.PKCS11Config { c.KeyID = ""; return c }
func byID(c keys.PKCS11Config) keys.PKCS11Config    { c.KeyLabel = ""; return c }
func withModule(c keys.PKCS11Config, m string) keys.PKCS11Config {
	c.Module = m
	return c
}

func symlink(t *testing.T, target string) string {
	l := filepath.Join(t.TempDir(), "libhsm.so")
	if err := os.Symlink(target, l); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestLoadPKCS11Errors checks that each misconfiguration gets its own error. The cases run in order
// and the wrong-PIN cases come after those that fail with the token open: a context left open would
// keep the token logged in, and the wrong PIN would then be accepted.
func TestLoadPKCS11Errors(t *testing.T) {
	_, rsaID, ecID, other := identities(t)
	tk := softhsmtest.New(t)
	good := tk.ImportIdentity(rsaID, "bank-signer", []byte{0x01})
	tk.ImportKey(ecID.Signer, "twin", []byte{0x10})
	tk.ImportKey(other.Signer, "twin", []byte{0x11})
	dir := t.TempDir()
	wrongPIN := filepath.Join(dir, "wrong.pin")
	if err := os.WriteFile(wrongPIN, []byte("not-the-pin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	otherCert := filepath.Join(dir, "other.pem")
	if err := os.WriteFile(otherCert, keys.EncodeCertificates(other.Chain...), 0o600); err != nil {
		t.Fatal(err)
	}
	notALibrary := filepath.Join(dir, "libfake.so")
	if err := os.WriteFile(notALibrary, []byte("not an ELF file"), 0o600); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(*keys.PKCS11Config)) keys.PKCS11Config {
		c := good
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name     string
		cfg      keys.PKCS11Config
		want     error
		mentions string // what the message must name for the operator
	}{
		{"no token label", edit(func(c *keys.PKCS11Config) { c.TokenLabel = "" }), keys.ErrPKCS11Config, "token_label"},
		{"no key selector", edit(func(c *keys.PKCS11Config) { c.KeyLabel, c.KeyID = "", "" }), keys.ErrPKCS11Config, "key_id"},
		{"key ID not hex", edit(func(c *keys.PKCS11Config) { c.KeyID = "0x01" }), keys.ErrPKCS11Config, "0x01"},
		{"two PIN sources", edit(func(c *keys.PKCS11Config) { c.PINEnv = "HSM_PIN" }), keys.ErrPKCS11Config, "pin_env"},
		{"module missing", edit(func(c *keys.PKCS11Config) { c.Module = filepath.Join(dir, "nope.so") }), keys.ErrPKCS11Module, "nope.so"},
		{"module not a library", edit(func(c *keys.PKCS11Config) { c.Module = notALibrary }), keys.ErrPKCS11Module, "libfake.so"},
		{"certificate file missing", edit(func(c *keys.PKCS11Config) { c.Certificate = filepath.Join(dir, "none.pem") }), fs.ErrNotExist, "none.pem"},
		{"PIN file missing", edit(func(c *keys.PKCS11Config) { c.PINFile = filepath.Join(dir, "none.pin") }), fs.ErrNotExist, "none.pin"},
		{"token not found", edit(func(c *keys.PKCS11Config) { c.TokenLabel = "no-such-token" }), keys.ErrTokenNotFound, `"no-such-token"`},
		{"key label not found", edit(func(c *keys.PKCS11Config) { c.KeyID = ""; c.KeyLabel = "no-such-key" }), keys.ErrKeyNotFound, "no-such-key"},
		{"key ID not found", edit(func(c *keys.PKCS11Config) { c.KeyLabel = ""; c.KeyID = "99" }), keys.ErrKeyNotFound, "99"},
		{"label and ID of different keys", edit(func(c *keys.PKCS11Config) { c.KeyID = "10" }), keys.ErrKeyNotFound, "bank-signer"},
		{"label of two keys", edit(func(c *keys.PKCS11Config) { c.KeyID = ""; c.KeyLabel = "twin" }), keys.ErrKeyAmbiguous, "twin"},
		{"certificate of another key", edit(func(c *keys.PKCS11Config) { c.Certificate = otherCert }), keys.ErrKeyMismatch, "alice@example.com"},
		{"wrong PIN", edit(func(c *keys.PKCS11Config) { c.PINFile = wrongPIN }), keys.ErrPINIncorrect, good.TokenLabel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, closer, err := keys.LoadPKCS11(tc.cfg)
			if err == nil {
				closer.Close()
				t.Fatalf("loaded %v, want %v", id.Certificate().Subject, tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if id != nil || closer != nil {
				t.Fatal("identity or closer returned with an error")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.mentions) {
				t.Errorf("message %q does not name %s", err, tc.mentions)
			}
			if strings.Contains(err.Error(), tk.PIN) {
				t.Errorf("message %q contains the PIN", err)
			}
		})
	}
	t.Run("wrong PIN after Close", func(t *testing.T) {
		_, closer, err := keys.LoadPKCS11(good)
		if err != nil {
			t.Fatal(err)
		}
		if err := closer.Close(); err != nil {
			t.Fatal(err)
		}
		if err := closer.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		bad := good
		bad.PINFile = wrongPIN
		if _, _, err := keys.LoadPKCS11(bad); !errors.Is(err, keys.ErrPINIncorrect) {
			t.Fatalf("got %v, want ErrPINIncorrect: the first context still holds the login", err)
		}
	})
}

// TestPKCS11Closed checks that a closed identity fails to sign instead of crashing.
func TestPKCS11Closed(t *testing.T) {
	_, rsaID, _, _ := identities(t)
	tk := softhsmtest.New(t)
	id, closer, err := keys.LoadPKCS11(tk.ImportIdentity(rsaID, "bank-signer", []byte{0x01}))
	if err != nil {
		t.Fatal(err)
	}
	closer.Close()
	if _, err := id.Signer.Sign(rand.Reader, digest[:], crypto.SHA256); err == nil {
		t.Fatal("signed after Close")
	}
	if _, err := id.Decrypter().Decrypt(rand.Reader, make([]byte, 256), &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 16}); err == nil {
		t.Fatal("decrypted after Close: an outage must be an error, not a random key")
	}
}

// TestPKCS11Decrypt compares the HSM key's Decrypt with the same key's in a file (crypto/rsa), which
// defines the contract smime.Decrypt relies on: with SessionKeyLen set, a bad padding or a wrong
// length yields random bytes of that length and no error.
func TestPKCS11Decrypt(t *testing.T) {
	_, rsaID, _, _ := identities(t)
	fileKey := rsaID.Signer.(*rsa.PrivateKey)
	pub := &fileKey.PublicKey
	tk := softhsmtest.New(t)
	dec := tk.Load(tk.ImportIdentity(rsaID, "bank-signer", []byte{0x01})).Decrypter()
	if dec == nil {
		t.Fatal("RSA identity from the HSM has no Decrypter")
	}

	cek := bytes.Repeat([]byte{0x5c}, 16)
	v15, err := rsa.EncryptPKCS1v15(rand.Reader, pub, cek)
	if err != nil {
		t.Fatal(err)
	}
	v15Long, err := rsa.EncryptPKCS1v15(rand.Reader, pub, bytes.Repeat([]byte{0x5c}, 24))
	if err != nil {
		t.Fatal(err)
	}
	// A ciphertext whose first byte is zero, sent without it: crypto/rsa reads it as the same integer.
	var short []byte
	for short == nil {
		ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, cek)
		if err != nil {
			t.Fatal(err)
		}
		if ct[0] == 0 {
			short = ct[1:]
		}
	}
	oaep1, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, cek, nil)
	if err != nil {
		t.Fatal(err)
	}
	oaep256, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, cek, nil)
	if err != nil {
		t.Fatal(err)
	}
	badPadding := rawEncrypt(pub, append([]byte{0x00, 0x03}, bytes.Repeat([]byte{0x77}, pub.Size()-2)...))
	session := &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 16}

	for _, tc := range []struct {
		name    string
		ct      []byte
		opts    crypto.DecrypterOpts
		want    []byte // nil: random bytes of SessionKeyLen, or an error when wantErr
		wantErr bool
		// softHSMRefuses: SoftHSM2 (2.6) does OAEP with SHA-1 only and answers CKR_ARGUMENTS_BAD;
		// HSMs that do more must give the file key's answer.
		softHSMRefuses bool
	}{
		{"PKCS#1 v1.5 with SessionKeyLen", v15, session, cek, false, false},
		{"PKCS#1 v1.5 bad padding with SessionKeyLen", badPadding, session, nil, false, false},
		{"PKCS#1 v1.5 wrong length with SessionKeyLen", v15Long, session, nil, false, false},
		{"PKCS#1 v1.5 short ciphertext with SessionKeyLen", short, session, cek, false, false},
		{"PKCS#1 v1.5", v15, &rsa.PKCS1v15DecryptOptions{}, cek, false, false},
		{"PKCS#1 v1.5 nil options", v15, nil, cek, false, false},
		{"PKCS#1 v1.5 bad padding", badPadding, &rsa.PKCS1v15DecryptOptions{}, nil, true, false},
		{"PKCS#1 v1.5 ciphertext too long", append(bytes.Clone(v15), 0), session, nil, true, false},
		{"PKCS#1 v1.5 SessionKeyLen too long for the key", v15, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 250}, nil, true, false},
		{"OAEP SHA-1", oaep1, &rsa.OAEPOptions{Hash: crypto.SHA1}, cek, false, false},
		{"OAEP SHA-256", oaep256, &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA256}, cek, false, true},
		{"OAEP wrong hash", oaep1, &rsa.OAEPOptions{Hash: crypto.SHA256}, nil, true, false},
		{"OAEP corrupted", flip(oaep1), &rsa.OAEPOptions{Hash: crypto.SHA1}, nil, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []struct {
				name string
				dec  crypto.Decrypter
			}{{"file", fileKey}, {"HSM", dec}} {
				got, err := k.dec.Decrypt(rand.Reader, tc.ct, tc.opts)
				var p11 pkcs11.Error
				if k.name == "HSM" && tc.softHSMRefuses && errors.As(err, &p11) && p11 == pkcs11.CKR_ARGUMENTS_BAD {
					t.Logf("the token does not support this mechanism: %v", err)
					continue
				}
				switch {
				case tc.wantErr:
					if err == nil {
						t.Errorf("%s key: decrypted, want an error", k.name)
					}
				case err != nil:
					t.Errorf("%s key: %v", k.name, err)
				case tc.want != nil && !bytes.Equal(got, tc.want):
					t.Errorf("%s key: got %x, want %x", k.name, got, tc.want)
				case tc.want == nil && (len(got) != session.SessionKeyLen || bytes.Equal(got, cek)):
					t.Errorf("%s key: got %x, want %d random bytes", k.name, got, session.SessionKeyLen)
				}
			}
		})
	}
	// The real key where the padding is right: the random fallback must not mask it.
	if got, err := dec.Decrypt(rand.Reader, v15, session); err != nil || !bytes.Equal(got, cek) {
		t.Fatalf("got %x, %v", got, err)
	}
}

// TestPKCS11OAEPMGFHashMismatch: crypto11 would use the OAEP hash for MGF1 whatever MGFHash says.
func TestPKCS11OAEPMGFHashMismatch(t *testing.T) {
	_, rsaID, _, _ := identities(t)
	tk := softhsmtest.New(t)
	dec := tk.Load(tk.ImportIdentity(rsaID, "bank-signer", []byte{0x01})).Decrypter()
	if _, err := dec.Decrypt(rand.Reader, make([]byte, 256), &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA1}); err == nil {
		t.Fatal("OAEP with a different MGF1 hash accepted")
	}
}

// TestPKCS11Concurrent signs and decrypts from several goroutines at once, as the gateway does:
// crypto11 hands each call its own session.
func TestPKCS11Concurrent(t *testing.T) {
	_, rsaID, _, _ := identities(t)
	tk := softhsmtest.New(t)
	id := tk.Load(tk.ImportIdentity(rsaID, "bank-signer", []byte{0x01}))
	cek := []byte("0123456789abcdef")
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, id.Certificate().PublicKey.(*rsa.PublicKey), cek)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 10 {
				sig, err := id.Signer.Sign(rand.Reader, digest[:], crypto.SHA256)
				if err == nil {
					err = rsa.VerifyPKCS1v15(id.Certificate().PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig)
				}
				if err != nil {
					errs <- err
					return
				}
				got, err := id.Decrypter().Decrypt(rand.Reader, ct, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: len(cek)})
				if err != nil || !bytes.Equal(got, cek) {
					errs <- fmt.Errorf("decrypt: %x, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// rawEncrypt is textbook RSA: it lets a test build a ciphertext whose padding is wrong.
func rawEncrypt(pub *rsa.PublicKey, em []byte) []byte {
	m := new(big.Int).SetBytes(em)
	c := m.Exp(m, big.NewInt(int64(pub.E)), pub.N)
	return c.FillBytes(make([]byte, pub.Size()))
}

func flip(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)/2] ^= 1
	return b
}

// BenchmarkFileSignRSA2048 and BenchmarkPKCS11SignRSA2048 sign a SHA-256 digest (PKCS#1 v1.5) with
// the same RSA-2048 key, from memory and through SoftHSM2: their ratio is the cost of the PKCS#11
// round trip.
func BenchmarkFileSignRSA2048(b *testing.B) {
	_, rsaID, _, _ := identities(b)
	benchmarkSign(b, rsaID.Signer)
}

func BenchmarkPKCS11SignRSA2048(b *testing.B) {
	_, rsaID, _, _ := identities(b)
	tk := softhsmtest.New(b)
	benchmarkSign(b, tk.Load(tk.ImportIdentity(rsaID, "bank-signer", []byte{0x01})).Signer)
}

func benchmarkSign(b *testing.B, s crypto.Signer) {
	for b.Loop() {
		if _, err := s.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}
