package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/ops"
	"github.com/sealpost/sealpost/queue"
)

// failingHop defers every recipient, naming it as real servers do, so entries stay queued.
type failingHop struct{}

func (failingHop) Deliver(_ context.Context, _ string, to []string, _ []byte) []error {
	errs := make([]error, len(to))
	for i, r := range to {
		errs[i] = &queue.DeliveryError{Temporary: true, Code: 451, Enhanced: "4.4.1", Message: "<" + r + "> try later"}
	}
	return errs
}

// queueCLI runs `sealpost queue ARGS…` and returns its error and output.
func queueCLI(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := cmdQueue(args, &out, &errOut)
	return out.String(), err
}

func TestCLIQueue(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	open := func() *queue.Spool {
		sp, err := queue.Open(testSpoolConfig(t.TempDir(), 1, 5*time.Millisecond), failingHop{}, queue.WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		sp.Start(ctx)
		t.Cleanup(func() { cancel(); sp.Close() })
		return sp
	}
	outbound, desk := open(), open()
	data := t.TempDir()
	tok, err := ops.EnsureToken(data)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ops.NewServer(ops.Config{Enabled: true, Addr: "127.0.0.1:0"}, ops.WithSpool("outbound", outbound), ops.WithSpool("desk", desk),
		ops.WithLogger(log), ops.WithToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	addr := srv.Addr().String()
	queueCLI := func(args ...string) (string, error) { return queueCLI(append(args, "-data", data)...) }
	attempts := func(sp *queue.Spool, id string) int {
		in, err := sp.Get(id)
		if err != nil {
			return -1
		}
		return in.Recipients[0].Attempts
	}
	put := func(sp *queue.Spool, class string, to ...string) string {
		id, err := sp.Put(context.Background(), &queue.Message{From: "statements@bank.example", Recipients: to,
			Data: []byte("Subject: s\r\n\r\nBODY-SECRET\r\n"), Class: class, Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "first attempt", func() bool { return attempts(sp, id) == 1 })
		return id
	}
	a := put(outbound, "statement", "alice@example.com", "bob@example.net")
	b := put(outbound, "otp", "carol@example.org")
	d := put(desk, "support", "desk@bank.example")

	out, err := queueCLI("list", "-addr", addr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, a) || !strings.Contains(out, b) || strings.Contains(out, d) ||
		!strings.Contains(out, "example.com,example.net") || !strings.Contains(out, "statement") {
		t.Fatalf("list:\n%s", out)
	}
	if out, err := queueCLI("list", "-queue", "desk", "-addr", addr); err != nil || !strings.Contains(out, d) || strings.Contains(out, a) {
		t.Fatalf("list -queue desk: %v\n%s", err, out)
	}

	// Flags after the ID too.
	out, err = queueCLI("show", a, "-addr", addr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "example.net") || !strings.Contains(out, "451 4.4.1 <*@example.net> try later") {
		t.Fatalf("show:\n%s", out)
	}
	for _, secret := range []string{"alice", "bob@", "BODY-SECRET"} {
		if strings.Contains(out, secret) {
			t.Fatalf("show output has %q:\n%s", secret, out)
		}
	}

	if out, err := queueCLI("retry", "-addr", addr, a); err != nil || !strings.Contains(out, a) {
		t.Fatalf("retry: %v %q", err, out)
	}
	waitFor(t, "retried attempt", func() bool { return attempts(outbound, a) == 2 })

	if out, err := queueCLI("delete", a, "-addr", addr); err != nil || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: %v %q", err, out)
	}
	if attempts(outbound, a) != -1 {
		t.Fatal("the deleted entry is still queued")
	}
	if _, err := queueCLI("show", a, "-addr", addr); err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), a) {
		t.Fatalf("show of a deleted entry: %v", err)
	}
	if _, err := queueCLI("show", d, "-addr", addr); err == nil {
		t.Fatal("the desk's entry was found in the outbound queue")
	}
	if _, err := queueCLI("retry", d, "-addr", addr, "-queue", "desk"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "retried desk attempt", func() bool { return attempts(desk, d) == 2 })

	if out, err := queueCLI("flush", "-addr", addr); err != nil || !strings.Contains(out, "outbound") {
		t.Fatalf("flush: %v %q", err, out)
	}
	waitFor(t, "flushed attempt", func() bool { return attempts(outbound, b) == 2 })

	if _, err := queueCLI("list", "-addr", addr, "-queue", "nope"); err == nil || !strings.Contains(err.Error(), `no queue "nope"`) {
		t.Fatalf("unknown queue: %v", err)
	}
}

func TestCLIQueueUsageAndUnreachable(t *testing.T) {
	for _, args := range [][]string{{}, {"frob"}, {"show"}, {"list", "extra"}, {"retry", "A", "B"}, {"list", "-nope"},
		{"show", "-corrupt", "A"}, {"list", "-data", "a", "-token-file", "b"}} {
		if _, err := queueCLI(args...); !errors.Is(err, errUsage) {
			t.Errorf("queue %q: %v, want a usage error", args, err)
		}
	}
	data := t.TempDir()
	if _, err := ops.EnsureToken(data); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	out, err := queueCLI("list", "-addr", dead, "-data", data)
	if err == nil || out != "" || !strings.Contains(err.Error(), "is sealpost serve running? (ops listener "+dead+")") {
		t.Fatalf("nothing listening: %v, output %q", err, out)
	}
}

// TestCLIQueueNeedsTheToken: sealpost queue says what is missing when it has no token (no file,
// a file others can read, a token the listener refuses), and a refused delete leaves the entry;
// -config finds the listener and the token; list -corrupt shows what was set aside.
func TestCLIQueueNeedsTheToken(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	spoolDir := t.TempDir()
	open := func() *queue.Spool {
		sp, err := queue.Open(testSpoolConfig(spoolDir, 1, 5*time.Millisecond), failingHop{}, queue.WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		return sp
	}
	sp := open()
	put := func() string {
		id, err := sp.Put(context.Background(), &queue.Message{From: "statements@bank.example", Recipients: []string{"alice@example.com"},
			Data: []byte("Subject: s\r\n\r\nBODY-SECRET\r\n"), Class: "statement", Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	damaged, kept := put(), put()
	sp.Close()
	msg := filepath.Join(spoolDir, "queue", damaged+".msg")
	b, _ := os.ReadFile(msg)
	os.WriteFile(msg, b[:len(b)-20], 0o600)
	sp = open()
	t.Cleanup(func() { sp.Close() })

	data := t.TempDir()
	tok, err := ops.EnsureToken(data)
	if err != nil {
		t.Fatal(err)
	}
	tokenPath := filepath.Join(data, ops.TokenFile)
	if fi, err := os.Stat(tokenPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the token file: %v, %v; want mode 0600", fi.Mode(), err)
	}
	srv, err := ops.NewServer(ops.Config{Enabled: true, Addr: "127.0.0.1:0"}, ops.WithSpool("outbound", sp), ops.WithLogger(log), ops.WithToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	addr := srv.Addr().String()

	t.Chdir(t.TempDir()) // no sealpost-data here
	if _, err := queueCLI("delete", kept, "-addr", addr); err == nil ||
		!strings.Contains(err.Error(), "no ops token: sealpost-data/ops.token does not exist") || !strings.Contains(err.Error(), "-data DIR") {
		t.Fatalf("without a token: %v", err)
	}
	if _, err := queueCLI("delete", kept, "-addr", addr, "-token-file", "/nowhere/token"); err == nil ||
		!strings.Contains(err.Error(), "-token-file /nowhere/token does not exist") {
		t.Fatalf("with a missing -token-file: %v", err)
	}
	readable := filepath.Join(t.TempDir(), "token")
	secret, _ := os.ReadFile(tokenPath)
	os.WriteFile(readable, secret, 0o644)
	os.Chmod(readable, 0o644)
	if _, err := queueCLI("delete", kept, "-addr", addr, "-token-file", readable); !errors.Is(err, ops.ErrTokenFileMode) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("with a token others can read: %v", err)
	}
	wrong := filepath.Join(t.TempDir(), "token")
	os.WriteFile(wrong, []byte("not-the-token-of-this-gateway-0123456789abc\n"), 0o600)
	if _, err := queueCLI("delete", kept, "-addr", addr, "-token-file", wrong); err == nil ||
		!strings.Contains(err.Error(), "refused the ops token read from "+wrong) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("with a wrong token: %v", err)
	}
	if _, err := sp.Get(kept); err != nil {
		t.Fatalf("a refused delete removed the entry: %v", err)
	}

	cfgFile := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(cfgFile, []byte(`{"data": "`+data+`", "ops": {"enabled": true, "addr": "`+addr+`"}, "api": {"addr": "127.0.0.1:0"}}`), 0o600)
	out, err := queueCLI("list", "-corrupt", "-config", cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "1 entry set aside in "+sp.CorruptDir()) || !strings.Contains(out, damaged+".msg") ||
		!strings.Contains(out, "no end record") || strings.Contains(out, kept) || strings.Contains(out, "alice") {
		t.Fatalf("list -corrupt:\n%s", out)
	}
	if out, err := queueCLI("list", "-config", cfgFile); err != nil || !strings.Contains(out, kept) || strings.Contains(out, damaged) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err := queueCLI("delete", kept, "-token-file", tokenPath, "-addr", addr); err != nil || !strings.Contains(out, "deleted") {
		t.Fatalf("delete with -token-file: %v %s", err, out)
	}
	if _, err := sp.Get(kept); err == nil {
		t.Fatal("the entry survived an authorised delete")
	}
}
