package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/interop"
)

// openSSLTSA is openssl ts -reply acting as a third-party TSA behind an HTTP handler.
type openSSLTSA struct {
	dir  string
	cfg  string
	cert *x509.Certificate
	mu   sync.Mutex // openssl keeps the serial in a file: one reply at a time
}

// newOpenSSLTSA writes a minimal openssl TSA configuration. essAlg is "sha256" (ESSCertIDv2) or
// "sha1" (ESSCertID v1).
func newOpenSSLTSA(t testing.TB, ca *testCA, key crypto.Signer, essAlg string) *openSSLTSA {
	t.Helper()
	interop.Tool(t, "openssl")
	dir := t.TempDir()
	cert := ca.issue(t, key.Public(), tsaCert{cn: "openssl test TSA", serial: 7})
	writeFile(t, dir, "tsa.pem", certPEM(cert))
	writeFile(t, dir, "tsa.key", keyPEM(t, key))
	writeFile(t, dir, "chain.pem", certPEM(ca.cert))
	writeFile(t, dir, "serial", []byte("01\n"))
	cfg := fmt.Sprintf(`[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = %s
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
certs = $dir/chain.pem
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha1, sha256, sha384, sha512
accuracy = secs:1, millisecs:500
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = %s
`, dir, essAlg)
	return &openSSLTSA{dir: dir, cfg: writeFile(t, dir, "tsa.cnf", []byte(cfg)), cert: cert}
}

// reply runs openssl ts -reply on a DER query; with tokenOut it returns the bare token.
func (o *openSSLTSA) reply(t testing.TB, q []byte, tokenOut bool) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	qf, err := os.CreateTemp(o.dir, "q*.der")
	if err != nil {
		return nil, err
	}
	defer os.Remove(qf.Name())
	if _, err := qf.Write(q); err != nil {
		return nil, err
	}
	qf.Close()
	out := filepath.Join(o.dir, "reply.der")
	args := []string{"ts", "-reply", "-config", o.cfg, "-queryfile", qf.Name(), "-out", out}
	if tokenOut {
		args = append(args, "-token_out")
	}
	if _, stderr, err := interop.Try(t, nil, "openssl", args...); err != nil {
		return nil, fmt.Errorf("openssl ts -reply: %v: %s", err, stderr)
	}
	return os.ReadFile(out)
}

func (o *openSSLTSA) handler(t testing.TB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp, err := o.reply(t, q, false)
		if err != nil {
			t.Log(err)
			http.Error(w, "openssl failed", http.StatusInternalServerError)
			return
		}
		writeReply(w, resp)
	})
}

// TestClientVerifiesOpenSSLTSA proves the Client fully verifies a real third-party TSA's tokens:
// openssl ts -reply, with ECDSA and RSA keys, with ESSCertIDv2 and with the v1 ESSCertID.
func TestClientVerifiesOpenSSLTSA(t *testing.T) {
	for _, tc := range []struct {
		name   string
		key    func(testing.TB) crypto.Signer
		essAlg string
		essOID string
	}{
		{"ecdsa ESSCertIDv2", func(t testing.TB) crypto.Signer { return newP256(t) }, "sha256", oidAttrSigningCertificateV2.String()},
		{"ecdsa ESSCertID v1", func(t testing.TB) crypto.Signer { return newP256(t) }, "sha1", oidAttrSigningCertificate.String()},
		{"rsa-2048 ESSCertIDv2", func(testing.TB) crypto.Signer { return rsaKey() }, "sha256", oidAttrSigningCertificateV2.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := newTestCA(t, "third-party CA")
			o := newOpenSSLTSA(t, ca, tc.key(t), tc.essAlg)
			srv := httptest.NewServer(o.handler(t))
			defer srv.Close()
			c, err := NewClient([]string{srv.URL}, ca.roots)
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte("signature bytes")
			tok, err := c.Timestamp(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Authority.Equal(o.cert) || tok.Policy.String() != "1.2.3.4.1" || time.Since(tok.Time) > time.Minute {
				t.Fatalf("token: authority %v, policy %v, time %v", tok.Authority.Subject, tok.Policy, tok.Time)
			}
			if _, err := Verify(tok.DER, msg, ca.roots); err != nil {
				t.Fatal(err)
			}
			// The test must exercise the ESS flavour it names.
			p, _ := parseToken(tok.DER)
			attrs, err := parseAttributes(p.signer.SignedAttrs.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := attrs[tc.essOID]; !ok {
				t.Fatalf("openssl token has no %s attribute", tc.essOID)
			}
		})
	}
}

// dead returns the URL of a server that no longer listens.
func dead(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/"
	l.Close()
	return url
}

func serve(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// hangUntilGone answers nothing until the client hangs up. It reads the body first: only then does
// net/http watch the connection and cancel the request's context when the client leaves.
func hangUntilGone(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

// TestClientFailover: the Client tries the next TSA after a dead one, an HTTP 500, a hanging one
// (per-attempt timeout), garbage or a rejection; when all fail it returns ErrUnavailable with every
// TSA's failure.
func TestClientFailover(t *testing.T) {
	ts := newTestTSA(t, nil)
	good := serve(t, ts.a.ServeHTTP)
	status500 := serve(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
	hang := serve(t, hangUntilGone)
	garbage := serve(t, func(w http.ResponseWriter, r *http.Request) { writeReply(w, []byte("\x30\x03garbage")) })
	rejecting := serve(t, func(w http.ResponseWriter, r *http.Request) {
		writeReply(w, rejectionResponse(FailSystemFailure, "down"))
	})
	deadURL := dead(t)

	for _, tc := range []struct {
		name string
		urls []string
		want []error // nil: success
	}{
		{"good", []string{good}, nil},
		{"dead then good", []string{deadURL, good}, nil},
		{"500 then good", []string{status500, good}, nil},
		{"hang then good", []string{hang, good}, nil},
		{"garbage then good", []string{garbage, good}, nil},
		{"rejection then good", []string{rejecting, good}, nil},
		{"all bad", []string{deadURL, status500, hang, garbage, rejecting}, []error{ErrUnavailable, ErrMalformed, context.DeadlineExceeded}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClient(tc.urls, ts.ca.roots, WithTimeout(200*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := c.Timestamp(context.Background(), []byte("m"))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := Verify(tok.DER, []byte("m"), ts.ca.roots); err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want it to wrap %v", err, w)
				}
			}
			var rej *RejectedError
			if !errors.As(err, &rej) || rej.FailureInfo != FailSystemFailure {
				t.Errorf("the rejection is not reachable with errors.As: %v", err)
			}
			for _, u := range tc.urls {
				if !strings.Contains(err.Error(), strings.TrimSuffix(u, "/")) {
					t.Errorf("error does not name TSA %s: %v", u, err)
				}
			}
		})
	}
}

// TestClientRejectsReplayedNonce: a TSA (or a man in the middle) that replays a valid token made
// for another request is refused with ErrNonceMismatch, even though the token is otherwise valid.
func TestClientRejectsReplayedNonce(t *testing.T) {
	ts := newTestTSA(t, nil)
	msg := []byte("same message")
	var replay atomic.Pointer[[]byte]
	replayer := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if replay.Load() == nil {
			http.Error(w, "not primed", 500)
			return
		}
		writeReply(w, *replay.Load())
	})
	// Prime with a genuine reply to the Client's own first query.
	recorder := serve(t, func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		ts.a.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		replay.Store(&body)
		writeReply(w, body)
	})
	prime, err := NewClient([]string{recorder}, ts.ca.roots)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prime.Timestamp(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient([]string{replayer}, ts.ca.roots)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Timestamp(context.Background(), msg)
	if !errors.Is(err, ErrNonceMismatch) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrNonceMismatch (within ErrUnavailable)", err)
	}
	// The replayed token itself is genuine: only the nonce gives it away.
	der, err := tokenFromResponse(*replay.Load())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(der, msg, ts.ca.roots); err != nil {
		t.Fatalf("replayed token should verify on its own: %v", err)
	}
}

// TestClientRejectedStatus: a TSA's refusal reaches the caller as a *RejectedError with its status,
// failure bits and text; on its own it is not ErrUnavailable.
func TestClientRejectedStatus(t *testing.T) {
	ts := newTestTSA(t, nil)
	u := serve(t, func(w http.ResponseWriter, r *http.Request) {
		writeReply(w, rejectionResponse(FailTimeNotAvailable, "clock lost"))
	})
	c, err := NewClient([]string{u}, ts.ca.roots)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Timestamp(context.Background(), []byte("m"))
	var rej *RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("err = %v, want a *RejectedError", err)
	}
	if rej.Status != StatusRejection || rej.FailureInfo != FailTimeNotAvailable || rej.Text != "clock lost" {
		t.Fatalf("rejection = %+v", rej)
	}
	if errors.Is(rej, ErrUnavailable) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a rejection is not transient by itself, but the Client's overall failure is")
	}
}

// TestClientResponseLimits: replies with the wrong content type, an HTTP error or over 1 MiB are
// refused without being parsed as tokens.
func TestClientResponseLimits(t *testing.T) {
	ts := newTestTSA(t, nil)
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want error
	}{
		{"over 1 MiB", func(w http.ResponseWriter, r *http.Request) {
			writeReply(w, bytes.Repeat([]byte{0x30}, maxReplyBytes+1))
		}, ErrMalformed},
		{"wrong content type", func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			ts.a.ServeHTTP(rec, r)
			w.Header().Set("Content-Type", "text/html")
			w.Write(rec.Body.Bytes())
		}, ErrMalformed},
		{"granted without token", func(w http.ResponseWriter, r *http.Request) {
			writeReply(w, []byte{0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00})
		}, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClient([]string{serve(t, tc.h)}, ts.ca.roots)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Timestamp(context.Background(), []byte("m")); !errors.Is(err, tc.want) || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestClientCancelled: a cancelled context stops the Client from trying further TSAs.
func TestClientCancelled(t *testing.T) {
	ts := newTestTSA(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	first := serve(t, func(w http.ResponseWriter, r *http.Request) { cancel(); hangUntilGone(w, r) })
	second := serve(t, func(w http.ResponseWriter, r *http.Request) { t.Error("second TSA asked after cancel") })
	c, err := NewClient([]string{first, second}, ts.ca.roots)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Timestamp(ctx, []byte("m"))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
}

// TestNewClientRejects: configuration errors are refused up front, never taken as "unlimited".
func TestNewClientRejects(t *testing.T) {
	roots := x509.NewCertPool()
	for _, tc := range []struct {
		name  string
		urls  []string
		roots *x509.CertPool
		opts  []ClientOption
	}{
		{"no URLs", nil, roots, nil},
		{"nil roots", []string{"http://tsa.example/"}, nil, nil},
		{"relative URL", []string{"/tsa"}, roots, nil},
		{"ftp URL", []string{"ftp://tsa.example/"}, roots, nil},
		{"unparsable URL", []string{"http://[::1"}, roots, nil},
		{"zero timeout", []string{"http://tsa.example/"}, roots, []ClientOption{WithTimeout(0)}},
		{"negative timeout", []string{"http://tsa.example/"}, roots, []ClientOption{WithTimeout(-time.Second)}},
		{"nil HTTP client", []string{"http://tsa.example/"}, roots, []ClientOption{WithHTTPClient(nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := NewClient(tc.urls, tc.roots, tc.opts...); !errors.Is(err, ErrConfig) || c != nil {
				t.Fatalf("NewClient = %v, %v; want ErrConfig", c, err)
			}
		})
	}
	if _, err := NewClient([]string{"http://tsa.example/", "https://tsa2.example/tsr"}, roots,
		WithTimeout(time.Second), WithHTTPClient(&http.Client{})); err != nil {
		t.Fatal(err)
	}
}
