package smtpd

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestCloseCancelsInFlightPipelineCall: the context a pipeline gets lives as long as the server.
// A Data call blocked on a slow TSA or store (here: waiting on its context) is cancelled by Close
// instead of running on after shutdown, and the client is not told 250.
func TestCloseCancelsInFlightPipelineCall(t *testing.T) {
	entered := make(chan struct{})
	got := make(chan error, 1)
	rec := &recorder{dataCtx: func(ctx context.Context) error {
		close(entered)
		select {
		case <-ctx.Done():
			got <- ctx.Err()
		case <-time.After(hangGuard):
			got <- errors.New("Data's context was not cancelled by Close")
		}
		return ctx.Err()
	}}
	srv := startServer(t, Config{AllowedNetworks: []string{"127.0.0.0/8"}}, rec)
	c := dial(t, srv.addr)
	c.do("EHLO client.example", "250")
	c.do("MAIL FROM:<statements@bank.example>", "250 ")
	c.do("RCPT TO:<alice@example.com>", "250 ")
	c.do("DATA", "354 ")
	c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
	select {
	case <-entered:
	case <-time.After(hangGuard):
		t.Fatal("Data never reached the pipeline")
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("pipeline context: %v, want context.Canceled", err)
	}
	if r, err := c.reply(); err == nil && r[:3] == "250" {
		t.Fatalf("client was told %q after shutdown", r)
	}
	if len(rec.msgs()) != 0 {
		t.Fatal("a message was recorded as queued")
	}
}
