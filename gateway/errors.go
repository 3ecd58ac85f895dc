package gateway

import (
	"errors"
	"fmt"
)

// Error is a refusal with its SMTP reply: the one error type that crosses from the gateway to the
// SMTP listener, which turns it into a reply with errors.As (smtpd.Reply). Any other error becomes
// "451 4.3.0" with no detail, so internal errors never leak to a client.
type Error struct {
	Code     int    // 4xx or 5xx
	Enhanced [3]int // RFC 3463 enhanced status code
	Message  string // safe to show to the client: no internal detail, no message content
	Err      error  // the cause, for logs and errors.Is
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%d %d.%d.%d %s", e.Code, e.Enhanced[0], e.Enhanced[1], e.Enhanced[2], e.Message)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the client should try again later (4xx).
func (e *Error) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// Sentinels for refusals the gateway decides on; each is wrapped in an *Error with its reply.
var (
	ErrNoKey            = errors.New("recipient has no usable key and the class requires encryption")
	ErrRelayDenied      = errors.New("relaying denied")
	ErrTimestampFailed  = errors.New("no timestamp authority answered")
	ErrQueueUnavailable = errors.New("queue cannot accept the message")
	// ErrBadEnvelopeAddress: a MAIL FROM or RCPT TO address that can never be served as written
	// (CheckSender, CheckRecipient).
	ErrBadEnvelopeAddress = errors.New("malformed envelope address")
	// ErrClassMismatch: the header From belongs to another class than the one the message is sent
	// under (a class borrowed through the envelope sender).
	ErrClassMismatch = errors.New("the From address belongs to another class")
)

// Refuse returns an *Error; the constructors below are the replies sealpost uses.
func Refuse(code int, enhanced [3]int, msg string, cause error) *Error {
	return &Error{Code: code, Enhanced: enhanced, Message: msg, Err: cause}
}

// TempFail is 451 4.3.0 with msg: a local problem; the client retries and nothing is lost.
func TempFail(msg string, cause error) *Error {
	return Refuse(451, [3]int{4, 3, 0}, msg, cause)
}

// ReasonCode is Reason as a short token for metric labels: no_key, relay_denied,
// timestamp_failed, queue_unavailable, bad_address, class_mismatch or refused.
func ReasonCode(err error) string {
	for _, c := range []struct {
		err  error
		code string
	}{{ErrNoKey, "no_key"}, {ErrRelayDenied, "relay_denied"}, {ErrTimestampFailed, "timestamp_failed"}, {ErrQueueUnavailable, "queue_unavailable"},
		{ErrBadEnvelopeAddress, "bad_address"}, {ErrClassMismatch, "class_mismatch"}} {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "refused"
}

// Reply returns the SMTP reply err stands for ("554 5.6.0 message cannot be parsed"), or
// "451 4.3.0 local error" for an error that is not an *Error.
func Reply(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return fmt.Sprintf("%d %d.%d.%d %s", e.Code, e.Enhanced[0], e.Enhanced[1], e.Enhanced[2], e.Message)
	}
	return "451 4.3.0 local error"
}

// Reason names the kind of refusal for logs, without its reply text, which can name recipients.
func Reason(err error) string {
	for _, s := range []error{ErrNoKey, ErrRelayDenied, ErrTimestampFailed, ErrQueueUnavailable, ErrBadEnvelopeAddress, ErrClassMismatch} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "refused"
}
