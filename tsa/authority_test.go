package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/interop"
)

// TestAuthorityTokenOpenSSLVerify proves tokens from the embedded Authority are accepted by a real
// third-party verifier (openssl ts -verify) that holds only the root, with the TSA certificate given
// as -untrusted or taken from the token (with its intermediate, when there is one), and that openssl
// rejects them for a message one byte off.
func TestAuthorityTokenOpenSSLVerify(t *testing.T) {
	interop.Tool(t, "openssl")
	for _, tc := range []struct {
		name string
		tsa  func(t testing.TB) *testTSA
	}{
		{"ecdsa-p256", func(t testing.TB) *testTSA { return newTestTSA(t, newP256(t)) }},
		{"rsa-2048", func(t testing.TB) *testTSA { return newTestTSA(t, rsaKey()) }},
		{"ecdsa-p256 under an intermediate", func(t testing.TB) *testTSA {
			ts, _ := newTestTSAViaIntermediate(t, newP256(t))
			return ts
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := tc.tsa(t)
			msg := []byte("CMS signature value to be time-stamped")
			tok, err := ts.a.Timestamp(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(tok.DER, msg, ts.ca.roots); err != nil {
				t.Fatalf("own Verify: %v", err)
			}
			dir := t.TempDir()
			tokPath := writeFile(t, dir, "tok.der", tok.DER)
			caPath := writeFile(t, dir, "ca.pem", certPEM(ts.ca.cert))
			tsaPath := writeFile(t, dir, "tsa.pem", certPEM(ts.cert))
			good := writeFile(t, dir, "msg", msg)
			altered := append([]byte(nil), msg...)
			altered[0] ^= 1
			bad := writeFile(t, dir, "altered", altered)

			for _, v := range []struct {
				name  string
				extra []string
			}{
				{"untrusted", []string{"-untrusted", tsaPath}},
				{"embedded", nil},
			} {
				t.Run(v.name, func(t *testing.T) {
					args := append([]string{"ts", "-verify", "-in", tokPath, "-token_in", "-CAfile", caPath}, v.extra...)
					out := interop.Run(t, nil, "openssl", append(args, "-data", good)...)
					if !bytes.Contains(out, []byte("Verification: OK")) {
						t.Fatalf("openssl did not say OK: %s", out)
					}
					if out, _, err := interop.Try(t, nil, "openssl", append(args, "-data", bad)...); err == nil {
						t.Fatalf("openssl accepted the token for an altered message: %s", out)
					}
				})
			}
		})
	}
}

// TestAuthorityTokenFields checks what the Authority puts in a token: the clock's time in UTC whole
// seconds, the configured policy, a 1s accuracy, no nonce, and the TSA certificate plus chain.
func TestAuthorityTokenFields(t *testing.T) {
	at := time.Now().Add(-time.Minute).In(time.FixedZone("CET", 3600))
	policy := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 99, 7}
	ts := newTestTSA(t, nil, WithPolicy(policy), WithClock(func() time.Time { return at }))
	tok, err := ts.a.Timestamp(context.Background(), []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if want := at.UTC().Truncate(time.Second); !tok.Time.Equal(want) || tok.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want %v in UTC", tok.Time, want)
	}
	if !tok.Policy.Equal(policy) {
		t.Errorf("Policy = %v, want %v", tok.Policy, policy)
	}
	if !tok.Authority.Equal(ts.cert) {
		t.Errorf("Authority is not the TSA certificate")
	}
	p, err := parseToken(tok.DER)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.parseCertificates(); err != nil {
		t.Fatal(err)
	}
	if len(p.certs) != 1 || !p.certs[0].Equal(ts.cert) {
		t.Errorf("embedded certificates: got %d, want the TSA's alone (not the root)", len(p.certs))
	}
	if p.info.Accuracy.Seconds != 1 || p.info.Nonce != nil || p.info.SerialNumber.Cmp(tok.Serial) != 0 {
		t.Errorf("accuracy %+v, nonce %v, serial %v/%v", p.info.Accuracy, p.info.Nonce, p.info.SerialNumber, tok.Serial)
	}
	if _, err := Verify(tok.DER, []byte("m"), ts.ca.roots); err != nil {
		t.Fatal(err)
	}
}

// TestAuthorityEmbedsIntermediates: with chain [TSA, intermediate, root] the token carries the TSA
// certificate and the intermediate, so a verifier holding only the root can build the chain.
func TestAuthorityEmbedsIntermediates(t *testing.T) {
	ts, inter := newTestTSAViaIntermediate(t, newP256(t))
	tok, err := ts.a.Timestamp(context.Background(), []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseToken(tok.DER)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.parseCertificates(); err != nil {
		t.Fatal(err)
	}
	if len(p.certs) != 2 || !p.certs[0].Equal(ts.cert) || !p.certs[1].Equal(inter.cert) {
		t.Fatalf("embedded %d certificates, want TSA and intermediate", len(p.certs))
	}
	if _, err := Verify(tok.DER, []byte("m"), ts.ca.roots); err != nil {
		t.Fatal(err)
	}
}

// TestAuthoritySerialsUnique issues tokens concurrently (run with -race) and checks no serial repeats.
func TestAuthoritySerialsUnique(t *testing.T) {
	ts := newTestTSA(t, nil)
	const workers, each = 8, 25
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		wg   sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				tok, err := ts.a.Timestamp(context.Background(), []byte{byte(i)})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[tok.Serial.String()] {
					t.Errorf("serial %v issued twice", tok.Serial)
				}
				seen[tok.Serial.String()] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != workers*each {
		t.Errorf("%d distinct serials, want %d", len(seen), workers*each)
	}
}

// TestAuthorityExpiredCertificate: once the clock passes the TSA certificate's notAfter, Timestamp
// fails with an error that is both transient (ErrUnavailable: defer the mail) and ErrInvalidAuthority.
func TestAuthorityExpiredCertificate(t *testing.T) {
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	ts := newTestTSA(t, nil, WithClock(func() time.Time { return *now.Load() }))
	if _, err := ts.a.Timestamp(context.Background(), []byte("m")); err != nil {
		t.Fatal(err)
	}
	later := ts.cert.NotAfter.Add(time.Second)
	now.Store(&later)
	_, err := ts.a.Timestamp(context.Background(), []byte("m"))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrInvalidAuthority) {
		t.Fatalf("err = %v, want ErrUnavailable and ErrInvalidAuthority", err)
	}
}

// TestAuthorityCancelledContext: a cancelled context stops the hot path before signing.
func TestAuthorityCancelledContext(t *testing.T) {
	ts := newTestTSA(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ts.a.Timestamp(ctx, []byte("m"))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want context.Canceled and ErrUnavailable", err)
	}
}

// TestNewAuthorityRejects: NewAuthority refuses keys, certificates and options unfit for a TSA,
// each with a sentinel a caller can test.
func TestNewAuthorityRejects(t *testing.T) {
	ca := newTestCA(t, "sealpost test CA")
	key := newP256(t)
	other := newP256(t)
	good := ca.issue(t, key.Public(), tsaCert{})
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	unrelated := newTestCA(t, "unrelated CA")
	for _, tc := range []struct {
		name   string
		signer crypto.Signer
		chain  []*x509.Certificate
		opts   []AuthorityOption
		want   error
	}{
		{"key does not match certificate", other, []*x509.Certificate{good}, nil, ErrInvalidAuthority},
		{"nil signer", nil, []*x509.Certificate{good}, nil, ErrInvalidAuthority},
		{"empty chain", key, nil, nil, ErrInvalidAuthority},
		{"nil certificate", key, []*x509.Certificate{nil}, nil, ErrInvalidAuthority},
		{"non-critical EKU", key, []*x509.Certificate{ca.issue(t, key.Public(), tsaCert{nonCriticalEKU: true})}, nil, ErrInvalidAuthority},
		{"no EKU", key, []*x509.Certificate{ca.issue(t, key.Public(), tsaCert{ekus: []asn1.ObjectIdentifier{}})}, nil, ErrInvalidAuthority},
		{"extra EKU", key, []*x509.Certificate{ca.issue(t, key.Public(), tsaCert{ekus: []asn1.ObjectIdentifier{oidKPTimeStamping, {1, 3, 6, 1, 5, 5, 7, 3, 4}}})}, nil, ErrInvalidAuthority},
		{"no digitalSignature", key, []*x509.Certificate{ca.issue(t, key.Public(), tsaCert{keyUsage: x509.KeyUsageContentCommitment})}, nil, ErrInvalidAuthority},
		{"expired", key, []*x509.Certificate{ca.issue(t, key.Public(), tsaCert{notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)})}, nil, ErrInvalidAuthority},
		{"chain[1] did not sign chain[0]", key, []*x509.Certificate{good, unrelated.cert}, nil, ErrInvalidAuthority},
		{"P-224 key", p224, []*x509.Certificate{ca.issue(t, p224.Public(), tsaCert{})}, nil, ErrInvalidAuthority},
		{"RSA-1024 key", rsa1024, []*x509.Certificate{ca.issue(t, rsa1024.Public(), tsaCert{})}, nil, ErrInvalidAuthority},
		{"empty policy", key, []*x509.Certificate{good}, []AuthorityOption{WithPolicy(nil)}, ErrConfig},
		{"nil clock", key, []*x509.Certificate{good}, []AuthorityOption{WithClock(nil)}, ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAuthority(tc.signer, tc.chain, tc.opts...)
			if !errors.Is(err, tc.want) || a != nil {
				t.Fatalf("NewAuthority = %v, %v; want error %v", a, err, tc.want)
			}
		})
	}
	if _, err := NewAuthority(key, []*x509.Certificate{good, ca.cert}); err != nil {
		t.Fatalf("proper TSA refused: %v", err)
	}
}
