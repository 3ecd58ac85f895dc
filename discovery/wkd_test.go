package discovery

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/tlstest"
	"github.com/sealpost/sealpost/keys"
)

// TestWKDHashAndURLsMatchGnuPG: the hash and both URLs are those gpg-wks-client prints.
func TestWKDHashAndURLsMatchGnuPG(t *testing.T) {
	tool := interop.WKSClient(t)
	for _, addr := range []string{"Joe.Doe@Example.ORG", "alice@example.com", "statements@bank.example", "a+tag@x.example", "ÄBC@x.example", "KÉLVIN@x.example"} {
		out := strings.Fields(string(interop.Run(t, nil, tool, "--print-wkd-hash", addr)))
		if len(out) < 1 || WKDHash(strings.SplitN(addr, "@", 2)[0]) != out[0] {
			t.Errorf("WKDHash(%s) = %s; gpg-wks-client says %v", addr, WKDHash(strings.SplitN(addr, "@", 2)[0]), out)
		}
		gpgURL := strings.TrimSpace(string(interop.Run(t, nil, tool, "--print-wkd-url", addr)))
		advanced, _, err := WKDURLs(addr)
		if err != nil {
			t.Fatal(err)
		}
		// gpg writes the l= value lower-cased and unescaped ("+" as it is, which a query reads as
		// a space); the draft sends the local part as it is, and sealpost percent-encodes it.
		local := strings.SplitN(addr, "@", 2)[0]
		plain := strings.Trim(local, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.") == ""
		if (plain && !strings.EqualFold(advanced, gpgURL)) || strings.SplitN(advanced, "?", 2)[0] != strings.SplitN(gpgURL, "?", 2)[0] {
			t.Errorf("advanced URL %s; gpg-wks-client says %s", advanced, gpgURL)
		}
	}
}

// wkdServer is a real HTTPS server on loopback that answers for openpgpkey.example.com and
// example.com (its certificate names both), reached through the client's dialer.
type wkdServer struct {
	srv      *httptest.Server
	roots    *x509.CertPool
	mu       sync.Mutex
	paths    map[string]http.HandlerFunc // by URL path
	queries  []string
	noAdvanc bool // openpgpkey.example.com does not exist
}

func newWKDServer(t testing.TB) *wkdServer {
	t.Helper()
	cert := tlstest.ForHosts(t, "example.com", "openpgpkey.example.com")
	w := &wkdServer{roots: cert.Pool, paths: map[string]http.HandlerFunc{}}
	w.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		h := w.paths[r.URL.Path]
		w.queries = append(w.queries, r.Host+" "+r.URL.RawQuery)
		w.mu.Unlock()
		if h == nil {
			http.NotFound(rw, r)
			return
		}
		h(rw, r)
	}))
	w.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the tests' own
	w.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	w.srv.StartTLS()
	t.Cleanup(w.srv.Close)
	return w
}

// client is a WKD client that reaches w for both host names.
func (w *wkdServer) client(t testing.TB, timeout time.Duration, roots *x509.CertPool) *WKDClient {
	t.Helper()
	cfg := DefaultWKDConfig()
	cfg.Timeout = config.Duration(timeout)
	c, err := NewWKDClient(cfg, WithWKDRoots(roots), WithWKDDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
		if (w.noAdvanc && strings.HasPrefix(addr, "openpgpkey.")) || strings.Contains(addr, "nowhere.example") {
			return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, w.srv.Listener.Addr().String())
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serve answers path with body.
func (w *wkdServer) serve(path string, body []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.paths[path] = func(rw http.ResponseWriter, _ *http.Request) { rw.Write(body) }
}

func (w *wkdServer) handle(path string, h http.HandlerFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.paths[path] = h
}

// wkdPaths are addr's two paths.
func wkdPaths(t testing.TB, addr string) (advanced, direct string) {
	t.Helper()
	a, d, err := WKDURLs(addr)
	if err != nil {
		t.Fatal(err)
	}
	ua, _ := url.Parse(a)
	ud, _ := url.Parse(d)
	return ua.Path, ud.Path
}

// binaryKey is e's public key as WKD serves it.
func binaryKey(t testing.TB, ents ...*openpgp.Entity) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, e := range ents {
		if err := e.Serialize(&b); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func devKey(t testing.TB, addrs ...string) *openpgp.Entity {
	t.Helper()
	e, err := keys.NewDevPGPKey("Customer", addrs)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestWKDFetch: a good key by the advanced method (with l=), by the direct one when
// openpgpkey.DOMAIN does not exist, and ErrWKDNotFound when neither publishes one.
func TestWKDFetch(t *testing.T) {
	w := newWKDServer(t)
	e := devKey(t, "carol@example.com")
	adv, dir := wkdPaths(t, "carol@example.com")
	w.serve(adv, binaryKey(t, e))
	got, err := w.client(t, 5*time.Second, w.roots).Fetch(context.Background(), "carol@example.com")
	if err != nil || keys.PGPFingerprint(got) != keys.PGPFingerprint(e) || got.PrivateKey != nil {
		t.Fatalf("advanced: %v, %v", got, err)
	}
	if q := w.queries[len(w.queries)-1]; q != "openpgpkey.example.com l=carol" {
		t.Errorf("request %q; want the advanced host and l=carol", q)
	}

	w.noAdvanc = true
	w.serve(dir, binaryKey(t, e))
	if got, err := w.client(t, 5*time.Second, w.roots).Fetch(context.Background(), "carol@example.com"); err != nil || keys.PGPFingerprint(got) != keys.PGPFingerprint(e) {
		t.Fatalf("direct: %v, %v", got, err)
	}
	if _, err := w.client(t, 5*time.Second, w.roots).Fetch(context.Background(), "nobody@example.com"); !errors.Is(err, ErrWKDNotFound) {
		t.Fatalf("no key: %v, want ErrWKDNotFound", err)
	}
	// A domain with neither host: nothing is published (an absence to cache), not a failure to reach.
	if _, err := w.client(t, 5*time.Second, w.roots).Fetch(context.Background(), "nobody@nowhere.example"); !errors.Is(err, ErrWKDNotFound) {
		t.Fatalf("no such domain: %v, want ErrWKDNotFound", err)
	}
}

// TestWKDRefusesBadAnswers: each hostile or broken answer is refused with its reason, never used.
func TestWKDRefusesBadAnswers(t *testing.T) {
	w := newWKDServer(t)
	addr := "dave@example.com"
	adv, _ := wkdPaths(t, addr)
	dave := devKey(t, addr)
	armored, err := keys.EncodePGPPublicKeys(dave)
	if err != nil {
		t.Fatal(err)
	}
	revoked := devKey(t, addr)
	if err := revoked.RevokeKey(packet.KeyCompromised, "lost", nil); err != nil {
		t.Fatal(err)
	}
	var secret bytes.Buffer
	if err := dave.SerializePrivate(&secret, nil); err != nil {
		t.Fatal(err)
	}
	// Another primary key, of an algorithm go-crypto does not know (99), before dave's: ReadKeyRing
	// skips it, the one-key rule must not.
	unreadable := append([]byte{0xc6, 0x08, 4, 0x60, 0, 0, 0, 99, 0, 1}, binaryKey(t, dave)...)
	expiredCfg := keys.PGPConfig()
	expiredCfg.Time = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	expiredCfg.KeyLifetimeSecs = 3600
	expired, err := openpgp.NewEntity("Customer", "", addr, expiredCfg)
	if err != nil {
		t.Fatal(err)
	}
	weakCfg := keys.PGPConfig()
	weakCfg.RSABits = 1024
	weak, err := openpgp.NewEntity("Customer", "", addr, weakCfg)
	if err != nil {
		t.Fatal(err)
	}
	var hugeWritten atomic.Int64
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		timeout time.Duration
		roots   *x509.CertPool
		want    error
		after   func(t *testing.T)
	}{
		{name: "Armored", handler: body(armored), want: ErrWKDArmored},
		{name: "SeveralKeys", handler: body(binaryKey(t, dave, devKey(t, addr))), want: ErrWKDSeveralKey},
		{name: "SecondKeyUnreadable", handler: body(unreadable), want: ErrWKDSeveralKey},
		{name: "Expired", handler: body(binaryKey(t, expired)), want: keys.ErrExpired},
		{name: "Weak", handler: body(binaryKey(t, weak)), want: keys.ErrUnsupportedKey},
		{name: "OtherAddress", handler: body(binaryKey(t, devKey(t, "mallory@example.com"))), want: ErrWKDOtherAddress},
		{name: "Revoked", handler: body(binaryKey(t, revoked)), want: keys.ErrRevoked},
		{name: "SecretKey", handler: body(secret.Bytes()), want: ErrWKDSecretKey},
		{name: "Garbage", handler: body([]byte("\x99\x01\x0d\x04garbage")), want: ErrWKDMalformed},
		{name: "HundredMegabytes", handler: func(rw http.ResponseWriter, r *http.Request) {
			chunk := bytes.Repeat([]byte{0x99}, 64<<10)
			for i := 0; i < 1600 && r.Context().Err() == nil; i++ {
				n, err := rw.Write(chunk)
				hugeWritten.Add(int64(n))
				if err != nil {
					return
				}
			}
		}, want: ErrWKDTooLarge, after: func(t *testing.T) {
			// The client stops reading at the limit and drops the connection: what the server got
			// out is the limit plus the socket buffers, not 100 MB.
			time.Sleep(200 * time.Millisecond) // the handler sees the closed connection
			if n := hugeWritten.Load(); n > 16<<20 {
				t.Errorf("the server wrote %d bytes of a 100 MB answer before the client hung up; want it cut off near the 256 KiB limit", n)
			}
		}},
		{name: "Trickle", timeout: 300 * time.Millisecond, handler: func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Length", "1000")
			for i := 0; i < 1000 && r.Context().Err() == nil; i++ {
				rw.Write([]byte{0x99})
				rw.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
		}, want: ErrWKDTransport},
		{name: "RedirectElsewhere", handler: func(rw http.ResponseWriter, r *http.Request) {
			http.Redirect(rw, r, "https://evil.example/key", http.StatusFound)
		}, want: ErrWKDRedirect},
		{name: "RedirectToHTTP", handler: func(rw http.ResponseWriter, r *http.Request) {
			http.Redirect(rw, r, "http://"+r.Host+r.URL.RequestURI(), http.StatusMovedPermanently)
		}, want: ErrWKDRedirect},
		{name: "ServerError", handler: func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(http.StatusInternalServerError) }, want: ErrWKDStatus},
		{name: "UntrustedCertificate", handler: body(binaryKey(t, dave)), roots: x509.NewCertPool(), want: ErrWKDTLS},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w.handle(adv, tt.handler)
			timeout, roots := tt.timeout, tt.roots
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			if roots == nil {
				roots = w.roots
			}
			got, err := w.client(t, timeout, roots).Fetch(context.Background(), addr)
			var werr *WKDError
			if got != nil || !errors.Is(err, tt.want) || !errors.As(err, &werr) {
				t.Fatalf("Fetch = %v, %v; want %v", got, err, tt.want)
			}
			if tt.after != nil {
				tt.after(t)
			}
		})
	}
}

func body(b []byte) http.HandlerFunc {
	return func(rw http.ResponseWriter, _ *http.Request) { rw.Write(b) }
}

// TestWKDWrongHostName: a certificate that names another host is refused like an untrusted one.
func TestWKDWrongHostName(t *testing.T) {
	w := newWKDServer(t)
	if _, err := w.client(t, 5*time.Second, w.roots).Fetch(context.Background(), "erin@other.example"); !errors.Is(err, ErrWKDTLS) {
		t.Fatalf("a server whose certificate does not name other.example: %v, want ErrWKDTLS", err)
	}
}

// FuzzWKDKey: whatever the answer, parseWKDKey returns a key for the address or an error, never
// a panic, and never a key with secret material or without a user ID for the address.
func FuzzWKDKey(f *testing.F) {
	dave := devKey(f, "dave@example.com")
	f.Add(binaryKey(f, dave))
	f.Add(binaryKey(f, dave, devKey(f, "dave@example.com")))
	f.Add(binaryKey(f, devKey(f, "other@example.com")))
	armored, _ := keys.EncodePGPPublicKeys(dave)
	f.Add(armored)
	f.Add([]byte{0x99, 0x01, 0x0d, 0x04})
	f.Add(append([]byte{0xc6, 0x08, 4, 0x60, 0, 0, 0, 99, 0, 1}, binaryKey(f, dave)...))
	f.Add([]byte{})
	now := time.Now()
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseWKDKey(b, "dave@example.com", now)
		if err != nil {
			return
		}
		if e.PrivateKey != nil || len(keys.NewDirectory(nil, nil, keys.WithPGPKeys(e)).Entries()) != 1 {
			t.Fatalf("accepted a key with secret material or not one key")
		}
		if _, err := keys.NewDirectory(nil, nil, keys.WithPGPKeys(e), keys.WithClock(func() time.Time { return now })).LookupPGP("dave@example.com"); err != nil {
			t.Fatalf("accepted a key not usable for the address: %v", err)
		}
	})
}
