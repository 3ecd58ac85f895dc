package tsa

import (
	"bytes"
	"crypto"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/digitorus/timestamp"
	"github.com/sealpost/sealpost/internal/interop"
)

// post sends a query to url the way an RFC 3161 client does and returns the reply body.
func post(t testing.TB, url string, q []byte) []byte {
	t.Helper()
	resp, err := http.Post(url, mediaTypeQuery, bytes.NewReader(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != mediaTypeReply {
		t.Fatalf("HTTP %s, Content-Type %q: %s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	return body
}

// TestServeHTTPOpenSSLQuery proves the HTTP binding serves a real client: a query made by
// openssl ts -query is answered, openssl ts -reply reads the answer as Granted (or, for SHA-1, as a
// rejection), and openssl ts -verify -queryfile accepts the token, which checks the imprint, the hash
// algorithm, the nonce and the certificate the query asked for (or not).
func TestServeHTTPOpenSSLQuery(t *testing.T) {
	interop.Tool(t, "openssl")
	ts := newTestTSA(t, nil)
	srv := httptest.NewServer(ts.a)
	defer srv.Close()
	dir := t.TempDir()
	data := writeFile(t, dir, "msg", []byte("message to stamp\r\n"))
	caPath := writeFile(t, dir, "ca.pem", certPEM(ts.ca.cert))
	tsaPath := writeFile(t, dir, "tsa.pem", certPEM(ts.cert))

	for _, tc := range []struct {
		name     string
		args     []string // openssl ts -query options
		rejected FailureInfo
	}{
		{name: "sha256", args: []string{"-sha256", "-cert"}},
		{name: "sha384", args: []string{"-sha384", "-cert"}},
		{name: "sha512", args: []string{"-sha512", "-cert"}},
		{name: "sha256 no certReq", args: []string{"-sha256"}},
		{name: "sha256 no nonce", args: []string{"-sha256", "-cert", "-no_nonce"}},
		{name: "sha1 rejected", args: []string{"-sha1", "-cert"}, rejected: FailBadAlg},
		{name: "foreign policy rejected", args: []string{"-sha256", "-cert", "-tspolicy", "1.2.3.4"}, rejected: FailUnacceptedPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			qPath := writeFile(t, t.TempDir(), "q.der", nil)
			interop.Run(t, nil, "openssl", append([]string{"ts", "-query", "-data", data, "-out", qPath}, tc.args...)...)
			resp := post(t, srv.URL, readFile(t, qPath))
			rPath := writeFile(t, t.TempDir(), "r.der", resp)
			text := interop.Run(t, nil, "openssl", "ts", "-reply", "-in", rPath, "-text")

			if tc.rejected != 0 {
				if !bytes.Contains(text, []byte("Status: Rejected")) {
					t.Fatalf("openssl does not see a rejection:\n%s", text)
				}
				_, err := tokenFromResponse(resp)
				var rej *RejectedError
				if !errors.As(err, &rej) || rej.Status != StatusRejection || rej.FailureInfo != tc.rejected {
					t.Fatalf("got %v, want rejection with %v", err, tc.rejected)
				}
				return
			}
			if !bytes.Contains(text, []byte("Status: Granted.")) {
				t.Fatalf("openssl does not see Granted:\n%s", text)
			}
			args := []string{"ts", "-verify", "-queryfile", qPath, "-in", rPath, "-CAfile", caPath}
			if !bytes.Contains([]byte(strings.Join(tc.args, " ")), []byte("-cert")) {
				// Without certReq the token must not carry the certificate: openssl then needs it.
				if out, _, err := interop.Try(t, nil, "openssl", args...); err == nil {
					t.Fatalf("token verified without its certificate, so it carried one:\n%s", out)
				}
				args = append(args, "-untrusted", tsaPath)
			}
			if out := interop.Run(t, nil, "openssl", args...); !bytes.Contains(out, []byte("Verification: OK")) {
				t.Fatalf("openssl did not say OK: %s", out)
			}
		})
	}
}

// TestServeHTTPRejects checks the HTTP-level errors and the PKIStatus rejections of the HTTP binding.
func TestServeHTTPRejects(t *testing.T) {
	ts := newTestTSA(t, nil)
	srv := httptest.NewServer(ts.a)
	defer srv.Close()

	query := func(alg asn1.ObjectIdentifier, digestLen int, mod func(*timeStampReq)) []byte {
		req := timeStampReq{Version: 1, Nonce: big.NewInt(42), CertReq: true}
		req.MessageImprint.HashAlgorithm.Algorithm = alg
		req.MessageImprint.HashedMessage = make([]byte, digestLen)
		if mod != nil {
			mod(&req)
		}
		der, err := asn1.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	good := query(oidSHA256, 32, nil)

	for _, tc := range []struct {
		name        string
		method      string
		contentType string
		body        []byte
		wantHTTP    int
		wantFail    FailureInfo // for HTTP 200: 0 means granted
	}{
		{"granted", "POST", mediaTypeQuery, good, 200, 0},
		{"content type with parameters", "POST", mediaTypeQuery + "; charset=binary", good, 200, 0},
		{"GET", "GET", mediaTypeQuery, nil, http.StatusMethodNotAllowed, 0},
		{"PUT", "PUT", mediaTypeQuery, good, http.StatusMethodNotAllowed, 0},
		{"wrong content type", "POST", "application/octet-stream", good, http.StatusUnsupportedMediaType, 0},
		{"no content type", "POST", "", good, http.StatusUnsupportedMediaType, 0},
		{"body over 64 KiB", "POST", mediaTypeQuery, make([]byte, maxQueryBytes+1), http.StatusRequestEntityTooLarge, 0},
		{"garbage", "POST", mediaTypeQuery, []byte("not DER at all"), 200, FailBadDataFormat},
		{"empty body", "POST", mediaTypeQuery, nil, 200, FailBadDataFormat},
		{"trailing data", "POST", mediaTypeQuery, append(bytes.Clone(good), 0), 200, FailBadDataFormat},
		{"version 2", "POST", mediaTypeQuery, query(oidSHA256, 32, func(r *timeStampReq) { r.Version = 2 }), 200, FailBadDataFormat},
		{"SHA-1", "POST", mediaTypeQuery, query(oidSHA1, 20, nil), 200, FailBadAlg},
		{"MD5", "POST", mediaTypeQuery, query(oidMD5, 16, nil), 200, FailBadAlg},
		{"unknown hash", "POST", mediaTypeQuery, query(asn1.ObjectIdentifier{1, 2, 3}, 32, nil), 200, FailBadAlg},
		{"imprint of wrong length", "POST", mediaTypeQuery, query(oidSHA256, 20, nil), 200, FailBadDataFormat},
		{"foreign policy", "POST", mediaTypeQuery, query(oidSHA256, 32, func(r *timeStampReq) { r.ReqPolicy = asn1.ObjectIdentifier{1, 2, 3} }), 200, FailUnacceptedPolicy},
		{"own policy", "POST", mediaTypeQuery, query(oidSHA256, 32, func(r *timeStampReq) { r.ReqPolicy = defaultPolicyOID }), 200, 0},
		{"extension", "POST", mediaTypeQuery, query(oidSHA256, 32, func(r *timeStampReq) {
			r.Extensions = append(r.Extensions, pkixExtension(asn1.ObjectIdentifier{1, 2, 3}))
		}), 200, FailUnacceptedExtension},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantHTTP {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tc.wantHTTP)
			}
			if tc.wantHTTP != 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != mediaTypeReply {
				t.Fatalf("Content-Type %q", ct)
			}
			der, err := tokenFromResponse(body)
			if tc.wantFail == 0 {
				if err != nil {
					t.Fatalf("not granted: %v", err)
				}
				if _, err := parseToken(der); err != nil {
					t.Fatal(err)
				}
				return
			}
			var rej *RejectedError
			if !errors.As(err, &rej) || rej.FailureInfo != tc.wantFail || rej.Status != StatusRejection || rej.Text == "" {
				t.Fatalf("got %v, want rejection %v with a text", err, tc.wantFail)
			}
			if errors.Is(err, ErrUnavailable) {
				t.Fatalf("a rejection must not be ErrUnavailable")
			}
		})
	}
}

// TestServeHTTPHonoursRequest checks, with a query from digitorus/timestamp, that the reply echoes
// the nonce, uses the requested hash for the imprint and includes the certificate only on certReq.
func TestServeHTTPHonoursRequest(t *testing.T) {
	ts := newTestTSA(t, nil)
	msg := []byte("honour me")
	for _, tc := range []struct {
		name    string
		hash    crypto.Hash
		oid     asn1.ObjectIdentifier
		certReq bool
		accept  error // what the Client's acceptReply makes of it
	}{
		{"SHA-256", crypto.SHA256, oidSHA256, true, nil},
		{"SHA-256 without certReq", crypto.SHA256, oidSHA256, false, ErrUntrustedAuthority},
		// The Client insists on the SHA-256 it asks for; Verify takes any strong hash.
		{"SHA-384", crypto.SHA384, oidSHA384, true, ErrImprintMismatch},
		{"SHA-512", crypto.SHA512, oidSHA512, true, ErrImprintMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nonce := big.NewInt(0).SetBytes([]byte("sixteen byte nonce"))
			q, err := timestamp.CreateRequest(bytes.NewReader(msg), &timestamp.RequestOptions{Hash: tc.hash, Certificates: tc.certReq, Nonce: nonce})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("POST", "/", bytes.NewReader(q))
			r.Header.Set("Content-Type", mediaTypeQuery)
			rec := httptest.NewRecorder()
			ts.a.ServeHTTP(rec, r)
			if _, err := acceptReply(rec.Body.Bytes(), msg, nonce, ts.ca.roots); !errors.Is(err, tc.accept) {
				t.Fatalf("acceptReply: %v, want %v", err, tc.accept)
			}
			der, err := tokenFromResponse(rec.Body.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			p, err := parseToken(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.parseCertificates(); err != nil {
				t.Fatal(err)
			}
			if !p.info.MessageImprint.HashAlgorithm.Algorithm.Equal(tc.oid) || p.info.Nonce.Cmp(nonce) != 0 || (len(p.certs) > 0) != tc.certReq {
				t.Fatalf("imprint %v, nonce %v, %d certs", p.info.MessageImprint.HashAlgorithm.Algorithm, p.info.Nonce, len(p.certs))
			}
			_, err = Verify(der, msg, ts.ca.roots)
			if tc.certReq && err != nil {
				t.Fatal(err)
			}
			if !tc.certReq && !errors.Is(err, ErrUntrustedAuthority) {
				t.Fatalf("token without certificate: %v, want ErrUntrustedAuthority", err)
			}
		})
	}
}
