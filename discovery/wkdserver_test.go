package discovery

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
)

// fetchAs GETs u from srv with u's host as the Host header.
func fetchAs(t *testing.T, srv *httptest.Server, u string) (int, []byte) {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+parsed.RequestURI(), nil)
	req.Host = parsed.Host
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestWKDServerWithGnuPG: the URL gpg-wks-client prints for each of the bank's addresses, and
// its direct-layout twin, give a binary key that gpg imports: the bank's key with that address's
// user ID only. The policy files are there; other addresses and hosts are 404.
func TestWKDServerWithGnuPG(t *testing.T) {
	tool := interop.WKSClient(t)
	interop.Tool(t, "gpg")
	bank, err := keys.NewDevPGPKey("Example Bank", []string{"statements@bank.example", "support@bank.example"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewWKDServer([]*openpgp.Entity{bank})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	fp := keys.PGPFingerprint(bank)
	for _, addr := range []string{"statements@bank.example", "Support@bank.example"} {
		advanced := strings.TrimSpace(string(interop.Run(t, nil, tool, "--print-wkd-url", addr)))
		_, direct, err := WKDURLs(addr)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{advanced, direct} {
			status, key := fetchAs(t, srv, u)
			if status != http.StatusOK {
				t.Fatalf("%s: %d", u, status)
			}
			home, err := os.MkdirTemp("", "wkd")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				interop.Try(t, nil, "gpgconf", "--homedir", home, "--kill", "all")
				os.RemoveAll(home)
			})
			interop.Run(t, key, "gpg", "--homedir", home, "--batch", "--import")
			list := string(interop.Run(t, nil, "gpg", "--homedir", home, "--batch", "--with-colons", "--list-keys"))
			if !strings.Contains(list, "fpr:::::::::"+fp+":") || strings.Count(list, "\nuid:") != 1 ||
				!strings.Contains(strings.ToLower(list), strings.ToLower(addr)) {
				t.Fatalf("%s: gpg imported\n%s\nwant %s with the one user ID %s", u, list, fp, addr)
			}
		}
	}
	for _, tt := range []struct {
		url  string
		want int
	}{
		{"https://openpgpkey.bank.example/.well-known/openpgpkey/bank.example/policy", http.StatusOK},
		{"https://bank.example/.well-known/openpgpkey/policy", http.StatusOK},
		{"https://openpgpkey.bank.example/.well-known/openpgpkey/bank.example/hu/" + WKDHash("nobody"), http.StatusNotFound},
		{"https://evil.example/.well-known/openpgpkey/bank.example/hu/" + WKDHash("statements"), http.StatusNotFound},
		{"https://evil.example/.well-known/openpgpkey/hu/" + WKDHash("statements"), http.StatusNotFound},
		// Each layout on its own host only: the advanced one's path on the bare domain, the
		// direct one's on openpgpkey.DOMAIN.
		{"https://bank.example/.well-known/openpgpkey/bank.example/hu/" + WKDHash("statements"), http.StatusNotFound},
		{"https://openpgpkey.bank.example/.well-known/openpgpkey/hu/" + WKDHash("statements"), http.StatusNotFound},
		{"https://bank.example./.well-known/openpgpkey/hu/" + WKDHash("statements"), http.StatusOK},
		{"https://bank.example/other", http.StatusNotFound},
	} {
		if status, _ := fetchAs(t, srv, tt.url); status != tt.want {
			t.Errorf("%s: %d, want %d", tt.url, status, tt.want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/.well-known/openpgpkey/policy", nil)
	if resp, err := srv.Client().Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %v %v", resp, err)
	}

	// Two keys for one address are refused (which one a client got would depend on file order);
	// the same key twice is not two keys.
	other, err := keys.NewDevPGPKey("Example Bank", []string{"support@bank.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewWKDServer([]*openpgp.Entity{bank, other}); err == nil || !strings.Contains(err.Error(), "two OpenPGP keys for support@bank.example") {
		t.Errorf("two keys for one address: %v", err)
	}
	if _, err := NewWKDServer([]*openpgp.Entity{bank, bank}); err != nil {
		t.Errorf("the same key twice: %v", err)
	}

	// sealpost's own client takes what its server publishes.
	w := newWKDServer(t)
	adv, _ := wkdPaths(t, "carol@example.com")
	carol := devKey(t, "carol@example.com")
	pub, err := NewWKDServer([]*openpgp.Entity{carol})
	if err != nil {
		t.Fatal(err)
	}
	w.handle(adv, pub.ServeHTTP)
	got, err := w.client(t, 5*time.Second, w.roots).Fetch(context.Background(), "carol@example.com")
	if err != nil || keys.PGPFingerprint(got) != keys.PGPFingerprint(carol) {
		t.Fatalf("sealpost's client from sealpost's server: %v, %v", got, err)
	}
}
