package api

import (
	"bytes"
	"context"
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
	st := backends[0].open(f)
	dir := keys.DataDir(f.TempDir())
	if _, err := dir.Import(keys.EncodeCertificates(m.ca.Certificate()), keys.ImportOptions{Root: true}); err != nil {
		f.Fatal(err)
	}
	d, err := dir.DirectoryFrom(context.Background(), storedKeys{st})
	if err != nil {
		f.Fatal(err)
	}
	srv, err := New(DefaultConfig(), st, dir, d, WithDirectoryReload(func(context.Context) error { return nil }))
	if err != nil {
		f.Fatal(err)
	}
	secret, _, err := CreateToken(context.Background(), st, "fuzz", []string{ScopeCustomers}, time.Now(), time.Time{})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
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
