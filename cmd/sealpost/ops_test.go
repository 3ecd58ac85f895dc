package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/sealpost/sealpost/dkim"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeMetricsHealthAndQueueControl: the running gateway's ops listener shows the counters
// moved after traffic, is ready while its spool is writable and not after, and `sealpost queue`
// talks to it.
func TestServeMetricsHealthAndQueueControl(t *testing.T) {
	inst, cfg, _, _ := testInstance(t, nil)
	base := "http://" + inst.ops.Addr().String()
	if code, _ := httpGet(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d before traffic", code)
	}
	submit(t, inst, "statements@bank.example", []string{"alice@example.com"}, e2eStatement)
	submit(t, inst, "statements@bank.example", []string{"bob@example.net"}, e2eStatement)
	if _, err := waitForMaildir(cfg.Delivery.Maildir, 1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	var metrics string
	// The counter moves when the next hop accepts; the entry leaves the spool just after.
	waitFor(t, "the delivery counter and an empty spool", func() bool {
		_, metrics = httpGet(t, base+"/metrics")
		return strings.Contains(metrics, `sealpost_queue_delivered_total{class="statement",queue="outbound"} 1`) &&
			strings.Contains(metrics, `sealpost_queue_depth{queue="outbound"} 0`)
	})
	for _, want := range []string{
		`sealpost_messages_accepted_total{class="statement",method="smime"} 1`,
		`sealpost_messages_refused_total{class="statement",reason="no_key"} 1`,
		`sealpost_protect_duration_seconds_count{method="smime"} 1`,
		`sealpost_tsa_request_duration_seconds_count 1`,
		`sealpost_queue_depth{queue="outbound"} 0`,
		`sealpost_certificate_expiry_timestamp_seconds{identity="signer"}`,
		`sealpost_queue_depth{queue="desk"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "sealpost_"))
		}
	}
	if strings.Contains(metrics, "alice@") || strings.Contains(metrics, "bob@") {
		t.Error("/metrics names a customer")
	}
	code, out, errOut := runCLI(t, "", "queue", "list", "-addr", inst.ops.Addr().String(), "-data", cfg.Data)
	if code != 0 {
		t.Fatalf("sealpost queue list: %d %s %s", code, out, errOut)
	}
	if err := os.RemoveAll(filepath.Join(cfg.Data, "spool")); err != nil {
		t.Fatal(err)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 503 || !strings.Contains(body, "spool writable") {
		t.Fatalf("/readyz with the spool gone: %d %s", code, body)
	}
	if code, _ := httpGet(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
}

func writeRSAKey(t *testing.T, bits int) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	f := filepath.Join(t.TempDir(), "dkim.key")
	os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	return f
}

// TestServeDKIMSignsProtectedOutput: with a DKIM key for bank.example, what sealpost delivers
// carries a DKIM signature over the protected message, which go-msgauth's verifier accepts.
func TestServeDKIMSignsProtectedOutput(t *testing.T) {
	keyFile := writeRSAKey(t, 2048)
	keys := []dkim.KeyConfig{{Domain: "bank.example", Selector: "sp2026", KeyFile: keyFile}}
	inst, cfg, _, _ := testInstance(t, func(c *Config) { c.DKIM.Keys = keys })
	_ = inst
	if res := submit(t, inst, "statements@bank.example", []string{"alice@example.com"}, e2eStatement); res.Err != nil {
		t.Fatal(res.Err)
	}
	msgs, err := waitForMaildir(cfg.Delivery.Maildir, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(msgs[0], []byte("DKIM-Signature:")) || !bytes.Contains(msgs[0], []byte("application/pkcs7-mime")) {
		t.Fatalf("delivered message is not a DKIM-signed protected message:\n%.400s", msgs[0])
	}
	lookup := dkimLookup(t, keys)
	vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(msgs[0]), &msgdkim.VerifyOptions{LookupTXT: lookup})
	if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "bank.example" {
		t.Fatalf("DKIM verification: %v %+v", err, vs)
	}
	tampered := bytes.Replace(msgs[0], []byte("MII"), []byte("MIJ"), 1)
	vs, _ = msgdkim.VerifyWithOptions(bytes.NewReader(tampered), &msgdkim.VerifyOptions{LookupTXT: lookup})
	if len(vs) != 1 || vs[0].Err == nil {
		t.Fatal("a changed body still verifies")
	}
}

// dkimLookup answers the TXT lookup of bank.example's DKIM record for keys, as DNS would.
func dkimLookup(t *testing.T, keys []dkim.KeyConfig) func(string) ([]string, error) {
	t.Helper()
	signer, err := dkim.New(keys)
	if err != nil {
		t.Fatal(err)
	}
	name, value, err := signer.DNSRecord("bank.example")
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(domain string) ([]string, error) {
		if domain == name {
			return []string{value}, nil
		}
		return nil, errors.New("no such record")
	}
	return lookup
}

// TestServeDKIMBadKeyAtStart: a DKIM key that does not parse stops serve at start with an error
// naming the domain and file.
func TestServeDKIMBadKeyAtStart(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("not a key\n"), 0o600)
	cfg := defaultConfig()
	cfg.Data, cfg.SMTP.Addr, cfg.Inbound.Listener.Addr, cfg.Ops.Addr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.API.Addr = "127.0.0.1:0"
	cfg.DKIM.Keys = []dkim.KeyConfig{{Domain: "bank.example", Selector: "s1", KeyFile: bad}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	inst, err := startInstance(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		inst.Close()
		t.Fatal("started with a DKIM key that does not parse")
	}
	if !strings.Contains(err.Error(), "bank.example") || !strings.Contains(err.Error(), bad) {
		t.Fatalf("error %q does not name the domain and file", err)
	}
	// Nothing was left half-started: the same data directory starts.
	cfg.DKIM.Keys = nil
	inst, err = startInstance(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	inst.Close()
}

// grepLines returns the lines of s that start with prefix, for failure messages.
func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
