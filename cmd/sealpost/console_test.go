package main

import (
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/console"
	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/queue"
)

// TestServeConsoleReleasesToTheDesk: with the console on, an agent added with sealpost console
// user add signs in with the password and a TOTP code from the secret it printed, reads a held
// reply and releases it with a reason; it reaches the desk naming the agent, the decision is in
// the evidence log, and a disabled account signs in no more.
func TestServeConsoleReleasesToTheDesk(t *testing.T) {
	interop.Tool(t, "swaks")
	inst, cfg, alice, carol := testInstance(t, func(c *Config) {
		c.Console.Enabled, c.Console.Addr = true, "127.0.0.1:0"
	})
	files := t.TempDir()
	aliceCert, _ := writeIdentity(t, files, "alice", alice)
	if code, out, errOut := runCLI(t, "", "keys", "import", "-data", cfg.Data, aliceCert); code != 0 {
		t.Fatalf("register alice: %s %s", out, errOut)
	}
	code, enrol, errOut := runCLI(t, "", "console", "user", "add", "-data", cfg.Data, "-role", "agent", "zoe")
	pw := regexp.MustCompile(`(?m)^password: (\S+)$`).FindStringSubmatch(enrol)
	secret := regexp.MustCompile(`(?m)^totp secret: (\S+)$`).FindStringSubmatch(enrol)
	if code != 0 || pw == nil || secret == nil || !strings.Contains(enrol, "otpauth://totp/") || !strings.Contains(errOut, "shown only now") {
		t.Fatalf("console user add: %d\n%s%s", code, enrol, errOut)
	}
	if code, _, errOut := runCLI(t, "", "console", "user", "add", "-data", cfg.Data, "-role", "agent", "zoe"); code != 1 || !strings.Contains(errOut, "exists already") {
		t.Fatalf("adding zoe twice: %d %s", code, errOut)
	}
	if code, _, _ := runCLI(t, "", "console", "user", "add", "-data", cfg.Data, "-role", "root", "eve"); code != 2 {
		t.Fatalf("an unknown role: %d", code)
	}
	if _, list, _ := runCLI(t, "", "console", "user", "list", "-data", cfg.Data); !regexp.MustCompile(`zoe +agent +active`).MatchString(list) {
		t.Fatalf("console user list:\n%s", list)
	}

	host, port, _ := net.SplitHostPort(inst.InboundAddr().String())
	f := filepath.Join(files, "unsigned.eml")
	if err := os.WriteFile(f, []byte("From: alice@example.com\r\nTo: support@bank.example\r\nSubject: new payee\r\n\r\nPlease add IBAN XX00.\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, err := interop.Try(t, nil, "swaks", "--server", host, "--port", port, "--from", "alice@example.com", "--to", "support@bank.example", "--data", f); err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}

	base := "http://" + inst.ConsoleAddr().String()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	post := func(path string, form url.Values) (int, string) {
		t.Helper()
		resp, err := c.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	csrf := func(page string) string {
		t.Helper()
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no CSRF token:\n%s", page)
		}
		return m[1]
	}
	signIn := func(code string) (int, string) {
		_, page := get("/login")
		return post("/login", url.Values{"csrf": {csrf(page)}, "name": {"zoe"}, "password": {pw[1]}, "code": {code}})
	}
	if status, _ := signIn("000000"); status != http.StatusUnauthorized {
		t.Fatalf("a wrong code: %d", status)
	}
	now, err := console.CodeAt(secret[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	status, list := signIn(now)
	id := regexp.MustCompile(`href="/quarantine/([A-Z2-7]{16})"`).FindStringSubmatch(list)
	if status != http.StatusOK || id == nil || !strings.Contains(list, "alice@example.com") {
		t.Fatalf("signed in: %d\n%s", status, list)
	}
	status, page := get("/quarantine/" + id[1])
	if status != http.StatusOK || !strings.Contains(page, "Please add IBAN XX00.") || !strings.Contains(page, "Sealpost-Verdict") {
		t.Fatalf("the held reply: %d\n%s", status, page)
	}
	if status, _ := post("/quarantine/"+id[1]+"/release", url.Values{"csrf": {csrf(page)}, "reason": {"confirmed by phone"}}); status != http.StatusOK {
		t.Fatalf("release: %d", status)
	}
	desk, err := waitForMaildir(cfg.Inbound.Delivery.Maildir, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	released := mime.HeaderValue(mime.ToCRLF(desk[0]), "Sealpost-Released")
	if !strings.Contains(released, "released by console:zoe at ") || !strings.Contains(released, "confirmed by phone") {
		t.Fatalf("the desk copy's Sealpost-Released: %q", released)
	}
	waitFor(t, "the decision in the evidence log", func() bool {
		for _, r := range evidenceRecords(t, cfg.Data) {
			if a := r.Action; a != nil && a.Actor == "console:zoe" && a.Action == "held-released" && a.Subject == id[1] && a.Reason == "confirmed by phone" {
				return true
			}
		}
		return false
	})
	// The customer's page: her registered certificate, and the statement sent to her with what
	// the next hop did with it (from the evidence log). Removing a key is for operators.
	if res := submit(t, inst, "statements@bank.example", []string{"alice@example.com"}, "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: Statement\r\n\r\nBalance 1,00 EUR\r\n"); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := submit(t, inst, "support@bank.example", []string{"alice@example.com"}, "From: support@bank.example\r\nTo: alice@example.com\r\nSubject: Case <4711>\r\n\r\nPlease confirm.\r\n"); res.Err != nil {
		t.Fatal(res.Err)
	}
	fp := keys.CertFingerprint(alice.Certificate())
	waitFor(t, "the support thread on alice's page", func() bool {
		_, page := get("/customers?address=alice@example.com")
		return strings.Contains(page, "Case &lt;4711&gt;")
	})
	waitFor(t, "the statement's delivery on alice's page", func() bool {
		_, page := get("/customers?address=Alice@Example.com")
		return strings.Contains(page, fp) && strings.Contains(page, "registered, usable") && strings.Contains(page, "statement smime") && strings.Contains(page, "delivered")
	})
	if status, _ := get("/customers?address=not-an-address"); status != http.StatusBadRequest {
		t.Errorf("a customer search that is not an address: %d; want 400", status)
	}
	_, page = get("/customers?address=alice@example.com")
	if strings.Contains(page, "Remove key") {
		t.Error("an agent is offered to remove a key")
	}
	if status, _ := post("/customers/remove-key", url.Values{"csrf": {csrf(page)}, "address": {"alice@example.com"}, "fingerprint": {fp}, "reason": {"lost"}}); status != http.StatusForbidden {
		t.Errorf("an agent removing a key: %d; want 403", status)
	}
	opsPw, opsSecret := enrolConsole(t, cfg.Data, "operator", "otto")
	opsJar, _ := cookiejar.New(nil)
	zoe := c
	c = &http.Client{Jar: opsJar}
	_, loginPage := get("/login")
	opsCode, _ := console.CodeAt(opsSecret, time.Now())
	if status, _ := post("/login", url.Values{"csrf": {csrf(loginPage)}, "name": {"otto"}, "password": {opsPw}, "code": {opsCode}}); status != http.StatusOK {
		t.Fatalf("operator sign-in: %d", status)
	}
	_, page = get("/customers?address=alice@example.com")
	// Another customer's key is not alice's to remove: 404, and carol keeps hers.
	carolFP := keys.PGPFingerprint(carol)
	if status, body := post("/customers/remove-key", url.Values{"csrf": {csrf(page)}, "address": {"alice@example.com"}, "fingerprint": {carolFP}, "reason": {"wrong customer"}}); status != http.StatusNotFound || !strings.Contains(body, "Nothing was changed") {
		t.Errorf("removing carol's key from alice's page: %d\n%s", status, body)
	}
	if _, list, _ := runCLI(t, "", "keys", "list", "-data", cfg.Data); !strings.Contains(list, carolFP[:16]) {
		t.Fatalf("carol's key went with a request on alice's page:\n%s", list)
	}
	if status, body := post("/customers/remove-key", url.Values{"csrf": {csrf(page)}, "address": {"alice@example.com"}, "fingerprint": {fp}, "reason": {"the customer lost her laptop"}}); status != http.StatusOK || !strings.Contains(body, "No key:") {
		t.Fatalf("an operator removing alice's key: %d\n%s", status, body)
	}
	if _, list, _ := runCLI(t, "", "keys", "list", "-data", cfg.Data); strings.Contains(list, fp[:16]) {
		t.Fatalf("alice's key is still listed:\n%s", list)
	}
	waitFor(t, "the key's removal in the evidence log", func() bool {
		for _, r := range evidenceRecords(t, cfg.Data) {
			if a := r.Action; a != nil && a.Actor == "console:otto" && a.Action == "key-removed" && a.Subject == "alice@example.com" && a.Detail == fp && a.Reason == "the customer lost her laptop" {
				return true
			}
		}
		return false
	})
	// The store's index of the log finds the removal under alice's address, newest first.
	waitFor(t, "the key's removal on alice's page", func() bool {
		_, page := get("/customers?address=alice@example.com")
		i, j := strings.Index(page, "key-removed alice@example.com by console:otto: the customer lost her laptop"), strings.Index(page, "statement smime")
		return i > 0 && j > i
	})
	c = zoe

	if code, out, _ := runCLI(t, "", "console", "user", "disable", "-data", cfg.Data, "zoe"); code != 0 || !strings.Contains(out, "disabled") {
		t.Fatalf("disable: %d %s", code, out)
	}
	if status, page := get("/quarantine"); !strings.Contains(page, "Sign in") {
		t.Fatalf("a disabled account's session: %d\n%s", status, page)
	}
}

// TestConsoleCustomerFromTheQueue: without the evidence log, the customer's page shows what still
// waits for them in the outbound queue (here: a statement deferred, its next hop down).
func TestConsoleCustomerFromTheQueue(t *testing.T) {
	down := freeAddr(t) // nothing listens here
	inst, cfg, _, _ := testInstance(t, func(c *Config) {
		c.Console.Enabled, c.Console.Addr = true, "127.0.0.1:0"
		c.Evidence.Enabled = false
		hop := defaultSmarthost()
		hop.Addr, hop.TLS = down, queue.TLSNone
		c.Delivery = DeliveryConfig{Smarthost: &hop}
	})
	if res := submit(t, inst, "statements@bank.example", []string{"alice@example.com"}, "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: Statement\r\n\r\nBalance\r\n"); res.Err != nil {
		t.Fatal(res.Err)
	}
	pw, secret := enrolConsole(t, cfg.Data, "agent", "zoe")
	base := "http://" + inst.ConsoleAddr().String()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	code, _ := console.CodeAt(secret, time.Now())
	if resp, err = c.PostForm(base+"/login", url.Values{"csrf": {string(tok[1])}, "name": {"zoe"}, "password": {pw}, "code": {code}}); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, "the deferred statement on alice's page", func() bool {
		resp, err := c.Get(base + "/customers?address=alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "From the outbound queue") && regexp.MustCompile(`statement, pending after [1-9][0-9]* attempts`).Match(b)
	})
}

// enrolConsole adds a console account with sealpost console user add and returns the password
// and the TOTP secret it printed.
func enrolConsole(t *testing.T, data, role, name string) (password, secret string) {
	t.Helper()
	code, out, errOut := runCLI(t, "", "console", "user", "add", "-data", data, "-role", role, name)
	pw := regexp.MustCompile(`(?m)^password: (\S+)$`).FindStringSubmatch(out)
	sec := regexp.MustCompile(`(?m)^totp secret: (\S+)$`).FindStringSubmatch(out)
	if code != 0 || pw == nil || sec == nil {
		t.Fatalf("console user add %s: %d\n%s%s", name, code, out, errOut)
	}
	return pw[1], sec[1]
}
