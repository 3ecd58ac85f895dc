package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
)

func newTestChecker(t *testing.T, now func() time.Time) *Checker {
	t.Helper()
	opts := []CheckerOption{WithCheckerLogger(slog.New(slog.DiscardHandler))}
	if now != nil {
		opts = append(opts, WithCheckerClock(now))
	}
	c, err := NewChecker(DefaultRevocationConfig(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCRL: with CRLs from `openssl ca -gencrl`: a good certificate passes, a revoked one is a
// RevocationError with the CA's reason and time; the CRL is fetched once and cached; a CRL past
// its nextUpdate, one signed by another CA and a malformed one cannot be used.
func TestCRL(t *testing.T) {
	o := interop.NewOpenSSLCA(t, "Public SMIME CA")
	good, bad := o.Issue(t, "good", "good@example.com", "usr"), o.Issue(t, "bad", "bad@example.com", "usr")
	o.Revoke(t, "bad", "keyCompromise")
	o.GenCRL(t)
	ctx := context.Background()
	c := newTestChecker(t, nil)
	if err := c.CheckCertificate(ctx, good, o.CA); err != nil {
		t.Fatalf("good: %v", err)
	}
	err := c.CheckCertificate(ctx, bad, o.CA)
	var rev *keys.RevocationError
	if !errors.As(err, &rev) || !errors.Is(err, keys.ErrRevoked) || rev.Reason != "keyCompromise" || rev.Source != "crl" || time.Since(rev.At) > time.Hour {
		t.Fatalf("revoked: %v", err)
	}
	if n := o.Fetches.Load(); n != 1 {
		t.Errorf("%d CRL fetches for two checks; want 1 (cached until nextUpdate)", n)
	}

	later := func() time.Time { return time.Now().Add(49 * time.Hour) }
	if err := newTestChecker(t, later).CheckCertificate(ctx, good, o.CA); !errors.Is(err, ErrCRLExpired) || !errors.Is(err, keys.ErrRevocationUnknown) {
		t.Errorf("a CRL past its nextUpdate: %v", err)
	}
	other := interop.NewOpenSSLCA(t, "Another CA")
	other.GenCRL(t)
	o.ServeCRL(other.CRL())
	if err := newTestChecker(t, nil).CheckCertificate(ctx, good, o.CA); !errors.Is(err, ErrCRLSignature) {
		t.Errorf("a CRL signed by another CA: %v", err)
	}
	o.ServeCRL([]byte("\x30\x03\x02\x01\x00 not a CRL"))
	if err := newTestChecker(t, nil).CheckCertificate(ctx, good, o.CA); !errors.Is(err, ErrCRLMalformed) {
		t.Errorf("a malformed CRL: %v", err)
	}
	o.ServeCRL(nil)
	if err := newTestChecker(t, nil).CheckCertificate(ctx, good, o.CA); !errors.Is(err, ErrFetch) {
		t.Errorf("no CRL: %v", err)
	}
}

// TestOCSP: a real `openssl ocsp` responder on loopback: good, revoked (with its reason), and,
// with the responder gone, the CRL answers.
func TestOCSP(t *testing.T) {
	o := interop.NewOpenSSLCA(t, "Public SMIME CA")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	o.OCSPURL = fmt.Sprintf("http://127.0.0.1:%d/", port)
	good, bad := o.Issue(t, "good", "good@example.com", "usrocsp"), o.Issue(t, "bad", "bad@example.com", "usrocsp")
	o.Revoke(t, "bad", "superseded")
	o.GenCRL(t)
	cmd := exec.Command("openssl", "ocsp", "-index", "index.txt", "-port", fmt.Sprint(port), "-rsigner", "ca.pem", "-rkey", "ca.key",
		"-CA", "ca.pem", "-ndays", "1", "-multi", "2")
	cmd.Dir = o.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // -multi forks: stop the whole group
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }
	t.Cleanup(stop)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("openssl ocsp does not listen")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx := context.Background()
	c := newTestChecker(t, nil)
	if err := c.CheckCertificate(ctx, good, o.CA); err != nil {
		t.Fatalf("good by OCSP: %v", err)
	}
	err = c.CheckCertificate(ctx, bad, o.CA)
	var rev *keys.RevocationError
	if !errors.As(err, &rev) || rev.Source != "ocsp" || rev.Reason != "superseded" {
		t.Fatalf("revoked by OCSP: %v", err)
	}
	if n := o.Fetches.Load(); n != 0 {
		t.Errorf("the CRL was fetched %d times though OCSP answered", n)
	}
	stop()
	if err := newTestChecker(t, nil).CheckCertificate(ctx, bad, o.CA); !errors.As(err, &rev) || rev.Source != "crl" {
		t.Fatalf("with the responder down: %v; want the CRL's revocation", err)
	}
}

// FuzzCRL: whatever the body, parseCRL returns a CRL signed by the issuer or an error that Is
// keys.ErrRevocationUnknown, never a panic.
func FuzzCRL(f *testing.F) {
	ca, err := keys.NewDevCA("fuzz CA")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Add([]byte("-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		list, err := parseCRL(b, ca.Certificate(), time.Now(), "fuzz")
		if err == nil && list.CheckSignatureFrom(ca.Certificate()) != nil {
			t.Fatal("accepted a CRL not signed by the issuer")
		}
		if err != nil && !errors.Is(err, keys.ErrRevocationUnknown) {
			t.Fatalf("error %v is not ErrRevocationUnknown", err)
		}
	})
}

// FuzzOCSPResponse: whatever the body, parseOCSP never panics and accepts only an answer about
// the certificate asked for.
func FuzzOCSPResponse(f *testing.F) {
	ca, err := keys.NewDevCA("fuzz CA")
	if err != nil {
		f.Fatal(err)
	}
	cust, err := ca.NewDevCustomer("x@example.com")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{0x30, 0x03, 0x0a, 0x01, 0x00})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := parseOCSP(b, cust.Certificate(), ca.Certificate(), time.Now(), "fuzz")
		if err == nil && resp.SerialNumber.Cmp(cust.Certificate().SerialNumber) != 0 {
			t.Fatal("accepted an answer about another certificate")
		}
	})
}
