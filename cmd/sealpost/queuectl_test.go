package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
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
		sp, err := queue.Open(queue.Config{Dir: t.TempDir(), Workers: 1, ScanInterval: 5 * time.Millisecond}, failingHop{}, queue.WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		sp.Start(ctx)
		t.Cleanup(func() { cancel(); sp.Close() })
		return sp
	}
	outbound, desk := open(), open()
	srv, err := ops.NewServer(ops.Config{Enabled: true, Addr: "127.0.0.1:0"}, ops.WithSpool("outbound", outbound), ops.WithSpool("desk", desk), ops.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	addr := srv.Addr().String()
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
	for _, args := range [][]string{{}, {"frob"}, {"show"}, {"list", "extra"}, {"retry", "A", "B"}, {"list", "-nope"}} {
		if _, err := queueCLI(args...); !errors.Is(err, errUsage) {
			t.Errorf("queue %q: %v, want a usage error", args, err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	out, err := queueCLI("list", "-addr", dead)
	if err == nil || out != "" || !strings.Contains(err.Error(), "is sealpost serve running? (ops listener "+dead+")") {
		t.Fatalf("nothing listening: %v, output %q", err, out)
	}
}
