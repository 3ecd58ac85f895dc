package console

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/quarantine"
	"github.com/sealpost/sealpost/store"
)

// TestOperationsPage: the operator's page shows each queue's depth, its oldest entry (a stuck
// one marked), the entries set aside, the identities' expiry (one within 30 days marked), the
// development-identity warning, and charts of the last samples drawn as SVG from numbers only: a
// hostile queue name is text.
func TestOperationsPage(t *testing.T) {
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "sealpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	held, _ := quarantine.Open(t.TempDir(), st)
	now := time.Now()
	metrics := map[string]float64{
		`sealpost_queue_depth{queue="outbound"}`:                           12,
		`sealpost_queue_oldest_age_seconds{queue="outbound"}`:              7200,
		`sealpost_queue_corrupt_entries{queue="outbound"}`:                 1,
		`sealpost_queue_depth{queue="<script>x</script>"}`:                 0,
		`sealpost_certificate_expiry_timestamp_seconds{identity="signer"}`: float64(now.Add(10 * 24 * time.Hour).Unix()),
		`sealpost_certificate_expiry_timestamp_seconds{identity="tsa"}`:    float64(now.Add(400 * 24 * time.Hour).Unix()),
		"sealpost_development_identities":                                  1,
		"sealpost_messages_accepted_total":                                 100,
	}
	key := make([]byte, 32)
	s, err := New(Config{}, Deps{Accounts: st, Key: key, Held: held, Audit: st, Read: func(context.Context, store.Held) ([]byte, error) { return nil, nil },
		Metrics: func() (map[string]float64, error) { return metrics, nil }, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for i, accepted := range []float64{0, 30, 90, 100} {
		s.hist.add(now.Add(time.Duration(i-3)*time.Minute), map[string]float64{"sealpost_messages_accepted_total": accepted, `sealpost_queue_depth{queue="outbound"}`: float64(i)})
	}
	_, hash, sealed, _ := NewEnrolment("otto", "x", key)
	st.PutConsoleAccount(context.Background(), store.ConsoleAccount{Name: "otto", Role: store.RoleOperator, Password: hash, TOTP: sealed})
	cookie, idHash, _ := sessionSecret()
	st.PutConsoleSession(context.Background(), store.ConsoleSession{IDHash: idHash, Account: "otto", Created: now, Expires: now.Add(time.Hour)})
	req := httptest.NewRequest("GET", "/operations", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	page := w.Body.String()
	for _, want := range []string{
		"development identities", `<td data-label="Queue">outbound</td>`, "2 h — stuck?", `<td data-label="Corrupt">1</td>`,
		`<tr class="warn"><td data-label="Identity">signer</td>`, "Accepted per minute", `<polyline`, "max 60", "Queue depth: outbound",
		"&lt;script&gt;x&lt;/script&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the operations page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") {
		t.Error("a queue name made markup")
	}
}
