package outbound

import (
	"errors"
	"log/slog"
	"slices"
	"testing"

	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/queue"
)

// TestPacedLaneRefusesWhileOTPFlows: once the statements' lane holds its max_depth entries, a
// new statement gets 451 4.3.2 before anything is signed and nothing is queued, while a one-time
// passcode (its own lane) is still accepted; the refusal is counted as "paced".
func TestPacedLaneRefusesWhileOTPFlows(t *testing.T) {
	f := pipelinetest.Get(t)
	qcfg := queue.DefaultConfig()
	qcfg.Dir, qcfg.MaxDepth = t.TempDir(), 2
	sp, err := queue.Open(qcfg, heldHop{}, queue.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	obs := &observed{}
	g, err := New(testConfig(), f.Direct, f.SMIME, sp, WithPGP(f.PGP), WithLogger(slog.New(slog.DiscardHandler)), WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "statements@bank.example", []string{"alice@example.com"}, statementMsg); err != nil {
			t.Fatal(err)
		}
	}
	_, err = pipelinetest.Transaction(t, g, pipelinetest.Trusted, "statements@bank.example", []string{"alice@example.com"}, statementMsg)
	e := pipelinetest.Reply(t, err)
	if e.Code != 451 || e.Enhanced != [3]int{4, 3, 2} || !errors.Is(err, gateway.ErrPaced) || !errors.Is(err, queue.ErrPaced) {
		t.Fatalf("a statement to a full lane: %v; want 451 4.3.2 paced", err)
	}
	if infos, _ := sp.List(); len(infos) != 2 {
		t.Fatalf("%d entries queued; want 2", len(infos))
	}
	otp := "From: otp@bank.example\r\nTo: alice@example.com\r\nSubject: Your code\r\n\r\nYour code is 123456.\r\n"
	if _, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "otp@bank.example", []string{"alice@example.com"}, otp); err != nil {
		t.Fatalf("a passcode while statements are paced: %v", err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if n := slices.Index(obs.calls, "refused statement paced"); n < 0 || slices.Contains(obs.calls[n+1:], "refused statement paced") {
		t.Errorf("observed %q; want one statement refused as paced", obs.calls)
	}
}
