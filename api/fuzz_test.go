package api

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sealpost/sealpost/keys"
)

// FuzzPutKey: whatever the body and its Content-Type, PUT /v1/customers/{address}/keys answers
// 201 or a 4xx problem, never 500 and never a panic.
func FuzzPutKey(f *testing.F) {
	m := testMaterial(f)
	c := m.cert(f, time.Time{}, time.Time{}, "alice@example.com")
	for _, seed := range []struct {
		ct   string
		body []byte
	}{
		{typePEM, keys.EncodeCertificates(c)},
		{typeDER, c.Raw},
		{typeBytes, c.Raw[:len(c.Raw)/2]},
		{typePGP, pgpPublic(f, m.pgp, true)},
		{typeBytes, pgpPublic(f, m.pgp, false)},
		{typePGP, pgpSecret(f, m.pgp, false)},
		{typeJSON, []byte(`{"key": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"}`)},
		{typePEM, []byte("-----BEGIN CERTIFICATE-----\n\x00\xff\n-----END")},
		{typeBytes, []byte{0x99, 0x01, 0x0d, 0x04}},
		{"application/json; charset=\"", []byte("{")},
	} {
		f.Add(seed.ct, seed.body)
	}
	h, secret := fuzzServer(f, ScopeCustomers)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req := httptest.NewRequest(http.MethodPut, keysPath, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusCreated && (w.Code < 400 || w.Code >= 500) {
			t.Fatalf("status %d: %s", w.Code, w.Body.Bytes())
		}
	})
}

// fuzzServer is a server on a fresh SQLite store, trusting the test CA, whose handler a fuzz
// target calls in process, and the secret of a token with scope: opts add to the server.
func fuzzServer(f *testing.F, scope string, opts ...func(Store) Option) (http.Handler, string) {
	st := backends[0].open(f)
	m := testMaterial(f)
	dir := keys.DataDir(f.TempDir())
	if _, err := dir.Import(keys.EncodeCertificates(m.ca.Certificate()), keys.ImportOptions{Root: true}); err != nil {
		f.Fatal(err)
	}
	d, err := dir.DirectoryFrom(context.Background(), storedKeys{st})
	if err != nil {
		f.Fatal(err)
	}
	o := []Option{WithDirectoryReload(func(context.Context) error { return nil }),
		WithLogger(slog.New(slog.DiscardHandler))}
	for _, opt := range opts {
		o = append(o, opt(st))
	}
	srv, err := New(DefaultConfig(), st, dir, d, o...)
	if err != nil {
		f.Fatal(err)
	}
	secret, _, err := CreateToken(context.Background(), st, "fuzz", []string{scope}, time.Now(), time.Time{})
	if err != nil {
		f.Fatal(err)
	}
	return srv.Handler(), secret
}
