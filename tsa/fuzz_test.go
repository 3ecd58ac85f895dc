package tsa

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/digitorus/timestamp"
)

// The fuzz targets call the unguarded parsers (verify, parseQuery, checkReply), not the exported
// entry points, because those recover panics into ErrMalformed and would hide them from the fuzzer.

// verifyErrors are the sentinels every Verify failure must wrap.
var verifyErrors = []error{ErrMalformed, ErrBadSignature, ErrImprintMismatch, ErrUntrustedAuthority, ErrUnsupportedAlgorithm}

func wrapsOneOf(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

func FuzzVerify(f *testing.F) {
	ts := newTestTSA(f, nil)
	msg := []byte("fuzz")
	tok, err := ts.a.Timestamp(context.Background(), msg)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok.DER)
	f.Add(tok.DER[:len(tok.DER)/2])
	f.Add(tok.DER[:len(tok.DER)-1])
	f.Add([]byte("garbage"))
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		got, _, err := verify(der, msg, ts.ca.roots)
		if err != nil {
			if got != nil || !wrapsOneOf(err, verifyErrors) {
				t.Fatalf("token %v with error %v outside the contract", got, err)
			}
			return
		}
		// Anything accepted must be a token from our TSA over msg.
		if !got.Authority.Equal(ts.cert) {
			t.Fatalf("accepted a token not signed by the test TSA")
		}
	})
}

func FuzzServeHTTPRequest(f *testing.F) {
	ts := newTestTSA(f, nil)
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA512, crypto.SHA1} {
		q, err := timestamp.CreateRequest(bytes.NewReader([]byte("fuzz")), &timestamp.RequestOptions{Hash: h, Certificates: true, Nonce: big.NewInt(1 << 62)})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(q)
	}
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, body []byte) {
		if q, fail, text := parseQuery(body, ts.a.policy); fail == 0 && (q.digest == nil || q.hash == 0) || fail != 0 && text == "" {
			t.Fatalf("parseQuery: %+v, %v, %q", q, fail, text)
		}
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", mediaTypeQuery)
		rec := httptest.NewRecorder()
		ts.a.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			t.Fatalf("HTTP %d", rec.Code)
		}
		// The reply is always a well-formed TimeStampResp: a token or a rejection.
		der, err := tokenFromResponse(rec.Body.Bytes())
		var rej *RejectedError
		switch {
		case errors.As(err, &rej):
		case err != nil:
			t.Fatalf("reply unreadable: %v", err)
		default:
			if _, err := parseToken(der); err != nil {
				t.Fatalf("granted reply with a bad token: %v", err)
			}
		}
	})
}

func FuzzClientReply(f *testing.F) {
	ts := newTestTSA(f, nil)
	msg := []byte("fuzz")
	nonce := big.NewInt(1)
	f.Add(ts.a.respond(mustQuery(f, msg)))
	f.Add(rejectionResponse(FailBadAlg, "no"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := checkReply(body, msg, nonce, ts.ca.roots)
		var rej *RejectedError
		if err != nil && !errors.As(err, &rej) && !wrapsOneOf(err, append(verifyErrors, ErrNonceMismatch)) {
			t.Fatalf("error outside the contract: %v", err)
		}
	})
}
