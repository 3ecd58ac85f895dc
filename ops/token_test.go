package ops

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/logtest"
	"github.com/sealpost/sealpost/queue"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestEnsureTokenMakesAPrivateToken: the first start makes ops.token (the secret, for the CLI) and
// ops.token.sha256 (all the listener keeps), both 0600; later starts keep them; the secret reads
// back as the listener's.
func TestEnsureTokenMakesAPrivateToken(t *testing.T) {
	dir := t.TempDir()
	tok, err := EnsureToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	tokPath, hashPath := filepath.Join(dir, TokenFile), filepath.Join(dir, TokenHashFile)
	for _, p := range []string{tokPath, hashPath} {
		if m := mode(t, p); m != 0o600 {
			t.Fatalf("%s is mode %04o, want 0600", filepath.Base(p), m)
		}
	}
	secret, err := ReadTokenFile(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) < 43 || !tok.matches(secret) || tok.matches(secret+"x") || tok.matches("") {
		t.Fatalf("secret %q does not match its token exactly", secret)
	}
	hash, _ := os.ReadFile(hashPath)
	if strings.Contains(string(hash), secret) {
		t.Fatal("the hash file holds the secret")
	}
	again, err := EnsureToken(dir)
	if err != nil || !again.matches(secret) {
		t.Fatalf("second start: %v; the token changed", err)
	}
	// The listener needs only the hash: the secret may live elsewhere.
	moved := filepath.Join(t.TempDir(), "ops.token")
	if err := os.Rename(tokPath, moved); err != nil {
		t.Fatal(err)
	}
	if tok, err := EnsureToken(dir); err != nil || !tok.matches(secret) {
		t.Fatalf("without ops.token: %v", err)
	}
	if _, err := os.Stat(tokPath); err == nil {
		t.Fatal("a new ops.token was made beside the hash")
	}
}

func TestEnsureTokenRefusals(t *testing.T) {
	const own = "an-operators-own-token-of-enough-characters-0123"
	tests := []struct {
		name  string
		setup func(dir string)
		check func(t *testing.T, dir string, tok *Token, err error)
	}{
		{"adopts an operator's ops.token", func(dir string) {
			os.WriteFile(filepath.Join(dir, TokenFile), []byte(own+"\n"), 0o600)
		}, func(t *testing.T, dir string, tok *Token, err error) {
			if err != nil || !tok.matches(own) {
				t.Fatalf("%v", err)
			}
			if m := mode(t, filepath.Join(dir, TokenHashFile)); m != 0o600 {
				t.Fatalf("hash mode %04o", m)
			}
		}},
		{"token readable by others", func(dir string) {
			os.WriteFile(filepath.Join(dir, TokenFile), []byte(own), 0o600)
			os.Chmod(filepath.Join(dir, TokenFile), 0o644)
		}, func(t *testing.T, _ string, _ *Token, err error) {
			if !errors.Is(err, ErrTokenFileMode) || !strings.Contains(err.Error(), "chmod 600") {
				t.Fatalf("%v", err)
			}
		}},
		{"hash writable by its group", func(dir string) {
			EnsureToken(dir)
			os.Chmod(filepath.Join(dir, TokenHashFile), 0o620)
		}, func(t *testing.T, _ string, _ *Token, err error) {
			if !errors.Is(err, ErrTokenFileMode) {
				t.Fatalf("%v", err)
			}
		}},
		{"token does not match the hash", func(dir string) {
			EnsureToken(dir)
			os.WriteFile(filepath.Join(dir, TokenFile), []byte(own), 0o600)
		}, func(t *testing.T, _ string, _ *Token, err error) {
			if err == nil || !strings.Contains(err.Error(), "does not match") {
				t.Fatalf("%v", err)
			}
		}},
		{"token too short", func(dir string) {
			os.WriteFile(filepath.Join(dir, TokenFile), []byte("secret\n"), 0o600)
		}, func(t *testing.T, _ string, _ *Token, err error) {
			if err == nil || !strings.Contains(err.Error(), "32 to 512 characters") {
				t.Fatalf("%v", err)
			}
		}},
		{"hash that is not one", func(dir string) {
			os.WriteFile(filepath.Join(dir, TokenHashFile), []byte("xyz"), 0o600)
		}, func(t *testing.T, _ string, _ *Token, err error) {
			if err == nil || !strings.Contains(err.Error(), "not a SHA-256") {
				t.Fatalf("%v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(dir)
			tok, err := EnsureToken(dir)
			tt.check(t, dir, tok, err)
		})
	}
	if _, err := ReadTokenFile(filepath.Join(t.TempDir(), "none")); !errors.Is(err, ErrNoToken) {
		t.Fatalf("a missing token file: %v", err)
	}
	var zero *Token
	if zero.matches(own) || (&Token{}).matches("") || NewToken("").matches("") {
		t.Fatal("an empty token accepts something")
	}
}

// TestQueueControlNeedsTheToken: without the ops token, with a wrong one, or on a listener that has
// none, DELETE and POST are refused with 401 and a problem body, logged without what was presented,
// and the entry is still there, not retried; with the token they work.
func TestQueueControlNeedsTheToken(t *testing.T) {
	sp := openSpool(t, t.TempDir(), hop(busy))
	log, logs := logtest.New()
	_, base := startServer(t, WithSpool("outbound", sp), WithLogger(log))
	_, tokenless := startServer(t, WithSpool("outbound", sp), WithLogger(log), WithToken(nil))
	id, err := sp.Put(context.Background(), &queue.Message{From: "statements@bank.example", Recipients: []string{"alice@example.com"},
		Data: []byte("Subject: s\r\n\r\nx\r\n"), Class: "statement", Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first attempt", func() bool { in, err := sp.Get(id); return err == nil && in.Recipients[0].Attempts == 1 })
	before, _ := sp.Get(id)

	refused := []struct{ name, base, auth string }{
		{"no credential", base, ""},
		{"wrong token", base, "Bearer wrong-token-of-some-length-0123456789"},
		{"the token with another scheme", base, "Basic " + testSecret},
		{"a prefix of the token", base, "Bearer " + testSecret[:len(testSecret)-1]},
		{"a listener without a token", tokenless, "Bearer " + testSecret},
	}
	for _, r := range refused {
		for _, req := range []struct{ method, path string }{
			{"DELETE", "/queue/" + id}, {"POST", "/queue/" + id + "/retry"}, {"POST", "/queue/flush"},
			{"GET", "/queue"}, {"GET", "/queue/" + id}, {"GET", "/queue/corrupt"},
		} {
			code, h, body := callWith(t, r.auth, req.method, r.base+req.path, nil)
			var p problem
			if code != 401 || h.Get("Content-Type") != "application/problem+json" || h.Get("WWW-Authenticate") == "" ||
				json.Unmarshal([]byte(body), &p) != nil || p.Status != 401 || p.Detail == "" || p.Error != p.Detail {
				t.Fatalf("%s: %s %s: %d %v %s", r.name, req.method, req.path, code, h, body)
			}
			if strings.Contains(body, id) || strings.Contains(body, "example.com") {
				t.Fatalf("%s: the refusal shows the queue: %s", r.name, body)
			}
		}
	}
	time.Sleep(50 * time.Millisecond) // a retry or flush that got through would have run by now
	after, err := sp.Get(id)
	if err != nil || after.Recipients[0].Attempts != before.Recipients[0].Attempts || !after.NextAttempt.Equal(before.NextAttempt) {
		t.Fatalf("after refused requests: %+v, %v; before %+v", after, err, before)
	}
	out := logs.String()
	if n := strings.Count(out, "refused a request without the ops token"); n != len(refused)*6 {
		t.Fatalf("%d refusals logged, want %d:\n%s", n, len(refused)*6, out)
	}
	for _, want := range []string{`reason="no credential"`, `reason="wrong token"`, `reason="not a bearer token"`, `reason="no token configured"`, "remote=127.0.0.1:"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
	if strings.Contains(out, testSecret[:20]) || strings.Contains(out, "wrong-token") {
		t.Fatal("the log shows a presented token")
	}
	// Open endpoints stay open.
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _, body := callWith(t, "", "GET", base+p, nil); code != 200 {
			t.Fatalf("GET %s without a token: %d %s", p, code, body)
		}
	}

	var act Action
	if code, _, body := call(t, "POST", base+"/queue/"+id+"/retry", &act); code != 200 || act.Action != "retry" {
		t.Fatalf("retry with the token: %d %s", code, body)
	}
	waitFor(t, "the retried attempt", func() bool { in, _ := sp.Get(id); return in.Recipients[0].Attempts == 2 })
	if code, _, body := callWith(t, "bearer  "+testSecret+" ", "DELETE", base+"/queue/"+id, &act); code != 200 || act.Action != "delete" {
		t.Fatalf("delete with the token (scheme in lower case, spaces around): %d %s", code, body)
	}
	if _, err := sp.Get(id); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("the entry survived an authorised DELETE: %v", err)
	}
}

// TestCorruptEntriesReported: an entry the spool set aside shows in /readyz's notices (count and
// directory, still ready), in sealpost_queue_corrupt_entries and in GET /queue/corrupt.
func TestCorruptEntriesReported(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir, hop(busy))
	id, err := sp.Put(context.Background(), &queue.Message{From: "statements@bank.example", Recipients: []string{"alice@example.com"},
		Data: []byte("Subject: s\r\n\r\nx\r\n"), Class: "statement", Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first attempt", func() bool { in, err := sp.Get(id); return err == nil && in.Recipients[0].Attempts == 1 })
	sp.Close()
	msg := filepath.Join(dir, "queue", id+".msg")
	b, _ := os.ReadFile(msg)
	os.WriteFile(msg, b[:len(b)/2], 0o600)
	sp = openSpool(t, dir, hop(busy))
	m := NewMetrics()
	m.WatchSpool("outbound", sp)
	_, base := startServer(t, WithMetrics(m), WithSpool("outbound", sp))

	var r Readiness
	code, _, body := call(t, "GET", base+"/readyz", &r)
	notice := r.Notices["corrupt entries: outbound"]
	if code != 200 || r.Status != "ready" || !strings.Contains(notice, "1 entry failed its checks") ||
		!strings.Contains(notice, sp.CorruptDir()) || !strings.Contains(notice, "sealpost queue list -corrupt") {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if s := scrapeMetrics(t, base); s[`sealpost_queue_corrupt_entries{queue="outbound"}`] != 1 {
		t.Fatalf("sealpost_queue_corrupt_entries = %v", s[`sealpost_queue_corrupt_entries{queue="outbound"}`])
	}
	var l CorruptList
	code, _, body = call(t, "GET", base+"/queue/corrupt", &l)
	if code != 200 || l.Queue != "outbound" || l.Dir != sp.CorruptDir() || len(l.Entries) != 1 || l.Entries[0].ID != id ||
		len(l.Entries[0].Files) != 2 || !strings.Contains(body, "no end record") {
		t.Fatalf("GET /queue/corrupt: %d %s", code, body)
	}
	if strings.Contains(body, "alice") {
		t.Fatalf("GET /queue/corrupt shows an address: %s", body)
	}
}

// FuzzTokenFiles: whatever a token file or its hash file holds, parsing never panics; a secret
// that parses is accepted by its own token only, and its hash file reads back as that token.
func FuzzTokenFiles(f *testing.F) {
	f.Add([]byte("an-operators-own-token-of-enough-characters-0123\n"))
	f.Add([]byte("short\n"))
	f.Add([]byte("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"))
	f.Add([]byte("with space inside the token of enough characters\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if tok, err := parseTokenHash(b); err == nil && tok.matches("") {
			t.Fatal("a hash file's token accepts the empty secret")
		}
		secret, err := parseTokenSecret(b)
		if err != nil {
			return
		}
		tok := NewToken(secret)
		if !tok.matches(secret) || tok.matches(secret+"x") || tok.matches("") {
			t.Fatalf("token of %q does not accept exactly it", secret)
		}
		again, err := parseTokenHash([]byte(hex.EncodeToString(tok.sum[:]) + "\n"))
		if err != nil || !again.matches(secret) {
			t.Fatalf("the hash of %q does not read back: %v", secret, err)
		}
	})
}

// TestCheckToken: the check serve -check runs changes nothing and refuses what EnsureToken refuses.
func TestCheckToken(t *testing.T) {
	dir := t.TempDir()
	if err := CheckToken(dir); err != nil {
		t.Fatalf("no token yet: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("CheckToken wrote %v", entries)
	}
	if _, err := EnsureToken(dir); err != nil {
		t.Fatal(err)
	}
	if err := CheckToken(dir); err != nil {
		t.Fatalf("the token EnsureToken made: %v", err)
	}
	os.Chmod(filepath.Join(dir, TokenFile), 0o644)
	if err := CheckToken(dir); !errors.Is(err, ErrTokenFileMode) {
		t.Fatalf("a world-readable token: %v, want ErrTokenFileMode", err)
	}
	os.Chmod(filepath.Join(dir, TokenFile), 0o600)
	os.WriteFile(filepath.Join(dir, TokenFile), []byte("another-secret-of-enough-length-000000\n"), 0o600)
	if err := CheckToken(dir); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("a token that does not match its hash: %v", err)
	}
}
