package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/evidence"
	"github.com/sealpost/sealpost/quarantine"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/store"
)

// clock is the console's time in a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// rig is a console over a real SQLite store and quarantine, served on loopback.
type rig struct {
	t     *testing.T
	st    *store.SQLite
	held  *quarantine.Quarantine
	srv   *httptest.Server
	clock *clock
	key   []byte
	users map[string]Enrolment
}

func newRig(t *testing.T) *rig { t.Helper(); return newRigWith(t, nil) }

// newRigWith is newRig with the console's dependencies changed by edit first.
func newRigWith(t *testing.T, edit func(*Deps)) *rig {
	t.Helper()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "sealpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	held, err := quarantine.Open(t.TempDir(), st)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	r := &rig{t: t, st: st, held: held, clock: &clock{t: time.Now()}, key: key, users: map[string]Enrolment{}}
	d := Deps{Accounts: st, Key: key, Held: held, Audit: st, Evidence: true, Outbox: st, Node: "test", Tokens: st,
		Read: func(ctx context.Context, h store.Held) ([]byte, error) {
			_, m, err := held.Get(ctx, h.ID)
			if err != nil || m == nil {
				return nil, err
			}
			return m.Data, nil // the message as the desk would get it: here, as held
		},
		Now: r.clock.now, Log: slog.New(slog.DiscardHandler)}
	if edit != nil {
		edit(&d)
	}
	s, err := New(Config{}, d)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(s)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *rig) addUser(name, role string) {
	r.t.Helper()
	e, hash, sealed, err := NewEnrolment(name, "sealpost test", r.key)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.st.PutConsoleAccount(context.Background(), store.ConsoleAccount{Name: name, Role: role, Password: hash, TOTP: sealed}); err != nil {
		r.t.Fatal(err)
	}
	r.users[name] = e
}

func (r *rig) hold(from, subject string) string {
	r.t.Helper()
	msg := "From: " + from + "\r\nTo: support@bank.example\r\nSubject: " + subject + "\r\n\r\nPlease change my payee.\r\n"
	id, err := r.held.Hold(context.Background(), quarantine.Message{From: "alice@example.com", To: []string{"support@bank.example"}, Data: []byte(msg)},
		store.Held{Received: r.clock.now(), From: from, Reason: "unsigned from a registered customer", Verdict: "unsigned"})
	if err != nil {
		r.t.Fatal(err)
	}
	return id
}

// browser is an HTTP client with its own cookies, as one browser is.
type browser struct {
	t *testing.T
	r *rig
	c *http.Client
}

func (r *rig) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: r.t, r: r, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.Get(b.r.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.r.srv.URL+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the token of the form on the page at path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	_, body, _ := b.get(path)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no CSRF token on %s:\n%s", path, body)
	}
	return m[1]
}

// signIn signs in with name's password and the code of now (or code, when given).
func (b *browser) signIn(name, code string) (int, string) {
	b.t.Helper()
	e := b.r.users[name]
	if code == "" {
		var err error
		if code, err = CodeAt(e.Secret, b.r.clock.now()); err != nil {
			b.t.Fatal(err)
		}
	}
	return b.post("/login", url.Values{"csrf": {b.csrf("/login")}, "name": {name}, "password": {e.Password}, "code": {code}})
}

func (b *browser) mustSignIn(name string) {
	b.t.Helper()
	if code, body := b.signIn(name, ""); code != http.StatusSeeOther {
		b.t.Fatalf("sign in as %s: %d\n%s", name, code, body)
	}
}

// TestSignIn: password and TOTP sign in; a wrong code, a wrong password and a replayed code are
// refused with one answer; five failures lock the account even for the right credentials; every
// attempt is audited; the pages carry a strict CSP and no-store.
func TestSignIn(t *testing.T) {
	r := newRig(t)
	r.addUser("zoe", store.RoleAgent)
	b := r.browser()
	if code, _, _ := b.get("/quarantine"); code != http.StatusSeeOther {
		t.Fatalf("the quarantine before signing in: %d; want a redirect to /login", code)
	}
	code, body := b.signIn("zoe", "000000")
	if code != http.StatusUnauthorized || !strings.Contains(body, "name, password or code is wrong") {
		t.Fatalf("a wrong code: %d\n%s", code, body)
	}
	if code, _, _ := b.get("/quarantine"); code != http.StatusSeeOther {
		t.Fatal("a wrong code gave a session")
	}
	b.mustSignIn("zoe")
	code, page, h := b.get("/quarantine")
	if code != http.StatusOK || !strings.Contains(page, "zoe (agent)") {
		t.Fatalf("the quarantine signed in: %d\n%s", code, page)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") || h.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", h)
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "style=") {
		t.Error("a page carries script or inline style")
	}

	// The same code again, from another browser: refused (a TOTP code is good once).
	again := r.browser()
	if code, _ := again.signIn("zoe", mustCode(t, r.users["zoe"].Secret, r.clock.now())); code != http.StatusUnauthorized {
		t.Fatalf("a replayed code: %d; want 401", code)
	}
	// Four more failures lock the account (five in a row); then the right credentials fail too.
	for range 4 {
		again.post("/login", url.Values{"csrf": {again.csrf("/login")}, "name": {"zoe"}, "password": {"wrong password!"}, "code": {"123456"}})
	}
	r.clock.add(31 * time.Second)
	if code, _ := again.signIn("zoe", ""); code != http.StatusUnauthorized {
		t.Fatalf("the right credentials while locked: %d; want 401", code)
	}
	r.clock.add(16 * time.Minute)
	again.mustSignIn("zoe")

	// A sign-in form posted without its cookie's token is refused.
	other := r.browser()
	if code, _ := other.post("/login", url.Values{"csrf": {"forged"}, "name": {"zoe"}, "password": {r.users["zoe"].Password}, "code": {"123456"}}); code != http.StatusForbidden {
		t.Fatalf("a sign-in without the form's token: %d; want 403", code)
	}
	audit, err := r.st.AuditLog(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var refused, signedIn int
	for _, a := range audit {
		if a.Actor == "console:zoe" && a.Action == "console.sign-in" {
			if a.Status == http.StatusOK {
				signedIn++
			} else {
				refused++
			}
		}
	}
	if signedIn != 2 || refused < 6 {
		t.Errorf("audit: %d sign-ins, %d refusals; want 2 and at least 6", signedIn, refused)
	}
}

func mustCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := CodeAt(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRolesAndForms: an agent cannot reach operator or admin pages (403); a form without its
// CSRF token, an oversized form, a release without a reason and unknown ids are refused with a
// clear page and change nothing; a release with a reason is kept with the agent's name and
// queues its evidence record; an idle session ends.
func TestRolesAndForms(t *testing.T) {
	r := newRig(t)
	r.addUser("zoe", store.RoleAgent)
	r.addUser("otto", store.RoleOperator)
	r.addUser("ada", store.RoleAdmin)
	id := r.hold("Mallory <mallory@example.com>", "urgent")
	agent := r.browser()
	agent.mustSignIn("zoe")
	for _, path := range []string{"/operations", "/accounts"} {
		if code, body, _ := agent.get(path); code != http.StatusForbidden || !strings.Contains(body, "Not for your role") {
			t.Errorf("agent %s: %d", path, code)
		}
	}
	op := r.browser()
	op.mustSignIn("otto")
	if code, _, _ := op.get("/operations"); code != http.StatusOK {
		t.Errorf("operator /operations: %d", code)
	}
	if code, _, _ := op.get("/accounts"); code != http.StatusForbidden {
		t.Errorf("operator /accounts: %d", code)
	}
	hash := bytes.Repeat([]byte{7}, 32)
	if err := r.st.PutAPIToken(context.Background(), store.APIToken{ID: "tok_abcdefghijklmnop", Name: "online <banking>", Hash: hash, Scopes: []string{"customers"}}); err != nil {
		t.Fatal(err)
	}
	admin := r.browser()
	admin.mustSignIn("ada")
	if code, body, _ := admin.get("/accounts"); code != http.StatusOK || !strings.Contains(body, "otto") || strings.Contains(body, "argon2") ||
		!strings.Contains(body, "tok_abcdefghijklmnop") || !strings.Contains(body, "online &lt;banking&gt;") {
		t.Errorf("admin /accounts: %d\n%s", code, body)
	}

	token := agent.csrf("/quarantine/" + id)
	unchanged := func(what string) {
		t.Helper()
		h, err := r.st.HeldGet(context.Background(), id)
		if err != nil || h.Released || h.Deleted {
			t.Fatalf("%s changed the entry: %+v %v", what, h, err)
		}
	}
	if code, _ := agent.post("/quarantine/"+id+"/release", url.Values{"reason": {"no token"}}); code != http.StatusForbidden {
		t.Errorf("a release without the CSRF token: %d; want 403", code)
	}
	unchanged("a form without its token")
	if code, _ := agent.post("/quarantine/"+id+"/release", url.Values{"csrf": {token}, "reason": {"   "}}); code != http.StatusBadRequest {
		t.Errorf("a release without a reason: %d; want 400", code)
	}
	unchanged("a release without a reason")
	if code, _ := agent.post("/quarantine/"+id+"/release", url.Values{"csrf": {token}, "reason": {strings.Repeat("x", 20000)}}); code != http.StatusRequestEntityTooLarge {
		t.Errorf("an oversized form: %d; want 413", code)
	}
	unchanged("an oversized form")
	if code, _ := agent.post("/quarantine/NOSUCHID/release", url.Values{"csrf": {token}, "reason": {"x"}}); code != http.StatusNotFound {
		t.Errorf("an unknown id: %d; want 404", code)
	}
	if code, _, _ := agent.get("/quarantine/" + strings.Repeat("A", 100)); code != http.StatusNotFound {
		t.Errorf("an overlong id: %d; want 404", code)
	}
	if code, _ := op.post("/quarantine/"+id+"/release", url.Values{"csrf": {token}, "reason": {"another session's token"}}); code != http.StatusForbidden {
		t.Errorf("another session's token: %d; want 403", code)
	}
	unchanged("another session's token")

	if code, body := agent.post("/quarantine/"+id+"/release", url.Values{"csrf": {token}, "reason": {"called the customer back"}}); code != http.StatusSeeOther {
		t.Fatalf("release: %d\n%s", code, body)
	}
	h, err := r.st.HeldGet(context.Background(), id)
	if err != nil || !h.Released || h.DecidedBy != "console:zoe" || h.DecidedWhy != "called the customer back" {
		t.Fatalf("after the release: %+v %v", h, err)
	}
	var queued []string
	r.st.EvidenceOutboxTake(context.Background(), "test", 10, func(lines [][]byte) error {
		for _, l := range lines {
			queued = append(queued, string(l))
		}
		return nil
	})
	if len(queued) != 1 || !strings.Contains(queued[0], `"actor":"console:zoe","action":"held-released","subject":"`+id+`","reason":"called the customer back"`) {
		t.Fatalf("the evidence outbox: %q", queued)
	}
	if code, body := agent.post("/quarantine/"+id+"/delete", url.Values{"csrf": {token}, "reason": {"too late"}}); code != http.StatusConflict || !strings.Contains(body, "released by console:zoe") {
		t.Errorf("delete after release: %d\n%s", code, body)
	}

	// An idle session ends: a page sends to the sign-in, a form is refused.
	r.clock.add(16 * time.Minute)
	if code, _, h := agent.get("/quarantine"); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login") {
		t.Errorf("an idle session: %d %v", code, h)
	}
	id2 := r.hold("bob@example.com", "hi")
	if code, _ := agent.post("/quarantine/"+id2+"/delete", url.Values{"csrf": {token}, "reason": {"x"}}); code != http.StatusUnauthorized {
		t.Errorf("a form in an ended session: %d; want 401", code)
	}
	if h, _ := r.st.HeldGet(context.Background(), id2); h.Deleted {
		t.Error("an ended session deleted a message")
	}
}

// TestHostileMessageShownInert: a held message whose From and Subject carry script and an
// image with onerror, and whose HTML part carries script, is shown as text: every < escaped.
func TestHostileMessageShownInert(t *testing.T) {
	r := newRig(t)
	r.addUser("zoe", store.RoleAgent)
	from := `"<script>alert(1)</script>" <eve@example.com>`
	subject := `<img src=x onerror=alert(2)>`
	msg := "From: " + from + "\r\nTo: support@bank.example\r\nSubject: " + subject + "\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain <b>text</b>\r\n" +
		"--b\r\nContent-Type: text/html\r\n\r\n<html><script>alert(3)</script><img src=https://tracker.example/p.gif></html>\r\n--b--\r\n"
	id, err := r.held.Hold(context.Background(), quarantine.Message{From: "eve@example.com", To: []string{"support@bank.example"}, Data: []byte(msg)},
		store.Held{Received: r.clock.now(), From: from, Reason: "unsigned", Verdict: "unsigned"})
	if err != nil {
		t.Fatal(err)
	}
	b := r.browser()
	b.mustSignIn("zoe")
	for _, path := range []string{"/quarantine", "/quarantine/" + id} {
		_, page, _ := b.get(path)
		for _, bad := range []string{"<script", "<img"} {
			if strings.Contains(page, bad) {
				t.Errorf("%s carries %q unescaped", path, bad)
			}
		}
		if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s does not show the From as text", path)
		}
	}
	_, page, _ := b.get("/quarantine/" + id)
	if !strings.Contains(page, "shown as its source") || !strings.Contains(page, "&lt;img src=x onerror=alert(2)&gt;") || !strings.Contains(page, "plain &lt;b&gt;text&lt;/b&gt;") {
		t.Errorf("the held message's page:\n%s", page)
	}
}

// TestQuarantinePages: the list pages 50 at a time, newest first; a page number out of range
// or not a number is a clear page.
func TestQuarantinePages(t *testing.T) {
	r := newRig(t)
	r.addUser("zoe", store.RoleAgent)
	for i := range 120 {
		r.hold("c"+string(rune('a'+i%26))+"@example.com", "x")
		r.clock.add(time.Second)
	}
	b := r.browser()
	b.mustSignIn("zoe")
	_, page, _ := b.get("/quarantine")
	if n := strings.Count(page, `<td data-label="Sender">`); n != 50 || !strings.Contains(page, "Page 1 of 3") || !strings.Contains(page, "120 held messages") {
		t.Errorf("page 1: %d rows\n%s", n, page)
	}
	_, page, _ = b.get("/quarantine?page=3")
	if n := strings.Count(page, `<td data-label="Sender">`); n != 20 {
		t.Errorf("page 3: %d rows", n)
	}
	for _, q := range []string{"?page=4", "?page=0", "?page=x"} {
		if code, _, _ := b.get("/quarantine" + q); code != http.StatusNotFound && code != http.StatusBadRequest {
			t.Errorf("%s: %d", q, code)
		}
	}
}

// BenchmarkQuarantineList: the first page of a quarantine of 10,000 held messages, server time.
func BenchmarkQuarantineList(b *testing.B) {
	st, err := store.OpenSQLite(filepath.Join(b.TempDir(), "sealpost.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	held, err := quarantine.Open(b.TempDir(), st)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	for i := range 10000 {
		if err := st.Hold(ctx, store.Held{ID: fmt.Sprintf("H%015d", i), Received: now.Add(time.Duration(i) * time.Second), From: "customer@example.com",
			Reason: "unsigned from a registered customer", Verdict: "unsigned", Ref: strconv.Itoa(i)}); err != nil {
			b.Fatal(err)
		}
	}
	key := make([]byte, 32)
	s, err := New(Config{}, Deps{Accounts: st, Key: key, Held: held, Audit: st, Read: func(context.Context, store.Held) ([]byte, error) { return nil, nil },
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	_, hash, sealed, err := NewEnrolment("zoe", "x", key)
	if err != nil {
		b.Fatal(err)
	}
	st.PutConsoleAccount(ctx, store.ConsoleAccount{Name: "zoe", Role: store.RoleAgent, Password: hash, TOTP: sealed})
	cookie, idHash, _ := sessionSecret()
	st.PutConsoleSession(ctx, store.ConsoleSession{IDHash: idHash, Account: "zoe", Created: time.Now(), Expires: time.Now().Add(time.Hour)})
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/quarantine", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte("10000 held messages")) {
			b.Fatalf("%d\n%s", w.Code, w.Body.String())
		}
	}
}

// neverHop is the next hop of a spool that is never started.
type neverHop struct{}

func (neverHop) Deliver(context.Context, string, []string, []byte) []error { panic("not started") }

// TestQueuePages: an operator lists a queue's entries (recipients by domain only), makes one
// due now, and deletes one with a reason (without, refused); unknown queues and entries are clear
// pages; an agent gets 403; each action is audited.
func TestQueuePages(t *testing.T) {
	qcfg := queue.DefaultConfig()
	qcfg.Dir = t.TempDir()
	sp, err := queue.Open(qcfg, neverHop{}, queue.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	id, err := sp.Put(context.Background(), &queue.Message{From: "statements@bank.example", Recipients: []string{"secret.customer@example.org"},
		Data: []byte("From: x\r\n\r\nbody\r\n"), Class: "statement", Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	r := newRigWith(t, func(d *Deps) { d.Queues = map[string]Queue{"outbound": sp} })
	r.addUser("otto", store.RoleOperator)
	r.addUser("zoe", store.RoleAgent)
	op := r.browser()
	op.mustSignIn("otto")
	code, page, _ := op.get("/operations/queue/outbound")
	if code != http.StatusOK || !strings.Contains(page, id) || !strings.Contains(page, "example.org") || strings.Contains(page, "secret.customer") {
		t.Fatalf("the queue page: %d\n%s", code, page)
	}
	if _, ops, _ := op.get("/operations"); !strings.Contains(ops, `<td data-label="Lane">statement</td><td data-label="Entries">1</td>`) {
		t.Errorf("the operations page lacks the statement lane:\n%s", ops)
	}
	token := op.csrf("/operations/queue/outbound")
	if code, _ := op.post("/operations/queue/outbound/"+id+"/retry", url.Values{"csrf": {token}}); code != http.StatusSeeOther {
		t.Errorf("retry: %d", code)
	}
	if code, _ := op.post("/operations/queue/outbound/"+id+"/delete", url.Values{"csrf": {token}}); code != http.StatusBadRequest {
		t.Errorf("delete without a reason: %d; want 400", code)
	}
	if _, err := sp.Get(id); err != nil {
		t.Fatalf("deleted without a reason: %v", err)
	}
	if code, _ := op.post("/operations/queue/outbound/NOSUCH/retry", url.Values{"csrf": {token}}); code != http.StatusNotFound {
		t.Errorf("an unknown entry: %d; want 404", code)
	}
	if code, _, _ := op.get("/operations/queue/nosuch"); code != http.StatusNotFound {
		t.Errorf("an unknown queue: %d; want 404", code)
	}
	if code, _ := op.post("/operations/queue/outbound/"+id+"/delete", url.Values{"csrf": {token}, "reason": {"sent to the wrong customer"}}); code != http.StatusSeeOther {
		t.Errorf("delete: %d", code)
	}
	if _, err := sp.Get(id); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	agent := r.browser()
	agent.mustSignIn("zoe")
	if code, _, _ := agent.get("/operations/queue/outbound"); code != http.StatusForbidden {
		t.Errorf("an agent on a queue: %d; want 403", code)
	}
	audit, _ := r.st.AuditLog(context.Background(), 0, 100)
	var actions []string
	for _, a := range audit {
		if strings.HasPrefix(a.Action, "console.queue-") {
			actions = append(actions, a.Action+" "+a.Target+" "+a.Detail)
		}
	}
	if len(actions) != 2 || !strings.Contains(actions[1], "sent to the wrong customer") {
		t.Errorf("audit: %q", actions)
	}
	// Both actions wait in the store's outbox for the evidence log, naming who and why.
	var recs []string
	if _, err := r.st.EvidenceOutboxTake(context.Background(), "test", 10, func(lines [][]byte) error {
		for _, l := range lines {
			var rec evidence.Record
			if err := json.Unmarshal(l, &rec); err != nil || rec.Action == nil {
				return fmt.Errorf("%s: not an action (%v)", l, err)
			}
			recs = append(recs, rec.Action.Action+" "+rec.Action.Subject+" by "+rec.Action.Actor+": "+rec.Action.Reason+" ("+rec.Action.Detail+")")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"queue-retried " + id + " by console:otto:  (the outbound queue)", "queue-deleted " + id + " by console:otto: sent to the wrong customer (the outbound queue)"}
	if !slices.Equal(recs, want) {
		t.Errorf("evidence outbox: %q; want %q", recs, want)
	}
}
