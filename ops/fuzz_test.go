package ops

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/queue"
)

// spySpool counts the calls that change a spool, whether or not they succeed.
type spySpool struct {
	*queue.Spool
	changes atomic.Int64
}

func (s *spySpool) Retry(id string) error  { s.changes.Add(1); return s.Spool.Retry(id) }
func (s *spySpool) Delete(id string) error { s.changes.Add(1); return s.Spool.Delete(id) }
func (s *spySpool) Flush()                 { s.changes.Add(1); s.Spool.Flush() }

// FuzzHandler sends the listener's handler requests with an arbitrary method, target (path and
// query), extra header lines and body, as net/http's own parser reads them off the wire, with or
// without the ops token. It must never panic, never answer 5xx but /readyz's 503, and never call
// anything that changes a spool without the token.
func FuzzHandler(f *testing.F) {
	dir := f.TempDir()
	sp, err := queue.Open(testSpoolConfig(dir, 1, queue.DefaultScanInterval), hop(busy), queue.WithLogger(quiet))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { sp.Close() })
	put := func(t testing.TB) string {
		id, err := sp.Put(context.Background(), &queue.Message{From: "statements@bank.example", Recipients: []string{"alice@example.com"},
			Data: []byte("Subject: s\r\n\r\nx\r\n"), Class: "statement", Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	id := put(f)
	spy := &spySpool{Spool: sp}
	m := NewMetrics()
	m.WatchSpool("outbound", sp)
	srv, err := NewServer(DefaultConfig(), WithLogger(quiet), WithMetrics(m), WithSpool("outbound", spy),
		WithToken(NewToken(testSecret)), WithReadiness("keys loaded", CertificateValid(nil)), WithNotice("identities", "development"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct {
		method, target, header, body string
		token                        bool
	}{
		{"GET", "/queue", "", "", true},
		{"GET", "/queue/" + id + "?queue=outbound", "", "", true},
		{"DELETE", "/queue/" + id, "", "", false},
		{"DELETE", "/queue/" + id, "", "", true},
		{"POST", "/queue/" + id + "/retry", "", "", false},
		{"POST", "/queue/flush?queue=outbound", "Content-Type: application/json", "{}", false},
		{"POST", "/queue/flush", "Authorization: Bearer " + testSecret[:10], "", false},
		{"GET", "/queue/corrupt?queue=desk", "", "", true},
		{"GET", "/readyz", "", "", false},
		{"GET", "/metrics", "Accept: application/openmetrics-text", "", false},
		{"HEAD", "/healthz", "", "", false},
		{"POST", "/queue/../queue/flush", "", "", false},
		{"DELETE", "/queue/%2e%2e/flush", "Origin: https://evil.example", "", true},
		{"PATCH", "/queue/x/retry?queue=%00", "Host: evil.example", "x", true},
		{"OPTIONS", "*", "", "", false},
	} {
		f.Add(s.method, s.target, s.header, []byte(s.body), s.token)
	}
	f.Fuzz(func(t *testing.T, method, target, header string, body []byte, token bool) {
		var raw strings.Builder
		fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:9925\r\n", method, target)
		if token {
			raw.WriteString("Authorization: Bearer " + testSecret + "\r\n")
		}
		if header != "" {
			raw.WriteString(header + "\r\n")
		}
		fmt.Fprintf(&raw, "Content-Length: %d\r\n\r\n", len(body))
		raw.Write(body)
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw.String())))
		if err != nil {
			return // the server answers 400 before any handler runs
		}
		req.RemoteAddr = "127.0.0.1:40000"
		before := spy.changes.Load()
		rec := httptest.NewRecorder()
		srv.handler.ServeHTTP(rec, req)
		if rec.Code >= 500 && !(rec.Code == http.StatusServiceUnavailable && req.URL.Path == "/readyz") {
			t.Fatalf("%s %s: %d %s", method, target, rec.Code, rec.Body)
		}
		if !token && !strings.Contains(header, testSecret) && spy.changes.Load() != before {
			t.Fatalf("%s %s changed the spool without the token: %d", method, target, rec.Code)
		}
		if token && len(mustList(t, sp)) == 0 {
			put(t) // a DELETE got through: keep an entry to act on
		}
	})
}

func mustList(t *testing.T, sp *queue.Spool) []queue.Info {
	l, err := sp.List()
	if err != nil {
		t.Fatal(err)
	}
	return l
}
