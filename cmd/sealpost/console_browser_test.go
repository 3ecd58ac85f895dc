package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sealpost/sealpost/console"
	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/mime"
)

// browserLimit bounds each step in the browser: a hang guard, not a timing assertion.
const browserLimit = 60 * time.Second

// screenshotDir is where the browser tests write their screenshots: SEALPOST_SCREENSHOTS, or a
// directory of the test's (named in its log).
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("SEALPOST_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestConsoleInABrowser drives the console in Debian's headless chromium: sign in with password
// and TOTP (a wrong code refused), an agent opens a held reply whose From and Subject carry
// <script> and <img onerror> (shown inert: no script runs, no image loads), releases it with a
// reason and it reaches the desk naming the agent; the agent gets 403 on an operator page; a form
// posted without its CSRF token is refused; every page is photographed at 1280 and 390 px.
func TestConsoleInABrowser(t *testing.T) {
	chromium := interop.Tool(t, "chromium")
	interop.Tool(t, "swaks")
	inst, cfg, alice, _ := testInstance(t, func(c *Config) {
		c.Console.Enabled, c.Console.Addr = true, "127.0.0.1:0"
	})
	files := t.TempDir()
	aliceCert, _ := writeIdentity(t, files, "alice", alice)
	if code, out, errOut := runCLI(t, "", "keys", "import", "-data", cfg.Data, aliceCert); code != 0 {
		t.Fatalf("register alice: %s %s", out, errOut)
	}
	pw, secret := enrolConsole(t, cfg.Data, "agent", "zoe")
	// Two held replies: an ordinary one, and one whose header fields try to run script and whose
	// HTML fetches an image from a tracker that counts what it is asked for.
	var tracked atomic.Int64
	tracker := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { tracked.Add(1) }))
	defer tracker.Close()
	host, port, _ := net.SplitHostPort(inst.InboundAddr().String())
	for i, msg := range []string{
		"From: alice@example.com\r\nTo: support@bank.example\r\nSubject: new payee\r\n\r\nPlease add IBAN XX00.\r\n",
		"From: \"<script>window.pwned=1</script>\" <alice@example.com>\r\nTo: support@bank.example\r\n" +
			"Subject: <img src=x onerror=\"window.pwned=2\">\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n" +
			"<html><body onload=\"window.pwned=3\"><script>window.pwned=4</script><img src=\"" + tracker.URL + "/track.gif\"></body></html>\r\n",
	} {
		f := filepath.Join(files, fmt.Sprintf("held%d.eml", i))
		if err := os.WriteFile(f, []byte(msg), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, _, err := interop.Try(t, nil, "swaks", "--server", host, "--port", port, "--from", "alice@example.com", "--to", "support@bank.example", "--data", f); err != nil {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
	}

	shots := screenshotDir(t)
	t.Logf("screenshots in %s", shots)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	base := "http://" + inst.ConsoleAddr().String()
	if err := chromedp.Do(ctx); err != nil { // starts the browser, on the test's context
		t.Fatalf("start chromium: %v", err)
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, stop := context.WithTimeout(ctx, browserLimit)
		defer stop()
		if err := chromedp.Do(c, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// load runs steps that load a page (a link, a form) and waits for it; it returns its status.
	load := func(what string, actions ...chromedp.Action[chromedp.Void]) int64 {
		t.Helper()
		c, stop := context.WithTimeout(ctx, browserLimit)
		defer stop()
		resp, err := chromedp.RunResponse(c, actions...)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return resp.Status
	}
	eval := func(expr string) any {
		t.Helper()
		c, stop := context.WithTimeout(ctx, browserLimit)
		defer stop()
		v, err := chromedp.Run(c, chromedp.Evaluate[any](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	photo := func(name string) {
		t.Helper()
		keyboard(t, name, run, eval)
		for _, w := range []int64{1280, 390} {
			run("viewport", chromedp.EmulateViewport(w, 900))
			if problems := eval(accessibilityCheck).(string); problems != "" {
				t.Errorf("page %s at %d px:\n%s", name, w, problems)
			}
			c, stop := context.WithTimeout(ctx, browserLimit)
			png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
			stop()
			if err != nil {
				t.Fatalf("screenshot %s: %v", name, err)
			}
			file := filepath.Join(shots, fmt.Sprintf("console-%s-%d.png", name, w))
			if err := os.WriteFile(file, png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		run("viewport back", chromedp.EmulateViewport(1280, 900))
	}
	text := func(sel string) string {
		t.Helper()
		c, stop := context.WithTimeout(ctx, browserLimit)
		defer stop()
		s, err := chromedp.Run(c, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	signInAs := func(name, password, code string) {
		t.Helper()
		load("the sign-in page", chromedp.Navigate(base+"/login"))
		run("fill in the sign-in form", chromedp.WaitVisible(chromedp.CSS("#name")),
			chromedp.Clear(chromedp.CSS("#name")), chromedp.SendKeys(chromedp.CSS("#name"), name), chromedp.SendKeys(chromedp.CSS("#password"), password),
			chromedp.SendKeys(chromedp.CSS("#code"), code))
		load("sign in", chromedp.Submit(chromedp.CSS("#code")))
	}
	signIn := func(code string) { t.Helper(); signInAs("zoe", pw, code) }

	load("the sign-in page", chromedp.Navigate(base+"/login"))
	photo("sign-in")
	signIn("000000")
	if got := text("p.error"); !strings.Contains(got, "name, password or code is wrong") {
		t.Fatalf("a wrong code: the page says %q", got)
	}
	photo("sign-in-refused")
	code, err := console.CodeAt(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signIn(code)
	if got := text("h1"); got != "Quarantine" {
		t.Fatalf("after signing in: %q", got)
	}
	photo("quarantine")

	// The hostile one is shown as text; nothing of it runs or loads.
	links := eval(`Array.from(document.querySelectorAll('a[href^="/quarantine/"]')).map(a => a.getAttribute('href')).join(" ")`).(string)
	hrefs := strings.Fields(links)
	if len(hrefs) != 2 {
		t.Fatalf("%d held messages listed; want 2", len(hrefs))
	}
	var hostile, plain string
	for _, h := range hrefs {
		load("open "+h, chromedp.Navigate(base+h))
		if body := text("main"); strings.Contains(body, "window.pwned") {
			hostile = h
		} else {
			plain = h
		}
	}
	if hostile == "" || plain == "" {
		t.Fatal("the hostile held message is not shown as text")
	}
	load("open the hostile one", chromedp.Navigate(base+hostile))
	pwned, scripts, images := eval(`String(window.pwned)`), eval(`document.scripts.length`), eval(`document.images.length`)
	if pwned != "undefined" || scripts != float64(0) || images != float64(0) {
		t.Fatalf("the hostile message ran or rendered: window.pwned=%v, %d scripts, %d images", pwned, scripts, images)
	}
	if body := text("main"); !strings.Contains(body, `<img src=x onerror="window.pwned=2">`) || !strings.Contains(body, "shown as its source") {
		t.Fatalf("the hostile message's page:\n%s", body)
	}
	photo("held-hostile")
	if n := tracked.Load(); n != 0 {
		t.Fatalf("the tracker was asked %d times: a remote image of the held message was fetched", n)
	}

	// An operator page is 403 for an agent.
	if status := load("the operations page", chromedp.Navigate(base+"/operations")); status != 403 {
		t.Fatalf("an agent on /operations: status %d; want 403", status)
	}
	if got := text("h1"); got != "Not for your role" {
		t.Fatalf("an agent on /operations: %q", got)
	}
	photo("forbidden")

	// A form whose CSRF token was taken out is refused, and nothing changes.
	load("open the held reply", chromedp.Navigate(base+plain))
	eval(`document.querySelectorAll('input[name=csrf]').forEach(e => e.remove()); 0`)
	run("write a reason", chromedp.SendKeys(chromedp.CSS("#reason-release"), "no token"))
	if status := load("release without the token", chromedp.Submit(chromedp.CSS("#reason-release"))); status != 403 {
		t.Fatalf("a form without its CSRF token: status %d; want 403", status)
	}
	if got := text("h1"); got != "Form refused" {
		t.Fatalf("a form without its CSRF token: %q", got)
	}
	photo("csrf-refused")
	if files, _ := os.ReadDir(filepath.Join(cfg.Inbound.Delivery.Maildir, "new")); len(files) != 0 {
		t.Fatal("a form without its token delivered a held message")
	}

	// The plain one, released with a reason, reaches the desk naming the agent.
	load("open the held reply", chromedp.Navigate(base+plain))
	photo("held")
	run("write the reason", chromedp.SendKeys(chromedp.CSS("#reason-release"), "confirmed by phone"))
	load("release it", chromedp.Submit(chromedp.CSS("#reason-release")))
	desk, err := waitForMaildir(cfg.Inbound.Delivery.Maildir, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if released := mime.HeaderValue(mime.ToCRLF(desk[0]), "Sealpost-Released"); !strings.Contains(released, "released by console:zoe at ") || !strings.Contains(released, "confirmed by phone") {
		t.Fatalf("the desk copy's Sealpost-Released: %q", released)
	}
	if got := text("h1"); got != "Quarantine" {
		t.Fatalf("after the release: %q", got)
	}
	photo("quarantine-after-release")

	// The customer's page, reached by the search form.
	load("the customers page", chromedp.Navigate(base+"/customers"))
	run("search", chromedp.SendKeys(chromedp.CSS("#address"), "alice@example.com"))
	load("look alice up", chromedp.Submit(chromedp.CSS("#address")))
	if got := text("main"); !strings.Contains(got, "registered, usable") {
		t.Fatalf("alice's page:\n%s", got)
	}
	photo("customer")

	// Signed out, then in as an operator: the operations page with its charts.
	load("sign out", chromedp.Submit(chromedp.CSS("form.signout")))
	if got := text("h1"); got != "Sign in" {
		t.Fatalf("after signing out: %q", got)
	}
	opsPw, opsSecret := enrolConsole(t, cfg.Data, "operator", "otto")
	opsCode, err := console.CodeAt(opsSecret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signInAs("otto", opsPw, opsCode)
	if status := load("the operations page", chromedp.Navigate(base+"/operations")); status != 200 {
		t.Fatalf("an operator on /operations: %d", status)
	}
	if got := text("main"); !strings.Contains(got, "Queues") || !strings.Contains(got, "development identities") {
		t.Fatalf("the operations page:\n%s", got)
	}
	if n := eval(`document.querySelectorAll('svg.chart').length`); n == float64(0) {
		t.Fatal("the operations page has no chart")
	}
	photo("operations")
	if status := load("the outbound queue", chromedp.Navigate(base+"/operations/queue/outbound")); status != 200 {
		t.Fatalf("the outbound queue's page: %d", status)
	}
	photo("queue")
}

// accessibilityCheck is evaluated on every page the browser test photographs, at both widths: it
// lists what would stop a keyboard or screen-reader user, or a phone's reader ("" when nothing):
// form fields without a label, buttons and links without a name, a positive tabindex, a chart
// without a text alternative, headers without a scope, not one h1, no main landmark or language,
// and a page wider than the window (scrolled sideways at 390 px).
const accessibilityCheck = `(() => {
	const bad = [];
	const short = e => e.outerHTML.slice(0, 100);
	for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea'))
		if (!(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby')) bad.push('a field without a label: ' + short(e));
	for (const e of document.querySelectorAll('button, a[href]'))
		if (!e.textContent.trim() && !e.getAttribute('aria-label')) bad.push('a control without a name: ' + short(e));
	for (const e of document.querySelectorAll('[tabindex]'))
		if (e.tabIndex > 0) bad.push('a positive tabindex: ' + short(e));
	for (const e of document.querySelectorAll('svg'))
		if (e.getAttribute('role') !== 'img' || !(e.getAttribute('aria-label') || e.querySelector('title'))) bad.push('a chart without a text alternative: ' + short(e));
	for (const e of document.querySelectorAll('thead th'))
		if (!e.getAttribute('scope')) bad.push('a column header without scope: ' + short(e));
	const h1 = document.querySelectorAll('h1').length;
	if (h1 !== 1) bad.push(h1 + ' h1 elements');
	if (!document.querySelector('main')) bad.push('no main landmark');
	if (!document.documentElement.lang) bad.push('no language');
	if (document.documentElement.scrollWidth > window.innerWidth + 1) bad.push('the page is ' + document.documentElement.scrollWidth + ' px wide in a window of ' + window.innerWidth);
	return bad.join('\n');
})()`

// keyboard walks the page with the Tab key: from the start (or the field focused on arrival),
// each press must move to the next link, button or field in the page's order, reaching all of
// them, the skip link first.
func keyboard(t *testing.T, page string, run func(string, ...chromedp.Action[chromedp.Void]), eval func(string) any) {
	t.Helper()
	const mark = `(() => {
		const f = Array.from(document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]'))
			.filter(e => !e.disabled && e.tabIndex >= 0 && e.getClientRects().length > 0);
		f.forEach((e, i) => e.dataset.kb = String(i));
		const at = document.activeElement && document.activeElement.dataset.kb;
		return JSON.stringify({n: f.length, from: at === undefined ? 0 : Number(at) + 1, first: f.length ? f[0].className : ""});
	})()`
	var m struct {
		N, From int
		First   string
	}
	if err := json.Unmarshal([]byte(eval(mark).(string)), &m); err != nil {
		t.Fatal(err)
	}
	if m.First != "skip" {
		t.Errorf("page %s: the first focusable element is %q, not the skip link", page, m.First)
	}
	for i := m.From; i < m.N; i++ {
		run("press Tab", chromedp.KeyEvent("\t"))
		if got := eval(`(document.activeElement && document.activeElement.dataset.kb) || ""`).(string); got != fmt.Sprint(i) {
			t.Errorf("page %s: Tab press %d reached %s; want element %d of %d: %v", page, i-m.From+1, got, i, m.N,
				eval(`document.activeElement ? document.activeElement.outerHTML.slice(0, 100) : "nothing"`))
			return
		}
	}
}
