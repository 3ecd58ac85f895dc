package smtpd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/sealpost/sealpost/gateway"
)

// TestReply: the one error→reply mapping.
func TestReply(t *testing.T) {
	const internal = "dial tcp 10.1.2.3:443: connection refused; key /etc/sealpost/hsm.pin"
	tests := []struct {
		name string
		err  error
		want string // "code x.y.z message"
	}{
		{"gateway refusal", gateway.Refuse(550, [3]int{5, 7, 1}, "Recipient has no usable key", gateway.ErrNoKey), "550 5.7.1 Recipient has no usable key"},
		{"wrapped TempFail", fmt.Errorf("protect: %w", gateway.TempFail("Timestamp authority unavailable", gateway.ErrTimestampFailed)), "451 4.3.0 Timestamp authority unavailable"},
		{"doubly wrapped", fmt.Errorf("a: %w", fmt.Errorf("b: %w", gateway.Refuse(452, [3]int{4, 3, 1}, "Queue full", gateway.ErrQueueUnavailable))), "452 4.3.1 Queue full"},
		{"joined", errors.Join(errors.New(internal), gateway.Refuse(554, [3]int{5, 7, 1}, "Relaying denied", gateway.ErrRelayDenied)), "554 5.7.1 Relaying denied"},
		{"plain error", errors.New(internal), "451 4.3.0 Local error, try again later"},
		{"wrapped plain error", fmt.Errorf("queue: %w", errors.New(internal)), "451 4.3.0 Local error, try again later"},
		{"context", context.DeadlineExceeded, "451 4.3.0 Local error, try again later"},
		{"go-smtp error is not a gateway error", &smtp.SMTPError{Code: 250, Message: internal}, "451 4.3.0 Local error, try again later"},
		{"code out of range", &gateway.Error{Code: 250, Enhanced: [3]int{2, 0, 0}, Message: "ok?"}, "451 4.3.0 Local error, try again later"},
		{"nil *gateway.Error", (*gateway.Error)(nil), "451 4.3.0 Local error, try again later"},
		{"enhanced class mismatch", gateway.Refuse(550, [3]int{4, 7, 1}, "Denied", nil), "550 5.0.0 Denied"},
		{"missing enhanced code", gateway.Refuse(451, [3]int{}, "Later", nil), "451 4.0.0 Later"},
		{"CRLF in message", gateway.Refuse(550, [3]int{5, 7, 1}, "No\r\n250 2.0.0 ok", nil), "550 5.7.1 No  250 2.0.0 ok"},
		{"empty message", gateway.Refuse(550, [3]int{5, 7, 1}, "", nil), "550 5.7.1 Requested action not taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Reply(tt.err)
			got := strings.TrimSuffix(line(r), "\r\n")
			if got != tt.want {
				t.Fatalf("Reply = %q, want %q", got, tt.want)
			}
			if strings.Contains(got, "10.1.2.3") || strings.Contains(got, "hsm") {
				t.Fatalf("reply leaks internal detail: %q", got)
			}
		})
	}
	if Reply(nil) != nil {
		t.Fatal("Reply(nil) != nil")
	}
	if a, b := Reply(errors.New("x")), Reply(errors.New("y")); a == b {
		t.Fatal("Reply returns a shared value")
	}
}
